"""Sentence splitting for Korean patent text.

A sentence ends at `.`, `?` or `!` after a Hangul syllable (`...한다.`, `...장치.`), at `다.` even when the next
sentence follows without a space (`...있다.또한`), and at `. ` between English sentences. Numbers (`1.5`),
drawing labels (`도 1.`, `FIG. 2`) and abbreviations do not end a sentence. A line is always a boundary.
"""

from __future__ import annotations

import re
from typing import Callable

_BOUNDARY = re.compile(
    r"(?<=[가-힣][.?!])[\"'”’)\]]*\s+"  # 한다. / 장치. / 인가? then space
    r"|(?<=다\.)(?=[가-힣A-Za-z\"'“‘(\[])"  # 있다.또한 (no space)
    r"|(?<=[a-z][.?!])\s+(?=[A-Z가-힣])"  # English: ... device. The ...
)
DEFAULT_MAX_SENTENCE_CHARS = 1000


def split_sentences(paragraph: str, max_chars: int = DEFAULT_MAX_SENTENCE_CHARS,
                    on_cut: Callable[[str], None] | None = None) -> list[str]:
  """One cleaned paragraph -> sentences; a sentence over `max_chars` is cut at spaces into pieces.

  `on_cut(sentence)` is called for each sentence that had to be cut, so that the caller can count it.
  """
  pieces: list[str] = []
  start = 0
  for match in _BOUNDARY.finditer(paragraph):
    end = match.start() + len(match.group(0).rstrip())
    pieces.append(paragraph[start:end])
    start = match.end()
  pieces.append(paragraph[start:])
  sentences = []
  for piece in pieces:
    piece = piece.strip()
    if len(piece) > max_chars and on_cut is not None:
      on_cut(piece)
    while len(piece) > max_chars:
      cut = piece.rfind(" ", max_chars // 2, max_chars)
      cut = cut if cut > 0 else max_chars
      sentences.append(piece[:cut].strip())
      piece = piece[cut:].strip()
    if piece:
      sentences.append(piece)
  return sentences
