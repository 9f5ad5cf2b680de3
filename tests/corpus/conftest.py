from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mwp_tokenizer_dir(tmp_path_factory) -> str:
  """A tiny MWP vocab trained on the bundled demo corpus's patent file (about a second)."""
  tokenizer = pytest.importorskip("korpat_jax.tokenizer")
  out = tmp_path_factory.mktemp("mwp_tok")
  demo = [f for f in tokenizer.demo_corpus_files() if "patent" in Path(f).name] or tokenizer.demo_corpus_files()
  tokenizer.train_tokenizer(demo, str(out), vocab_size=600, show_progress=False, log=lambda m: None, num_workers=1)
  return str(out)
