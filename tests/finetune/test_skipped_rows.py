"""One prediction line per input row: the readers keep each row they leave out (DataReport.skipped_rows), the
feature cache keeps them beside the examples, and the prediction writers put an error line in their place."""

from __future__ import annotations

import json

import pytest

from korpat_jax.classification import read_examples
from korpat_jax.finetune import features
from korpat_jax.finetune.report import DataReport
from korpat_jax.ner import read_ner
from korpat_jax.qa import read_squad
from korpat_jax.tasks.finetuning import interleave_skipped


def test_row_skipped_records_the_last_skip_in_input_order():
  report = DataReport()
  report.skip("malformed_line", "a.tsv:3", "no tab")
  report.row_skipped(0, "s0")
  report.skip("empty_text", "a.tsv:9")
  report.row_skipped(2)
  assert report.skipped_rows == [
      {"at": 0, "id": "s0", "where": "a.tsv:3", "error": "malformed_line", "detail": "no tab"},
      {"at": 2, "id": None, "where": "a.tsv:9", "error": "empty_text", "detail": ""}]
  with pytest.raises(ValueError, match="without a skip"):
    report.row_skipped(3)  # each skip is one row at most
  assert "skipped_rows" not in report.to_dict()  # data_report.json keeps counts and places only


def test_interleave_puts_an_error_line_in_the_place_of_each_skipped_row():
  rows = [{"id": "b"}, {"id": "d"}]
  skipped = [{"at": 0, "id": "a", "where": "f:1", "error": "x", "detail": ""},
             {"at": 1, "id": "c", "where": "f:3", "error": "y", "detail": "why"},
             {"at": 2, "id": None, "where": "f:5", "error": "z", "detail": ""},
             {"at": 2, "id": "f", "where": "f:6", "error": "z", "detail": ""}]
  lines = interleave_skipped(rows, skipped)
  assert [line["id"] for line in lines] == ["a", "b", "c", "d", None, "f"]
  assert lines[2] == {"id": "c", "error": "y", "where": "f:3", "detail": "why"}
  assert interleave_skipped(rows, []) == rows and interleave_skipped([], skipped[:1])[0]["error"] == "x"


def test_the_cache_keeps_skipped_rows_and_rebuilds_a_cache_without_them(tmp_path):
  rows = [{"at": 1, "id": "7", "where": "f:8", "error": "malformed_row", "detail": "3 columns"}]
  split = features.write_split(str(tmp_path), "eval", {"file": "a"}, iter([({"id": "0"}, []), ({"id": "1"}, [])]),
                               skipped_rows=rows)
  assert split.skipped_rows() == rows
  assert features.open_split(str(tmp_path), "eval", {"file": "a"}).skipped_rows() == rows
  (tmp_path / "eval.skipped.jsonl").unlink()  # a cache written before skipped rows were kept
  assert features.open_split(str(tmp_path), "eval", {"file": "a"}) is None


def test_ner_reader_keeps_skipped_sentences_with_their_ids(tmp_path):
  path = tmp_path / "ner.tsv"
  path.write_text("## s-a\t<가:PS>\n가\tB-PS\n\n## s-b\tbad\n나다\tO\n\n## s-c\tok\n라\tO\n\n마\tX-Y-Z\n",
                  encoding="utf-8")
  report = DataReport()
  examples = read_ner(str(path), "char_bio", report)
  assert [e.id for e in examples] == ["s-a", "s-c"]
  assert [(r["at"], r["id"], r["error"], r["where"]) for r in report.skipped_rows] == [
      (1, "s-b", "malformed_line", f"{path}:5"), (2, "3", "malformed_tag", f"{path}:10")]
  text = tmp_path / "new.txt"
  text.write_text("첫 문장\n   \n셋째 문장\n", encoding="utf-8")
  report = DataReport()
  assert [e.id for e in read_ner(str(text), "text", report, labelled=False)] == ["0", "2"]
  assert [(r["at"], r["id"], r["error"]) for r in report.skipped_rows] == [(1, "1", "empty_text")]


def test_classification_reader_keeps_skipped_records_with_their_ids(tmp_path):
  path = tmp_path / "data.tsv"
  path.write_text("id\ttext\tlabel\na\t하나\tx\nb\t\ty\nc\t셋\nd\t넷\ty\n", encoding="utf-8")
  report = DataReport()
  examples = read_examples(str(path), text_fields=["text"], label_field="label", report=report)
  assert [e.id for e in examples] == ["a", "d"]
  assert [(r["at"], r["id"], r["error"]) for r in report.skipped_rows] == [(1, "b", "empty_text"),
                                                                           (1, "2", "malformed_row")]
  jsonl = tmp_path / "data.jsonl"
  jsonl.write_text('{"id": "a", "text": "하나"}\nnot json\n{"id": "c", "text": 3}\n', encoding="utf-8")
  report = DataReport()
  examples = read_examples(str(jsonl), text_fields=["text"], label_field=None, labelled=False, report=report)
  assert [e.id for e in examples] == ["a"]
  assert [(r["at"], r["id"], r["error"]) for r in report.skipped_rows] == [(1, "1", "malformed_row"),
                                                                           (1, "c", "non_string_text")]


def test_squad_reader_keeps_skipped_questions_with_their_ids(tmp_path):
  context = "본 발명은 발광다이오드에 관한 것이다."
  data = {"data": [{"paragraphs": [{"context": context, "qas": [
      {"id": "q1", "question": "무엇?", "answers": [{"text": "발광다이오드", "answer_start": 6}]},
      {"id": "q2", "question": " ", "answers": []},
      {"question": "id 없음", "answers": []},
      {"id": "q1", "question": "다시?", "answers": []},
      {"id": "q5", "question": "무엇에?", "answers": []}]}]}]}
  path = tmp_path / "qa.json"
  path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
  report = DataReport()
  examples = read_squad(str(path), report, labelled=False)
  assert [e.id for e in examples] == ["q1", "q5"]
  assert [(r["at"], r["id"], r["error"]) for r in report.skipped_rows] == [
      (1, "q2", "empty_question"), (1, None, "malformed"), (1, "q1", "duplicate_id")]
