"""Overlapping windows over a token sequence longer than the model: NER covers a sentence with them, sequence
classification a long document (data.long_text=windows). Pure Python."""

from __future__ import annotations

from typing import Sequence


def windows(num_tokens: int, max_tokens: int, stride: int) -> list[tuple[int, int]]:
  """Overlapping [start, end) windows of at most `max_tokens` content tokens, starts `stride` apart, the last
  ending at `num_tokens`; one window when everything fits. Every token lies in at least one window."""
  if max_tokens < 1:
    raise ValueError(f"max_tokens must be >= 1, not {max_tokens}")
  if not 1 <= stride <= max_tokens:
    raise ValueError(f"stride must be in [1, max_tokens={max_tokens}], not {stride} (a larger one leaves gaps)")
  if num_tokens <= max_tokens:
    return [(0, num_tokens)]
  last = num_tokens - max_tokens
  return [(s, s + max_tokens) for s in range(0, last, stride)] + [(last, num_tokens)]


def best_window(spans: Sequence[tuple[int, int]]) -> list[int]:
  """For each token position, the index of the window (of `spans`) in which it is most central: the largest
  min(pos - start, end - 1 - pos); the first such window on a tie."""
  n = max((end for _, end in spans), default=0)
  best = [-1] * n
  margin = [-1] * n
  for w, (start, end) in enumerate(spans):
    for pos in range(start, end):
      m = min(pos - start, end - 1 - pos)
      if m > margin[pos]:
        best[pos], margin[pos] = w, m
  if -1 in best:
    raise ValueError(f"token {best.index(-1)} lies in no window")
  return best
