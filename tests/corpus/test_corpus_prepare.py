from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from corpus_fakes import WordHashFactory, write_corpus
from korpat_jax.boundaries import EOJEOL_START, MORPHEME_START, UNIT
from korpat_jax.corpus import records
from korpat_jax.corpus.cli import main as prepare_main
from korpat_jax.corpus.examples import PackingConfig
from korpat_jax.corpus.local import run_local
from korpat_jax.corpus.pipeline import PrepConfig
from korpat_jax.corpus.readers import expand_corpus
from korpat_jax.corpus.writer import read_records, sha256_file
from korpat_jax.errors import KorpatError

CONFIG = PrepConfig(packing=PackingConfig(seq_len=48), records_per_shard=20, eval_fraction=0.05)


def _shard_bytes(out_dir) -> dict[str, bytes]:
  return {n: open(os.path.join(out_dir, n), "rb").read() for n in sorted(os.listdir(out_dir))
          if n.endswith(".array_record")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  return expand_corpus([write_corpus(tmp_path_factory.mktemp("corpus"))])


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("out"))
  return out, run_local(corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)


def test_records_and_manifest(prepared):
  out, raw = prepared
  manifest = records.read_manifest(out)
  assert manifest.seq_len == 48 and manifest.id_dtype == np.dtype("<u2") and manifest.vocab_size == 1000
  assert manifest.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
  assert set(manifest.splits) == {"train", "eval"}
  total = 0
  for split, shards in manifest.splits.items():
    assert [s["file"] for s in shards] == [records.shard_name(split, i, len(shards)) for i in range(len(shards))]
    for shard, path in zip(shards, manifest.shard_paths(split)):
      assert shard["sha256"] == sha256_file(path) and 0 < shard["examples"] <= 20
      ids = [records.decode_record(r, manifest.id_dtype) for r in read_records(path)]
      assert len(ids) == shard["examples"] and sum(map(len, ids)) == shard["tokens"]
      assert all(x[0] == 2 and x[-1] == 3 and len(x) <= 48 and 1 <= (x == 3).sum() <= 2 for x in ids)
    total += manifest.num_examples(split)
  assert total == sum(raw["examples"].values())
  assert raw["documents"] == sum(s["documents"] for s in raw["splits"].values())
  assert raw["prep"]["config"]["packing"]["seq_len"] == 48 and raw["inputs"]["files"] == 6
  assert not os.path.exists(os.path.join(out, ".prepare-work"))


def test_bad_input_is_counted_with_places(prepared):
  _, raw = prepared
  skipped = {reason: entry["count"] for reason, entry in raw["skipped"].items()}
  assert skipped == {"bad_json": 1, "empty_document": 1, "truncated_file": 1, "undecodable_line": 1}
  assert raw["skipped"]["undecodable_line"]["examples"][0].split(":")[0].endswith("d_bad.txt")
  assert raw["skipped"]["truncated_file"]["examples"][0].split(":")[0].endswith("f_truncated.txt.gz")
  assert raw["adjusted"]["long_sentence_cut"]["count"] == 1  # a 3,600-char run-on sentence
  assert raw["documents"] > 40  # the complete documents before the truncation were kept
  # d_bad.txt: a marker-only document, one of a single undecodable line; e_bad.jsonl: a broken line
  assert raw["documents_skipped"] == {"bad_json": 1, "empty_document": 1, "undecodable": 1}
  assert raw["documents_read"] == raw["documents_written"] + 3 and raw["documents_written"] == raw["documents"]
  assert raw["documents_adjusted"]["long_sentence_cut"] == 1


def test_same_records_with_a_process_pool_and_on_rerun(prepared, corpus, tmp_path):
  out, raw = prepared
  pooled = run_local(corpus, CONFIG, WordHashFactory(), str(tmp_path / "pooled"), workers=2, quiet=True)
  assert _shard_bytes(tmp_path / "pooled") == _shard_bytes(out)
  assert pooled["splits"] == raw["splits"]


