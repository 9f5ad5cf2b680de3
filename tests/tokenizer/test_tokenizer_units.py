"""The MWP tokenizer's boundary flags (korpat_jax.tokenizer.units): which tokens start a Mecab-ko morpheme and which
an eojeol, with the real Mecab-ko; the ids are encode()'s."""

from __future__ import annotations

import pytest

from korpat_jax.boundaries import EOJEOL_START, MORPHEME_START, UNIT
from korpat_jax.corpus.tokenizing import MWPTokenizerFactory
from korpat_jax.tokenizer import demo_corpus_files
from korpat_jax.tokenizer.morphemes import sanitize
from korpat_jax.tokenizer.units import _token_flags_loop, token_flags


@pytest.fixture(scope="module")
def lines() -> list[str]:
  return [line.strip() for f in demo_corpus_files() for line in open(f, encoding="utf-8") if line.strip()]


def test_flags_mark_the_first_piece_of_each_morpheme_and_eojeol(demo_tok):
  text = "본 발명은 질화갈륨 기판 상에 형성된 InGaN/GaN 발광다이오드에 관한 것이다."
  ids, flags = demo_tok.ids_and_boundaries(text)
  encoding = demo_tok.encode(text, add_special_tokens=False)
  assert ids == encoding.ids and len(flags) == len(ids)
  morphs = demo_tok.segment(text).split(" ")
  pieces = demo_tok.wordpiece.pieces(morphs)
  want = []
  for morph, piece in zip(morphs, pieces):
    want += [MORPHEME_START] + [0] * (len(piece.ids) - 1)
  assert [f & MORPHEME_START for f in flags] == want
  # Tokens from one eojeol start to the next are one space-separated word of the text.
  words, word = [], ""
  for token, flag in zip(encoding.tokens, flags):
    if flag & EOJEOL_START and word:
      words.append(word)
      word = ""
    word += token.removeprefix("##")
  assert words + [word] == text.split()


@pytest.mark.parametrize("text,eojeol_starts", [
    ("가나 다라", 2),
    ("가나\t다라\n마바\r사\x0b아  자", 6),  # what MeCab skips
    ("가나\u3000다라\xa0마바", 3),  # white space MeCab keeps as a morpheme without tokens
    ("  앞뒤 공백  ", 2),
    ("", 0),
])
def test_eojeols_are_the_space_separated_words(demo_tok, text, eojeol_starts):
  ids, flags = demo_tok.ids_and_boundaries(text)
  assert ids == demo_tok.encode(text, add_special_tokens=False).ids
  assert sum(bool(f & EOJEOL_START) for f in flags) == eojeol_starts
  assert all(f & MORPHEME_START for f in flags if f & EOJEOL_START) and (not flags or flags[0] == UNIT)


def test_the_batch_computation_equals_the_per_morpheme_loop(demo_tok, lines):
  texts = lines + ["가나\u3000다라\xa0마", "\u200b가 나", "  ", "a\tb"]
  cleaned = [sanitize(t) for t in texts]
  morphs = [demo_tok.segment(t).split(" ") if demo_tok.segment(t) else [] for t in texts]
  pieces = [demo_tok.wordpiece.id_tuples(m) for m in morphs]
  counts = [list(map(len, p)) for p in pieces]
  assert token_flags(cleaned, morphs, pieces) == [_token_flags_loop(*args) for args in zip(cleaned, morphs, counts)]
  assert token_flags([], [], []) == []


def test_prepare_adapter_gives_the_ids_of_encode_batch(demo_tok_dir, lines):
  adapter = MWPTokenizerFactory(str(demo_tok_dir))()
  with_flags = adapter.encode_batch_with_boundaries(lines[:500])
  assert [ids for ids, _ in with_flags] == adapter.encode_batch(lines[:500])
  assert all(len(ids) == len(flags) for ids, flags in with_flags)
