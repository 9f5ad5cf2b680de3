"""Shared builders for the tests (not a test module)."""

from __future__ import annotations

import pathlib
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