def test_rerun_keeps_finished_shards_and_rewrites_missing_ones(corpus, tmp_path):
  out = str(tmp_path / "out")
  first = run_local(corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  before = _shard_bytes(out)
  names = sorted(before)
  os.remove(os.path.join(out, names[1]))
  os.remove(os.path.join(out, records.MANIFEST))
  kept = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in names if n != names[1]}
  second = run_local(corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  assert _shard_bytes(out) == before and second["splits"] == first["splits"]
  assert {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in kept} == kept
  assert run_local(corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)["created"] == second["created"]


def test_other_config_in_same_dir_needs_overwrite(corpus, tmp_path):
  out = str(tmp_path / "out")
  run_local(corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  other = PrepConfig(packing=PackingConfig(seq_len=64), records_per_shard=1000)
  with pytest.raises(KorpatError, match="--overwrite"):
    run_local(corpus, other, WordHashFactory(), out, workers=0, quiet=True)
  manifest = run_local(corpus, other, WordHashFactory(), out, workers=0, quiet=True, overwrite=True)
  assert manifest["seq_len"] == 64 and len(manifest["splits"]["train"]["shards"]) == 1
  assert sorted(_shard_bytes(out)) == [f["file"] for s in manifest["splits"].values() for f in s["shards"]]


@pytest.mark.parametrize("n_docs, fraction, eval_docs", [(25, 1e-9, 1), (12, 1e-9, 0), (25, 0.0, 0)])
def test_eval_split_size(tmp_path, n_docs, fraction, eval_docs):
  files = expand_corpus([write_corpus(tmp_path / "c", n_docs=n_docs, damaged=False)])
  config = PrepConfig(packing=PackingConfig(seq_len=48), eval_fraction=fraction)
  manifest = run_local(files, config, WordHashFactory(), str(tmp_path / "out"), workers=0, quiet=True)
  assert manifest["documents"] == n_docs
  assert manifest["splits"].get("eval", {}).get("documents", 0) == eval_docs


def test_beam_direct_runner_writes_the_same_records(prepared, corpus, tmp_path):
  pytest.importorskip("apache_beam")
  from korpat_jax.corpus.beam import run_beam
  out, raw = prepared
  manifest = run_beam(corpus, CONFIG, WordHashFactory(), str(tmp_path / "beam"))
  assert _shard_bytes(tmp_path / "beam") == _shard_bytes(out)
  for name in ("dataset_info.json", "features.json"):  # the TFDS metadata (test_corpus_tfds.py reads it)
    assert (tmp_path / "beam" / name).read_text() == open(os.path.join(out, name)).read(), name
  for key in ("splits", "documents", "documents_read", "documents_written", "documents_skipped", "documents_adjusted",
              "sentences", "tokens", "tokens_read", "tokens_truncated", "special_tokens", "examples", "skipped",
              "adjusted"):
    assert manifest[key] == raw[key], key
  assert manifest["prep"]["runner"] == "beam"


def test_prepare_command_with_the_mwp_tokenizer(mwp_tokenizer_dir, tmp_path, capsys):
  corpus_glob = write_corpus(tmp_path / "corpus", n_docs=30, damaged=False)
  args = ["--corpus", corpus_glob, "--tokenizer", mwp_tokenizer_dir, "--seq-len", "64", "--quiet"]
  assert prepare_main(args + ["--out", str(tmp_path / "local"), "--workers", "0"]) == 0
  assert "30 documents" in capsys.readouterr().out
  manifest = records.read_manifest(str(tmp_path / "local"))
  with open(os.path.join(mwp_tokenizer_dir, "vocab.txt"), encoding="utf-8") as f:
    assert manifest.vocab_size == sum(1 for _ in f)
  ids = records.decode_record(read_records(manifest.shard_paths("train")[0])[0], manifest.id_dtype)
  assert ids[0] == manifest.special_ids["cls"] and (ids >= 5).sum() > len(ids) // 2
  # The morpheme and eojeol starts (korpat_jax.boundaries) of every record, from Mecab-ko's analysis.
  decoded = [manifest.format.decode(r) for path in manifest.shard_paths("train") for r in read_records(path)]
  for ids, flags in decoded:
    special = (ids == manifest.special_ids["cls"]) | (ids == manifest.special_ids["sep"])
    assert (flags[special] == UNIT).all() and flags[1] == UNIT  # [CLS], [SEP]; a sentence starts after [CLS]
    assert set(np.unique(flags).tolist()) <= {0, MORPHEME_START, UNIT}
  words = sum(int(((f & EOJEOL_START) > 0)[i >= 5].sum()) for i, f in decoded)
  morphemes = sum(int(((f & MORPHEME_START) > 0)[i >= 5].sum()) for i, f in decoded)
  tokens = sum(int((i >= 5).sum()) for i, _ in decoded)
  assert tokens > morphemes > words > tokens / 6, (tokens, morphemes, words)
  if importlib.util.find_spec("apache_beam"):  # the same records, boundaries included, under Beam's DirectRunner
    assert prepare_main(args + ["--out", str(tmp_path / "beam"), "--runner", "beam"]) == 0
    assert _shard_bytes(tmp_path / "beam") == _shard_bytes(tmp_path / "local")
    beam = records.read_manifest(str(tmp_path / "beam"))
    from_beam = [beam.format.decode(r) for path in beam.shard_paths("train") for r in read_records(path)]
    assert [f.tolist() for _, f in from_beam] == [f.tolist() for _, f in decoded]


def test_prepare_command_errors_are_one_line(tmp_path, mwp_tokenizer_dir):
  with pytest.raises(KorpatError, match="no files match"):
    prepare_main(["--corpus", str(tmp_path / "none*.txt"), "--tokenizer", mwp_tokenizer_dir, "--out", str(tmp_path)])
  with pytest.raises(KorpatError, match="--eval-fraction"):
    prepare_main(["--corpus", "x", "--tokenizer", mwp_tokenizer_dir, "--out", str(tmp_path), "--eval-fraction", "2"])
  with pytest.raises(KorpatError, match="for --runner beam"):
    prepare_main(["--corpus", mwp_tokenizer_dir, "--tokenizer", mwp_tokenizer_dir, "--out", str(tmp_path / "o"),
                  "--", "--runner=DataflowRunner"])


def test_rerun_after_a_crash_skips_finished_input_files(prepared, corpus, tmp_path, monkeypatch):
  from korpat_jax.corpus import local
  out = str(tmp_path / "out")

  def crash(*args, **kwargs):
    raise RuntimeError("killed")

  with monkeypatch.context() as m:
    m.setattr(local, "_shards", crash)
    with pytest.raises(RuntimeError, match="killed"):
      run_local(corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  assert len([n for n in os.listdir(os.path.join(out, ".prepare-work")) if n.endswith(".done.json")]) == len(corpus)
  monkeypatch.setattr(local, "_process_task", crash)  # every input file is done: nothing may be tokenized again
  manifest = run_local(corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  assert _shard_bytes(out) == _shard_bytes(prepared[0])
  assert manifest["skipped"] == prepared[1]["skipped"] and manifest["documents"] == prepared[1]["documents"]
