from __future__ import annotations

import random

import numpy as np
import pytest

from korpat_jax.finetune.report import DataReport
from korpat_jax.qa import QAExample, QAFeature, best_answers, evaluate, iter_features
from korpat_jax.qa.features import max_context_flags

# 기판  위에 질화갈륨을\n형성한다: two spaces after 기판, a newline after 을
CONTEXT = "기판  위에 질화갈륨을\n형성한다"
TOKENS = [(0, 2), (4, 5), (5, 6), (7, 9), (9, 11), (11, 12), (13, 15), (15, 17)]
#          기판    위      에      질화    ##갈륨    을        형성      한다
SPANS = [(0, 5), (3, 5)]   # two windows over the 8 tokens; token 3 has its max context in window 0, token 4 in 1
LEAD = 4                   # [CLS] q q [SEP]


def feature(w: int, example_index: int = 0) -> QAFeature:
  start, n = SPANS[w]
  return QAFeature(example_index, w, input_ids=[2, 10, 11, 3] + [20 + i for i in range(start, start + n)] + [3],
                   token_type_ids=[0] * LEAD + [1] * (n + 1),
                   context_offsets=[None] * LEAD + TOKENS[start:start + n] + [None],
                   token_is_max_context=[False] * LEAD + max_context_flags(SPANS, w) + [False])


