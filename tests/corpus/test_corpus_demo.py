from __future__ import annotations

import os

import pytest

from korpat_jax.corpus import records
from korpat_jax.corpus.demo import build_demo_data


def test_demo_records_from_the_bundled_corpus(tmp_path):
  pytest.importorskip("korpat_jax.tokenizer")
  manifest = build_demo_data(str(tmp_path / "records"), str(tmp_path / "tok"), vocab_size=800, seq_len=64)
  assert os.path.exists(tmp_path / "tok" / "vocab.txt")
  assert manifest["tokenizer_dir"] == str(tmp_path / "tok")
  read = records.read_manifest(str(tmp_path / "records"))
  with open(tmp_path / "tok" / "vocab.txt", encoding="utf-8") as f:
    assert read.vocab_size == sum(1 for _ in f)
  assert read.seq_len == 64 and read.num_examples("train") > 500
  assert read.num_examples("eval") > 0 and not manifest["skipped"]
