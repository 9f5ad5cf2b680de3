"""WordPiece vocabulary training over Mecab-ko-segmented text (HF `tokenizers` WordPieceTrainer on exact word
counts, reproducibly: see word_counts.py; the Beam runner, tokenizer/beam.py, counts on workers and ends here too).

Cased, no accent stripping and no NFD (both destroy Hangul). `limit_alphabet` is raised from the trainer's
default of 1,000: patent text holds thousands of distinct characters (Hanja, symbols, Greek letters), and each one
left out of the alphabet becomes [UNK] (on held-out KorQuAD text with the 8k demo vocab: 1.8% [UNK] with 1,000,
0.7% with 10,000; see benchmarks/results/tokenizer.md).
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from korpat_jax.corpus.readers import ReaderConfig
from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer.morphemes import MorphAnalyzer
from korpat_jax.tokenizer.mwp import CONFIG_NAME, MWPTokenizer
from korpat_jax.tokenizer.pool import WorkerPool, usable_cpus
from korpat_jax.tokenizer.sampling import Sample
from korpat_jax.tokenizer.sources import ReadStats, expand_corpus, iter_lines, total_bytes
from korpat_jax.tokenizer.word_counts import pretoken_counts, segment_and_count, train_vocab
from korpat_jax.tokenizer.wordpiece import SPECIAL_TOKENS

DEFAULT_LIMIT_ALPHABET = 10_000
DEFAULT_MIN_FREQUENCY = 2
_BLOCK_LINES = 4096


def count_morphemes(files: Sequence[str], user_dic: str | None, num_workers: int, stats: ReadStats,
                    show_progress: bool = True, reader: ReaderConfig | None = None,
                    sample: Sample | None = None) -> Counter:
  """Exact counts of the Mecab-ko morphemes of every non-blank corpus line (or `sample`'s lines), blocks over
  `num_workers` processes."""
  bar = tqdm(total=total_bytes(files), unit="B", unit_scale=True, desc="segmenting",
             disable=None if show_progress else True)
  counts: Counter[str] = Counter()
  try:
    with WorkerPool(num_workers, MorphAnalyzer, user_dic) as pool:
      lines = iter_lines(files, stats, reader, progress=bar, sample=sample)
      blocks = iter(lambda: list(itertools.islice(lines, _BLOCK_LINES)), [])
      for block_counts in pool.imap(segment_and_count, blocks):
        counts.update(block_counts)
  finally:
    bar.close()
  return counts


def check_options(vocab_size: int) -> None:
  if vocab_size <= len(SPECIAL_TOKENS):
    raise KorpatError(f"vocab_size: {vocab_size} is too small")


def train_tokenizer(corpus_files: list[str] | str, out_dir: str, vocab_size: int, user_dic_dir: str | None = None,
                    limit_alphabet: int = DEFAULT_LIMIT_ALPHABET, min_frequency: int = DEFAULT_MIN_FREQUENCY,
                    num_workers: int | None = None, show_progress: bool = True, log=print,
                    reader: ReaderConfig | None = None, sample: Sample | None = None) -> MWPTokenizer:
  """Train the MWP WordPiece vocabulary on `corpus_files` (paths, globs, directories; text, JSONL or TSV, maybe
  compressed, read as `prepare` reads them), or on `sample`'s lines of them, and save the tokenizer in `out_dir`."""
  check_options(vocab_size)
  files = expand_corpus(corpus_files)
  user_dic = resolve_user_dic(user_dic_dir)
  workers = num_workers if num_workers is not None else min(usable_cpus(), 8)
  start = time.perf_counter()
  stats = ReadStats()
  counts = count_morphemes(files, user_dic, workers, stats, show_progress, reader, sample)
  return train_on_counts(counts, stats, files, out_dir, vocab_size, user_dic, limit_alphabet, min_frequency,
                         start, show_progress, log, sample=sample)


def resolve_user_dic(user_dic_dir: str | None) -> str | None:
  from korpat_jax.tokenizer.userdic import user_dic_path
  return user_dic_path(user_dic_dir) if user_dic_dir else None


def train_on_counts(counts: Counter, stats: ReadStats, files: Sequence[str], out_dir: str, vocab_size: int,
                    user_dic: str | None, limit_alphabet: int, min_frequency: int, start: float,
                    show_progress: bool = True, log=print, runner: str = "local",
                    sample: Sample | None = None) -> MWPTokenizer:
  """The vocabulary of exact morpheme `counts` (from either runner), saved in `out_dir` with how it was made
  (and which `sample` of the lines, if any)."""
  count_seconds = time.perf_counter() - start
  if stats.lines == 0:
    raise KorpatError(f"{files[0]}: the corpus has no text ({stats.summary()})")
  if sample is not None:
    log(f"sample: kept {stats.kept} of {stats.lines} lines ({sample.describe()})")
    if stats.kept == 0:
      raise KorpatError(f"{sample.flag}: the sample kept none of the {stats.lines} lines; raise it")
  words = pretoken_counts(counts)
  del counts
  vocab = train_vocab(words, vocab_size, limit_alphabet, min_frequency, show_progress)
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  alphabet = sum(1 for t in vocab[5:] if len(t) == 1)
  config = {"training": {
      "corpus_files": [os.path.abspath(f) for f in files], "lines": stats.lines, "documents": stats.documents,
      "undecodable_lines": stats.undecodable, "reader_skipped": stats.to_json()["skipped"],
      "vocab_size_requested": vocab_size, "limit_alphabet": limit_alphabet,
      "min_frequency": min_frequency, "alphabet_size": alphabet, "distinct_words": len(words), "runner": runner,
      "sample": sample.to_json(stats.lines, stats.kept) if sample is not None else None,
      "tokenizers_version": _tokenizers_version(), "seconds": round(time.perf_counter() - start, 1),
      "count_seconds": round(count_seconds, 2)}}
  tok = MWPTokenizer(vocab, user_dic, config)
  tok.save(out)
  log(f"trained {len(vocab)} tokens ({alphabet} single characters) on {stats.summary()} in "
      f"{config['training']['seconds']}s -> {out / 'vocab.txt'}, {out / CONFIG_NAME}")
  if len(vocab) < vocab_size:
    log(f"note: the corpus supports only {len(vocab)} of the {vocab_size} requested tokens")
  elif len(vocab) > vocab_size:
    log(f"note: {len(vocab)} tokens, more than the {vocab_size} requested: the trainer keeps the whole alphabet "
        f"({alphabet} characters and their ## forms); lower --limit-alphabet to cap it")
  return tok


def _tokenizers_version() -> str:
  import tokenizers
  return tokenizers.__version__
