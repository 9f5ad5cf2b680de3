"""Word vectors from the pretraining records, to start the shared embedding table from (`word_vectors.source=ppmi`).

Why: at CPU scale (an hour, a few million masked predictions) ELECTRA's generator teaches the shared table little
lexical semantics and drifts it far from its init, and fine-tuning from such a table is worse than from a random
one; word vectors from the same text's co-occurrence statistics cost about a minute and carry what the fine-tuning
sets need (BENCHMARKS.md, issue 16). The method: counts of token pairs at most `window` apart inside an example
(special tokens left out), positive pointwise mutual information with the context distribution smoothed by 0.75
(Levy, Goldberg & Dagan 2015), a truncated SVD, U * sqrt(S), rescaled to the model's init (mean 0, std
`initializer_range`); tokens the sample never shows keep random N(0, std) rows.

Pure numpy/scipy on the host; deterministic for given records and settings (the SVD starts from a seeded vector),
so every process of a multi-host run computes the same table.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg

log = logging.getLogger("korpat_jax")

SOURCES = ("none", "ppmi")
_CHUNK_PAIRS = 4_000_000  # token pairs counted at a time (memory: ~100 MB of int64 keys)


@dataclasses.dataclass(frozen=True)
class Settings:
  """`config.word_vectors` of a pretraining config."""
  window: int = 4                  # pairs at most this many tokens apart (inside one example)
  max_tokens: int = 10_000_000     # tokens read from the records at most (examples in a seeded random order)
  context_smoothing: float = 0.75  # context counts ** this (PPMI's bias towards rare contexts, tempered)

  @classmethod
  def from_config(cls, block: Any) -> "Settings":
    """From `config.word_vectors` (window, max_tokens, context_smoothing)."""
    return cls(int(block.window), int(block.max_tokens), float(block.context_smoothing))


@dataclasses.dataclass(frozen=True)
class Stats:
  tokens: int        # tokens counted (special tokens left out)
  examples: int
  pairs: int         # co-occurrences counted (each pair once per direction)
  seen: int          # vocabulary entries the sample shows
  seconds: float


def cooccurrence(sequences: Iterable[np.ndarray], vocab_size: int, window: int) -> sparse.csr_matrix:
  """Symmetric counts [V, V]: C[a, b] = how often b is within `window` tokens of a inside one sequence (each
  sequence an int array of ids; drop special tokens before)."""
  total = sparse.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
  keys: list[np.ndarray] = []
  pending = 0
  for ids in sequences:
    ids = np.asarray(ids, np.int64)
    for d in range(1, min(window, len(ids) - 1) + 1):
      keys.append(ids[:-d] * vocab_size + ids[d:])
      pending += len(ids) - d
    if pending >= _CHUNK_PAIRS:
      total = total + _count(keys, vocab_size)
      keys, pending = [], 0
  if keys:
    total = total + _count(keys, vocab_size)
  return (total + total.T).tocsr()


def _count(keys: Sequence[np.ndarray], vocab_size: int) -> sparse.csr_matrix:
  unique, counts = np.unique(np.concatenate(keys), return_counts=True)
  return sparse.csr_matrix((counts.astype(np.float64), (unique // vocab_size, unique % vocab_size)),
                           shape=(vocab_size, vocab_size))


def ppmi(counts: sparse.csr_matrix, context_smoothing: float = 0.75) -> sparse.csr_matrix:
  """max(0, log P(w, c) / (P(w) P_a(c))) over the nonzero counts, P_a(c) ~ count(c) ** context_smoothing."""
  coo = counts.tocoo()
  total = float(coo.data.sum())
  if total <= 0:
    raise ValueError("no co-occurrences to compute PPMI from")
  row = np.asarray(counts.sum(axis=1)).ravel()
  context = row ** context_smoothing
  context = context / context.sum() * total
  pmi = np.log(coo.data * total / (row[coo.row] * context[coo.col]))
  keep = pmi > 0
  return sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)


def svd_vectors(matrix: sparse.csr_matrix, dim: int, seed: int = 0) -> np.ndarray:
  """U * sqrt(S) of the `dim` largest singular values, [V, dim] (columns with no data stay zero)."""
  k = min(dim, min(matrix.shape) - 1)
  v0 = np.random.default_rng(seed).uniform(-1, 1, min(matrix.shape))
  u, s, _ = sparse_linalg.svds(matrix, k=k, v0=v0)
  vectors = np.zeros((matrix.shape[0], dim), np.float64)
  vectors[:, :k] = u * np.sqrt(s)
  return vectors


def scale_like_init(vectors: np.ndarray, seen: np.ndarray, std: float, seed: int = 0) -> np.ndarray:
  """The seen rows centred and scaled to an overall std of `std`; unseen rows drawn from N(0, std), as the init."""
  out = np.random.default_rng(seed).normal(0.0, std, vectors.shape)
  if seen.any():
    rows = vectors[seen] - vectors[seen].mean(axis=0)
    out[seen] = rows / max(float(rows.std()), 1e-12) * std
  return out.astype(np.float32)


def ppmi_vectors(sequences: Iterable[np.ndarray], vocab_size: int, dim: int, std: float, settings: Settings,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
  """(vectors [V, dim] float32 at the init's scale, seen [V] bool, pairs counted) from id sequences."""
  counts = cooccurrence(sequences, vocab_size, settings.window)
  seen = np.asarray(counts.sum(axis=1)).ravel() > 0
  vectors = svd_vectors(ppmi(counts, settings.context_smoothing), dim, seed)
  return scale_like_init(vectors, seen, std, seed), seen, int(counts.sum()) // 2


def record_sequences(records_dir: str, special_ids: Iterable[int], max_tokens: int, seed: int = 0
                     ) -> Iterator[np.ndarray]:
  """The train records' ids without special tokens, examples in a seeded random order, until `max_tokens`. A bad
  record (unreadable, not a record of the manifest) is left out and named in the log: training itself stops at it or
  skips it, as config.data.on_bad_record says."""
  from korpat_jax.corpus import records
  from korpat_jax.shard_reader import open_split, repair_hint
  manifest = records.read_manifest(records_dir)
  reader = open_split(manifest, "train")
  fmt = manifest.format
  special = np.asarray(sorted(set(special_ids)), np.int64)
  order = np.random.default_rng(seed).permutation(manifest.num_examples("train"))
  taken, bad = 0, []
  try:
    for start in range(0, len(order), 4096):
      keys = np.sort(order[start:start + 4096])
      for key, data in zip(keys.tolist(), reader.read(keys, skip_bad=True)):
        problem = ("unreadable ArrayRecord data" if data is None
                   else fmt.problem(data, manifest.seq_len, manifest.vocab_size))
        if problem is not None:
          bad.append((*reader.locate(key), problem))
          continue
        ids = fmt.decode(data)[0].astype(np.int64)
        ids = ids[~np.isin(ids, special)]
        yield ids
        taken += len(ids)
        if taken >= max_tokens:
          return
  finally:
    if bad:
      log.warning("word vectors: %d bad record(s) left out (e.g. %s: record %d: %s); %s", len(bad), *bad[0],
                  repair_hint(records_dir))


def from_records(records_dir: str, special_ids: Iterable[int], vocab_size: int, dim: int, std: float,
                 settings: Settings, seed: int = 0) -> tuple[np.ndarray, Stats]:
  """PPMI-SVD vectors [vocab_size, dim] of a prepared records directory's train split (korpat-jax prepare)."""
  t0 = time.perf_counter()
  counted = {"tokens": 0, "examples": 0}

  def sequences():
    for ids in record_sequences(records_dir, special_ids, settings.max_tokens, seed):
      counted["tokens"] += len(ids)
      counted["examples"] += 1
      yield ids

  vectors, seen, pairs = ppmi_vectors(sequences(), vocab_size, dim, std, settings, seed)
  stats = Stats(counted["tokens"], counted["examples"], pairs, int(seen.sum()), time.perf_counter() - t0)
  return vectors, stats
