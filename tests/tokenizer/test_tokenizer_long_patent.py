"""Long patent-like sentences (issue 11) and the hard, abstract-like set (issue 21): the generator, and the tokenizer's
fast paths on them (the greedy WordPiece for unseen plain morphemes, the ids cache and its misses, batch chunks)
giving the seed recipe's ids and true offsets."""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import pytest

from korpat_jax.tokenizer import MWPTokenizer, build_user_dictionary, demo_corpus_files, train_tokenizer
from korpat_jax.tokenizer.wordpiece import write_vocab

from test_tokenizer_mwp import seed_morphs

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:  # `benchmarks` is a package at the repository root
  sys.path.insert(0, REPO)
from benchmarks.speed.patent_sentences import (MAX_CHARS, MIN_CHARS, compound_lexicon, josa,  # noqa: E402
                                               patent_sentences, user_dictionary_csv, warmup_sentences)


@pytest.fixture(scope="module")
def long_texts() -> list[str]:
  return patent_sentences(300, seed=5)


@pytest.fixture(scope="module")
def hard_texts() -> list[str]:
  """Abstract-like sentences with many morphemes unseen in the warm-up (realism="abstract")."""
  return patent_sentences(300, seed=5, realism="abstract")


@pytest.fixture(scope="module")
def userdic_tok(tmp_path_factory, long_texts) -> MWPTokenizer:
  """A tokenizer with the generator's compounds as a user dictionary (long unseen morphemes)."""
  work = tmp_path_factory.mktemp("patent_userdic")
  csv = user_dictionary_csv(str(work / "compounds.csv"), size=5000)
  build_user_dictionary(None, str(work / "ud"), [csv], log=lambda m: None, quiet_compile=True)
  warm = work / "warm.txt"
  warm.write_text("\n".join(warmup_sentences(500, long_texts)) + "\n", encoding="utf-8")
  return train_tokenizer(demo_corpus_files() + [str(warm)], str(work / "tok"), vocab_size=4000,
                         user_dic_dir=str(work / "ud"), show_progress=False, log=lambda m: None)


def test_generator_is_deterministic_long_and_patent_like(long_texts):
  assert patent_sentences(300, seed=5) == long_texts
  assert patent_sentences(50, seed=6) != long_texts[:50]
  assert all(MIN_CHARS <= len(t) <= MAX_CHARS for t in long_texts)
  assert len(set(long_texts)) == len(long_texts)
  warm = warmup_sentences(300, long_texts)
  assert len(warm) == 300 and not set(warm) & set(long_texts)
  text = "\n".join(long_texts)
  for feature in (r"제\d+항에 있어서, 상기", r"특징으로 하는", r"본 발명은", r"\(\d+0[ab]?\)", r"도 \d+",
                  r"\d+(\.\d+)? ?(℃|nm|㎛|중량%)", r"\d+ ?(~| 내지 )\d+", r"[A-Z]{2,}", r"단계 S\d+"):
    assert re.search(feature, text), feature
  lexicon = compound_lexicon(1000)
  assert len(set(lexicon)) == 1000 and lexicon == compound_lexicon(1000)
  assert sum(word in text for word in lexicon[:50]) > 25   # the most frequent compounds do occur


def test_particles_follow_the_final_consonant():
  assert josa("질화갈륨층", "을/를") == "질화갈륨층을"
  assert josa("게이트소자", "을/를") == "게이트소자를"
  assert josa("제2 전극(120)", "과/와") == "제2 전극(120)과"
  assert josa("하우징(100a)", "은/는") == "하우징(100a)은"


def _plain_words(tok: MWPTokenizer, texts: list[str]) -> list[str]:
  words = {m for t in texts for m in tok.segment(t).split(" ") if re.fullmatch("[가-힣A-Za-z0-9]+", m)}
  rng = random.Random(0)
  alphabet = "가나다라마바사아자차카타파하갈륨질화층막똠뷁쀍ABCXYZabcxyz0123456789"
  words |= {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(2000)}
  return sorted(words | {"a" * 100, "질화" * 50, "x" * 99 + "똠"})


@pytest.mark.parametrize("which", ["demo", "userdic"])
def test_greedy_wordpiece_equals_rust(demo_tok, userdic_tok, long_texts, hard_texts, which):
  tok = demo_tok if which == "demo" else userdic_tok
  wp = tok.wordpiece
  for word in _plain_words(tok, long_texts[:100] + hard_texts[:100]):
    assert wp.greedy_ids(word) == wp.pieces_of(word).ids, word
    assert wp._ids_of_new(word) == wp.pieces_of(word).ids, word


def _seed_ids(tok: MWPTokenizer, texts: list[str], tmp_path) -> list[list[int]]:
  pytest.importorskip("transformers")
  from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
  from korpat_jax.tokenizer.morphemes import make_tagger
  write_vocab(tok.vocab, tmp_path / "vocab.txt")
  legacy = BertTokenizerLegacy(str(tmp_path / "vocab.txt"), do_lower_case=False)
  tagger = make_tagger(tok.user_dic)
  return [[tok.cls_id, *legacy.convert_tokens_to_ids(legacy.tokenize(" ".join(seed_morphs(t, tagger)))), tok.sep_id]
          for t in texts]


