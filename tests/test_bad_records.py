"""Damaged records in training: a bad record stops the run in one line naming it and the fix (before step 1 when
the sample check finds it), and `data.on_bad_record=skip` trains past it, counts it and resumes exactly."""

from __future__ import annotations

import json
import pathlib
import shutil

import jax
import numpy as np
import pytest

from helpers import flip_a_record, pretrain_config, run_params, train_losses
from korpat_jax.errors import ConfigError, KorpatError
from korpat_jax.tasks.pretraining import validate as validate_pretraining
from korpat_jax.train import train

RECORDS = 96  # one train shard; the tiny variant's batch of 32 reads it in 3 steps an epoch


@pytest.fixture(scope="module")
def bad_records(tmp_path_factory):
  """Prepared records for the tiny variant (seq 64, vocab 128) whose train shard has one record damaged where the
  check before training does not look (its first, middle and last records are sampled): (directory, shard, record)."""
  from array_record.python import array_record_module
  from korpat_jax.corpus import records, writer
  directory = tmp_path_factory.mktemp("records")
  special = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
  rng = np.random.default_rng(0)
  shard = directory / records.shard_name("train", 0, 1)
  out = array_record_module.ArrayRecordWriter(str(shard), "group_size:1")
  tokens = 0
  for _ in range(RECORDS):
    body = rng.integers(5, 128, size=int(rng.integers(20, 61))).tolist()
    out.write(records.encode_record([2, *body, 3], "<u2"))
    tokens += len(body) + 2
  out.close()
  at = flip_a_record(str(shard), accept=lambda record: record not in _sampled(RECORDS))
  entry = {"file": shard.name, "examples": RECORDS, "tokens": tokens, "sha256": writer.sha256_file(str(shard))}
  (directory / records.MANIFEST).write_text(json.dumps(
      {"schema": records.SCHEMA, "seq_len": 64, "id_dtype": "<u2", "vocab_size": 128, "vocab_hash": "test",
       "special_ids": special, "splits": {"train": {"shards": [entry]}}}))
  return str(directory), str(shard), at


def _sampled(n: int) -> set[int]:
  """The records of an n-record shard that training decodes before step 1 (input_pipeline.check_sample)."""
  from korpat_jax.pretraining_input import SAMPLE_PER_SHARD
  return set(np.linspace(0, n - 1, SAMPLE_PER_SHARD).round().astype(int).tolist())


def _on_records(directory, **overrides):
  return pretrain_config("tiny", **{"data.source": "records", "data.records_dir": directory, "train.log_every": 1,
                                    **overrides})


def test_a_bad_record_stops_the_run_at_its_step_with_one_line_naming_it_and_the_fix(bad_records, tmp_path):
  from korpat_jax import shard_reader
  directory, shard, at = bad_records
  with pytest.raises(KorpatError) as error:
    train(_on_records(directory, **{"train.num_steps": 6}), str(tmp_path))
  message = str(error.value)
  assert "\n" not in message and message.startswith(f"{shard}: record {at}: unreadable ArrayRecord data (")
  assert message.endswith(shard_reader.bad_record_hint(directory))
  assert f"`korpat-jax verify --records {directory}`" in message and "--config.data.on_bad_record=skip" in message
  # Epoch 0 is the permutation seeded by (seed 0, epoch 0): the batch that holds the record is the step it stops at.
  order = np.arange(RECORDS)
  np.random.default_rng([0, 0]).shuffle(order)
  failing_step = int(np.flatnonzero(order == at)[0]) // 32 + 1
  logged = sorted(train_losses(tmp_path)) if (tmp_path / "metrics.jsonl").exists() else []
  assert logged == list(range(1, failing_step))


def test_a_bad_record_in_the_sample_stops_before_step_1(bad_records, tmp_path):
  directory, shard, _ = bad_records
  copy = tmp_path / "records"
  shutil.copytree(directory, copy)
  shard = str(copy / pathlib.Path(shard).name)
  at = flip_a_record(shard, accept=lambda record: record in _sampled(RECORDS))
  with pytest.raises(KorpatError) as error:
    train(_on_records(str(copy)), str(tmp_path / "run"))
  assert str(error.value).startswith(f"{shard}: record {at}: unreadable ArrayRecord data (")
  assert str(error.value).endswith(f"`korpat-jax verify --records {copy}` and rewrite the damaged ones by re-running "
                                   "the same `korpat-jax prepare` command, or skip bad records with "
                                   "--config.data.on_bad_record=skip")
  assert not (tmp_path / "run" / "metrics.jsonl").exists() and not (tmp_path / "run" / "checkpoints").exists()


def test_skip_trains_past_bad_records_counts_them_and_resumes_exactly(bad_records, tmp_path, caplog):
  directory, shard, at = bad_records
  config = lambda: _on_records(directory, **{"data.on_bad_record": "skip", "train.num_steps": 12,  # noqa: E731
                                             "train.checkpoint_every": 6, "train.keep_checkpoints": 3})
  full = tmp_path / "full"
  with caplog.at_level("WARNING", logger="korpat_jax"):
    train(config(), str(full))
  assert f"{shard}: record {at} is bad: skipped (data.on_bad_record=skip; 1 so far" in caplog.text
  with open(full / "metrics.jsonl") as f:
    rows = [r for r in map(json.loads, f) if r["split"] == "train"]
  skipped = [r["skipped_records"] for r in rows]
  assert [r["step"] for r in rows] == list(range(1, 13))
  assert skipped == sorted(skipped) and skipped[-1] == 4  # 12 steps of 3 an epoch: read 4 times, skipped 4 times
  # Resumed from step 6: the same losses and counts after it, and the same parameters.
  resumed = tmp_path / "resumed"
  shutil.copytree(full, resumed)
  shutil.rmtree(resumed / "checkpoints" / "12")
  train(config(), str(resumed))
  with open(resumed / "metrics.jsonl") as f:
    again = [r for r in map(json.loads, f) if r["split"] == "train"]
  assert [(r["step"], r["loss"], r["skipped_records"]) for r in again] == [
      (r["step"], r["loss"], r["skipped_records"]) for r in rows]
  for (path, x), (_, y) in zip(jax.tree_util.tree_leaves_with_path(run_params(full, 12)[1]),
                               jax.tree_util.tree_leaves_with_path(run_params(resumed, 12)[1])):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


def test_on_bad_record_takes_fail_or_skip():
  with pytest.raises(ConfigError, match=r"^config.data.on_bad_record='drop': expected fail or skip$"):
    validate_pretraining(pretrain_config("tiny", **{"data.on_bad_record": "drop"}), 16)
