"""Overlapping windows over long token sequences (NER sentences, long documents) and the most central one per token."""

from __future__ import annotations

import pytest

from korpat_jax.finetune.windows import best_window, windows


@pytest.mark.parametrize("num_tokens,max_tokens,stride", [
    (0, 8, 4), (5, 8, 4), (8, 8, 4), (9, 8, 4), (20, 8, 4), (21, 8, 3), (100, 10, 10), (7, 3, 1), (64, 16, 8)])
def test_windows_cover_every_token(num_tokens, max_tokens, stride):
  ws = windows(num_tokens, max_tokens, stride)
  assert ws[0][0] == 0 and ws[-1][1] == num_tokens
  assert all(0 <= e - s <= max_tokens for s, e in ws)
  assert len(set(ws)) == len(ws)
  assert {p for s, e in ws for p in range(s, e)} == set(range(num_tokens))
  if num_tokens <= max_tokens:
    assert ws == [(0, num_tokens)]
  best = best_window(ws)
  assert len(best) == num_tokens
  for pos, w in enumerate(best):
    start, end = ws[w]
    assert start <= pos < end
    margin = min(pos - start, end - 1 - pos)
    assert all(margin >= min(pos - s, e - 1 - pos) for s, e in ws if s <= pos < e)


def test_windows_by_hand():
  # 20 tokens, windows of 8 every 4: starts 0, 4, 8 and the last one 12 (ends at 20).
  ws = windows(20, 8, 4)
  assert ws == [(0, 8), (4, 12), (8, 16), (12, 20)]
  # token 5: margins 5 in (0,8)? min(5, 2) = 2; in (4,12): min(1, 6) = 1 -> window 0.
  # token 6: (0,8): min(6, 1) = 1; (4,12): min(2, 5) = 2 -> window 1.
  best = best_window(ws)
  assert best[:8] == [0, 0, 0, 0, 0, 0, 1, 1]
  assert best[16:] == [3, 3, 3, 3]
  # the last window is not a copy of a regular one: 9 tokens, 8 every 4 -> (0, 8), (1, 9)
  assert windows(9, 8, 4) == [(0, 8), (1, 9)]
  with pytest.raises(ValueError):
    windows(20, 8, 9)       # a gap between windows
  with pytest.raises(ValueError):
    windows(20, 8, 0)
