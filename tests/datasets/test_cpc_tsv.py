"""The cpc_tsv builder: TSV rows through the classification reader, codes kept as written and cut to
data.cpc_level when read, the text fields chosen by data.text_fields; the same examples and counts as the file."""

from __future__ import annotations

import pytest

from tfds_helpers import counts, read_inputs, tfds_config, write

TRAIN = ("id\ttitle\tabstract\tlabel\n"
         "d1\t건식 전극\t용매 없이 전극을 만든다.\tH01M 4/04;H01M 4/139\n"
         "d2\t메모리 할당\t가상 머신의 메모리를 나눈다.\tG06F 9/50\n"
         "d3\t\t\tG06F 9/50\n"
         "d4\t반도체 소자\t\tH01L21/02\n"
         "d5\t잘못된 코드\t분류가 틀렸다.\t123\n"
         "d6\t열이 모자람\n")


def _manual(tmp_path):
  write(tmp_path / "manual" / "train.tsv", TRAIN)
  write(tmp_path / "manual" / "dev.tsv", TRAIN.split("d3")[0])
  return tmp_path / "manual"


@pytest.mark.parametrize("variant,level,fields", [("cpc_tiny", "subclass", "title,abstract"),
                                                  ("cpc_multi_tiny", "group", "abstract"),
                                                  ("cpc_tiny", "none", "title")])
def test_examples_and_counts_match_the_file(tmp_path, variant, level, fields):
  from korpat_jax.classification import cpc_label_parser, read_examples
  from korpat_jax.finetune.report import DataReport
  settings = {"data.tfds": "cpc_tsv", "data.cpc_level": level, "data.text_fields": fields}
  inputs = read_inputs(tfds_config(variant, _manual(tmp_path), tmp_path / "tfds", **settings))
  assert set(inputs) == {"train", "eval"}
  _, examples, report = inputs["train"]
  direct_report = DataReport()
  direct = read_examples(str(tmp_path / "manual" / "train.tsv"), text_fields=fields.split(","), label_field="label",
                         report=direct_report, label_parser=None if level == "none" else cpc_label_parser(level))
  assert [(e.id, e.texts, e.labels) for e in examples] == [(e.id, e.texts, e.labels) for e in direct]
  assert counts(report) == counts(direct_report)
  assert report.skipped["malformed_row"] == 1 and report.read == 6


def test_codes_are_cut_when_read(tmp_path):
  manual = _manual(tmp_path)
  sub = read_inputs(tfds_config("cpc_multi_tiny", manual, tmp_path / "tfds",
                                **{"data.tfds": "cpc_tsv", "data.text_fields": "title"}))["train"][1]
  section = read_inputs(tfds_config("cpc_multi_tiny", manual, tmp_path / "tfds",
                                    **{"data.tfds": "cpc_tsv", "data.text_fields": "title",
                                       "data.cpc_level": "section"}))["train"][1]
  assert sub[0].labels == ["H01M"] and section[0].labels == ["H"]  # one prepared dataset, every level
  assert [e.id for e in sub] == ["d1", "d2", "d4"]


def test_a_field_the_file_lacks_is_a_config_error(tmp_path):
  from korpat_jax.errors import ConfigError
  with pytest.raises(ConfigError, match=r"config.data.text_fields='title,claims': the TFDS dataset cpc_tsv has no "
                                        r"field 'claims' \(it has title, abstract\)"):
    read_inputs(tfds_config("cpc_tiny", _manual(tmp_path), tmp_path / "tfds",
                            **{"data.tfds": "cpc_tsv", "data.text_fields": "title,claims"}))
