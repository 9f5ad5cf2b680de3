"""A fine-tuning run's length: epochs of its training set, but at least train.min_steps (the *_cpu recipes' floor
for sets of a few hundred examples, where 3 epochs are a dozen steps)."""

from __future__ import annotations

import math

import pytest

from helpers import DEMO_SETS, finetune_config
from korpat_jax.errors import ConfigError


def _num_steps(tmp_path, pretrained, name: str, **overrides) -> tuple[int, int]:
  from korpat_jax.tasks import make_task
  config = finetune_config("cpc_tiny", **{"init_from": str(pretrained), "data.train": str(DEMO_SETS / "cpc_train.tsv"),
                                          "data.eval": "", "data.text_fields": "title,abstract", **overrides})
  task = make_task(config, str(tmp_path / name))
  data = task.make_input(0)
  features = task.splits["train"].num_features
  return data.num_steps, math.ceil(features / config.train.batch_size)


def test_min_steps_raises_a_short_schedule_and_leaves_a_long_one(tmp_path, pretrained):
  steps, per_epoch = _num_steps(tmp_path, pretrained, "epochs", **{"train.num_epochs": 2.0})
  assert steps == 2 * per_epoch
  floor = 2 * per_epoch + 7
  assert _num_steps(tmp_path, pretrained, "floor", **{"train.num_epochs": 2.0, "train.min_steps": floor})[0] == floor
  assert _num_steps(tmp_path, pretrained, "below", **{"train.num_epochs": 2.0, "train.min_steps": 3})[0] == steps
  assert _num_steps(tmp_path, pretrained, "fixed", **{"train.num_steps": 5, "train.min_steps": 50})[0] == 5


def test_cpu_recipes_carry_the_measured_schedule():
  import importlib.util
  from helpers import REPO
  spec = importlib.util.spec_from_file_location("finetune_configs", REPO / "configs" / "finetune.py")
  finetune_configs = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(finetune_configs)
  for variant in ("ner_cpu", "ner_conll_cpu"):
    assert finetune_config(variant).train.num_epochs == finetune_configs.CPU_NER_EPOCHS == 10.0
  for variant in ("cpc_cpu", "cpc_multi_cpu", "pair_cpu", "qa_cpu", "ner_cpu"):
    assert finetune_config(variant).train.min_steps == finetune_configs.CPU_MIN_STEPS == 200
  assert finetune_config("cpc_cpu").train.num_epochs == 3.0 and finetune_config("cpc").train.min_steps == 0


def test_negative_min_steps_is_refused_in_one_line():
  from korpat_jax import config as config_lib
  config = finetune_config("cpc_tiny", **{"train.min_steps": -1})
  with pytest.raises(ConfigError, match=r"config.train.min_steps=-1: must be >= 0"):
    config_lib.validate_loop(config, 1)
