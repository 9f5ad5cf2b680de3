from __future__ import annotations

import collections
import random

import numpy as np

from korpat_jax.corpus.examples import PackingConfig, pack_document, token_type_ids

CLS, SEP = 2, 3


class _GoogleStyleBuilder:
  """ELECTRA's ExampleBuilder written as a line-by-line stream (add_line / create_example), for comparison."""

  def __init__(self, max_length, rng):
    self.max_length, self.rng = max_length, rng
    self.sentences, self.length = [], 0
    self.target = max_length if rng.random() >= 0.05 else rng.randint(5, max_length)

  def add_line(self, ids):
    if not ids:
      return self.create() if self.length else None  # end of document
    self.sentences.append(ids)
    self.length += len(ids)
    return self.create() if self.length >= self.target else None

  def create(self):
    first_target = 100000 if self.rng.random() < 0.1 else (self.target - 3) // 2
    first, second = [], []
    for s in self.sentences:
      if (len(first) == 0 or len(first) + len(s) < first_target
          or (len(second) == 0 and len(first) < first_target and self.rng.random() < 0.5)):
        first += s
      else:
        second += s
    first = first[:self.max_length - 2]
    second = second[:max(0, self.max_length - len(first) - 3)]
    self.sentences, self.length = [], 0
    self.target = self.max_length if self.rng.random() >= 0.05 else self.rng.randint(5, self.max_length)
    return [CLS] + first + [SEP] + (second + [SEP] if second else [])


def _random_document(rng, n_sentences, max_sentence=40):
  return [[rng.randint(5, 999) for _ in range(rng.randint(1, max_sentence))] for _ in range(n_sentences)]


def test_matches_electra_builder_semantics():
  data_rng = random.Random(0)
  for doc_index in range(300):
    doc = _random_document(data_rng, data_rng.randint(1, 60))
    reference = _GoogleStyleBuilder(64, random.Random(doc_index))
    expected = [e for e in (reference.add_line(s) for s in doc + [[]]) if e]
    got = pack_document(doc, PackingConfig(seq_len=64), random.Random(doc_index), CLS, SEP)
    assert got.examples == expected


def test_examples_fit_and_account_for_every_token():
  rng = random.Random(1)
  config = PackingConfig(seq_len=128)
  for seed in range(100):
    doc = _random_document(rng, rng.randint(1, 40), max_sentence=20)
    packed = pack_document(doc, config, random.Random(seed), CLS, SEP)
    assert all(len(e) <= 128 and e[0] == CLS and e[-1] == SEP for e in packed.examples)
    content = [t for e in packed.examples for t in e if t not in (CLS, SEP)]
    # As in ELECTRA, a short sentence after B has started may still join A, so only the multiset is checked.
    assert not collections.Counter(content) - collections.Counter(t for s in doc for t in s)
    assert len(content) + packed.tokens_truncated == sum(map(len, doc))


def test_overlong_sentence_is_truncated_and_counted():
  packed = pack_document([list(range(10, 310))], PackingConfig(seq_len=64), random.Random(0), CLS, SEP)
  assert [len(e) for e in packed.examples] == [64]
  assert packed.examples[0] == [CLS] + list(range(10, 72)) + [SEP]
  assert packed.tokens_truncated == 300 - 62


def test_single_segment_and_short_target_rates():
  rng = random.Random(2)
  examples = []
  for seed in range(3000):
    doc = _random_document(rng, 30, max_sentence=30)
    examples += pack_document(doc, PackingConfig(seq_len=128), random.Random(seed), CLS, SEP).examples
  full = [e for e in examples if len(e) >= 100]
  single = sum(1 for e in full if e.count(SEP) == 1) / len(full)
  assert 0.07 < single < 0.13  # 10% single segment
  short = sum(1 for e in examples if len(e) < 60) / len(examples)
  assert 0.01 < short < 0.15  # 5% short targets plus document ends


def test_deterministic_for_a_seed():
  doc = _random_document(random.Random(3), 50)
  a = pack_document(doc, PackingConfig(seq_len=64), random.Random(42), CLS, SEP).examples
  b = pack_document(doc, PackingConfig(seq_len=64), random.Random(42), CLS, SEP).examples
  c = pack_document(doc, PackingConfig(seq_len=64), random.Random(43), CLS, SEP).examples
  assert a == b and a != c


def test_token_type_ids():
  ids = np.array([CLS, 7, 8, SEP, 9, SEP])
  np.testing.assert_array_equal(token_type_ids(ids, SEP), [0, 0, 0, 0, 1, 1])
  np.testing.assert_array_equal(token_type_ids(np.array([[CLS, 7, SEP]]), SEP), [[0, 0, 0]])


def test_boundary_flags_follow_their_tokens_through_packing_and_truncation():
  """A token's flag is 100 + its id here (a stand-in): wherever packing puts or cuts the token, its flag goes too;
  [CLS] and [SEP] are units of their own, and the flags change nothing about the examples."""
  rng = random.Random(4)
  for seed in range(200):
    doc = _random_document(rng, rng.randint(1, 40), max_sentence=60)
    flags = [bytes(100 + t % 100 for t in sentence) for sentence in doc]
    with_flags = pack_document(doc, PackingConfig(seq_len=64), random.Random(seed), CLS, SEP, flags)
    assert with_flags.examples == pack_document(doc, PackingConfig(seq_len=64), random.Random(seed), CLS, SEP).examples
    assert len(with_flags.boundaries) == len(with_flags.examples)
    for ids, packed in zip(with_flags.examples, with_flags.boundaries):
      assert list(packed) == [3 if t in (CLS, SEP) else 100 + t % 100 for t in ids]
  assert pack_document([[7, 8]], PackingConfig(seq_len=64), random.Random(0), CLS, SEP).boundaries == []
