"""Packing the tokenized sentences of one document into ELECTRA examples, as google-research/electra does.

Semantics of `build_pretraining_dataset.py`'s ExampleBuilder, per document:
- Sentences are added until their total length reaches the target length; then an example is made from ALL the
  collected sentences (so an example can come out longer than the target before truncation). At the end of the
  document, the remaining sentences make one last example, however short.
- The target length is `seq_len`, except with probability `short_seq_prob` (0.05) it is `randint(5, seq_len)`; it is
  drawn anew after every example (and at the start of every document, as ELECTRA's builder carries the draw over).
- The first segment's target is `(target - 3) // 2`, except with probability `single_segment_prob` (0.1) it is
  unbounded (everything in segment A). A sentence joins A if A is empty, if it keeps A under its target, or with
  probability 0.5 if B is still empty and A is under its target; otherwise it joins B. (So, as in ELECTRA, a short
  sentence that comes after B has started can still join A.)
- Truncation: A is cut to `seq_len - 2`, B to `seq_len - len(A) - 3`; the cut tokens are lost (not carried over).
- Output `[CLS] A [SEP] B [SEP]`, or `[CLS] A [SEP]` when B is empty. Token types: 0 through the first [SEP], then 1.
- The sentences' boundary flags (korpat_jax.boundaries: morpheme and eojeol starts) follow their tokens through the
  same choices and cuts; [CLS] and [SEP] are units of their own.

The randomness comes from a `random.Random` seeded per document, so a document's examples do not depend on which
worker or runner processed it.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Optional, Sequence

import numpy as np

from korpat_jax import boundaries, special_tokens

_UNIT = bytes([boundaries.UNIT])


@dataclasses.dataclass(frozen=True)
class PackingConfig:
  seq_len: int = 512
  single_segment_prob: float = 0.1
  short_seq_prob: float = 0.05
  min_target_len: int = 5


@dataclasses.dataclass
class PackedDocument:
  examples: list[list[int]]
  tokens_truncated: int
  special_tokens: int = 0  # [CLS] and [SEP]s added: ids in the examples = sentence tokens - truncated + these
  boundaries: list[bytes] = dataclasses.field(default_factory=list)  # each example's flags, when given


def _draw_target(config: PackingConfig, rng: random.Random) -> int:
  if rng.random() < config.short_seq_prob:
    return rng.randint(config.min_target_len, config.seq_len)
  return config.seq_len


def _make_example(sentences: list[tuple[Sequence[int], bytes]], target: int, config: PackingConfig,
                  rng: random.Random, cls_id: int, sep_id: int) -> tuple[list[int], bytes, int]:
  """(ids, their boundary flags, tokens cut) of one example from (ids, flags) sentences."""
  if rng.random() < config.single_segment_prob:
    first_target = 1 << 30
  else:
    first_target = (target - 3) // 2  # room for [CLS] [SEP] [SEP]
  first: list[int] = []
  second: list[int] = []
  first_flags, second_flags = bytearray(), bytearray()
  for sentence, flags in sentences:
    if (not first or len(first) + len(sentence) < first_target
        or (not second and len(first) < first_target and rng.random() < 0.5)):
      first.extend(sentence)
      first_flags += flags
    else:
      second.extend(sentence)
      second_flags += flags
  total = len(first) + len(second)
  first = first[:config.seq_len - 2]
  second = second[:max(0, config.seq_len - len(first) - 3)]
  ids = [cls_id, *first, sep_id]
  flags = _UNIT + first_flags[:len(first)] + _UNIT
  if second:
    ids += [*second, sep_id]
    flags += second_flags[:len(second)] + _UNIT
  return ids, bytes(flags), total - len(first) - len(second)


def pack_document(sentences: Sequence[Sequence[int]], config: PackingConfig, rng: random.Random, cls_id: int,
                  sep_id: int, flags: Optional[Sequence[bytes]] = None) -> PackedDocument:
  """Token ids of a document's sentences (in order) -> examples with [CLS]/[SEP], each at most `seq_len` ids.

  `flags`, one bytes per sentence with a flag per token, gives each example's boundary flags (`boundaries`); the
  examples do not depend on them."""
  examples: list[list[int]] = []
  example_flags: list[bytes] = []
  truncated = content = 0
  target = _draw_target(config, rng)
  current: list[tuple[Sequence[int], bytes]] = []
  length = 0
  given = flags is not None
  flags = flags if given else [_UNIT * len(s) for s in sentences]
  if len(flags) != len(sentences):
    raise ValueError(f"{len(flags)} flag strings for {len(sentences)} sentences")
  for sentence, sentence_flags in zip(sentences, flags):
    if not sentence:
      continue
    current.append((sentence, sentence_flags))
    length += len(sentence)
    if length >= target:
      ids, packed_flags, lost = _make_example(current, target, config, rng, cls_id, sep_id)
      examples.append(ids)
      example_flags.append(packed_flags)
      truncated += lost
      content += length - lost
      current, length = [], 0
      target = _draw_target(config, rng)
  if current:
    ids, packed_flags, lost = _make_example(current, target, config, rng, cls_id, sep_id)
    examples.append(ids)
    example_flags.append(packed_flags)
    truncated += lost
    content += length - lost
  return PackedDocument(examples, truncated, sum(map(len, examples)) - content, example_flags if given else [])


def token_type_ids(ids: np.ndarray, sep_id: int) -> np.ndarray:
  """The records do not store token types: korpat_jax.special_tokens' rule gives them."""
  return special_tokens.token_type_ids(ids, sep_id)
