from __future__ import annotations

import gzip
import json

import pytest
import zstandard

from korpat_jax.classification.cpc import cpc_label_parser
from korpat_jax.classification.readers import TextExample, check_labels, label_ids, label_set, read_examples
from korpat_jax.errors import KorpatError
from korpat_jax.finetune.report import DataReport

TITLE_ABSTRACT = ("title", "abstract")


def _write_lines(path, lines: list[str | bytes]) -> str:
  path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n" for line in lines))
  return str(path)


def _read(path, **kwargs) -> tuple[list[TextExample], DataReport]:
  report = DataReport()
  kwargs.setdefault("text_fields", TITLE_ABSTRACT)
  kwargs.setdefault("label_field", "label")
  return read_examples(str(path), report=report, **kwargs), report


def test_tsv_header_multiple_text_fields_and_quotes(tmp_path):
  quoted = '상기 "제1 전극"과 5" 웨이퍼 및 \'단일\' 인용부호를 포함하는 "반도체 소자'   # one unbalanced quote
  path = _write_lines(tmp_path / "cpc.tsv", [
      "id\ttitle\tabstract\tlabel",
      f"KR1\t반도체 소자\t{quoted}\tH01L 21/02",
      '"KR2"\t"따옴표로 시작하는 제목\t요약 둘\tG06F 3/01',
      "KR3\t발광 소자\t요약 셋.  \tH01L 33/00",
  ])
  examples, report = _read(path)
  assert [ex.id for ex in examples] == ["KR1", '"KR2"', "KR3"]   # quotes are text, never field delimiters
  assert examples[0].texts == ["반도체 소자", quoted]
  assert examples[1].texts == ['"따옴표로 시작하는 제목', "요약 둘"]
  assert examples[2].texts == ["발광 소자", "요약 셋."]
  assert [ex.labels for ex in examples] == [["H01L 21/02"], ["G06F 3/01"], ["H01L 33/00"]]
  assert [ex.where for ex in examples] == [f"{path}:2", f"{path}:3", f"{path}:4"]
  assert (report.read, report.used, dict(report.skipped)) == (3, 3, {})


def test_tsv_cpc_cut_through_the_reader_and_multi_labels(tmp_path):
  path = _write_lines(tmp_path / "cpc.tsv", [
      "title\tabstract\tlabel",
      "가\t요약\tH01L 21/02;H01L 21/04; G06F 3/01 ;",   # H01L twice after cutting: merged, first-seen order
      "나\t요약\th01l0033000000 (2006.01)",
      "다\t요약\tH1L;G06F 17/30",                         # one bad code dropped, the example kept
      "라\t요약\tZ99",                                   # its only code is bad: skipped
      "마\t요약\t ; ",                                   # no label at all
  ])
  examples, report = _read(path, label_parser=cpc_label_parser("subclass"))
  assert [ex.labels for ex in examples] == [["H01L", "G06F"], ["H01L"], ["G06F"]]
  assert [ex.id for ex in examples] == ["0", "1", "2"]   # no id column: the 0-based row position
  assert dict(report.skipped) == {"unparseable_label": 1, "empty_label": 1}
  assert report.examples("unparseable_label")[0].startswith(f"{path}:5: 'Z99'")
  assert report.examples("empty_label") == [f"{path}:6: field 'label' is empty"]
  assert dict(report.adjusted) == {"unparseable_label_dropped": 1}
  assert report.examples("unparseable_label_dropped")[0].startswith(f"{path}:4: 'H1L'")
  assert (report.read, report.used) == (5, 3)
  grouped, _ = _read(path, label_parser=cpc_label_parser("group"))
  assert grouped[0].labels == ["H01L 21/00", "G06F 3/00"]
  whole, _ = _read(path, multi_separator=None)
  assert whole[0].labels == ["H01L 21/02;H01L 21/04; G06F 3/01 ;"]


def test_tsv_bad_rows_are_counted_with_their_line(tmp_path):
  path = _write_lines(tmp_path / "bad.tsv", [
      "\ufeffid\ttitle\tabstract\tlabel",   # a BOM is not part of the first column's name
      "a\t제목\t요약\tx",
      "b\t제목\t탭이\t들어간 요약\tx",            # 5 columns
      "c\t제목\tx",                             # 3 columns
      "",                                       # blank lines are no rows
      "d\t \t  \tx",                            # every text empty
      b"e\t\xff\xfe\t\xea\xb0\tx",               # not UTF-8
      "f\t\t요약만\tx",                          # one text empty is fine
  ])
  examples, report = _read(path)
  assert [ex.id for ex in examples] == ["a", "f"]
  assert examples[1].texts == ["", "요약만"]
  assert dict(report.skipped) == {"malformed_row": 2, "empty_text": 1, "invalid_utf8": 1}
  assert report.examples("malformed_row") == [f"{path}:3: 5 columns, the header has 4",
                                              f"{path}:4: 3 columns, the header has 4"]
  assert report.examples("empty_text")[0].startswith(f"{path}:6")
  assert report.examples("invalid_utf8")[0].startswith(f"{path}:7: invalid start byte")
  assert (report.read, report.used) == (6, 2)


