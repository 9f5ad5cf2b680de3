from __future__ import annotations

import itertools
import json
import time

import pytest

from korpat_jax.finetune.report import DataReport
from korpat_jax.qa import QAExample, iter_features, read_squad, window_starts
from korpat_jax.qa.features import max_context_flags, token_span
from korpat_jax.tokenizer import demo_corpus_files

SENTENCE = "본 발명은 질화갈륨  기판 상에 형성된 발광다이오드에 관한 것이다."


def patent_context(lines: int = 40) -> str:
  """A long context with irregular whitespace, from the bundled patent-style demo text."""
  path = next(p for p in demo_corpus_files() if p.endswith("patent_style.txt"))
  with open(path, encoding="utf-8") as f:
    text = [line.strip() for line in f if line.strip()]
  seps = [" ", "  ", "\n", " \t "]
  return "".join(text[i % len(text)] + seps[i % len(seps)] for i in range(lines)).strip()


def example(context: str, question: str = "무엇을 형성하는가?", answer: str | None = None, qid: str = "q",
            occurrence: int = 0) -> QAExample:
  answers = []
  if answer is not None:
    start = -1
    for _ in range(occurrence + 1):
      start = context.index(answer, start + 1)
    answers = [{"text": answer, "answer_start": start}]
  return QAExample(qid, question, context, answers, f"test: {qid}")


def test_window_starts_doc_stride_is_the_step():
  assert window_starts(10, 4, 3) == [(0, 4), (3, 4), (6, 4)]    # steps of 3, overlap 4 - 3 = 1
  assert window_starts(10, 4, 4) == [(0, 4), (4, 4), (8, 2)]
  assert window_starts(10, 4, 9) == [(0, 4), (4, 4), (8, 2)]    # never a step over the window (no gap)
  assert window_starts(3, 4, 2) == [(0, 3)]
  assert window_starts(5, 4, 2) == [(0, 4), (2, 3)]             # the last window ends at the last token


def test_max_context_rule_by_hand():
  spans = [(0, 4), (3, 4), (6, 4)]
  # token 3: window 0 gives min(3, 0) + 0.04, window 1 min(0, 3) + 0.04 -> tie, the first window wins
  # token 4: window 1 gives min(1, 2) + 0.04 = 1.04 over window 0 (not inside)
  # token 6: window 1 min(3, 0), window 2 min(0, 3): tie -> window 1
  assert max_context_flags(spans, 0) == [True, True, True, True]
  assert max_context_flags(spans, 1) == [False, True, True, True]
  assert max_context_flags(spans, 2) == [False, True, True, True]
  # token 3: window 0 min(3, 0), window 1 min(1, 2) -> window 1; token 5: window 1 min(3, 0), window 2 min(1, 2)
  spans = window_starts(8, 4, 2)        # (0,4) (2,4) (4,4)
  flags = [max_context_flags(spans, w) for w in range(len(spans))]
  owners = {}
  for w, (start, n) in enumerate(spans):
    for i, flag in enumerate(flags[w]):
      if flag:
        owners.setdefault(start + i, []).append(w)
  assert owners == {0: [0], 1: [0], 2: [0], 3: [1], 4: [1], 5: [2], 6: [2], 7: [2]}


def test_token_span_overlap():
  offsets = [(0, 2), (2, 4), (5, 7), (7, 8)]
  assert token_span(offsets, 0, 4) == (0, 1)
  assert token_span(offsets, 3, 6) == (1, 2)     # boundaries inside tokens take the whole tokens
  assert token_span(offsets, 4, 5) is None       # only the space
  assert token_span(offsets, 7, 20) == (3, 3)


def test_layout_and_windows_cover_the_context(demo_tok):
  context = patent_context()
  enc = demo_tok.encode(context, add_special_tokens=False)
  report = DataReport()
  q = example(context, question="발광다이오드의 기판은 무엇인가? " * 3)
  features = list(iter_features([q], demo_tok, max_seq_length=64, max_query_length=16, doc_stride=20,
                                training=False, report=report))
  assert len(enc.ids) > 300 and len(features) > 10
  assert report.adjusted["question_truncated"] > 0
  question = demo_tok.encode(q.question, add_special_tokens=False).ids[:16]
  seen: dict[tuple[int, int], int] = {}
  max_owner: dict[tuple[int, int], int] = {}
  for w, f in enumerate(features):
    assert (f.example_index, f.window_index) == (0, w)
    n = len(f.input_ids)
    assert n <= 64 and len(f.token_type_ids) == len(f.context_offsets) == len(f.token_is_max_context) == n
    assert f.input_ids[:len(question) + 2] == [demo_tok.cls_id, *question, demo_tok.sep_id]
    assert f.input_ids[-1] == demo_tok.sep_id
    assert f.token_type_ids == [0] * (len(question) + 2) + [1] * (n - len(question) - 2)
    assert f.start_position == f.end_position == 0
    assert all(f.context_offsets[i] is None for i in range(len(question) + 2)) and f.context_offsets[-1] is None
    for i, span in enumerate(f.context_offsets):
      if span is None:
        assert not f.token_is_max_context[i]
        continue
      seen[span] = seen.get(span, 0) + 1
      if f.token_is_max_context[i]:
        assert span not in max_owner, "two windows claim the max context of one token"
        max_owner[span] = w
      assert f.input_ids[i] == enc.ids[enc.offsets.index(span)]
  assert set(seen) == set(enc.offsets)          # every context token is in some window
  assert set(max_owner) == set(enc.offsets)     # and exactly one window has its max context
  assert max(seen.values()) >= 2                # windows overlap (step 20 < window 45)
  covered = sorted(seen)
  for (_, end), (start, _) in zip(covered, covered[1:]):
    assert context[end:start].strip() == ""     # between tokens only whitespace: no character lost


