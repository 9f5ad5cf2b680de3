"""benchmarks/transfer/options (`python -m benchmarks.transfer.options`): the options it runs are real config values,
equal-steps timing, and its table."""

from __future__ import annotations

import json
import sys

import pytest

from helpers import REPO

if str(REPO) not in sys.path:  # `benchmarks` is a package at the repository root
  sys.path.insert(0, str(REPO))

from benchmarks.transfer import options, pretrain  # noqa: E402


def test_every_option_is_a_valid_override_of_the_cpu_recipe():
  suffixes = set()
  for name, sets in options.OPTIONS.items():
    overrides = pretrain.parse_overrides(list(sets), "--set")
    config = pretrain.load_recipe(overrides).config("records", 10)
    for key, value in overrides:
      block, field = key.split(".")
      assert config[block][field] == value, (name, key)
    suffixes.add(pretrain.load_recipe(overrides).suffix)
  assert len(suffixes) == len(options.OPTIONS)  # no two options share runs


def test_unknown_option_is_refused_in_one_line():
  with pytest.raises(SystemExit, match="--options: unknown wwm"):
    options.parse_args(["--out", "x", "--options", "eojeol,wwm"])


def test_baseline_timing_gives_an_option_the_recipes_step_time_and_keeps_its_own(tmp_path):
  overrides = (("objective.masking", "eojeol"),)
  with pytest.raises(SystemExit, match="timing.json not found"):
    options.adopt_baseline_timing(tmp_path, overrides)
  (tmp_path / "timing").mkdir()
  (tmp_path / "timing" / "timing.json").write_text(json.dumps({"korpat": {"step_time": 0.25}}))
  options.adopt_baseline_timing(tmp_path, overrides)
  own = tmp_path / "timing" / f"timing{pretrain.load_recipe(overrides).suffix}.json"
  assert json.loads(own.read_text())["korpat"]["step_time"] == 0.25
  own.write_text(json.dumps({"korpat": {"step_time": 0.3}}))
  options.adopt_baseline_timing(tmp_path, overrides)
  assert json.loads(own.read_text())["korpat"]["step_time"] == 0.3


def test_table_shows_each_option_against_the_recipe():
  pre = {"steps": 1159, "gen_loss": 6.7, "disc_loss": 0.356, "disc_precision": 0.7, "disc_recall": 0.2}
  score = lambda mean: {"mean": mean, "min": mean - 0.01, "max": mean + 0.01}
  rows = [{"option": "token (recipe)", "overrides": [], "pretraining": pre, "scores": {"nsmc": score(0.8)}},
          {"option": "eojeol", "overrides": ["objective.masking=eojeol"], "pretraining": pre,
           "scores": {"nsmc": score(0.81)}},
          {"option": "span", "overrides": ["objective.masking=span"], "pretraining": {}, "scores": {}}]
  text = options.markdown(rows, ["nsmc"], 5.0, {"cpu": "test"}, "0,1,2")
  assert "| token (recipe) | 1,159 | 6.700 | 0.3560 | 0.700 | 0.200 | 0.800 [0.790, 0.810] |" in text
  assert "| eojeol | 1,159 | 6.700 | 0.3560 | 0.700 | 0.200 | 0.810 (+0.010) [0.800, 0.820] |" in text
  assert "| span | – | – | – | – | – | – |" in text