def test_tsv_header_errors_name_file_and_field(tmp_path):
  path = _write_lines(tmp_path / "data.tsv", ["title\tabstract\tlabel", "a\tb\tc"])
  with pytest.raises(KorpatError) as info:
    _read(path, text_fields=("text",))
  assert str(info.value) == (f"{path}: no column 'text' in the header (columns: title, abstract, label); "
                             "set --config.data.text_fields")
  with pytest.raises(KorpatError, match="no column 'cpc'.*--config.data.label_field"):
    _read(path, label_field="cpc")
  examples, _ = _read(path, label_field="cpc", labelled=False)   # prediction: no label column needed
  assert examples[0].labels is None
  empty = tmp_path / "empty.tsv"
  empty.write_text("\n\n")
  with pytest.raises(KorpatError, match="empty.tsv: empty file, no header row"):
    _read(empty)
  with pytest.raises(KorpatError, match="missing.tsv: no such file"):
    _read(tmp_path / "missing.tsv")
  with pytest.raises(KorpatError, match="a directory, not a data file"):
    _read(tmp_path)
  csv_path = tmp_path / "data.csv"
  csv_path.write_text("title,abstract,label\n")
  with pytest.raises(KorpatError, match="data.csv: unknown data format"):
    _read(csv_path)


def test_jsonl_list_labels_and_bad_lines(tmp_path):
  rows = [
      {"id": "KR1", "title": "제목", "abstract": "요약", "label": ["H01L 21/02", "H01L 33/00", "G06F 3/01"]},
      "{not json",
      ["a list"],
      {"id": "KR4", "abstract": "요약"},                                        # no title
      {"id": "KR5", "title": "제목", "abstract": "요약"},                         # no label
      {"id": "KR6", "title": 7, "abstract": "요약", "label": "x"},               # a number as text
      {"id": "KR7", "title": " ", "abstract": None, "label": "x"},              # null reads as empty: all empty
      {"id": 8, "title": "제목", "abstract": None, "label": 3},                  # integer id and label
      {"id": "KR9", "title": "제목", "abstract": "요약", "label": {"code": "x"}},   # a label of the wrong type
      {"guid": "G10", "title": "제목", "abstract": "요약", "label": ["H01L 21/02", "H1L"]},
  ]
  lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
  lines.insert(3, "")
  lines.append(b'{"id": "KR11", "title": "\xc3\x28", "abstract": "", "label": "x"}')
  path = _write_lines(tmp_path / "p.jsonl", lines)
  examples, report = _read(path, label_parser=cpc_label_parser("subclass"))
  assert [(ex.id, ex.labels) for ex in examples] == [("KR1", ["H01L", "G06F"]), ("G10", ["H01L"])]
  assert [ex.where for ex in examples] == [f"{path}:1", f"{path}:11"]
  assert dict(report.skipped) == {"malformed_row": 2, "missing_field": 2, "non_string_text": 1, "empty_text": 1,
                                  "unparseable_label": 1, "malformed_label": 1, "invalid_utf8": 1}
  assert report.examples("malformed_row")[0].startswith(f"{path}:2: invalid JSON")
  assert report.examples("malformed_row")[1] == f"{path}:3: a JSON list, not an object"
  assert report.examples("missing_field") == [f"{path}:5: no field 'title'", f"{path}:6: no field 'label'"]
  assert report.examples("non_string_text") == [f"{path}:7: field 'title' is a int"]
  assert report.examples("empty_text")[0].startswith(f"{path}:8")
  assert report.examples("unparseable_label")[0].startswith(f"{path}:9: '3'")   # 3 is no CPC code
  assert report.examples("malformed_label")[0].startswith(f"{path}:10")
  assert report.examples("invalid_utf8")[0].startswith(f"{path}:12")
  assert report.adjusted == {"unparseable_label_dropped": 1}
  assert (report.read, report.used) == (11, 2)
  plain, _ = _read(path)
  assert [(ex.id, ex.labels) for ex in plain if ex.id == "8"] == [("8", ["3"])]


def test_json_fields_no_object_has_are_config_mistakes(tmp_path):
  path = tmp_path / "d.jsonl"
  path.write_text(json.dumps({"text": "a", "label": "x"}) + "\n" + json.dumps({"text": "b"}) + "\n")
  with pytest.raises(KorpatError, match="d.jsonl: no object has the field 'title'; set --config.data.text_fields"):
    _read(path)
  examples, report = _read(path, text_fields=("text",))
  assert [ex.texts for ex in examples] == [["a"]] and report.skipped == {"missing_field": 1}
  with pytest.raises(KorpatError, match="no object has the field 'cpc'; set --config.data.label_field"):
    _read(path, text_fields=("text",), label_field="cpc")