def test_is_lazy(demo_tok):
  def examples():
    yield example(patent_context(), answer="기판")
    raise AssertionError("the second example was read before the first one's windows were used")
  features = iter_features(examples(), demo_tok, max_seq_length=48, max_query_length=16, doc_stride=16, training=True,
                           report=DataReport())
  first = list(itertools.islice(features, 3))
  assert [f.window_index for f in first] == [0, 1, 2]


def test_training_labels(demo_tok):
  context = patent_context()
  q = example(context, answer="질화갈륨", occurrence=1)   # far into the context
  report = DataReport()
  features = list(iter_features([q], demo_tok, max_seq_length=64, max_query_length=16, doc_stride=24,
                                training=True, report=report))
  start, end = q.train_span()
  labelled = [f for f in features if f.start_position]
  assert labelled, "some window must hold the answer"
  for f in features:
    spans = [s for s in f.context_offsets if s is not None]
    holds = spans[0][0] <= start and end <= spans[-1][1]
    assert bool(f.start_position) == holds
    if holds:
      assert f.end_position >= f.start_position
      assert context[f.context_offsets[f.start_position][0]:f.context_offsets[f.end_position][1]] == "질화갈륨"
    else:
      assert f.end_position == 0


def test_examples_without_usable_answers(demo_tok):
  good = example(SENTENCE, answer="기판", qid="good")
  lost = QAExample("lost", "무엇?", SENTENCE, [{"text": "반도체", "answer_start": 2}], "test: lost", spans=[None])
  report = DataReport()
  features = list(iter_features([lost, good], demo_tok, training=True, report=report))
  assert {f.example_index for f in features} == {1}
  assert report.skipped["no_answer_span"] == 1
  features = list(iter_features([lost, good], demo_tok, training=False, report=DataReport()))
  assert [f.example_index for f in features] == [0, 1]


def test_bad_lengths(demo_tok):
  with pytest.raises(ValueError, match="no room"):
    iter_features([], demo_tok, max_seq_length=64, max_query_length=64, training=False, report=DataReport())
  with pytest.raises(ValueError):
    iter_features([], demo_tok, doc_stride=0, training=False, report=DataReport())


def test_korquad_dev_answers_round_trip(demo_tok, shared_data):
  """Gold answer -> token labels -> offsets -> the exact gold text, for every question whose answer
  boundaries fall on token boundaries; the others (a boundary inside a token, e.g. 강화도|로 as one
  morpheme) are the only failures allowed."""
  path = shared_data / "KorQuAD_v1.0_dev.json"
  if not path.is_file():
    pytest.skip(f"{path} is absent")
  began = time.perf_counter()
  report = DataReport("korquad dev")
  examples = read_squad(path, report, labelled=True)
  assert report.read == len(examples) == 5774 and not report.skipped
  exact = boundary = padded = 0
  failures = []
  labelled: dict[int, tuple[int, int]] = {}
  for f in iter_features(examples, demo_tok, max_seq_length=256, doc_stride=128, training=True, report=report):
    if f.start_position and f.example_index not in labelled:
      labelled[f.example_index] = (f.context_offsets[f.start_position][0], f.context_offsets[f.end_position][1])
  for i, ex in enumerate(examples):
    assert i in labelled, f"{ex.id}: no window holds the answer"
    gold = ex.answers[0]["text"]
    got = ex.context[slice(*labelled[i])]
    if got == gold:
      exact += 1
    elif got == gold.strip():   # a gold text with a trailing space: tokens carry no whitespace
      padded += 1
    else:
      offsets = demo_tok.encode(ex.context, add_special_tokens=False).offsets
      a_start, a_end = ex.train_span()
      a_end = a_start + len(ex.context[a_start:a_end].rstrip())
      on_boundaries = a_start in {s for s, _ in offsets} and a_end in {e for _, e in offsets}
      assert not on_boundaries, f"{ex.id}: {gold!r} lies on token boundaries but came back as {got!r}"
      boundary += 1
      failures.append(f"{gold} -> {got}")
  assert report.adjusted["answer_boundary_inside_token"] == boundary
  n = len(examples)
  print(f"\nKorQuAD dev round trip ({time.perf_counter() - began:.1f}s): {exact}/{n} exact, {padded} exact but for "
        f"the gold's trailing space, {boundary} ({100 * boundary / n:.2f}%) with a boundary inside a token, "
        f"e.g. {json.dumps(failures[:4], ensure_ascii=False)}")
  assert exact + padded + boundary == n
  assert boundary / n < 0.02
