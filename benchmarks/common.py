"""What the benchmark scripts share: the repository root, a pretraining config with overrides, CPU pinning and the
machine's description (imported as `benchmarks.common`; nothing here imports JAX or torch)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
from typing import Iterator

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


@contextlib.contextmanager
def process_settings_restored() -> Iterator[None]:
  """Gives the calling process back its CPU affinity, OMP_WAIT_POLICY and torch thread count afterwards: a
  benchmark that pins cores and sets threads can then be called in-process (the tests do)."""
  affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
  policy = os.environ.get("OMP_WAIT_POLICY")
  torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
  try:
    yield
  finally:
    if affinity is not None:
      os.sched_setaffinity(0, affinity)
    if policy is None:
      os.environ.pop("OMP_WAIT_POLICY", None)
    else:
      os.environ["OMP_WAIT_POLICY"] = policy
    if torch_threads is not None:
      sys.modules["torch"].set_num_threads(torch_threads)


def machine() -> str:
  model = ""
  try:
    with open("/proc/cpuinfo") as f:
      model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
  except OSError:
    pass
  return f"{os.cpu_count()} CPUs ({model or 'unknown model'})"


def write_report(path: str, text: str) -> None:
  """Writes a benchmark's markdown report (creating its directory) and prints it."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  print(text)
