"""What `MWPTokenizer.encode` returns: ids now, tokens and character offsets of the ORIGINAL text on first access.

A `_Segment` keeps one text's morphemes and their WordPiece pieces until tokens or offsets are asked for; the
corpus pipeline only reads ids and never pays for them.
"""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING

from korpat_jax.tokenizer.morphemes import sanitize

if TYPE_CHECKING:
  from korpat_jax.tokenizer.mwp import MWPTokenizer

_CLS, _SEP = "[CLS]", "[SEP]"


class _Segment:
  """One encoded text, kept until tokens/offsets are asked for: its morphemes and their WordPiece pieces."""

  __slots__ = ("text", "morphs", "pieces", "keep", "lead", "trail")

  def __init__(self, text, morphs, pieces, keep, lead, trail):
    self.text, self.morphs, self.pieces, self.keep, self.lead, self.trail = text, morphs, pieces, keep, lead, trail

  @classmethod
  def from_joined(cls, tok: "MWPTokenizer", text: str, joined: str, keep: int, lead: int, trail: int):
    """Rebuild from a worker's segmentation (the pieces come from this process's cache)."""
    morphs = joined.split(" ") if joined else []
    get = tok._cache.get
    return cls(sanitize(text), morphs, [get(m) or tok._pieces_of(m) for m in morphs], keep, lead, trail)

  def tokens(self) -> list[str]:
    tokens = list(chain.from_iterable(p[1] for p in self.pieces))[:self.keep]
    return [_CLS] * self.lead + tokens + [_SEP] * self.trail

  def offsets(self) -> list[tuple[int, int]]:
    text, n, pos = self.text, len(self.text), 0
    offsets: list[tuple[int, int]] = [(0, 0)] * self.lead
    for morph, piece in zip(self.morphs, self.pieces):
      at = text.find(morph, pos)
      if at < 0:   # cannot happen for MeCab surfaces; stay inside the text anyway
        at = min(pos, n)
      offsets += [(min(at + s, n), min(at + e, n)) for s, e in piece[2]]
      pos = at + len(morph)
      if len(offsets) >= self.keep + self.lead:
        break
    return offsets[:self.keep + self.lead] + [(0, 0)] * self.trail



class _LazySegments:
  """A one-segment list built on first iteration (batch_encode results: most callers only read ids)."""

  __slots__ = ("tok", "text", "joined", "keep", "lead")

  def __init__(self, tok, text, joined, keep, lead):
    self.tok, self.text, self.joined, self.keep, self.lead = tok, text, joined, keep, lead

  def __iter__(self):
    yield _Segment.from_joined(self.tok, self.text, self.joined, self.keep, self.lead, self.lead)


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

  def materialize(self) -> "Encoding":
    """Compute tokens and offsets now and drop the analysis (before pickling or long storage)."""
    self.tokens, self.offsets  # noqa: B018
    self._segments = None
    return self

  def __len__(self) -> int:
    return len(self.ids)

  def __repr__(self) -> str:
    return f"Encoding(ids={self.ids!r}, tokens={self.tokens!r})"

  def __getstate__(self):
    return (self.ids, self.token_type_ids, self.tokens, self.offsets)

  def __setstate__(self, state):
    self.ids, self._types, self._tokens, self._offsets = state
    self._segments = None
