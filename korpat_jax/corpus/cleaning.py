"""Patent-aware cleaning of one paragraph: markers that carry no language are removed, the text is kept.

Korean patent text (KIPO/KIPRIS) is full of structure: paragraph numbers `【0001】` / `[0001]`, section headers
`【기술분야】`, claim headers `【청구항 1】` / `청구항 1.`, drawing reference numerals `기판(110)`, markup `<EMI ...>`.
Each rule can be switched off in `CleanConfig`.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

_FULLWIDTH_MARKER = re.compile(r"【[^】\n]{1,40}】")  # 【0001】 【기술분야】 【청구항 1】 【도 1】 【수학식 1】
_PARAGRAPH_TAG = re.compile(r"\[\s*\d{3,5}\s*\]")  # [0001]
_BRACKET_HEADER = re.compile(r"^\s*\[\s*[가-힣][가-힣 ]{0,25}(?:\s*\d{1,3})?\s*\]\s*")  # [기술분야] [청구항 3]
_CLAIM_HEADER = re.compile(r"^\s*(?:청구항|청구 항|claim)\s*\d{1,3}\s*[.:)]?\s*", re.IGNORECASE)
_REF_ITEM = r"[A-Z]?\d{1,4}[a-z]?'{0,2}"
_DRAWING_REF = re.compile(
    rf"(?<=[가-힣A-Za-z\])])\s?\(\s*{_REF_ITEM}(?:\s*[,~\-]\s*{_REF_ITEM})*\s*\)")  # 기판(110), 단계 (S10, S20)
_YEAR = re.compile(r"\(\s*(?:19|20)\d\d\s*\)")
_MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9_-]*(?:\s[^<>]*)?/?>")
# C0 / C1 controls (tab aside), zero-width characters, the replacement character, private-use characters.
_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u2060\ufeff\ufffd\ue000-\uf8ff]")
_INVISIBLE = re.compile("[\u200b-\u200f\u2028\u2029\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


@dataclasses.dataclass(frozen=True)
class CleanConfig:
  normalize: str = "NFC"  # "NFC", "NFKC" or "" (none)
  strip_markup: bool = True
  strip_paragraph_tags: bool = True  # 【0001】 [0001] and the other 【...】 markers
  strip_claim_headers: bool = True  # 청구항 1 / [청구항 1] at the start of a line
  strip_drawing_refs: bool = True  # reference numerals in parentheses after a word: 기판(110) -> 기판


def _drop_reference(match: re.Match) -> str:
  return match.group(0) if _YEAR.fullmatch(match.group(0).strip()) else ""


def clean_paragraph(text: str, config: CleanConfig = CleanConfig()) -> str:
  """One line of a document -> cleaned text ("" when nothing is left)."""
  return _clean(text, config, strip_junk=True)


def cleaned_away(text: str, config: CleanConfig = CleanConfig()) -> bool:
  """Whether cleaning empties `text` although it held more than markers (e.g. a line of control characters).

  A line of markers and invisible characters only (【기술분야】, <tags>, zero-width spaces) is structure, not lost
  text; such a line gives False.
  """
  return bool(text.strip()) and not clean_paragraph(text, config) and bool(_clean(text, config, strip_junk=False))


def _clean(text: str, config: CleanConfig, strip_junk: bool) -> str:
  if config.normalize:
    text = unicodedata.normalize(config.normalize, text)
  text = (_JUNK if strip_junk else _INVISIBLE).sub("", text)
  if config.strip_markup:
    text = _MARKUP.sub(" ", text)
  if config.strip_paragraph_tags:
    text = _FULLWIDTH_MARKER.sub(" ", text)
    text = _PARAGRAPH_TAG.sub(" ", text)
  if config.strip_claim_headers:
    text = _BRACKET_HEADER.sub("", text)
    text = _CLAIM_HEADER.sub("", text)
  if config.strip_drawing_refs:
    text = _DRAWING_REF.sub(_drop_reference, text)
  return _SPACES.sub(" ", text).strip()
