"""The korquad builder: SQuAD-format JSON through read_squad (same questions, located answer spans and counts)
on a generated file and on the real KorQuAD 1.0 dev file; EM/F1 over a TFDS split's questions."""

from __future__ import annotations

import json

from tfds_helpers import counts, read_inputs, tfds_config, write

CONTEXT = "특허청은 1977년에 설립되었다. 본청은 대전에 있다."
SQUAD = {"version": "test", "data": [{"title": "특허청", "paragraphs": [{"context": CONTEXT, "qas": [
    {"id": "q1", "question": "특허청은 언제 설립되었나?", "answers": [{"text": "1977년", "answer_start": 5}]},
    {"id": "q2", "question": "본청은 어디에 있나?", "answers": [{"text": "대전", "answer_start": 22}]},   # off by 1
    {"id": "q3", "question": "청장은 누구인가?", "answers": [{"text": "홍길동", "answer_start": 3}]},  # not in context
    {"id": "q4", "question": "", "answers": [{"text": "대전", "answer_start": 21}]},
]}]}]}


def _manual(tmp_path):
  write(tmp_path / "manual" / "KorQuAD_v1.0_train.json", json.dumps(SQUAD, ensure_ascii=False))
  return tmp_path / "manual"


def test_questions_spans_and_counts_match_the_reader(tmp_path):
  from korpat_jax import qa
  from korpat_jax.finetune.report import DataReport
  inputs = read_inputs(tfds_config("qa_tiny", _manual(tmp_path), tmp_path / "tfds", **{"data.tfds": "korquad"}))
  assert set(inputs) == {"train"}  # no dev file: no eval split
  _, examples, report = inputs["train"]
  direct_report = DataReport()
  direct = qa.read_squad(str(tmp_path / "manual" / "KorQuAD_v1.0_train.json"), direct_report)
  fields = lambda e: (e.id, e.question, e.context, e.answers, e.answer_spans(), e.where)  # noqa: E731
  assert [fields(e) for e in examples] == [fields(e) for e in direct]
  assert [e.id for e in examples] == ["q1", "q2"]
  assert examples[1].answers == [{"text": "대전", "answer_start": 23}] and examples[1].train_span() == (23, 25)
  assert counts(report) == counts(direct_report) == {
      "read": 4, "used": 2, "skipped": {"answer_text_mismatch": 1, "empty_question": 1},
      "adjusted": {"answer_start_fixed": 1}}


def test_scores_over_the_splits_questions(tmp_path):
  from korpat_jax import qa
  from korpat_jax.datasets.korquad import squad_json
  _, examples, _ = read_inputs(tfds_config("qa_tiny", _manual(tmp_path), tmp_path / "tfds",
                                           **{"data.tfds": "korquad"}))["train"]
  assert qa.evaluate(squad_json(examples), {"q1": "1977년", "q2": "부산"}) == {"exact_match": 50.0, "f1": 50.0}


def test_real_korquad_dev(shared_data, tmp_path):
  from korpat_jax import qa
  from korpat_jax.finetune.report import DataReport
  manual = tmp_path / "manual"
  manual.mkdir()
  (manual / "KorQuAD_v1.0_dev.json").symlink_to(shared_data / "KorQuAD_v1.0_dev.json")
  inputs = read_inputs(tfds_config("qa_tiny", manual, tmp_path / "tfds",
                                   **{"data.tfds": "korquad", "data.tfds_splits": "train=validation"}))
  direct_report = DataReport()
  direct = qa.read_squad(str(manual / "KorQuAD_v1.0_dev.json"), direct_report)
  _, examples, report = inputs["train"]
  assert len(examples) == len(direct) > 5000
  assert [(e.id, e.answers, e.answer_spans()) for e in examples] == [(e.id, e.answers, e.answer_spans()) for e in direct]
  assert counts(report) == counts(direct_report)
  gold = json.loads((shared_data / "KorQuAD_v1.0_dev.json").read_text(encoding="utf-8"))
  answers = {e.id: e.answers[0]["text"] for e in direct}
  assert qa.evaluate(squad_json_of(examples), answers) == qa.evaluate(gold, answers)


def squad_json_of(examples):
  from korpat_jax.datasets.korquad import squad_json
  return squad_json(examples)
