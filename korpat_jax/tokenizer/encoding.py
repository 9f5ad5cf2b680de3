"""What `MWPTokenizer.encode` returns: ids now, tokens and character offsets of the ORIGINAL text on first access.

A `Segment` keeps one text's morphemes and their WordPiece pieces until tokens or offsets are asked for; the
corpus pipeline only reads ids and never pays for them.
"""

from __future__ import annotations

from itertools import chain
from typing import Iterator, Sequence

from korpat_jax.tokenizer.morphemes import sanitize
from korpat_jax.tokenizer.wordpiece import BertWordPiece, Pieces

_CLS, _SEP = "[CLS]", "[SEP]"


class Segment:
  """One encoded text: its morphemes, their pieces, how many tokens were kept, and the special tokens around."""

  __slots__ = ("text", "morphs", "pieces", "keep", "lead", "trail")

  def __init__(self, text: str, morphs: Sequence[str], pieces: Sequence[Pieces], keep: int, lead: int, trail: int):
    self.text, self.morphs, self.pieces, self.keep, self.lead, self.trail = text, morphs, pieces, keep, lead, trail

  @classmethod
  def from_joined(cls, wordpiece: BertWordPiece, text: str, joined: str, keep: int, lead: int,
                  trail: int) -> "Segment":
    """Rebuild from a worker's segmentation (the pieces come from this process's cache)."""
    morphs = joined.split(" ") if joined else []
    return cls(sanitize(text), morphs, wordpiece.pieces(morphs), keep, lead, trail)

  def tokens(self) -> list[str]:
    tokens = list(chain.from_iterable(p.tokens for p in self.pieces))[:self.keep]
    return [_CLS] * self.lead + tokens + [_SEP] * self.trail

  def offsets(self) -> list[tuple[int, int]]:
    text, n, pos = self.text, len(self.text), 0
    offsets: list[tuple[int, int]] = [(0, 0)] * self.lead
    for morph, piece in zip(self.morphs, self.pieces):
      at = text.find(morph, pos)
      if at < 0:   # cannot happen for MeCab surfaces; stay inside the text anyway
        at = min(pos, n)
      offsets += [(min(at + s, n), min(at + e, n)) for s, e in piece.offsets]
      pos = at + len(morph)
      if len(offsets) >= self.keep + self.lead:
        break
    return offsets[:self.keep + self.lead] + [(0, 0)] * self.trail


class LazySegments:
  """A one-segment list built on first iteration (batch_encode results: most callers only read ids)."""

  __slots__ = ("wordpiece", "text", "joined", "keep", "lead")

  def __init__(self, wordpiece: BertWordPiece, text: str, joined: str, keep: int, lead: int):
    self.wordpiece, self.text, self.joined, self.keep, self.lead = wordpiece, text, joined, keep, lead

  def __iter__(self) -> Iterator[Segment]:
    yield Segment.from_joined(self.wordpiece, self.text, self.joined, self.keep, self.lead, self.lead)


class Encoding:
  """ids, token_type_ids, tokens and offsets ((start, end) character spans of the ORIGINAL text).

  tokens and offsets are computed on first access (the corpus pipeline only needs ids)."""

  __slots__ = ("ids", "_types", "_tokens", "_offsets", "_segments")

  def __init__(self, ids, token_type_ids=None, tokens=None, offsets=None, segments=None):
    self.ids = ids
    self._types = token_type_ids   # None: all 0 (one sequence)
    self._tokens = tokens
    self._offsets = offsets
    self._segments = segments

  @property
  def token_type_ids(self) -> list[int]:
    if self._types is None:
      self._types = [0] * len(self.ids)
    return self._types

  @property
  def tokens(self) -> list[str]:
    if self._tokens is None:
      self._tokens = [t for seg in self._segments for t in seg.tokens()]
    return self._tokens

  @property
  def offsets(self) -> list[tuple[int, int]]:
    if self._offsets is None:
      self._offsets = [o for seg in self._segments for o in seg.offsets()]
    return self._offsets

  def __len__(self) -> int:
    return len(self.ids)

  def __repr__(self) -> str:
    return f"Encoding(ids={self.ids!r}, tokens={self.tokens!r})"

  def __getstate__(self):
    return (self.ids, self.token_type_ids, self.tokens, self.offsets)

  def __setstate__(self, state):
    self.ids, self._types, self._tokens, self._offsets = state
    self._segments = None
