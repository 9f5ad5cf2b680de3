"""Shared builders for the tests (not a test module)."""

from __future__ import annotations

import pathlib
from typing import Callable, Optional

import ml_collections

REPO = pathlib.Path(__file__).resolve().parents[1]
DEMO_SETS = REPO / "korpat_jax" / "demo" / "finetune"  # the labelled demo sets that ship in the package

# XLA:CPU ends the process when a collective's threads do not all arrive within 40 s ("Termination timeout for all
# reduce"): on a loaded 2-core machine 16 fake devices can take longer than that. Ten minutes instead.
COLLECTIVE_TIMEOUTS = ("--xla_cpu_collective_timeout_seconds=600 "
                       "--xla_cpu_collective_call_terminate_timeout_seconds=600")


def xla_flags(devices: int, extra: str = "") -> str:
  """XLA_FLAGS for `devices` fake CPU devices whose collectives survive a loaded machine."""
  return " ".join(f for f in (extra, f"--xla_force_host_platform_device_count={devices}", COLLECTIVE_TIMEOUTS) if f)


def pretrain_config(variant: str = "tiny", **overrides) -> ml_collections.ConfigDict:
  """configs/pretrain.py:VARIANT with dotted overrides, e.g. pretrain_config(**{"train.num_steps": 4})."""
  from korpat_jax import config as config_lib
  return config_lib.with_values(config_lib.load(str(REPO / "configs" / "pretrain.py") + f":{variant}"), overrides)


def finetune_config(variant: str = "ner_tiny", **overrides) -> ml_collections.ConfigDict:
  """configs/finetune.py:VARIANT with dotted overrides."""
  from korpat_jax import config as config_lib
  return config_lib.with_values(config_lib.load(str(REPO / "configs" / "finetune.py") + f":{variant}"), overrides)


def unreadable_records(path: str) -> Optional[list[int]]:
  """The records of an ArrayRecord shard that its reader cannot read; None when it cannot open the file."""
  from array_record.python import array_record_module
  reader = array_record_module.ArrayRecordReader(path, "readahead_buffer_size:0")
  if not reader.ok():
    return None
  bad = []
  for i in range(reader.num_records()):
    try:
      reader.read([i])
    except RuntimeError:
      bad.append(i)
  return bad


def flip_a_record(path: str, accept: Callable[[int], bool] = lambda record: True) -> int:
  """Flips one bit inside one record's chunk of a shard, as a bad disk or copy would; returns that record's index.
  Tries a third into the chunks, then each next byte (wrapping around), until a flip hits exactly one more record
  (than were bad already) that `accept`s."""
  data, before = open(path, "rb").read(), set(unreadable_records(path) or ())
  used = data.find(bytes(64))  # the chunks; then zeros up to the next 64 KiB block, where the file's footer sits
  for at in [*range(used // 3, used), *range(used // 3)]:
    damaged = bytearray(data)
    damaged[at] ^= 0x01
    with open(path, "wb") as f:
      f.write(bytes(damaged))
    bad = unreadable_records(path)
    new = None if bad is None else set(bad) - before
    if new is not None and len(new) == 1 and accept(min(new)):
      return min(new)
  with open(path, "wb") as f:
    f.write(data)
  raise AssertionError(f"{path}: no single bit flip hits exactly one record that is accepted")


def train_losses(workdir: pathlib.Path) -> dict[int, float]:
  """step -> loss of a run's metrics.jsonl training rows."""
  import json
  with open(workdir / "metrics.jsonl") as f:
    return {r["step"]: r["loss"] for r in map(json.loads, f) if r["split"] == "train"}


def run_params(workdir: pathlib.Path, step: Optional[int] = None):
  """(step, params on the host) of a run's checkpoint (the latest when `step` is None)."""
  from korpat_jax import workdir as workdir_lib
  from korpat_jax.checkpoint import Checkpointer
  ckpt = Checkpointer(workdir_lib.checkpoint_dir(str(workdir)), interval=1, keep=1, read_only=True)
  return ckpt.restore_params_on_host(step)
