from __future__ import annotations

import json

import pytest

from korpat_jax.errors import KorpatError
from korpat_jax.finetune.report import DataReport
from korpat_jax.qa import QAExample, examples_from_json, read_squad

CONTEXT = "본 발명은 질화갈륨  기판 상에 형성된 발광다이오드에 관한 것이다."


def qa(qid: str, answers: list[dict], question: str = "무엇에 관한 것인가?") -> dict:
  return {"id": qid, "question": question, "answers": answers}


def ans(text: str, start) -> dict:
  return {"text": text, "answer_start": start}


def dataset(paragraphs: list[dict]) -> dict:
  return {"version": "test", "data": [{"title": "t", "paragraphs": paragraphs}]}


def write(tmp_path, obj) -> str:
  path = tmp_path / "train.json"
  path.write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
  return str(path)


BAD_FILE = dataset([
    {"context": CONTEXT, "qas": [
        qa("ok", [ans("발광다이오드", CONTEXT.index("발광다이오드"))]),
        qa("no-answer", []),
        qa("out-of-range", [ans("기판", 999)]),
        qa("spaces", [ans("질화갈륨 기판", CONTEXT.index("질화갈륨"))]),       # the context has two spaces
        qa("shifted", [ans("기판", CONTEXT.index("기판") + 2)]),
        qa("mismatch", [ans("반도체", 3)]),
        qa("one-bad", [ans("반도체", 3), ans("발명", CONTEXT.index("발명"))]),
        qa("ok", [ans("본", 0)]),                                             # duplicate id
        qa("no-question", [ans("본", 0)], question="  "),
        "not a question",
    ]},
    {"context": "   ", "qas": [qa("empty-context", [ans("x", 0)])]},
])


def test_training_file_skips_and_adjusts(tmp_path):
  report = DataReport("train")
  examples = read_squad(write(tmp_path, BAD_FILE), report, labelled=True)
  by_id = {e.id: e for e in examples}
  assert sorted(by_id) == ["ok", "one-bad", "shifted", "spaces"]
  assert report.read == 11 and report.used == 4
  assert dict(report.skipped) == {"no_answer": 1, "answer_start_out_of_range": 1, "answer_text_mismatch": 1,
                                  "duplicate_id": 1, "empty_question": 1, "malformed": 1, "empty_context": 1}
  assert report.adjusted["answer_start_fixed"] == 1
  assert report.adjusted["answer_whitespace_differs"] == 1
  assert report.adjusted["answer_text_mismatch"] == 1          # one-bad: kept with its good answer
  # where: file and JSON path; the question id is in the detail
  assert "train.json: data[0].paragraphs[0].qas[5]: id mismatch" in report.examples("answer_text_mismatch")[0]
  assert by_id["ok"].where.endswith("train.json: data[0].paragraphs[0].qas[0]")

  shifted = by_id["shifted"]
  assert shifted.answers == [ans("기판", CONTEXT.index("기판"))]   # offset fixed
  assert shifted.train_span() == (CONTEXT.index("기판"), CONTEXT.index("기판") + 2)
  spaces = by_id["spaces"]
  start, end = spaces.train_span()
  assert CONTEXT[start:end] == "질화갈륨  기판" and spaces.answers[0]["text"] == "질화갈륨 기판"
  one_bad = by_id["one-bad"]
  assert [a["text"] for a in one_bad.answers] == ["반도체", "발명"]   # all answers kept for scoring
  assert one_bad.spans[0] is None and CONTEXT[slice(*one_bad.train_span())] == "발명"


def test_evaluation_file_keeps_questions(tmp_path):
  report = DataReport("dev")
  examples = read_squad(write(tmp_path, BAD_FILE), report, labelled=False)
  ids = [e.id for e in examples]
  assert ids == ["ok", "no-answer", "out-of-range", "spaces", "shifted", "mismatch", "one-bad"]
  assert dict(report.skipped) == {"duplicate_id": 1, "empty_question": 1, "malformed": 1, "empty_context": 1}
  assert report.adjusted["answer_text_mismatch"] == 2 and report.adjusted["answer_start_out_of_range"] == 1
  mismatch = examples[ids.index("mismatch")]
  assert mismatch.answers == [ans("반도체", 3)] and mismatch.spans == [None] and mismatch.train_span() is None
  assert examples[ids.index("no-answer")].answers == []


def test_malformed_json_names_file_line_and_column(tmp_path):
  path = tmp_path / "broken.json"
  path.write_text('{"data": [\n  {"paragraphs": [}\n]}', encoding="utf-8")
  with pytest.raises(KorpatError, match=r"broken\.json:2:19: invalid JSON"):
    read_squad(str(path), DataReport())


@pytest.mark.parametrize("obj", [[1, 2], {"version": "x"}, "text"])
def test_not_squad_shaped(tmp_path, obj):
  with pytest.raises(KorpatError, match="not SQuAD-format"):
    read_squad(write(tmp_path, obj), DataReport())


def test_missing_file(tmp_path):
  with pytest.raises(KorpatError, match="no such file"):
    read_squad(str(tmp_path / "absent.json"), DataReport())


def test_in_memory_and_hand_built_examples():
  report = DataReport()
  examples = examples_from_json(dataset([{"context": CONTEXT, "qas": [qa(7, [ans("본", 0)])]}]), report)
  assert examples[0].id == "7" and examples[0].where == "<json>: data[0].paragraphs[0].qas[0]"
  hand = QAExample("h", "q", "가나다", [{"text": "나다", "answer_start": 1}], "hand")
  assert hand.train_span() == (1, 3)


def test_answer_with_nearby_offset_prefers_closest(tmp_path):
  context = "기판 기판 기판"
  report = DataReport()
  examples = examples_from_json(dataset([{"context": context, "qas": [qa("q", [ans("기판", 4)])]}]), report)
  assert examples[0].answers[0]["answer_start"] == 3 and report.adjusted["answer_start_fixed"] == 1
