"""TFDS builder tests: skipped with a reason where tensorflow-datasets is absent; a small pretraining run for the
end-to-end fine-tuning test (the pattern of tests/tasks/conftest.py)."""

from __future__ import annotations

import pathlib

import pytest

from helpers import pretrain_config


@pytest.fixture(autouse=True)
def _needs_tfds():
  pytest.importorskip("tensorflow_datasets", reason="tensorflow-datasets is not installed (pip install "
                      "tensorflow-datasets)")


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory) -> pathlib.Path:
  """The demo variant trained for 30 steps on the 16 fake devices: a real run directory with checkpoints."""
  from korpat_jax.corpus.demo import build_demo_if_absent
  from korpat_jax.train import train
  workdir = tmp_path_factory.mktemp("pretrained")
  config = pretrain_config("demo", **{"train.num_steps": 30, "train.eval_every": 0, "train.log_every": 10})
  build_demo_if_absent(config, str(workdir))
  train(config, str(workdir))
  return workdir

