"""`korpat-jax verify --records DIR`, and `prepare` rewriting the shards that verify finds damaged."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from array_record.python import array_record_module

from corpus_fakes import WordHashFactory, write_corpus
from helpers import flip_a_record
from korpat_jax import cli
from korpat_jax.corpus import records, verify
from korpat_jax.corpus.examples import PackingConfig
from korpat_jax.corpus.local import run_local
from korpat_jax.corpus.pipeline import PrepConfig
from korpat_jax.corpus.readers import expand_corpus
from korpat_jax.corpus.writer import read_records, sha256_file

CONFIG = PrepConfig(packing=PackingConfig(seq_len=48), records_per_shard=20, eval_fraction=0.05)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  return expand_corpus([write_corpus(tmp_path_factory.mktemp("corpus"), damaged=False)])


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory) -> str:
  out = str(tmp_path_factory.mktemp("prepared") / "records")
  run_local(corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  return out


def _copy(prepared: str, tmp_path) -> str:
  out = str(tmp_path / "records")
  shutil.copytree(prepared, out)
  return out


def _shard(out: str, split: str, index: int) -> str:
  return records.read_manifest(out).shard_paths(split)[index]


def _rewrite(path: str, replace: dict[int, bytes]) -> None:
  """The shard rewritten with some records replaced: a well-formed ArrayRecord file whose sha256 differs."""
  old = read_records(path)
  writer = array_record_module.ArrayRecordWriter(path, "group_size:1")
  for i, record in enumerate(old):
    writer.write(replace.get(i, record))
  writer.close()


def test_intact_records_pass_with_the_rate(prepared, capsys):
  assert verify.main(["--records", prepared]) == 0
  out = capsys.readouterr().out
  n = sum(len(s) for s in records.read_manifest(prepared).splits.values())
  assert re.fullmatch(rf"{re.escape(prepared)}: all {n} shards match manifest.json; [0-9.]+ MB in [0-9.]+s "
                      r"\([0-9,]+ MB/s\)\n", out), out


def test_each_damaged_shard_is_one_line_and_the_exit_code_is_1(prepared, tmp_path, capsys):
  out = _copy(prepared, tmp_path)
  flipped, foreign, truncated, missing = (_shard(out, "train", i) for i in range(4))
  at = flip_a_record(flipped)
  _rewrite(foreign, {2: b"\x02\x00\x03\x00"})  # schema 1's bare ids: readable, not a record of this schema
  with open(truncated, "r+b") as f:
    f.truncate(os.path.getsize(truncated) // 2)
  os.remove(missing)
  examples = {p: e["examples"] for p, e in zip(records.read_manifest(out).shard_paths("train"),
                                               records.read_manifest(out).splits["train"])}

  assert cli.main(["verify", "--records", out]) == 1  # through the `korpat-jax` dispatcher
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 5, lines
  assert re.fullmatch(rf"{re.escape(flipped)}: sha256 \w{{12}}\.\.\. differs from manifest.json's \w{{12}}\.\.\.; "
                      rf"1 of {examples[flipped]} records bad \(first: record {at}: unreadable ArrayRecord data "
                      r"\(Corrupted Riegeli/records file: .*\)\)", lines[0]), lines[0]
  assert lines[1].startswith(f"{foreign}: sha256 ") and lines[1].endswith(
      f"1 of {examples[foreign]} records bad (first: record 2: not a korpat-electra-records/3 record (a "
      "tf.train.Example with the bytes features 'boundaries' and 'input_ids'))")
  assert lines[2].startswith(f"{truncated}: holds 0 records, manifest.json says {examples[truncated]}; sha256 ")
  assert lines[3] == f"{missing}: missing (listed in manifest.json)"
  assert re.fullmatch(rf"{re.escape(out)}: 4 of \d+ shards do not match manifest.json; .* MB/s\); rewrite them by "
                      r"re-running the same `korpat-jax prepare` command", lines[4]), lines[4]


def test_rerunning_prepare_rewrites_the_damaged_shards(corpus, prepared, tmp_path, capsys):
  out = _copy(prepared, tmp_path)
  paths = records.read_manifest(out).shard_paths("train")
  before = {p: sha256_file(p) for p in paths}
  flip_a_record(paths[1])
  os.remove(paths[2])
  kept = {p: os.stat(p).st_mtime_ns for p in paths if p not in paths[1:3]}
  run_local(corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  err = capsys.readouterr().err
  assert f"[prepare] {paths[1]}: sha256 " in err and "removed, to be written again" in err
  assert f"[prepare] {paths[2]}: missing (listed in manifest.json): removed, to be written again" in err
  assert {p: sha256_file(p) for p in paths} == before  # the same bytes as the first run wrote
  assert {p: os.stat(p).st_mtime_ns for p in kept} == kept  # the intact shards were not written again
  assert verify.main(["--records", out]) == 0
