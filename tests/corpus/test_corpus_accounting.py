"""Every document read is written or skipped under a reason, and every token is accounted for, on any input."""

from __future__ import annotations

import json
import os

import pytest

from corpus_fakes import FUZZ_BINARIES, WordHashFactory, WordHashTokenizer, write_corpus, write_fuzzed_corpus
from korpat_jax.corpus import records
from korpat_jax.corpus.examples import PackingConfig
from korpat_jax.corpus.local import run_local
from korpat_jax.corpus.manifest import build_manifest
from korpat_jax.corpus.pipeline import PrepConfig
from korpat_jax.corpus.readers import ReaderConfig, expand_corpus
from korpat_jax.corpus.report import AccountingError, PrepStats
from korpat_jax.corpus.writer import read_records

# Short seq-len, documents and sentences, so that the fuzzed corpus hits every cut.
FUZZ_CONFIG = PrepConfig(packing=PackingConfig(seq_len=32), reader=ReaderConfig(max_document_chars=3000),
                         max_sentence_chars=200, eval_fraction=0.2, records_per_shard=50)


def assert_accounts(manifest: dict, out_dir: str) -> None:
  skipped = sum(manifest["documents_skipped"].values())
  assert manifest["documents_read"] == manifest["documents_written"] + skipped, manifest["documents_skipped"]
  assert manifest["documents"] == manifest["documents_written"]
  assert manifest["documents_written"] == sum(s["documents"] for s in manifest["splits"].values())
  assert manifest["tokens"] == sum(s["tokens"] for s in manifest["splits"].values())
  assert manifest["tokens"] == manifest["tokens_read"] - manifest["tokens_truncated"] + manifest["special_tokens"]
  read = records.read_manifest(out_dir)
  on_disk = sum(len(records.decode_record(r, read.id_dtype)) for split in read.splits
                for path in read.shard_paths(split) for r in read_records(path))
  assert on_disk == manifest["tokens"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fuzzed_corpus_accounts_for_every_document(tmp_path, seed):
  files = expand_corpus([write_fuzzed_corpus(tmp_path / "corpus", seed)])
  out = str(tmp_path / "out")
  manifest = run_local(files, FUZZ_CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  assert_accounts(manifest, out)
  binaries = sorted(e.split(":")[0].rsplit("/", 1)[1] for e in manifest["skipped"]["binary_file"]["examples"])
  assert binaries == sorted(FUZZ_BINARIES)
  assert {"undecodable", "empty_document", "bad_json"} <= set(manifest["documents_skipped"])
  assert {"undecodable_line", "line_cleaned_away", "truncated_at_seq_len", "huge_document_split",
          "long_sentence_cut"} <= set(manifest["documents_adjusted"])
  hints = manifest["skipped"]["undecodable_file"]["examples"]
  assert any("legacy_cp949.txt: " in h and h.endswith("try --encoding cp949") for h in hints)


def test_fuzzed_corpus_with_beam_counts_the_same(tmp_path):
  pytest.importorskip("apache_beam")
  from korpat_jax.corpus.beam import run_beam
  files = expand_corpus([write_fuzzed_corpus(tmp_path / "corpus", 3)])
  local = run_local(files, FUZZ_CONFIG, WordHashFactory(), str(tmp_path / "local"), workers=0, quiet=True)
  beam = run_beam(files, FUZZ_CONFIG, WordHashFactory(), str(tmp_path / "beam"))
  assert_accounts(beam, str(tmp_path / "beam"))
  for key in ("documents_read", "documents_written", "documents_skipped", "documents_adjusted", "tokens",
              "tokens_read", "tokens_truncated", "special_tokens", "skipped", "adjusted", "splits"):
    assert beam[key] == local[key], key


def test_split_tokens_add_up_to_the_total(tmp_path):
  """The manifest's `tokens` is what the splits hold: ids in the records, [CLS]/[SEP] included, eval too."""
  files = expand_corpus([write_corpus(tmp_path / "c", n_docs=30, damaged=False)])
  config = PrepConfig(packing=PackingConfig(seq_len=24), eval_fraction=0.2)
  manifest = run_local(files, config, WordHashFactory(), str(tmp_path / "out"), workers=0, quiet=True)
  assert set(manifest["splits"]) == {"train", "eval"}
  assert manifest["tokens"] == sum(s["tokens"] for s in manifest["splits"].values())
  examples = sum(manifest["examples"].values())
  assert 2 * examples <= manifest["special_tokens"] <= 3 * examples and manifest["tokens_truncated"] > 0
  assert manifest["tokens"] == manifest["tokens_read"] - manifest["tokens_truncated"] + manifest["special_tokens"]


def test_a_counting_mismatch_raises_with_the_numbers(tmp_path):
  stats = PrepStats(documents=2, documents_read=4)
  stats.documents_by_split["train"] = 2
  stats.documents_skipped["bad_json"] = 1
  with pytest.raises(AccountingError, match=r"read 4 != written 2 \+ skipped 1 \(\{'bad_json': 1\}\)"):
    stats.check()
  stats = PrepStats(documents=1, documents_read=1, tokens_read=8, special_tokens=2)
  stats.documents_by_split["train"], stats.examples["train"], stats.tokens_written["train"] = 1, 1, 10
  shards = {"train": [{"file": "x", "examples": 1, "tokens": 12, "sha256": ""}]}
  with pytest.raises(AccountingError, match="the shards hold 1 examples of 12 ids, the counts say 1 of 10"):
    build_manifest(files=[], config=PrepConfig(), tokenizer=WordHashTokenizer(), stats=stats, shards=shards,
                   runner="local", run_fingerprint="f")


def test_a_document_that_goes_uncounted_stops_the_run(tmp_path, monkeypatch):
  files = expand_corpus([write_corpus(tmp_path / "c", n_docs=6)])
  monkeypatch.setattr(PrepStats, "drop_document", lambda self, reason: None)  # a bug: skips are not counted
  with pytest.raises(AccountingError, match="document accounting: read"):
    run_local(files, FUZZ_CONFIG, WordHashFactory(), str(tmp_path / "out"), workers=0, quiet=True)
  assert not os.path.exists(tmp_path / "out" / records.MANIFEST)


def test_resume_redoes_files_finished_by_a_version_without_document_counts(tmp_path, monkeypatch):
  from korpat_jax.corpus import local
  files = expand_corpus([write_corpus(tmp_path / "c", n_docs=9, damaged=False)])
  out = str(tmp_path / "out")
  with monkeypatch.context() as m:
    m.setattr(local, "_shards", lambda *args: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError, match="killed"):
      run_local(files, FUZZ_CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  marker = local.marker_path(os.path.join(out, ".prepare-work"), 0)
  with open(marker, encoding="utf-8") as f:
    entry = json.load(f)
  del entry["stats"]["documents_read"]  # as an older version wrote it
  with open(marker, "w", encoding="utf-8") as f:
    json.dump(entry, f)
  manifest = run_local(files, FUZZ_CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  assert manifest["documents_read"] == manifest["documents_written"] == 9