def logits(w: int, start: dict[int, float], end: dict[int, float], pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Logits of window w from {context token: value}; everything else -5."""
  n = LEAD + SPANS[w][1] + 1 + pad
  s, e = np.full(n, -5.0), np.full(n, -5.0)
  for values, out in ((start, s), (end, e)):
    for token, value in values.items():
      out[LEAD + token - SPANS[w][0]] = value
  return s, e


def run(per_window, **kw):
  examples = [QAExample("q", "?", CONTEXT, [], "test")]
  stream = [(feature(w), *logits(w, *se)) for w, se in enumerate(per_window)]
  return best_answers(examples, stream, **kw)


def test_flags_are_as_the_layout_says():
  assert max_context_flags(SPANS, 0) == [True, True, True, True, False]
  assert max_context_flags(SPANS, 1) == [False, True, True, True, True]


def test_start_only_where_the_window_has_max_context():
  # window 0: the highest start is token 4, which has its max context in window 1 -> not allowed there;
  # window 1: the highest start is token 3, not max context in window 1 -> not allowed either
  predictions, nbest = run([({3: 5.0, 4: 10.0}, {4: 5.0}), ({3: 10.0, 4: 1.0}, {4: 1.0})])
  assert predictions["q"] == "질화갈륨"
  best = nbest["q"][0]
  assert best == {"text": "질화갈륨", "probability": best["probability"], "start_logit": 5.0, "end_logit": 5.0,
                  "start": 7, "end": 11}
  assert all(c["text"] != "갈륨" or c["start_logit"] == 1.0 for c in nbest["q"])   # 갈륨 only from window 1


def test_end_not_before_start_and_not_in_the_question():
  s, e = logits(0, {2: 8.0, 0: 1.0}, {0: 9.0, 1: 2.0})
  s[0] = e[0] = s[1] = e[2] = 100.0   # [CLS] and question positions never count
  predictions, nbest = best_answers([QAExample("q", "?", CONTEXT, [], "t")], [(feature(0), s, e)])
  assert predictions["q"] == "기판"   # (2, 0) and (2, 1) would score more but end before they start
  for c in nbest["q"]:
    assert c["end"] > c["start"] and CONTEXT[c["start"]:c["end"]] == c["text"]


def test_max_answer_length_and_original_spacing():
  per_window = [({0: 9.0}, {0: 1.0, 3: 1.0}), ({5: 1.0}, {7: 12.0})]
  predictions, _ = run(per_window, max_answer_length=30)
  assert predictions["q"] == "을\n형성한다"          # window 1: start 을 (5), end 한다 (7)
  predictions, _ = run([({0: 9.0}, {2: 9.0, 0: 1.0}), ({}, {})], max_answer_length=3)
  assert predictions["q"] == "기판  위에"           # 3 tokens, the two spaces kept
  predictions, _ = run([({0: 9.0}, {2: 9.0, 0: 1.0}), ({}, {})], max_answer_length=2)
  assert predictions["q"] == "기판"             # (0, 2) is 3 tokens: the next best, (0, 0)


def test_nbest_probabilities_order_and_size():
  per_window = [({0: 3.0, 1: 2.0, 3: 1.0}, {2: 3.0, 4: 1.0}), ({5: 2.0, 6: 1.0}, {7: 2.0, 6: 0.5})]
  _, nbest = run(per_window, n_best_size=5)
  entries = nbest["q"]
  assert len(entries) == 5
  scores = [c["start_logit"] + c["end_logit"] for c in entries]
  assert scores == sorted(scores, reverse=True)
  assert sum(c["probability"] for c in entries) == pytest.approx(1.0)
  assert entries[0]["probability"] == pytest.approx(1 / sum(np.exp(np.array(scores) - scores[0])))
  assert len({c["text"] for c in entries}) == 5
  for c in entries:
    assert set(c) == {"text", "probability", "start_logit", "end_logit", "start", "end"}
    assert CONTEXT[c["start"]:c["end"]] == c["text"]


def test_any_order_padding_and_examples_without_features():
  examples = [QAExample(f"q{i}", "?", CONTEXT, [], "t") for i in range(4)]
  rng = np.random.default_rng(0)
  stream = []
  for i in range(3):                                  # q3 has no features at all
    for w in range(2):
      s, e = rng.normal(size=(2, LEAD + SPANS[w][1] + 1 + 7))   # padded to a longer sequence
      stream.append((feature(w, i), s, e))
  grouped = best_answers(examples, stream, n_best_size=4)
  shuffled = stream[:]
  random.Random(1).shuffle(shuffled)
  assert best_answers(examples, iter(shuffled), n_best_size=4) == grouped
  predictions, nbest = grouped
  assert list(predictions) == ["q0", "q1", "q2", "q3"]
  assert predictions["q3"] == "" and nbest["q3"] == []
  assert all(predictions[f"q{i}"] and predictions[f"q{i}"] in CONTEXT for i in range(3))


def test_short_logits_are_an_error():
  with pytest.raises(ValueError, match="logits of length"):
    best_answers([QAExample("q", "?", CONTEXT, [], "t")], [(feature(0), np.zeros(3), np.zeros(3))])


def test_gold_labels_come_back_through_the_tokenizer(demo_tok):
  context = ("본 발명은 질화갈륨  기판 상에 형성된 발광다이오드에 관한 것이다. 상기 발광다이오드는 n형 반도체층, "
             "활성층 및 p형 반도체층을 순차적으로 포함한다.\n상기 기판의 두께는 100 ㎛ 이하인 것이 바람직하다. ") * 4
  golds = [("질화갈륨  기판", context.index("질화갈륨")), ("100 ㎛", context.rindex("100 ㎛")),
           ("n형 반도체층", context.index("n형", 300))]
  examples = [QAExample(f"q{i}", "무엇인가?", context, [{"text": t, "answer_start": a}], f"t{i}")
              for i, (t, a) in enumerate(golds)]

  def with_logits():
    for f in iter_features(examples, demo_tok, max_seq_length=64, max_query_length=8, doc_stride=24,
                           training=True, report=DataReport()):
      s, e = np.zeros(len(f.input_ids)), np.zeros(len(f.input_ids))
      if f.start_position:
        s[f.start_position] = e[f.end_position] = 10.0
      yield f, s, e

  predictions, _ = best_answers(examples, with_logits())
  assert predictions == {f"q{i}": t for i, (t, _) in enumerate(golds)}
  dataset = {"data": [{"paragraphs": [{"context": context, "qas": [
      {"id": e.id, "question": e.question, "answers": e.answers} for e in examples]}]}]}
  assert evaluate(dataset, predictions) == {"exact_match": 100.0, "f1": 100.0}
