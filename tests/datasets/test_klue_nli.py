"""The klue_nli builder: KLUE's JSON through the classification reader (same examples and counts), premise and
hypothesis chosen by data.text_fields, on generated files and on the real KLUE NLI dev file."""

from __future__ import annotations

import json

import pytest

from tfds_helpers import counts, read_inputs, tfds_config, write

PAIRS = [
    {"guid": "klue-nli-v1_train_00000", "premise": "비가 온다.", "hypothesis": "날씨가 맑다.", "gold_label": "contradiction"},
    {"guid": "klue-nli-v1_train_00001", "premise": "", "hypothesis": "", "gold_label": "neutral"},
    {"guid": "klue-nli-v1_train_00002", "premise": "개가 짖는다.", "hypothesis": "동물이 소리를 낸다.",
     "gold_label": "entailment"},
    {"guid": "klue-nli-v1_train_00003", "premise": "문이 열렸다.", "hypothesis": "누가 왔다.", "gold_label": "maybe"},
    {"guid": "klue-nli-v1_train_00004", "premise": "책을 읽었다.", "hypothesis": "글을 보았다.", "gold_label": "neutral"},
]
SETTINGS = {"data.tfds": "klue_nli", "data.text_fields": "premise,hypothesis"}


def _manual(tmp_path):
  write(tmp_path / "manual" / "klue-nli-v1.1_train.json", json.dumps(PAIRS, ensure_ascii=False))
  write(tmp_path / "manual" / "klue-nli-v1.1_dev.json", json.dumps(PAIRS[:1], ensure_ascii=False))
  return tmp_path / "manual"


def test_pairs_and_counts_match_the_reader(tmp_path):
  from korpat_jax.classification import read_examples
  from korpat_jax.finetune.report import DataReport
  inputs = read_inputs(tfds_config("pair_tiny", _manual(tmp_path), tmp_path / "tfds", **SETTINGS))
  _, examples, report = inputs["train"]
  direct = read_examples(str(tmp_path / "manual" / "klue-nli-v1.1_train.json"), text_fields=("premise", "hypothesis"),
                         label_field="gold_label", id_field="guid", report=DataReport(), multi_separator=None)
  want = [(e.id, e.texts, e.labels) for e in direct if e.labels != ["maybe"]]
  assert [(e.id, e.texts, e.labels) for e in examples] == want
  assert [e.labels[0] for e in examples] == ["contradiction", "entailment", "neutral"]
  assert counts(report) == {"read": 5, "used": 3, "skipped": {"empty_text": 1, "label_not_in_klue_nli": 1},
                            "adjusted": {}}
  assert examples[1].where.endswith("klue-nli-v1.1_train.json:#2")


def test_text_fields_follow_the_config(tmp_path):
  from korpat_jax.errors import ConfigError
  manual = _manual(tmp_path)
  swapped = read_inputs(tfds_config("pair_tiny", manual, tmp_path / "tfds", **{**SETTINGS,
                                                                              "data.text_fields": "hypothesis,premise"}))
  assert swapped["train"][1][0].texts == ["날씨가 맑다.", "비가 온다."]
  with pytest.raises(ConfigError, match=r"config.data.text_fields='sentence1,sentence2': the TFDS dataset klue_nli "
                                        r"has no field 'sentence1' \(it has premise, hypothesis\)"):
    read_inputs(tfds_config("pair_tiny", manual, tmp_path / "tfds", **{"data.tfds": "klue_nli"}))


def test_real_klue_nli_dev(shared_data, tmp_path):
  from korpat_jax.classification import read_examples
  from korpat_jax.finetune.report import DataReport
  manual = tmp_path / "manual"
  manual.mkdir()
  (manual / "klue-nli-v1.1_dev.json").symlink_to(shared_data / "klue-nli-v1.1_dev.json")
  inputs = read_inputs(tfds_config("pair_tiny", manual, tmp_path / "tfds",
                                   **{**SETTINGS, "data.tfds_splits": "train=validation"}))
  direct_report = DataReport()
  direct = read_examples(str(manual / "klue-nli-v1.1_dev.json"), text_fields=("premise", "hypothesis"),
                         label_field="gold_label", id_field="guid", report=direct_report, multi_separator=None)
  _, examples, report = inputs["train"]
  assert len(examples) == 3000
  assert [(e.id, e.texts, e.labels, e.where) for e in examples] == [(e.id, e.texts, e.labels, e.where) for e in direct]
  assert counts(report) == counts(direct_report)
