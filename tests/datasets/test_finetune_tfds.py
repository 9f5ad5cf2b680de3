"""`korpat-jax finetune --config.data.tfds=klue_ner` end to end: the same scores, predictions and data report as
the plain-file run on the same files; a rerun reads the prepared dataset without the manual files."""

from __future__ import annotations

import json
import sys

import pytest

from helpers import DEMO_SETS, finetune_config
from tfds_helpers import counts

STEPS = {"train.num_steps": 20, "train.eval_every": 20}


@pytest.fixture(scope="module")
def runs(pretrained, tmp_path_factory):
  from korpat_jax.cli import main
  root = tmp_path_factory.mktemp("tfds_runs")
  manual = root / "manual"
  manual.mkdir()
  (manual / "klue-ner-v1.1_train.tsv").symlink_to(DEMO_SETS / "ner_train.tsv")
  (manual / "klue-ner-v1.1_dev.tsv").symlink_to(DEMO_SETS / "ner_eval.tsv")
  common = ["finetune", "--config", f"{DEMO_SETS.parents[2] / 'configs' / 'finetune.py'}:ner_tiny",
            f"--config.init_from={pretrained}", *(f"--config.{k}={v}" for k, v in STEPS.items())]
  assert main([*common, "--workdir", str(root / "files"), f"--config.data.train={manual / 'klue-ner-v1.1_train.tsv'}",
               f"--config.data.eval={manual / 'klue-ner-v1.1_dev.tsv'}"]) == 0
  assert main([*common, "--workdir", str(root / "tfds"), "--config.data.tfds=klue_ner",
               f"--config.data.tfds_manual_dir={manual}", f"--config.data.tfds_data_dir={root / 'prepared'}"]) == 0
  return root


def test_tfds_run_scores_like_the_file_run(runs):
  files, tfds = runs / "files", runs / "tfds"
  metrics = json.loads((tfds / "eval" / "metrics.json").read_text())
  assert metrics == json.loads((files / "eval" / "metrics.json").read_text())
  assert metrics["step"] == 20 and 0.0 <= metrics["f1"] <= 1.0
  assert (tfds / "eval" / "predictions.jsonl").read_text() == (files / "eval" / "predictions.jsonl").read_text()
  got, want = (json.loads((d / "data_report.json").read_text()) for d in (tfds, files))
  assert {s: counts(r) for s, r in got.items()} == {s: counts(r) for s, r in want.items()}
  assert got["train"]["read"] == 1000 and set(got) == {"train", "eval"}
  assert "tensorflow" not in sys.modules


def test_rerun_reads_the_prepared_dataset_without_manual_files(runs, tmp_path):
  from korpat_jax.train import train
  import ml_collections
  config = ml_collections.ConfigDict(json.loads((runs / "tfds" / "config.json").read_text()))
  config.data.tfds_manual_dir = ""
  config.train.num_steps = 10
  config.train.eval_every = 10
  train(config, str(tmp_path / "again"))
  assert json.loads((tmp_path / "again" / "data_report.json").read_text())["train"]["used"] == 1000
  assert (tmp_path / "again" / "eval" / "metrics.json").exists()


def test_korquad_through_tfds_scores_like_the_files(pretrained, shared_data, tmp_path):
  """3 KorQuAD articles drawn (seeded) from the whole dev file at run time (its license allows no cut-down copy)."""
  import random
  from korpat_jax.train import train
  dev = json.loads((shared_data / "KorQuAD_v1.0_dev.json").read_text(encoding="utf-8"))
  articles = list(dev["data"])
  random.Random(2).shuffle(articles)
  manual = tmp_path / "manual"
  manual.mkdir()
  for name, part in (("train", articles[:2]), ("dev", articles[2:3])):
    (manual / f"KorQuAD_v1.0_{name}.json").write_text(json.dumps({"data": part}, ensure_ascii=False), encoding="utf-8")
  steps = {"init_from": str(pretrained), "train.num_steps": 8, "train.eval_every": 8}
  train(finetune_config("qa_tiny", **steps, **{"data.train": str(manual / "KorQuAD_v1.0_train.json"),
                                               "data.eval": str(manual / "KorQuAD_v1.0_dev.json")}), str(tmp_path / "f"))
  train(finetune_config("qa_tiny", **steps, **{"data.tfds": "korquad", "data.tfds_manual_dir": str(manual),
                                               "data.tfds_data_dir": str(tmp_path / "prepared")}), str(tmp_path / "t"))
  report = json.loads((tmp_path / "t" / "data_report.json").read_text())
  assert not report["eval"]["skipped"]  # every question scored on both paths
  metrics = json.loads((tmp_path / "t" / "eval" / "metrics.json").read_text())
  assert metrics == json.loads((tmp_path / "f" / "eval" / "metrics.json").read_text())
  assert {"exact_match", "f1"} <= set(metrics)
  assert (tmp_path / "t" / "eval" / "predictions.json").read_text() == \
      (tmp_path / "f" / "eval" / "predictions.json").read_text()
