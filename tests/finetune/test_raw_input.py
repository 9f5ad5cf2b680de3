"""Raw documents for predict: one per line (text or JSONL), read lazily from a byte offset, with every unusable
line kept as an error; and which files `--input-format auto` reads as raw documents."""

from __future__ import annotations

import json

import pytest

from korpat_jax.finetune import raw_input


def _docs(path, fmt, **kw):
  return [doc for doc, _ in raw_input.iter_docs(str(path), fmt, **kw)]


def test_text_lines_are_documents_with_their_line_numbers(tmp_path):
  path = tmp_path / "docs.txt"
  path.write_bytes(b"\xef\xbb\xbf\xec\xb2\xab \xeb\xac\xb8\xec\x84\x9c\r\n\n  \nbad \xff byte\nlast")
  docs = _docs(path, "text")
  assert [d.id for d in docs] == ["0", "1", "2", "3", "4"]
  assert docs[0].fields == {"text": "첫 문서"} and not docs[0].error  # BOM and CR gone
  assert docs[1].fields == {"text": ""} and docs[2].fields == {"text": "  "}  # the task decides they are empty
  assert docs[3].error == "invalid_utf8" and docs[3].where == f"{path}:4"
  assert docs[4].fields == {"text": "last"}  # no newline at the end
  assert raw_input.count_lines(str(path)) == 5


def test_reading_resumes_at_a_byte_offset(tmp_path):
  path = tmp_path / "docs.txt"
  path.write_text("".join(f"문서 {i}\n" for i in range(10)), encoding="utf-8")
  offsets = [offset for _, offset in raw_input.iter_docs(str(path), "text")]
  rest = _docs(path, "text", start_line=4, start_offset=offsets[3])
  assert [d.id for d in rest] == [str(i) for i in range(4, 10)] and rest[0].fields["text"] == "문서 4"
  assert offsets[-1] == path.stat().st_size and raw_input.count_lines(str(path)) == 10


def test_jsonl_lines_keep_string_fields_and_name_their_ids(tmp_path):
  path = tmp_path / "docs.jsonl"
  lines = [json.dumps({"doc": "d-1", "text": "가", "n": 3}, ensure_ascii=False), json.dumps({"id": 7, "text": "나"}),
           json.dumps({"guid": "g", "text": "다"}), "{not json", "[1, 2]", "", json.dumps({"text": "라"})]
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  docs = _docs(path, "jsonl", id_field="doc")
  assert [d.id for d in docs] == ["d-1", "7", "g", "3", "4", "5", "6"]
  assert docs[0].fields == {"doc": "d-1", "text": "가"}  # numbers are not text
  assert [d.error for d in docs] == ["", "", "", "invalid_json", "not_an_object", "empty_line", ""]
  assert "column" in docs[3].detail and docs[4].detail == "list"


@pytest.mark.parametrize("name, content, task, ner_format, expected", [
    ("a.jsonl", '{"text": "x"}\n', "sequence_classification", None, "jsonl"),
    ("a.txt", "특허 문서 하나\n둘째 문서\n", "sequence_classification", None, "text"),
    ("a.tsv", "text\tlabel\n", "sequence_classification", None, "task"),
    ("a.json", "{}", "question_answering", None, "task"),
    ("a.txt", "특허 문서 하나\n둘째 문서\n", "token_classification", "char_bio", "text"),
    ("a.txt", "## s1\t<가:PS>\n가\tB-PS\n나\tO\n\n", "token_classification", "char_bio", "task"),
    ("a.txt", "가\n나\n\n다\n라\n\n", "token_classification", "char_bio", "task"),  # unlabelled KLUE
    ("a.txt", "EU B-ORG\nrejects O\n\nPeter B-PER\n", "token_classification", "conll", "task"),
    ("a.txt", "삼성전자는\n반도체를\n\n만든다\n", "token_classification", "conll", "task"),  # unlabelled CoNLL
    ("a.txt", "한 줄 문장\n또 한 줄\n", "token_classification", "text", "text"),
])
def test_auto_format_reads_raw_documents_and_training_files_apart(tmp_path, name, content, task, ner_format,
                                                                  expected):
  path = tmp_path / name
  path.write_text(content, encoding="utf-8")
  assert raw_input.input_format(str(path), "auto", task, ner_format) == expected
  assert raw_input.input_format(str(path), "task", task, ner_format) == "task"  # a forced format wins
