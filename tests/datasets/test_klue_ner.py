"""The klue_ner builder: a small generated manual dir and the real KLUE NER dev file give the examples and the
report counts of `read_ner` on the same file, in file order, without TensorFlow."""

from __future__ import annotations

import importlib.util
import sys

from tfds_helpers import counts, read_inputs, tfds_config, write

TRAIN = """## 토큰, 레이블 구분자 : \\t
## klue-ner-v1.1_train_00000\t<김철수:PS>가 <서울:LC>에 갔다
김\tB-PS
철\tI-PS
수\tI-PS
가\tO
 \tO
서\tB-LC
울\tI-LC
에\tO

## klue-ner-v1.1_train_00001\t나쁜 줄
나쁜줄\tO
다\tO

## klue-ner-v1.1_train_00002\t<삼성:XX>
삼\tB-XX
성\tI-XX

## klue-ner-v1.1_train_00003\t<오늘:DT> 비
오\tDT-B
늘\tDT-I
 \tO
비\tO
"""
DEV = """## klue-ner-v1.1_dev_00000\t<부산:LC>
부\tB-LC
산\tI-LC
"""


def _manual(tmp_path):
  write(tmp_path / "manual" / "klue-ner-v1.1_train.tsv", TRAIN)
  write(tmp_path / "manual" / "klue-ner-v1.1_dev.tsv", DEV)
  return tmp_path / "manual"


def test_tensorflow_is_not_installed():
  assert importlib.util.find_spec("tensorflow") is None


def test_builder_gives_the_readers_examples_and_counts(tmp_path):
  from korpat_jax import ner
  from korpat_jax.finetune.report import DataReport
  config = tfds_config("ner_tiny", _manual(tmp_path), tmp_path / "tfds", **{"data.tfds": "klue_ner"})
  inputs = read_inputs(config)
  assert set(inputs) == {"train", "eval"} and inputs["eval"][0].split == "validation"
  _, examples, report = inputs["train"]
  direct = ner.read_ner(str(tmp_path / "manual" / "klue-ner-v1.1_train.tsv"), "char_bio", DataReport())
  kept = [e for e in direct if "B-XX" not in e.tags]
  assert [(e.id, e.text, e.spans, e.tags) for e in examples] == [(e.id, e.text, e.spans, e.tags) for e in kept]
  assert [e.id for e in examples] == ["klue-ner-v1.1_train_00000", "klue-ner-v1.1_train_00003"]
  assert examples[1].tags == ["B-DT", "I-DT", "O", "O"]  # KLUE's DT-B form normalised by the reader
  assert examples[0].where.endswith("klue-ner-v1.1_train.tsv:2")
  assert counts(report) == {"read": 4, "used": 2, "skipped": {"malformed_line": 1, "tag_not_in_klue_ner": 1},
                            "adjusted": {}}
  assert report.examples("malformed_line")[0].endswith("klue-ner-v1.1_train.tsv:13: expected one character "
                                                      "before the tab: '나쁜줄\\tO'")
  assert "tensorflow" not in sys.modules


def test_real_klue_ner_dev(shared_data, tmp_path):
  from korpat_jax import ner
  from korpat_jax.finetune.report import DataReport
  manual = tmp_path / "manual"
  manual.mkdir()
  (manual / "klue-ner-v1.1_dev.tsv").symlink_to(shared_data / "klue-ner-v1.1_dev.tsv")
  config = tfds_config("ner_tiny", manual, tmp_path / "tfds",
                       **{"data.tfds": "klue_ner", "data.tfds_splits": "train=validation[:80%],eval=validation[80%:]"})
  inputs = read_inputs(config)
  direct_report = DataReport()
  direct = ner.read_ner(str(manual / "klue-ner-v1.1_dev.tsv"), "char_bio", direct_report)
  assert len(direct) == 5000
  got = inputs["train"][1] + inputs["eval"][1]
  assert [(e.id, e.text, e.tags) for e in got] == [(e.id, e.text, e.tags) for e in direct]
  assert len(inputs["train"][1]) == 4000
  from korpat_jax.datasets import source
  whole = tfds_config("ner_tiny", manual, tmp_path / "tfds", **{"data.tfds": "klue_ner",
                                                                 "data.tfds_splits": "train=validation"})
  assert counts(read_inputs(whole)["train"][2]) == counts(direct_report)
  assert source.inputs(whole)["train"].fingerprint()["size"] > 0
