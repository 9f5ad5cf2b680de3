"""`tokenizer userdic|train --runner beam` (DirectRunner) write what the local runner writes, byte for byte."""

from __future__ import annotations

import json
import random
import sys
from collections import Counter

import pytest

from korpat_jax.cli import main
from korpat_jax.tokenizer import word_counts

VOCAB = "3000"


def _json(path) -> dict:
  return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """Local and Beam userdic + train (with that user dictionary, and an HF directory) on the demo corpus."""
  pytest.importorskip("apache_beam")
  root = tmp_path_factory.mktemp("beam")
  runs = {"local": ["--workers", "1"], "beam": ["--runner", "beam"]}
  for name, extra in runs.items():
    # --max-distinct 0: the local counts unbounded, as Beam's always are (the options are recorded).
    bound = ["--max-distinct", "0"] if name == "local" else []
    assert main(["tokenizer", "userdic", "--corpus", "demo", "--out", str(root / f"ud_{name}"), "--verbose",
                 *bound, *extra]) == 0
    assert main(["tokenizer", "train", "--corpus", "demo", "--user-dic", str(root / "ud_local"), "--vocab-size",
                 VOCAB, "--out", str(root / f"tok_{name}"), "--hf-out", str(root / f"hf_{name}"), *extra]) == 0
  return root


def test_user_dictionary_is_the_local_one(built):
  local, beam = built / "ud_local", built / "ud_beam"
  assert (local / "user.csv").read_bytes() == (beam / "user.csv").read_bytes()
  assert (local / "user.csv").read_bytes().count(b"\n") > 100
  assert (local / "user.dic").read_bytes() == (beam / "user.dic").read_bytes()
  a, b = _json(local / "userdic.json"), _json(beam / "userdic.json")
  assert (a["runner"], b["runner"]) == ("local", "beam")
  for key in ("entries", "from_corpus", "corpus_candidates", "counts", "rows", "user_dic_sha256"):
    assert a[key] == b[key], key
  assert b["counts"] == "exact" and b["corpus_candidates"]["options"]["max_distinct"] == 0
  assert sorted(p.name for p in beam.iterdir()) == ["user.csv", "user.dic", "userdic.json"]   # no scratch left


def test_vocabulary_and_tokenizer_files_are_the_local_ones(built):
  assert (built / "tok_local" / "vocab.txt").read_bytes() == (built / "tok_beam" / "vocab.txt").read_bytes()
  for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "user.dic"):
    assert (built / "hf_local" / name).read_bytes() == (built / "hf_beam" / name).read_bytes(), name
  a, b = _json(built / "tok_local" / "mwp_tokenizer.json"), _json(built / "tok_beam" / "mwp_tokenizer.json")
  for config in (a, b):
    assert 0 < config["training"]["count_seconds"] <= config["training"]["seconds"]
    config["training"].pop("seconds"), config["training"].pop("count_seconds")
  assert a["training"].pop("runner") == "local" and b["training"].pop("runner") == "beam"
  assert a == b and a["vocab_size"] == int(VOCAB)
  assert sorted(p.name for p in (built / "tok_beam").iterdir()) == ["mwp_tokenizer.json", "vocab.txt"]


def test_local_training_is_reproducible(tmp_path):
  # The HF trainer alone numbers the ## forms in a random hash-map order; two workers or one, same bytes now.
  for workers in ("1", "2"):
    assert main(["tokenizer", "train", "--corpus", "demo", "--vocab-size", "1500", "--out",
                 str(tmp_path / workers), "--workers", workers]) == 0
  assert (tmp_path / "1" / "vocab.txt").read_bytes() == (tmp_path / "2" / "vocab.txt").read_bytes()


def test_vocabulary_depends_on_the_counts_not_their_order():
  words = Counter({"기판": 50, "기판상": 7, "발광": 40, "발광층": 9, "층": 30, "質": 3, "a1b": 5})
  shuffled = list(words.items())
  random.Random(0).shuffle(shuffled)
  first = word_counts.train_vocab(words, 40, 100, 2)
  assert first == word_counts.train_vocab(Counter(dict(shuffled)), 40, 100, 2)
  assert first[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  singles = [t for t in first if len(t) == 1]
  assert singles == sorted(singles) and first[5:5 + len(singles)] == singles
  hashes = [t for t in first if t.startswith("##") and len(t) == 3]
  assert hashes == sorted(hashes) and "##a" not in hashes and "##b" in hashes


def test_alphabet_limit_breaks_ties_by_code_point():
  assert word_counts.alphabet(Counter({"ba": 2, "c": 2, "d": 1}), 2) == ["a", "b"]
  assert word_counts.alphabet(Counter({"ba": 2, "cc": 2}), 5) == ["a", "b", "c"]


def test_count_and_cost_combines_like_the_local_tally():
  pytest.importorskip("apache_beam")
  from korpat_jax.tokenizer.beam import count_and_cost
  parts = [(3, 900), (1, 700), (2, 800)]
  assert count_and_cost(parts) == (6, 700)
  assert count_and_cost([count_and_cost(parts[:1]), count_and_cost(parts[1:])]) == (6, 700)


def test_beam_errors_are_one_line(tmp_path, capsys, monkeypatch):
  assert main(["tokenizer", "train", "--corpus", "demo", "--out", str(tmp_path / "t"), "--",
               "--direct_num_workers=2"]) == 2
  assert "are for --runner beam" in capsys.readouterr().err
  assert main(["tokenizer", "userdic", "--corpus", "demo", "--out", str(tmp_path / "u"), "--runner", "beam",
               "--max-distinct", "5"]) == 2
  assert "counts exactly" in capsys.readouterr().err
  monkeypatch.setitem(sys.modules, "apache_beam", None)
  monkeypatch.delitem(sys.modules, "korpat_jax.tokenizer.beam", raising=False)
  assert main(["tokenizer", "train", "--corpus", "demo", "--out", str(tmp_path / "t"), "--runner", "beam"]) == 2
  err = capsys.readouterr().err
  assert "pip install 'korpat-jax[beam]'" in err and len(err.strip().splitlines()) == 1
