"""Question + context windows -> model features `[CLS] question [SEP] window [SEP]`, one window at a time.

The context is tokenized once per example; long contexts (patent descriptions run to thousands of tokens) are
cut into overlapping windows and yielded lazily, so no list of every window is ever built. Each context token
keeps its (start, end) character span of the ORIGINAL context, which is how answers are labelled here and
how predicted answers are cut out of the context again (postprocess.py).
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from korpat_jax.finetune.report import DataReport
from korpat_jax.qa.squad import QAExample

if TYPE_CHECKING:
  from korpat_jax.tokenizer import MWPTokenizer

Offset = tuple[int, int]


@dataclasses.dataclass
class QAFeature:
  """One window of one example, unpadded.

  `context_offsets[i]` is the character span in the context of input position i, None outside the context
  (question and special tokens). `token_is_max_context[i]` is True where this window is the one that gives
  the token the most context on both sides (only such positions may start an answer). start/end_position
  are the answer's token positions in `input_ids`, 0 ([CLS]) when the window does not hold the whole answer
  (and at evaluation)."""

  example_index: int
  window_index: int
  input_ids: list[int]
  token_type_ids: list[int]
  context_offsets: list[Offset | None]
  token_is_max_context: list[bool]
  start_position: int = 0
  end_position: int = 0


def window_starts(num_tokens: int, window_len: int, doc_stride: int) -> list[tuple[int, int]]:
  """(start, length) of each window over `num_tokens` context tokens.

  `doc_stride` is the STEP between window starts, as in google-research/bert's run_squad and
  google-research/electra (consecutive windows overlap by window_len - doc_stride tokens). HF's `stride`
  argument is the overlap instead. The last window ends at the last token."""
  spans: list[tuple[int, int]] = []
  start = 0
  while True:
    length = min(num_tokens - start, window_len)
    spans.append((start, length))
    if start + length >= num_tokens:
      return spans
    start += min(length, doc_stride)


def max_context_flags(spans: list[tuple[int, int]], w: int) -> list[bool]:
  """Per token of window w: is w the window with the most context for it? A token's score in a window is
  min(tokens left of it, tokens right of it) + 0.01 * window length; the first best window wins ties."""
  start, length = spans[w]
  end = start + length
  lo, hi = w, w + 1   # the windows overlapping window w: a contiguous run around it
  while lo > 0 and sum(spans[lo - 1]) > start:
    lo -= 1
  while hi < len(spans) and spans[hi][0] < end:
    hi += 1
  pos = np.arange(start, end)
  scores = np.full((hi - lo, length), -1.0)
  for row, (s, n) in enumerate(spans[lo:hi]):
    inside = (pos >= s) & (pos < s + n)
    scores[row, inside] = np.minimum(pos - s, s + n - 1 - pos)[inside] + 0.01 * n
  return (np.argmax(scores, axis=0) == w - lo).tolist()   # argmax: the first best window wins ties


def token_span(offsets: list[Offset], char_start: int, char_end: int) -> tuple[int, int] | None:
  """First and last token whose character span overlaps [char_start, char_end), or None when none does."""
  first = bisect.bisect_right([end for _, end in offsets], char_start)   # offsets ascend: first end > start
  last = first
  if first >= len(offsets) or offsets[first][0] >= char_end:
    return None
  while last + 1 < len(offsets) and offsets[last + 1][0] < char_end:
    last += 1
  return first, last


def iter_features(examples: Iterable[QAExample], tok: "MWPTokenizer", *, max_seq_length: int = 512,
                  max_query_length: int = 64, doc_stride: int = 128, training: bool,
                  report: DataReport) -> Iterator[QAFeature]:
  """Features of every example, window by window (a generator: nothing is read before it is iterated).

  `doc_stride` is the STEP between window starts, as in google-research/bert's run_squad and
  google-research/electra's finetune/qa; HF's `stride` is the overlap instead (overlap = window length -
  doc_stride).

  The question keeps its first `max_query_length` tokens; each window holds up to
  max_seq_length - len(question) - 3 context tokens. With training=True the label is the first answer whose
  text lies in the context (`QAExample.train_span`): the tokens overlapping its character span. An example
  with no such answer, or whose answer no token covers, yields no training features (counted under
  `report.skipped`); windows that do not hold the whole answer are labelled 0 ([CLS]), as in run_squad."""
  if max_query_length < 1 or doc_stride < 1:
    raise ValueError(f"max_query_length={max_query_length} and doc_stride={doc_stride} must be >= 1")
  if max_seq_length - max_query_length - 3 < 1:
    raise ValueError(f"max_seq_length={max_seq_length} leaves no room for context after a question of "
                     f"{max_query_length} tokens and 3 special tokens")
  return _features(examples, tok, max_seq_length, max_query_length, doc_stride, training, report)


def _features(examples, tok, max_seq_length, max_query_length, doc_stride, training, report):
  last_context, ids, offsets = None, [], []
  for index, example in enumerate(examples):
    question = tok.encode(example.question, add_special_tokens=False).ids
    if len(question) > max_query_length:
      report.adjust("question_truncated", example.where, f"id {example.id}: {len(question)} tokens",
                    count=len(question) - max_query_length)
      question = question[:max_query_length]
    if example.context != last_context:   # the questions of one paragraph share its encoding
      enc = tok.encode(example.context, add_special_tokens=False)
      ids, offsets, last_context = enc.ids, enc.offsets, example.context
    if not ids:
      report.skip("empty_context", example.where, f"id {example.id}: no tokens in the context")
      continue
    label = None
    if training:
      label = _label(example, offsets, report)
      if label is None:
        continue
    window_len = max_seq_length - len(question) - 3
    spans = window_starts(len(ids), window_len, doc_stride)
    head = [tok.cls_id, *question, tok.sep_id]
    lead = len(head)
    if label is not None and label[1] - label[0] + 1 > window_len:
      report.adjust("answer_longer_than_window", example.where,
                    f"id {example.id}: {label[1] - label[0] + 1} tokens > {window_len}")
    for w, (start, length) in enumerate(spans):
      end = start + length
      start_position = end_position = 0
      if label is not None and start <= label[0] and label[1] < end:
        start_position, end_position = label[0] - start + lead, label[1] - start + lead
      yield QAFeature(
          example_index=index, window_index=w,
          input_ids=head + ids[start:end] + [tok.sep_id],
          token_type_ids=[0] * lead + [1] * (length + 1),
          context_offsets=[None] * lead + list(offsets[start:end]) + [None],
          token_is_max_context=[False] * lead + max_context_flags(spans, w) + [False],
          start_position=start_position, end_position=end_position)


def _label(example: QAExample, offsets: list[Offset], report: DataReport) -> tuple[int, int] | None:
  """(first, last) context token of the training answer, or None (counted) when there is none."""
  span = example.train_span()
  if span is None:
    report.skip("no_answer_span", example.where, f"id {example.id}: no answer lies in the context")
    return None
  context = example.context
  start, end = span
  while start < end and context[start].isspace():
    start += 1
  while end > start and context[end - 1].isspace():
    end -= 1
  found = token_span(offsets, start, end)
  if found is None:
    report.skip("answer_not_tokenized", example.where, f"id {example.id}: no token covers the answer")
    return None
  if offsets[found[0]][0] != start or offsets[found[1]][1] != end:
    labelled = context[offsets[found[0]][0]:offsets[found[1]][1]]
    report.adjust("answer_boundary_inside_token", example.where,
                  f"id {example.id}: {context[start:end]!r} labelled as {labelled!r}")
  return found
