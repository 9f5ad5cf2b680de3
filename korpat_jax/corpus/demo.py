"""Demo records from the bundled demo corpus: trains a small MWP tokenizer if needed, then prepares the records.

This is what `config.data.build_demo` runs (`build_demo_if_absent`, called by the pretrain command before the
trainer): a fresh clone can pretrain end to end without downloading a corpus.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import ml_collections

from korpat_jax.corpus.examples import PackingConfig
from korpat_jax.corpus.local import run_local
from korpat_jax.corpus.pipeline import PrepConfig
from korpat_jax.corpus.tokenizing import MWPTokenizerFactory
from korpat_jax.errors import ConfigError
from korpat_jax.pretraining_input import resolve

log = logging.getLogger("korpat_jax")


def build_demo_data(records_dir: str, tokenizer_dir: str, vocab_size: int = 8000, seq_len: int = 128,
                    workers: int = 0) -> dict[str, Any]:
  """Demo corpus -> `tokenizer_dir` (trained unless it holds a vocab) and records in `records_dir`; the manifest."""
  from korpat_jax.tokenizer import demo_corpus_files, train_tokenizer  # pylint: disable=import-outside-toplevel
  files = sorted(os.path.abspath(f) for f in demo_corpus_files())
  if not os.path.exists(os.path.join(tokenizer_dir, "vocab.txt")):
    train_tokenizer(files, tokenizer_dir, vocab_size=vocab_size, show_progress=False, log=lambda m: None)
  config = PrepConfig(packing=PackingConfig(seq_len=seq_len), records_per_shard=1000)
  return run_local(files, config, MWPTokenizerFactory(os.path.abspath(tokenizer_dir)), records_dir, workers=workers,
                   quiet=True)


def build_demo_if_absent(config: ml_collections.ConfigDict, workdir: str) -> None:
  """`data.build_demo` (the demo variant): the demo tokenizer and records from the bundled corpus, under the
  workdir only, when they are not there yet. The pretrain command runs it before the trainer, which only reads."""
  d = config.data
  workdir = os.path.abspath(workdir)
  records_dir, tokenizer_dir = resolve(d.records_dir, workdir), resolve(d.tokenizer_dir, workdir)
  if not d.build_demo or os.path.exists(os.path.join(records_dir, "manifest.json")):
    return
  if os.path.commonpath([records_dir, workdir]) != workdir:
    raise ConfigError(f"config.data.records_dir={d.records_dir}: no records there (no manifest.json); the demo "
                      "builds its data only under --workdir: leave data.records_dir at its default, or point it "
                      "at prepared records")
  demo_tokenizer = tokenizer_dir or os.path.join(os.path.dirname(records_dir), "tokenizer")
  log.info("demo: building the tokenizer (%s) and records (%s) from the bundled corpus", demo_tokenizer, records_dir)
  build_demo_data(records_dir, demo_tokenizer, vocab_size=d.demo_vocab_size, seq_len=config.train.seq_len)
