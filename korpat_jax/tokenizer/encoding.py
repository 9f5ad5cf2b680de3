"""What `MWPTokenizer.encode` returns: ids now, tokens and character offsets of the ORIGINAL text on first access.

A `Segment` keeps one text's morphemes until tokens or offsets are asked for (their WordPiece pieces come from the
wordpiece cache then); the corpus pipeline only reads ids and never pays for them.
"""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import Iterator, Sequence

from korpat_jax.tokenizer.morphemes import sanitize
from korpat_jax.tokenizer.wordpiece import BertWordPiece

_CLS, _SEP = "[CLS]", "[SEP]"
_tokens_of = attrgetter("tokens")


class Segment:
  """One encoded text: its morphemes, how many tokens were kept, and the special tokens around. The morphemes'
  pieces (tokens and offsets within each morpheme) are looked up on first use."""

  __slots__ = ("text", "morphs", "wordpiece", "keep", "lead", "trail")

  def __init__(self, text: str, morphs: Sequence[str], wordpiece: BertWordPiece, keep: int, lead: int,
               trail: int):
    self.text, self.morphs, self.wordpiece = text, morphs, wordpiece
    self.keep, self.lead, self.trail = keep, lead, trail

  @classmethod
  def from_joined(cls, wordpiece: BertWordPiece, text: str, joined: str, keep: int, lead: int,
                  trail: int) -> "Segment":
    """Rebuild from a worker's segmentation."""
    return cls(sanitize(text), joined.split(" ") if joined else [], wordpiece, keep, lead, trail)

  def tokens(self) -> list[str]:
    tokens = list(chain.from_iterable(map(_tokens_of, self.wordpiece.pieces(self.morphs))))
    del tokens[self.keep:]
    return [_CLS] * self.lead + tokens + [_SEP] * self.trail

  def offsets(self) -> list[tuple[int, int]]:
    """Each piece's span in the original text: its morpheme is found there after the previous one (MeCab's
    surfaces are substrings of the text in order) and the piece's span within the morpheme is shifted."""
    find, pos, keep = self.text.find, 0, self.keep
    spans: list[tuple[int, int]] = []
    for morph, piece in zip(self.morphs, self.wordpiece.pieces(self.morphs)):
      if len(spans) >= keep:
        break
      at = find(morph, pos)
      if at < 0:   # cannot happen for MeCab surfaces; stay inside the text anyway
        n = len(self.text)
        at = min(pos, n)
        spans += [(min(at + s, n), min(at + e, n)) for s, e in piece.offsets]
        pos = at + len(morph)
        continue
      within = piece.offsets
      if len(within) == 1:
        start, end = within[0]
        spans.append((at + start, at + end))
      else:
        spans += [(at + start, at + end) for start, end in within]
      pos = at + len(morph)
    del spans[keep:]
    return [(0, 0)] * self.lead + spans + [(0, 0)] * self.trail


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
      self._tokens = list(chain.from_iterable(seg.tokens() for seg in self._segments))
    return self._tokens

  @property
  def offsets(self) -> list[tuple[int, int]]:
    if self._offsets is None:
      self._offsets = list(chain.from_iterable(seg.offsets() for seg in self._segments))
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
