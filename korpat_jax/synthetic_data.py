"""A synthetic token stream for tests and benchmarks ONLY: no text, no tokenizer, deterministic per step.

Sequences look like packed ELECTRA examples (`[CLS] A [SEP] B [SEP]` + padding) and follow a noisy
"next = previous + stride" rule, so masked tokens are predictable from their neighbours and the loss falls.
Batch i depends only on (seed, i): resuming at step i needs no saved iterator state. With `with_boundaries` batches
also carry made-up morpheme/eojeol flags (korpat_jax.boundaries), for whole-unit masking on this stream.
"""

from __future__ import annotations

from typing import Iterator

import jax
import numpy as np

from korpat_jax import boundaries
from korpat_jax.special_tokens import SpecialIds, token_type_ids

FIRST_ORDINARY_ID = 5


class SyntheticTokenStream(Iterator[dict]):
  """Per-process batches of the global batch at step `self.step`, as numpy int32 arrays."""

  def __init__(self, vocab_size: int, seq_len: int, global_batch_size: int, seed: int, special: SpecialIds,
               start_step: int = 0, noise: float = 0.1, with_boundaries: bool = False):
    if vocab_size <= FIRST_ORDINARY_ID + 1:
      raise ValueError(f"synthetic stream needs vocab_size > {FIRST_ORDINARY_ID + 1}, got {vocab_size}")
    self.vocab_size, self.seq_len, self.global_batch_size = vocab_size, seq_len, global_batch_size
    self.seed, self.special, self.step, self.noise = seed, special, start_step, noise
    self.with_boundaries = with_boundaries

  def __next__(self) -> dict:
    batch = self.global_batch(self.step)
    self.step += 1
    per_process = self.global_batch_size // jax.process_count()
    lo = jax.process_index() * per_process
    return {k: v[lo:lo + per_process] for k, v in batch.items()}

  def global_batch(self, step: int) -> dict:
    rng = np.random.default_rng([self.seed, step])
    b, s, ordinary = self.global_batch_size, self.seq_len, self.vocab_size - FIRST_ORDINARY_ID
    lengths = rng.integers(s // 2, s + 1, size=b)
    first_sep = np.maximum(2, (lengths * rng.uniform(0.3, 0.7, size=b)).astype(int))
    start = rng.integers(0, ordinary, size=(b, 1))
    stride = rng.integers(1, 4, size=(b, 1))
    tokens = (start + stride * np.arange(s)[None, :]) % ordinary
    noisy = rng.random((b, s)) < self.noise
    tokens = np.where(noisy, rng.integers(0, ordinary, size=(b, s)), tokens) + FIRST_ORDINARY_ID
    pos = np.arange(s)[None, :]
    valid = pos < lengths[:, None]
    ids = np.where(valid, tokens, self.special.pad)
    ids[:, 0] = self.special.cls
    ids[np.arange(b), first_sep] = self.special.sep
    ids[np.arange(b), lengths - 1] = self.special.sep
    token_types = token_type_ids(ids, self.special.sep, valid)
    batch = {"input_ids": ids.astype(np.int32), "token_type_ids": token_types, "attention_mask": valid.astype(np.int32)}
    if self.with_boundaries:  # drawn after everything else: the other columns stay as without them
      batch[boundaries.FIELD] = _made_up_boundaries(rng, ids, valid, self.special)
    return batch


def _made_up_boundaries(rng: np.random.Generator, ids: np.ndarray, valid: np.ndarray, special: SpecialIds
                        ) -> np.ndarray:
  """Morphemes of ~1.7 tokens, eojeols of ~2 morphemes; [CLS]/[SEP] units of their own, padding 0."""
  morpheme = rng.random(ids.shape) < 0.6
  eojeol = morpheme & (rng.random(ids.shape) < 0.5)
  flags = boundaries.MORPHEME_START * morpheme + boundaries.EOJEOL_START * eojeol
  flags = np.where((ids == special.cls) | (ids == special.sep), boundaries.UNIT, flags)
  return np.where(valid, flags, 0).astype(boundaries.DTYPE)