@pytest.mark.parametrize("which", ["demo", "userdic"])
def test_hard_sentences_give_the_seed_recipes_ids(demo_tok, userdic_tok, hard_texts, which, tmp_path):
  """Warm on other sentences of the mode, then most texts meet unseen morphemes (the cache's miss path), as do
  all with an empty cache and with a cache that is cleared on the way."""
  trained = demo_tok if which == "demo" else userdic_tok
  expected = _seed_ids(trained, hard_texts, tmp_path)
  warm = MWPTokenizer(trained.vocab, trained.user_dic)
  for text in warmup_sentences(100, hard_texts, realism="abstract"):
    warm.encode(text)
  seen = set(warm.wordpiece.cache_state()[0])
  assert sum(any(m not in seen for m in warm.segment(t).split(" ")) for t in hard_texts) > len(hard_texts) // 2
  assert [warm.encode(t).ids for t in hard_texts] == expected
  cold = MWPTokenizer(trained.vocab, trained.user_dic)
  assert [cold.encode(t).ids for t in hard_texts] == expected
  assert [e.ids for e in cold.batch_encode(hard_texts[:50], num_workers=1)] == expected[:50]
  for text, enc in zip(hard_texts[:100], map(cold.encode, hard_texts[:100])):
    for token, (start, end) in zip(enc.tokens[1:-1], enc.offsets[1:-1]):
      assert 0 <= start < end <= len(text)
      if token != "[UNK]":
        assert text[start:end] == token.removeprefix("##"), (text, token)


def test_ids_cache_is_bounded(demo_tok, hard_texts, tmp_path, monkeypatch):
  from korpat_jax.tokenizer import wordpiece
  monkeypatch.setattr(wordpiece, "PIECE_CACHE_SIZE", 50)
  tok = MWPTokenizer(demo_tok.vocab)
  expected = _seed_ids(tok, hard_texts[:60], tmp_path)
  assert [tok.encode(t).ids for t in hard_texts[:60]] == expected
  assert len(tok.wordpiece.cache_state()[0]) <= 50
  flags = tok.batch_ids_and_boundaries(hard_texts[:60])
  assert [[tok.cls_id, *ids, tok.sep_id] for ids, _ in flags] == expected


@pytest.mark.parametrize("which", ["demo", "userdic"])
def test_long_sentences_give_the_seed_recipes_ids_and_true_offsets(demo_tok, userdic_tok, long_texts, which,
                                                                  tmp_path):
  pytest.importorskip("transformers")
  from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
  from korpat_jax.tokenizer.morphemes import make_tagger
  tok = demo_tok if which == "demo" else userdic_tok
  write_vocab(tok.vocab, tmp_path / "vocab.txt")
  legacy = BertTokenizerLegacy(str(tmp_path / "vocab.txt"), do_lower_case=False)
  tagger = make_tagger(tok.user_dic)
  for text in long_texts:
    morphs = seed_morphs(text, tagger)
    expected = legacy.convert_tokens_to_ids(legacy.tokenize(" ".join(morphs)))
    enc = tok.encode(text)
    assert enc.ids == [tok.cls_id, *expected, tok.sep_id], text
    for token, (start, end) in zip(enc.tokens[1:-1], enc.offsets[1:-1]):
      assert 0 <= start < end <= len(text)
      if token != "[UNK]":
        assert text[start:end] == token.removeprefix("##"), (text, token)


def test_cache_state_restores_a_warm_up(userdic_tok, long_texts):
  tok = MWPTokenizer(userdic_tok.vocab, userdic_tok.user_dic)
  cold = [tok.encode(t).ids for t in long_texts[:50]]
  state = tok.wordpiece.cache_state()
  for text in long_texts[50:]:
    tok.encode(text).offsets
  assert tok.wordpiece.cache_state() != state
  tok.wordpiece.restore_cache(state)
  assert tok.wordpiece.cache_state() == state
  assert [tok.encode(t).ids for t in long_texts[:50]] == cold
  fresh = MWPTokenizer(userdic_tok.vocab, userdic_tok.user_dic)
  assert [fresh.encode(t).ids for t in long_texts[:50]] == cold


def test_batch_encode_in_chunks_matches_encode(userdic_tok, long_texts):
  texts = long_texts * 2
  for kwargs in ({}, {"max_length": 40}, {"add_special_tokens": False}, {"chunksize": 7}):
    chunk = {k: v for k, v in kwargs.items() if k == "chunksize"}
    options = {k: v for k, v in kwargs.items() if k != "chunksize"}
    batch = userdic_tok.batch_encode(texts, num_workers=2, **chunk, **options)
    single = [userdic_tok.encode(t, **options) for t in texts]
    assert [e.ids for e in batch] == [e.ids for e in single], kwargs
    assert [e.offsets for e in batch[:20]] == [e.offsets for e in single[:20]], kwargs
  ids, joined = userdic_tok.ids_and_segmentation(long_texts[0], max_length=30)
  assert ids == userdic_tok.encode(long_texts[0], max_length=30).ids and joined == userdic_tok.segment(long_texts[0])
  userdic_tok.close()
