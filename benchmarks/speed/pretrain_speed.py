"""Train-step throughput (tokens/s, sequences/s, MFU where defined) of the pretraining configs.

    python -m benchmarks.speed.pretrain_speed --variants tiny,small --batch 16 --steps 10  # CPU, 1 device
    python -m benchmarks.speed.pretrain_speed --variants base --batch 64 --dtype bfloat16  # one GPU

Configs are measured side by side in one process, interleaved round by round, and each figure is the median of
the per-step times (every step synchronised), so a noisy machine shifts all of them alike.
Input is the synthetic stream, already on device: this measures the step, not the loader. The step is the
trainer's own (PretrainingTask + korpat_jax.train.compile_steps), not a copy of its wiring.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time

import jax

from benchmarks.common import REPO, pretrain_config
from korpat_jax import sharding
from korpat_jax.mfu import mfu
from korpat_jax.tasks.pretraining import PretrainingTask
from korpat_jax.train import compile_steps


def build(variant: str, batch: int, seq_len: int | None, dtype: str | None, attention: str | None):
  """The pretraining task on the synthetic stream, wired by the trainer's own `compile_steps`."""
  config = pretrain_config(variant, **{"data.source": "synthetic", "train.batch_size": batch})
  if seq_len:
    config.train.seq_len = seq_len
  if dtype:
    config.model.dtype = dtype
  if attention:
    config.model.attention_impl = attention
    if attention == "cudnn":
      config.model.attention_dropout_rate = 0.0
  task = PretrainingTask(config, tempfile.mkdtemp(prefix="korpat-bench-"))
  stream = task.make_input(0).train
  mesh = sharding.make_mesh({"data": -1, "fsdp": 1})
  steps = compile_steps(task, mesh)
  data = {k: jax.device_put(v, steps.batch_sharding) for k, v in next(stream).items()}
  return {"state": steps.init(), "step": steps.train_step, "batch": data, "flops": task.flops_per_step(),
          "seq": config.train.seq_len, "cfg": task.model_config}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--variants", default="tiny,small")
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--seq-len", type=int, default=None)
  parser.add_argument("--steps", type=int, default=10, help="timed steps per config per round")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--dtype", default=None, help="override model.dtype, e.g. bfloat16 on GPU")
  parser.add_argument("--attention", default=None, help="override model.attention_impl: xla | cudnn")
  args = parser.parse_args()

  runs = {}
  for variant in args.variants.split(","):
    t0 = time.perf_counter()
    runs[variant] = build(variant, args.batch, args.seq_len, args.dtype, args.attention)
    run = runs[variant]
    run["state"], _ = run["step"](run["state"], run["batch"])
    jax.block_until_ready(run["state"])
    run["compile_s"] = time.perf_counter() - t0
    run["times"] = []
  for _ in range(args.rounds):
    for run in runs.values():
      for _ in range(args.steps):
        t0 = time.perf_counter()
        run["state"], metrics = run["step"](run["state"], run["batch"])
        jax.block_until_ready(metrics)
        run["times"].append(time.perf_counter() - t0)

  device = jax.devices()[0]
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
  print(f"# pretrain step speed, {time.strftime('%Y-%m-%d')}, {jax.device_count()} x {device.device_kind}, "
        f"{os.cpu_count()} CPUs, jax {jax.__version__}, commit {commit}\n")
  print("| config | params (M) | batch x seq | median step (ms) | tokens/s | sequences/s | MFU | first step (s) |")
  print("|---|---:|---:|---:|---:|---:|---:|---:|")
  for variant, run in runs.items():
    median = statistics.median(run["times"])
    params = sum(x.size for x in jax.tree.leaves(run["state"].params)) / 1e6
    util = mfu(run["flops"], median, jax.device_count(), device.device_kind)
    print(f"| {variant} | {params:.1f} | {args.batch} x {run['seq']} | {median * 1e3:.1f} | "
          f"{args.batch * run['seq'] / median:,.0f} | {args.batch / median:,.1f} | "
          f"{'n/a (CPU)' if util is None else f'{util:.1%}'} | {run['compile_s']:.1f} |")


if __name__ == "__main__":
  main()
