"""Shared builders for the tests (not a test module)."""

from __future__ import annotations

import pathlib
import ml_collections

REPO = pathlib.Path(__file__).resolve().parents[1]
DEMO_SETS = REPO / "korpat_jax" / "demo" / "finetune"  # the labelled demo sets that ship in the package


def pretrain_config(variant: str = "tiny", **overrides) -> ml_collections.ConfigDict:
  """configs/pretrain.py:VARIANT with dotted overrides, e.g. pretrain_config(**{"train.num_steps": 4})."""
  from korpat_jax import config as config_lib
  return config_lib.with_values(config_lib.load(str(REPO / "configs" / "pretrain.py") + f":{variant}"), overrides)


def finetune_config(variant: str = "ner_tiny", **overrides) -> ml_collections.ConfigDict:
  """configs/finetune.py:VARIANT with dotted overrides."""
  from korpat_jax import config as config_lib
  return config_lib.with_values(config_lib.load(str(REPO / "configs" / "finetune.py") + f":{variant}"), overrides)
