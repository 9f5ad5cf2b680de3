"""The metric writer: default sinks, a user's sink through train.loggers, one-line errors."""

from __future__ import annotations

import json
import sys

import pytest

from helpers import pretrain_config
from korpat_jax.errors import ConfigError
from korpat_jax.metrics import load_sinks
from korpat_jax.train import train


class RecordingSink:
  """A user's logger (e.g. Weights & Biases) as train.loggers would load it."""

  seen: list = []

  def __init__(self, workdir, config):
    self.workdir, self.config = workdir, config

  def write(self, step, scalars, prefix):
    RecordingSink.seen.append((prefix, step, dict(scalars)))

  def close(self):
    RecordingSink.seen.append(("closed", None, {}))


def test_a_users_sink_gets_what_metrics_jsonl_gets(tmp_path, monkeypatch):
  module = type(sys)("korpat_test_sinks")
  module.RecordingSink = RecordingSink
  monkeypatch.setitem(sys.modules, "korpat_test_sinks", module)
  RecordingSink.seen = []
  train(pretrain_config("tiny", **{"train.num_steps": 10, "train.log_every": 5,
                                   "train.loggers": "korpat_test_sinks:RecordingSink"}), str(tmp_path))
  lines = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [(p, s) for p, s, _ in RecordingSink.seen[:-1]] == [(r["split"], r["step"]) for r in lines]
  assert RecordingSink.seen[-1][0] == "closed"


def test_a_logger_that_does_not_load_is_one_line(tmp_path):
  with pytest.raises(ConfigError, match=r"config.train.loggers='no_such_module:Sink': cannot load it"):
    load_sinks("no_such_module:Sink", str(tmp_path), None)
