"""The feature cache is keyed by what changes features only: a scoring-only setting (QA's head.n_best_size) reuses
it without running Mecab-ko, a feature setting (head.doc_stride) rebuilds it; QA scores from the gold set cached
with the features, not from the eval file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import finetune_config
from korpat_jax.tasks import make_task

CONTEXT = "본 발명은 합성세제액을 사용하는 세척 장치에 관한 것이다. 세척 장치는 노즐과 펌프를 포함한다."
QUESTIONS = [("q1", "무엇에 관한 발명인가?", "세척 장치"), ("q2", "세척 장치는 무엇을 포함하는가?", "노즐과 펌프"),
             ("q3", "무엇을 사용하는가?", "합성세제액")]


def _squad(path, questions):
  qas = [{"id": qid, "question": q, "answers": [{"text": a, "answer_start": CONTEXT.index(a)}]}
         for qid, q, a in questions]
  path.write_text(json.dumps({"version": "test", "data": [{"paragraphs": [{"context": CONTEXT, "qas": qas}]}]},
                             ensure_ascii=False), encoding="utf-8")
  return path


@pytest.fixture
def qa_config(demo_tok_dir, tmp_path):
  train, evaluation = _squad(tmp_path / "train.json", QUESTIONS), _squad(tmp_path / "eval.json", QUESTIONS[:2])

  def make(**overrides):
    return finetune_config("qa_tiny", **{
        "data.train": str(train), "data.eval": str(evaluation),
        "data.tokenizer_dir": str(demo_tok_dir), "model.vocab_size": 8000, "model.embedding_size": 16,
        "model.hidden_size": 16, "model.num_layers": 1, "model.num_heads": 2, "model.intermediate_size": 32,
        "model.max_position_embeddings": 128, **overrides})
  return make


def _count_encodes(monkeypatch):
  from korpat_jax.tokenizer import MWPTokenizer
  calls = []
  encode = MWPTokenizer.encode
  monkeypatch.setattr(MWPTokenizer, "encode", lambda self, *a, **k: calls.append(1) or encode(self, *a, **k))
  return calls


def test_a_scoring_key_reuses_the_cache_a_feature_key_rebuilds_it(qa_config, tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  calls = _count_encodes(monkeypatch)
  first = make_task(qa_config(), workdir)
  first.make_input(0)
  assert calls and first.splits["train"].num_features > 0

  calls.clear()
  again = make_task(qa_config(**{"head.n_best_size": 5, "head.max_answer_length": 10}), workdir)
  again.make_input(0)
  assert not calls, "Mecab-ko ran again for a scoring-only setting"
  assert again.splits["train"].info == first.splits["train"].info

  stride = make_task(qa_config(**{"head.doc_stride": 32}), workdir)
  stride.make_input(0)
  assert calls, "a feature setting (head.doc_stride) reused the cache"


def test_qa_scores_from_the_cached_gold_set(qa_config, tmp_path):
  task = make_task(qa_config(), str(tmp_path / "run"))
  task.make_input(0)
  assert task.splits["eval"].info["gold"] == [{"id": qid, "answers": [{"text": a}]} for qid, _, a in QUESTIONS[:2]]

  def scores():
    outputs = [(batch, (np.zeros(batch["input_ids"].shape, np.float32),) * 2)
               for batch in task.eval_batches("eval")]
    return task.evaluate("eval", outputs).scores

  before = scores()
  (tmp_path / "eval.json").unlink()  # scoring needs the cache only
  assert scores() == before and set(before) == {"exact_match", "f1"}