def test_json_array_and_data_object(tmp_path):
  path = tmp_path / "small.json"
  path.write_text(json.dumps({"version": 1, "data": [
      {"guid": "g0", "premise": "전제", "hypothesis": "가설", "gold_label": "neutral"},
      "not an object",
      {"guid": "g2", "premise": "전제", "hypothesis": "", "gold_label": "entailment"},
  ]}, ensure_ascii=False))
  examples, report = _read(path, text_fields=("premise", "hypothesis"), label_field="gold_label")
  assert [(ex.id, ex.texts, ex.labels, ex.where) for ex in examples] == [
      ("g0", ["전제", "가설"], ["neutral"], f"{path}:#0"),
      ("g2", ["전제", ""], ["entailment"], f"{path}:#2")]
  assert report.examples("malformed_row") == [f"{path}:#1: a JSON str, not an object"]
  bad = tmp_path / "bad.json"
  bad.write_bytes(b'[{"p": "ok", "l": "a"}, {"p": "\xff", "l": "a"}, {"p": "x", "l": "b"}]')
  examples, report = _read(bad, text_fields=("p",), label_field="l")
  assert [ex.texts for ex in examples] == [["ok"], ["x"]]
  assert report.examples("invalid_utf8") == [f"{bad}:#1: bytes that are not UTF-8"]
  lines = tmp_path / "lines.json"   # JSON lines under a .json name
  lines.write_text('{"p": "a", "l": "x"}\n{"p": "b", "l": "y"}\n')
  examples, _ = _read(lines, text_fields=("p",), label_field="l")
  assert [ex.where for ex in examples] == [f"{lines}:1", f"{lines}:2"]
  broken = tmp_path / "broken.json"
  broken.write_text('[{"p": "a"},')
  with pytest.raises(KorpatError, match="broken.json: invalid JSON"):
    _read(broken, text_fields=("p",), label_field="l")


def test_klue_nli_dev(shared_data):
  report = DataReport("nli dev")
  examples = read_examples(str(shared_data / "klue-nli-v1.1_dev.json"), text_fields=("premise", "hypothesis"),
                           label_field="gold_label", report=report)
  assert (report.read, report.used, len(examples)) == (3000, 3000, 3000)
  assert not report.skipped and not report.adjusted
  assert label_set(examples) == ["contradiction", "entailment", "neutral"]
  first = examples[0]
  assert first.id == "klue-nli-v1_dev_00000" and first.where.endswith("klue-nli-v1.1_dev.json:#0")
  assert first.texts == ["흡연자분들은 발코니가 있는 방이면 발코니에서 흡연이 가능합니다.", "어떤 방에서도 흡연은 금지됩니다."]
  assert first.labels == ["contradiction"]
  assert len({ex.id for ex in examples}) == 3000


def test_compressed_files(tmp_path):
  text = "title\tabstract\tlabel\n가\t요약\tx\n나\t요약\ty\n"
  gz = tmp_path / "d.tsv.gz"
  gz.write_bytes(gzip.compress(text.encode()))
  zst = tmp_path / "d.tsv.zst"
  zst.write_bytes(zstandard.ZstdCompressor().compress(text.encode()))
  jsonl_zst = tmp_path / "d.jsonl.zst"
  jsonl_zst.write_bytes(zstandard.ZstdCompressor().compress(b'{"title": "t", "abstract": "a", "label": "x"}\n'))
  for path in (gz, zst):
    examples, _ = _read(path)
    assert [ex.labels for ex in examples] == [["x"], ["y"]]
  assert _read(jsonl_zst)[0][0].texts == ["t", "a"]
  truncated = tmp_path / "cut.tsv.gz"
  truncated.write_bytes(gzip.compress((text * 200).encode())[:-30])
  examples, report = _read(truncated)
  assert examples and report.skipped["truncated_file"] == 1
  assert "the rest of the file is lost" in report.examples("truncated_file")[0]


def test_unlabelled_reading_for_prediction(tmp_path):
  path = _write_lines(tmp_path / "test.jsonl", [json.dumps({"title": "t", "abstract": "a"})])
  examples, report = _read(path, labelled=False)
  assert examples[0].labels is None and report.used == 1
  with pytest.raises(ValueError, match="unlabelled"):
    label_ids(examples[0], {"x": 0})
  with pytest.raises(KorpatError, match="label field"):
    _read(path, label_field=None)


def test_label_set_check_labels_and_label_ids():
  train = [TextExample("0", ["a"], ["H01L", "G06F"], "t:1"), TextExample("1", ["b"], ["A61K"], "t:2"),
           TextExample("2", ["c"], None, "t:3")]
  labels = label_set(train)
  assert labels == ["A61K", "G06F", "H01L"]
  label2id = {label: i for i, label in enumerate(labels)}
  dev = [TextExample("0", ["a"], ["H01L"], "d:1"), TextExample("1", ["b"], ["B01J", "G06F", "C07D"], "d:2"),
         TextExample("2", ["c"], ["C07D"], "d:3")]
  report = DataReport()
  assert check_labels(dev, labels, report) == ["B01J", "C07D"]
  assert report.adjusted == {"label_not_in_training_set": 3}
  assert report.examples("label_not_in_training_set") == ["d:2: 'B01J', 'C07D'", "d:3: 'C07D'"]
  assert [ex.labels for ex in dev] == [["H01L"], ["B01J", "G06F", "C07D"], ["C07D"]]   # kept unchanged
  assert [label_ids(ex, label2id) for ex in dev] == [[2], [-1, 1, -1], [-1]]
