"""WordPiece vocabulary training over Mecab-ko-segmented text (HF `tokenizers` WordPieceTrainer).

Cased, no accent stripping and no NFD (both destroy Hangul). `limit_alphabet` is raised from the trainer's
default of 1,000: patent text holds thousands of distinct characters (Hanja, symbols, Greek letters), and each one
left out of the alphabet becomes [UNK] (on held-out KorQuAD text with the 8k demo vocab: 1.8% [UNK] with 1,000,
0.7% with 10,000; see benchmarks/results/tokenizer.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator, Sequence

from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer
from tqdm import tqdm

from korpat_jax.corpus.readers import ReaderConfig
from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer.morphemes import MorphAnalyzer, sanitize
from korpat_jax.tokenizer.mwp import CONFIG_NAME, MWPTokenizer
from korpat_jax.tokenizer.pool import WorkerPool, usable_cpus
from korpat_jax.tokenizer.sources import ReadStats, expand_corpus, iter_lines, total_bytes
from korpat_jax.tokenizer.wordpiece import MAX_INPUT_CHARS_PER_WORD, SPECIAL_TOKENS, bert_wordpiece

DEFAULT_LIMIT_ALPHABET = 10_000
DEFAULT_MIN_FREQUENCY = 2
_BLOCK_LINES = 4096


def _segment_block(analyzer: MorphAnalyzer, lines: list[str]) -> list[str]:
  return [analyzer.joined(sanitize(line)) for line in lines]


def segmented_lines(files: Sequence[str], user_dic: str | None, num_workers: int, stats: ReadStats,
                    show_progress: bool = True, reader: ReaderConfig | None = None) -> Iterator[str]:
  """Mecab-ko segmentation of every non-blank corpus line, in blocks over `num_workers` processes."""
  bar = tqdm(total=total_bytes(files), unit="B", unit_scale=True, desc="segmenting",
             disable=None if show_progress else True)
  pool = WorkerPool(num_workers, MorphAnalyzer, user_dic)
  try:
    block: list[str] = []
    blocks: list[list[str]] = []

    def flush():
      for result in pool.map(_segment_block, blocks):
        yield from result
      blocks.clear()

    for line in iter_lines(files, stats, reader, progress=bar):
      block.append(line)
      if len(block) == _BLOCK_LINES:
        blocks.append(block)
        block = []
        if len(blocks) == pool.workers * 2:
          yield from flush()
    if block:
      blocks.append(block)
    yield from flush()
  finally:
    bar.close()
    pool.close()


def train_tokenizer(corpus_files: list[str] | str, out_dir: str, vocab_size: int, user_dic_dir: str | None = None,
                    limit_alphabet: int = DEFAULT_LIMIT_ALPHABET, min_frequency: int = DEFAULT_MIN_FREQUENCY,
                    num_workers: int | None = None, show_progress: bool = True, log=print,
                    reader: ReaderConfig | None = None) -> MWPTokenizer:
  """Train the MWP WordPiece vocabulary on `corpus_files` (paths, globs, directories; text, JSONL or TSV, maybe
  compressed, read as `prepare` reads them) and save the tokenizer in `out_dir`."""
  from korpat_jax.tokenizer.userdic import user_dic_path
  if vocab_size <= len(SPECIAL_TOKENS):
    raise KorpatError(f"vocab_size: {vocab_size} is too small")
  files = expand_corpus(corpus_files)
  user_dic = user_dic_path(user_dic_dir) if user_dic_dir else None
  workers = num_workers if num_workers is not None else min(usable_cpus(), 8)
  start = time.perf_counter()
  tokenizer = bert_wordpiece(list(SPECIAL_TOKENS))
  tokenizer.model = WordPiece(unk_token="[UNK]", max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD)
  trainer = WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=show_progress,
                             special_tokens=list(SPECIAL_TOKENS), limit_alphabet=limit_alphabet,
                             continuing_subword_prefix="##")
  stats = ReadStats()
  tokenizer.train_from_iterator(segmented_lines(files, user_dic, workers, stats, show_progress, reader), trainer)
  if stats.lines == 0:
    raise KorpatError(f"{files[0]}: the corpus has no text ({stats.summary()})")
  vocab_map = tokenizer.get_vocab()
  vocab = [t for t, _ in sorted(vocab_map.items(), key=lambda kv: kv[1])]
  if vocab[:5] != list(SPECIAL_TOKENS) or [vocab_map[t] for t in vocab] != list(range(len(vocab))):
    raise KorpatError(f"{out_dir}: the trainer returned special tokens out of order (tokenizers version?)")
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  alphabet = sum(1 for t in vocab[5:] if len(t) == 1)
  config = {"training": {
      "corpus_files": [os.path.abspath(f) for f in files], "lines": stats.lines, "documents": stats.documents,
      "undecodable_lines": stats.undecodable, "reader_skipped": stats.to_json()["skipped"],
      "vocab_size_requested": vocab_size, "limit_alphabet": limit_alphabet,
      "min_frequency": min_frequency, "alphabet_size": alphabet, "tokenizers_version": _tokenizers_version(),
      "seconds": round(time.perf_counter() - start, 1)}}
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
