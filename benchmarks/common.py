"""What the benchmark scripts share: the repository root, a pretraining config with overrides, CPU pinning and the
machine's description (imported as `benchmarks.common`; nothing here imports JAX or torch)."""

from __future__ import annotations

import os
import pathlib

import ml_collections

REPO = pathlib.Path(__file__).resolve().parents[1]


def pretrain_config(variant: str = "tiny", **overrides) -> ml_collections.ConfigDict:
  """configs/pretrain.py:VARIANT with dotted overrides, e.g. pretrain_config(**{"train.num_steps": 4})."""
  from korpat_jax import config as config_lib
  return config_lib.with_values(config_lib.load(str(REPO / "configs" / "pretrain.py") + f":{variant}"), overrides)


def pin_cpus(threads: int) -> list[int]:
  """Restricts this process to its first `threads` schedulable cores; returns the cores it runs on."""
  if not hasattr(os, "sched_setaffinity"):
    return list(range(os.cpu_count() or 1))
  cpus = sorted(os.sched_getaffinity(0))
  if len(cpus) > threads:
    os.sched_setaffinity(0, cpus[:threads])
  return sorted(os.sched_getaffinity(0))


def machine() -> str:
  model = ""
  try:
    with open("/proc/cpuinfo") as f:
      model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
  except OSError:
    pass
  return f"{os.cpu_count()} CPUs ({model or 'unknown model'})"
