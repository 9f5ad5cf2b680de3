"""Shared builders for the tests (not a test module)."""

from __future__ import annotations

import pathlib
import ml_collections

REPO = pathlib.Path(__file__).resolve().parents[1]


def pretrain_config(variant: str = "tiny", **overrides) -> ml_collections.ConfigDict:
  """configs/pretrain.py:VARIANT with dotted overrides, e.g. pretrain_config(**{"train.num_steps": 4})."""
  from korpat_jax import config as config_lib
  config = config_lib.load(str(REPO / "configs" / "pretrain.py") + f":{variant}")
  for key, value in overrides.items():
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
      node = node[part]
    node[parts[-1]] = value
  return config
