"""Extractive QA on the shared loop: qa_tiny on KorQuAD 1.0 dev articles chosen at run time from the whole file
(its license allows no cut-down copy in the repository), the official metric on predictions.json, predict, export."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from helpers import finetune_config
from korpat_jax.train import train


@pytest.fixture(scope="module")
def korquad_split(shared_data, tmp_path_factory):
  """6 training and 2 eval articles drawn (seeded) from the whole KorQuAD dev file."""
  dev = json.load(open(shared_data / "KorQuAD_v1.0_dev.json", encoding="utf-8"))
  articles = list(dev["data"])
  random.Random(1).shuffle(articles)
  out = tmp_path_factory.mktemp("korquad")
  for name, part in (("train", articles[:6]), ("eval", articles[6:8])):
    with open(out / f"{name}.json", "w", encoding="utf-8") as f:
      json.dump({"version": dev.get("version"), "data": part}, f, ensure_ascii=False)
  return out


@pytest.fixture(scope="module")
def qa_run(pretrained, korquad_split, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("qa")
  train(finetune_config("qa_tiny", **{"init_from": str(pretrained), "data.train": str(korquad_split / "train.json"),
                                      "data.eval": str(korquad_split / "eval.json"), "train.num_steps": 30,
                                      "train.eval_every": 30}), str(workdir))
  return workdir


def test_metrics_are_the_official_script_on_predictions_json(qa_run, korquad_split):
  from korpat_jax.qa import evaluate
  metrics = json.load(open(qa_run / "eval" / "metrics.json"))
  predictions = json.load(open(qa_run / "eval" / "predictions.json"))
  dataset = json.load(open(korquad_split / "eval.json"))
  ids = [qa["id"] for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"]]
  assert sorted(predictions) == sorted(ids)
  official = evaluate(dataset, predictions)
  assert metrics["main"] == "f1" and metrics["f1"] == pytest.approx(official["f1"])
  assert metrics["exact_match"] == pytest.approx(official["exact_match"]) and 0 <= metrics["f1"] <= 100
  contexts = {qa["id"]: p["context"] for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"]}
  assert all(text in contexts[qid] for qid, text in predictions.items())  # cut out of the original context
  nbest = json.load(open(qa_run / "eval" / "nbest_predictions.json"))
  first = next(iter(nbest.values()))
  assert set(nbest) == set(predictions) and 0 < len(first) <= 20 and {"text", "probability"} <= set(first[0])


def test_predict_on_questions_without_answers(qa_run, korquad_split, tmp_path):
  from korpat_jax.finetune.predict import predict
  dataset = json.load(open(korquad_split / "eval.json"))
  for article in dataset["data"]:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        qa.pop("answers")
  (tmp_path / "questions.json").write_text(json.dumps(dataset, ensure_ascii=False), encoding="utf-8")
  predict(str(qa_run), str(tmp_path / "questions.json"), str(tmp_path / "predictions.json"))
  assert json.load(open(tmp_path / "predictions.json")) == json.load(open(qa_run / "eval" / "predictions.json"))


def test_export_gives_equal_start_end_logits(qa_run, tmp_path):
  torch = pytest.importorskip("torch")
  from transformers import ElectraForQuestionAnswering
  from korpat_jax import workdir as workdir_lib
  from korpat_jax.export.to_hf import export, restore_params
  from korpat_jax.model.heads import task_model
  (done,) = export(str(qa_run), str(tmp_path / "hf"))
  hf = ElectraForQuestionAnswering.from_pretrained(done.directory).eval()
  cfg, _, _ = workdir_lib.read_model_info(str(qa_run))
  params = restore_params(str(qa_run), done.step)[1]
  ids = np.random.default_rng(2).integers(5, cfg.vocab_size, size=(2, 40)).astype(np.int32)
  types = (np.arange(40)[None, :] >= 12).astype(np.int32).repeat(2, 0)
  start, end = task_model("question_answering", cfg, 2).apply({"params": params}, ids, types, np.ones_like(ids))
  with torch.no_grad():
    out = hf(input_ids=torch.tensor(ids, dtype=torch.long), token_type_ids=torch.tensor(types, dtype=torch.long))
  np.testing.assert_allclose(np.asarray(start), out.start_logits.numpy(), atol=1e-4)
  np.testing.assert_allclose(np.asarray(end), out.end_logits.numpy(), atol=1e-4)


def test_skipped_questions_are_named_in_both_prediction_files():
  from korpat_jax.qa import QAExample
  from korpat_jax.tasks.question_answering import with_skipped_questions
  examples = [QAExample("q1", "?", "c", [], "f: q1"), QAExample("q5", "?", "c", [], "f: q5")]
  skipped = [{"at": 1, "id": "q2", "where": "f: qas[1]", "error": "empty_question", "detail": "id q2"},
             {"at": 1, "id": None, "where": "f: qas[2]", "error": "malformed", "detail": "no question \"id\""},
             {"at": 1, "id": "q1", "where": "f: qas[3]", "error": "duplicate_id", "detail": "id q1"}]
  predictions, nbest = with_skipped_questions(examples, {"q1": "a", "q5": "b"},
                                              {"q1": [{"text": "a"}], "q5": [{"text": "b"}]}, skipped)
  assert list(predictions.items()) == [("q1", "a"), ("q2", ""), ("q5", "b")]  # "": what the metric scored
  assert list(nbest) == ["q1", "q2", "f: qas[2]", "f: qas[3]", "q5"]           # in input order
  assert nbest["q2"] == {"error": "empty_question", "where": "f: qas[1]", "detail": "id q2"}
  assert nbest["q1"] == [{"text": "a"}] and nbest["f: qas[3]"]["error"] == "duplicate_id"


def test_predict_names_the_questions_it_cannot_read(qa_run, korquad_split, tmp_path):
  from korpat_jax.finetune.predict import predict
  dataset = json.load(open(korquad_split / "eval.json"))
  paragraph = dataset["data"][0]["paragraphs"][0]
  first = paragraph["qas"][0]["id"]
  paragraph["qas"].insert(1, {"id": "empty-question", "question": "  "})
  paragraph["qas"].insert(2, {"question": "id가 없는 질문"})
  (tmp_path / "questions.json").write_text(json.dumps(dataset, ensure_ascii=False), encoding="utf-8")
  predict(str(qa_run), str(tmp_path / "questions.json"), str(tmp_path / "predictions.json"))
  predictions = json.load(open(tmp_path / "predictions.json"))
  ids = [qa["id"] for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"] if "id" in qa]
  assert list(predictions) == ids and predictions["empty-question"] == ""  # every question, in input order
  expected = json.load(open(qa_run / "eval" / "predictions.json"))
  assert {k: v for k, v in predictions.items() if k != "empty-question"} == expected
  assert list(predictions)[0] == first
