"""Demo records from the bundled demo corpus: trains a small MWP tokenizer if needed, then prepares the records.

This is what `config.data.build_demo` runs (through `korpat_jax.demo.build_demo_data`): a fresh clone can pretrain
end to end without downloading a corpus.
"""

from __future__ import annotations

import os
from typing import Any

from korpat_jax.corpus.examples import PackingConfig
from korpat_jax.corpus.local import run_local
from korpat_jax.corpus.pipeline import PrepConfig
from korpat_jax.corpus.tokenizing import MWPTokenizerFactory


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
