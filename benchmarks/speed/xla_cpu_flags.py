"""XLA:CPU options against korpat-jax's pretraining step on this CPU (issue 16 item 7): one fresh process per flag
set (XLA_FLAGS is read once per process), the baseline first and last (drift check), each timing the step of
`benchmarks/parity/torch_electra_step.py` (its `small` size unless --quick) after warm-up; medians of --steps.

    python -m benchmarks.speed.xla_cpu_flags --out benchmarks/results/xla_cpu_flags.md   # ~1 min a set, idle machine
    python -m benchmarks.speed.xla_cpu_flags --quick --steps 2 --sets baseline,onednn_dot --out /tmp/x.md  # smoke

What jaxlib 0.10.2 runs here by default (optimized HLO of the `small` step, 2026-12-05): 431 of 594 dots as YNNPACK
single-dot fusions (no bias or GELU fused in), the 160 weight-gradient dots (transposed left operand) on Eigen,
~1.4 GB of attention-head transposes a step; oneDNN is built in but off. The sets below switch those paths.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from typing import Optional, Sequence

from benchmarks.common import REPO, machine, pin_cpus, write_report

_YNN = "--xla_cpu_experimental_ynn_fusion_type"
_ONEDNN = "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type"
SETS = {
    "baseline": "",
    "no_ynn": f"{_YNN}=",                                  # every dot on Eigen, reductions as LLVM loops
    "ynn_no_dots": f"{_YNN}=-individual_dot",              # dots on Eigen, reductions stay in YNNPACK
    "ynn_eltwise": f"{_YNN}=+eltwise",                     # YNNPACK fusions take elementwise neighbours too
    "onednn_dot": f"{_ONEDNN}=dot",                        # oneDNN takes every dot, weight gradients included
    "onednn_dot_eltwise": f"{_ONEDNN}=dot,eltwise",
    "onednn_dot_no_ynn": f"{_ONEDNN}=dot {_YNN}=",
    "vector_512": "--xla_cpu_prefer_vector_width=512",     # LLVM loop fusions on zmm registers (default 256)
    "vector_512_onednn": f"--xla_cpu_prefer_vector_width=512 {_ONEDNN}=dot",
    "concurrency_scheduler": "--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_CONCURRENCY_OPTIMIZED",
    "fast_runtime_preset": "--xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_RUNTIME",
    "fast_math": "--xla_cpu_enable_fast_math=true",         # changes numerics
}


def time_step(steps: int, warmup: int, threads: int, quick: bool) -> dict[str, float]:
  """This process's step time under its XLA_FLAGS: median and min of `steps` synchronised steps."""
  cpus = pin_cpus(threads)  # before JAX sizes its thread pool
  from benchmarks.parity import torch_electra_step as tes
  args = tes.parse_args(["--threads", str(threads)] + (["--quick"] if quick else []))
  run = tes.build_korpat(args)
  side = tes.KorpatStep(run)
  started = time.perf_counter()
  side.train_step = run["steps"].train_step.lower(side.state, run["batch"]).compile()
  compile_s = time.perf_counter() - started
  losses, times = [], []
  for i in range(warmup + steps):
    seconds, stats = side()
    losses.append(stats["loss"])
    if i >= warmup:
      times.append(seconds)
  return {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3, "compile_s": compile_s,
          "finite": float(all(math.isfinite(x) for x in losses)), "cpus": float(len(cpus))}


def run_set(name: str, args: argparse.Namespace) -> Optional[dict[str, float]]:
  """One flag set in a fresh process; None when XLA refuses the flags or the run fails."""
  command = [sys.executable, "-m", "benchmarks.speed.xla_cpu_flags", "--one", "--steps", str(args.steps),
             "--warmup", str(args.warmup), "--threads", str(args.threads)] + (["--quick"] if args.quick else [])
  env = {**os.environ, "XLA_FLAGS": SETS[name], "JAX_PLATFORMS": "cpu"}
  done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
  if done.returncode:
    print(f"{name}: failed ({done.stderr.strip().splitlines()[-1:] or done.returncode})", file=sys.stderr)
    return None
  return {k: float(v) for k, v in (item.split("=", 1) for item in done.stdout.split())}


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--quick", action="store_true", help="the parity script's tiny sizes")
  parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of: {', '.join(SETS)}")
  parser.add_argument("--out", default="")
  parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child: time this process's flags
  args = parser.parse_args(list(argv) if argv is not None else None)
  if args.one:
    print(" ".join(f"{k}={v}" for k, v in time_step(args.steps, args.warmup, args.threads, args.quick).items()))
    return 0
  names = [n.strip() for n in args.sets.split(",") if n.strip()]
  unknown = [n for n in names if n not in SETS]
  if unknown or not args.out:
    parser.error(f"unknown --sets {', '.join(unknown)}" if unknown else "--out is required")
  order = ["baseline", *[n for n in names if n != "baseline"], "baseline"]
  results = [(name, run_set(name, args)) for name in order]
  base = statistics.median([r["median_ms"] for n, r in results if n == "baseline" and r]) if any(
      r for n, r in results if n == "baseline") else float("nan")
  from benchmarks.serving.onnx_speed import cpu_flags
  lines = [f"# XLA:CPU flags on the pretraining step (`benchmarks/speed/xla_cpu_flags.py`), "
           f"{time.strftime('%Y-%m-%d %H:%M')}", "",
           f"{machine()}; CPU flags: {cpu_flags()}; {args.threads} cores; {'quick' if args.quick else 'small'} size; "
           f"{args.steps} steps after {args.warmup} warm-up, medians; load average {os.getloadavg()[0]:.1f}.", "",
           "| set | XLA_FLAGS | median (ms) | min (ms) | vs baseline | compile (s) | losses finite |",
           "|---|---|---:|---:|---:|---:|---|"]
  for name, r in results:
    if r is None:
      lines.append(f"| {name} | `{SETS[name]}` | failed | | | | |")
      continue
    lines.append(f"| {name} | `{SETS[name] or '(none)'}` | {r['median_ms']:.1f} | {r['min_ms']:.1f} | "
                 f"{base / r['median_ms']:.2f}x | {r['compile_s']:.1f} | {'yes' if r['finite'] else 'NO'} |")
  write_report(args.out, "\n".join(lines) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
