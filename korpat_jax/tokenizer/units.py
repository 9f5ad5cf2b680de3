"""Which WordPiece tokens start a Mecab-ko morpheme or an eojeol: the boundary flags (korpat_jax.boundaries), from the
morphemes the MWP tokenizer already has and each morpheme's piece count.

MeCab skips exactly " \\t\\n\\r\\v" between morphemes; other white space (U+00A0, U+3000) becomes a morpheme of its own,
which WordPiece turns into no token. So a morpheme starts an eojeol when MeCab skipped white space before it (or it is
the first of its text), or when the morpheme before it has no token. A batch of texts is done at once in numpy (a
per-text loop cost ~10% of the tokenizer's time): the morphemes concatenated equal the texts without MeCab's white
space, so a morpheme starts an eojeol exactly when its offset in that string is where a space-separated word starts.
"""

from __future__ import annotations

from itertools import chain
from typing import Sequence

import numpy as np

from korpat_jax.boundaries import EOJEOL_START, MORPHEME_START

_MECAB_SPACE = "\t\n\r\x0b"
_TO_SPACE = str.maketrans(_MECAB_SPACE, " " * len(_MECAB_SPACE))


def token_flags(texts: Sequence[str], morphs: Sequence[Sequence[str]],
                pieces: Sequence[Sequence[Sequence[int]]]) -> list[bytes]:
  """One flag byte per token of each text: `morphs[t]` are MeCab's surfaces of the sanitized `texts[t]`, in order,
  and `pieces[t][i]` the token ids of morpheme i of text t."""
  together = " ".join(texts)  # the space makes every text's first morpheme an eojeol start
  if any(c in together for c in _MECAB_SPACE):
    together = together.translate(_TO_SPACE)
  word_lengths = np.fromiter(map(len, together.split(" ")), np.int64)
  morph_lengths = np.fromiter(map(len, chain.from_iterable(morphs)), np.int64)
  if word_lengths.sum() != morph_lengths.sum():  # cannot happen for MeCab's surfaces: find each morpheme instead
    return [_token_flags_loop(t, m, list(map(len, p))) for t, m, p in zip(texts, morphs, pieces)]
  word_starts = np.cumsum(word_lengths) - word_lengths
  morph_starts = np.cumsum(morph_lengths) - morph_lengths
  at = np.minimum(np.searchsorted(word_starts, morph_starts), len(word_starts) - 1)
  eojeol = word_starts[at] == morph_starts
  counts = np.fromiter(map(len, chain.from_iterable(pieces)), np.int64, count=len(morph_lengths))
  empty = counts == 0
  eojeol[1:] |= empty[:-1]
  token_ends = np.concatenate([[0], np.cumsum(counts)])
  flags = np.zeros(int(token_ends[-1]), np.uint8)
  flags[token_ends[:-1][~empty]] = (MORPHEME_START + EOJEOL_START * eojeol)[~empty]
  data = flags.tobytes()
  ends = token_ends[np.cumsum(np.fromiter(map(len, morphs), np.int64, count=len(morphs)))].tolist()
  return [data[a:b] for a, b in zip([0] + ends, ends)]


def _token_flags_loop(text: str, morphs: Sequence[str], counts: Sequence[int]) -> bytes:
  """`token_flags` of one text, one morpheme at a time: each is found in the text after the previous one."""
  out = bytearray()
  find, pos, pending = text.find, 0, True
  for morph, n in zip(morphs, counts):
    at = find(morph, pos)
    at = pos if at < 0 else at  # cannot happen for MeCab surfaces
    pending = pending or at > pos
    pos = at + len(morph)
    if n:
      out.append(MORPHEME_START | (EOJEOL_START if pending else 0))
      out += bytes(n - 1)
      pending = False
    else:  # white space or control characters to WordPiece: the eojeol ends here
      pending = True
  return bytes(out)
