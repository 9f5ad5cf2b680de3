"""The Grain input pipeline over real ArrayRecord shards: decode, shuffle, process split, Orbax exact resume."""

from __future__ import annotations

import hashlib
import itertools
import json
import os

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from array_record.python import array_record_module

from korpat_jax import input_pipeline, shard_reader
from korpat_jax.corpus import records
from korpat_jax.corpus import writer as writer_lib
from korpat_jax.errors import KorpatError

SEQ_LEN = 16
SPECIAL = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
FIRST_TAG = 10  # Token 1 of record n is FIRST_TAG + n: a row's identity.
TRAIN_SHARDS = (23, 17, 20)
EVAL_SHARDS = (13,)


def _example(n: int, rng: np.random.Generator) -> list[int]:
  """[CLS] tag a.. [SEP] b.. [SEP] or [CLS] tag a.. [SEP], 3..SEQ_LEN ids."""
  length = int(rng.integers(3, SEQ_LEN + 1))
  body = rng.integers(100, 1000, size=length - 3).tolist()
  if length >= 6 and rng.random() < 0.7:
    cut = int(rng.integers(1, length - 4))
    return [SPECIAL["cls"], FIRST_TAG + n, *body[:cut], SPECIAL["sep"], *body[cut:-1], SPECIAL["sep"]]
  return [SPECIAL["cls"], FIRST_TAG + n, *body, SPECIAL["sep"]]


def _flags(ids: list[int]) -> bytes:
  """Made-up boundary flags that the ids give back: [CLS]/[SEP] 3, others id % 4."""
  return bytes(3 if t < 5 else t % 4 for t in ids)


def _write_split(directory, split: str, shard_sizes, first: int, rng) -> tuple[list[dict], list[list[int]]]:
  shards, examples = [], []
  for i, size in enumerate(shard_sizes):
    name = records.shard_name(split, i, len(shard_sizes))
    writer = array_record_module.ArrayRecordWriter(str(directory / name), "group_size:1")
    ids = [_example(first + len(examples) + j, rng) for j in range(size)]
    for example in ids:
      writer.write(records.encode_record(example, "<u2", _flags(example)))
    writer.close()
    digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    shards.append({"file": name, "examples": size, "tokens": sum(map(len, ids)), "sha256": digest})
    examples += ids
  return shards, examples


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """A prepared directory: train 3 shards (60 examples), eval 1 shard (13); and the examples by tag."""
  directory = tmp_path_factory.mktemp("records")
  rng = np.random.default_rng(0)
  train, train_ids = _write_split(directory, "train", TRAIN_SHARDS, 0, rng)
  evals, eval_ids = _write_split(directory, "eval", EVAL_SHARDS, len(train_ids), rng)
  manifest = {"schema": records.SCHEMA, "seq_len": SEQ_LEN, "id_dtype": "uint16", "vocab_size": 1000,
              "vocab_hash": "test", "special_ids": SPECIAL,
              "splits": {"train": {"shards": train}, "eval": {"shards": evals}}}
  (directory / records.MANIFEST).write_text(json.dumps(manifest))
  return str(directory), train_ids + eval_ids


def _tags(batch) -> list[int]:
  """The record numbers of the real rows of a batch."""
  real = batch["attention_mask"][:, 0] == 1
  return (batch["input_ids"][real, 1] - FIRST_TAG).tolist()


def _take(iterator, n: int) -> list[dict[str, np.ndarray]]:
  return [next(iterator) for _ in range(n)]


def _assert_batches_equal(got, want):
  assert len(got) == len(want)
  for g, w in zip(got, want):
    assert g.keys() == w.keys()
    for name in w:
      np.testing.assert_array_equal(g[name], w[name], err_msg=name)


def test_eval_decodes_every_record_in_order_and_pads_the_last_batch(corpus):
  directory, examples = corpus
  it = input_pipeline.make_iterator(directory, split="eval", global_batch_size=4, seed=0, shuffle=False,
                                    num_epochs=1, process_index=0, process_count=1)
  batches = list(it)
  assert len(batches) == 4  # ceil(13 / 4)
  rows = {name: np.concatenate([b[name] for b in batches]) for name in input_pipeline.FEATURES}
  for name in input_pipeline.FEATURES:
    assert rows[name].dtype == np.int32 and rows[name].shape == (16, SEQ_LEN)
  for row, ids in enumerate(examples[60:]):
    n = len(ids)
    np.testing.assert_array_equal(rows["input_ids"][row], ids + [SPECIAL["pad"]] * (SEQ_LEN - n))
    np.testing.assert_array_equal(rows["attention_mask"][row], [1] * n + [0] * (SEQ_LEN - n))
    first_sep = ids.index(SPECIAL["sep"])
    want_types = [0] * (first_sep + 1) + [1] * (n - first_sep - 1) + [0] * (SEQ_LEN - n)
    np.testing.assert_array_equal(rows["token_type_ids"][row], want_types)
  assert (rows["attention_mask"][13:] == 0).all() and (rows["input_ids"][13:] == SPECIAL["pad"]).all()
  assert (rows["token_type_ids"][13:] == 0).all()


def test_shuffle_covers_each_epoch_once_and_reshuffles_per_epoch(corpus):
  directory, _ = corpus
  def epochs(seed):
    it = input_pipeline.make_iterator(directory, global_batch_size=6, seed=seed, num_epochs=2,
                                      process_index=0, process_count=1)
    tags = list(itertools.chain.from_iterable(_tags(b) for b in it))
    return tags[:60], tags[60:]

  first, second = epochs(seed=7)
  assert sorted(first) == sorted(second) == list(range(60))
  assert first != second and first != list(range(60))
  assert epochs(seed=7) == (first, second)
  assert epochs(seed=8)[0] != first


def test_two_processes_see_disjoint_halves_of_each_global_batch(corpus):
  directory, _ = corpus
  common = dict(global_batch_size=8, seed=3, num_epochs=1)
  whole = list(input_pipeline.make_iterator(directory, process_index=0, process_count=1, **common))
  hosts = [list(input_pipeline.make_iterator(directory, process_index=p, process_count=2, **common))
           for p in range(2)]
  assert len(hosts[0]) == len(hosts[1]) == len(whole) == 8  # ceil(60 / 8): the same step count everywhere.
  for step, global_batch in enumerate(whole):
    local = [hosts[p][step] for p in range(2)]
    assert all(b["input_ids"].shape == (4, SEQ_LEN) for b in local)
    assert not set(_tags(local[0])) & set(_tags(local[1]))
    assert set(_tags(local[0])) | set(_tags(local[1])) == set(_tags(global_batch))
    for name in input_pipeline.FEATURES:
      np.testing.assert_array_equal(np.concatenate([b[name] for b in local]), global_batch[name])


def _save_and_restore(tmp_path, make, k: int, m: int):
  """Takes k batches, saves with Orbax, takes m (reference); a fresh iterator restored from the save -> m."""
  it = make()
  _take(it, k)
  with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
    manager.save(k, args=ocp.args.Composite(state=ocp.args.StandardSave({"step": np.asarray(k, np.int32)}),
                                            data=grain.checkpoint.CheckpointSave(it)))
    reference = _take(it, m)  # While an async save may still run: the saved state must not move.
    manager.wait_until_finished()
  with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
    fresh = make()
    restored = manager.restore(
        manager.latest_step(),
        args=ocp.args.Composite(state=ocp.args.StandardRestore({"step": np.asarray(0, np.int32)}),
                                data=grain.checkpoint.CheckpointRestore(fresh)))
    resumed = _take(restored["data"], m)
  assert int(restored["state"]["step"]) == k
  for iterator in (it, fresh):
    if hasattr(iterator, "close"):
      iterator.close()
  return reference, resumed


@pytest.mark.parametrize("worker_count,k,m", [
    (0, 3, 4),  # Within the first epoch (60 examples, 8 a batch).
    (0, 6, 5),  # Across the epoch boundary (batch 7 holds the last 4 of epoch 0 and the first 4 of epoch 1).
    (2, 6, 5),  # With worker processes (mp_prefetch).
])
def test_orbax_restore_resumes_the_exact_batches(corpus, tmp_path, worker_count, k, m):
  directory, _ = corpus
  def make():
    return input_pipeline.make_iterator(directory, global_batch_size=8, seed=11, worker_count=worker_count,
                                        process_index=0, process_count=1)
  reference, resumed = _save_and_restore(tmp_path, make, k, m)
  _assert_batches_equal(resumed, reference)
  tags = list(itertools.chain.from_iterable(_tags(b) for b in reference))
  assert len(tags) == 8 * m  # No padding rows when repeating forever.


def test_worker_processes_yield_the_same_batches(corpus):
  directory, _ = corpus
  common = dict(global_batch_size=8, seed=5, process_index=0, process_count=1)
  plain = _take(input_pipeline.make_iterator(directory, **common), 10)
  workers = input_pipeline.make_iterator(directory, worker_count=2, **common)
  _assert_batches_equal(_take(workers, 10), plain)
  workers.close()


def test_to_global_builds_one_array_over_the_devices(corpus):
  """The 16 fake CPU devices of tests/conftest.py as an 8 x 2 (data, model) mesh (any count works)."""
  directory, _ = corpus
  devices = np.array(jax.devices())
  data_axis = max(1, len(devices) // 2)
  mesh = jax.sharding.Mesh(devices[: data_axis * 2].reshape(data_axis, -1) if len(devices) > 1
                           else devices.reshape(1, 1), ("data", "model"))
  global_batch = 4 * data_axis
  local = next(input_pipeline.make_iterator(directory, global_batch_size=global_batch, seed=0, process_index=0,
                                            process_count=1))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  batch = input_pipeline.to_global(local, sharding)
  for name in input_pipeline.FEATURES:
    assert batch[name].shape == (global_batch, SEQ_LEN) and batch[name].sharding == sharding
    assert {s.data.shape for s in batch[name].addressable_shards} == {(4, SEQ_LEN)}
    np.testing.assert_array_equal(np.asarray(batch[name]), local[name])


def test_boundaries_come_with_their_ids_and_are_sharded_like_them(corpus):
  directory, _ = corpus
  devices = np.array(jax.devices())
  mesh = jax.sharding.Mesh(devices.reshape(-1, 1), ("data", "model"))
  kwargs = dict(global_batch_size=2 * len(devices), seed=0, process_index=0, process_count=1)
  local = next(input_pipeline.make_iterator(directory, with_boundaries=True, **kwargs))
  plain = next(input_pipeline.make_iterator(directory, **kwargs))
  assert set(local) == set(plain) | {"boundaries"} and local["boundaries"].dtype == np.uint8
  for name in plain:
    np.testing.assert_array_equal(local[name], plain[name])
  ids, valid = local["input_ids"], local["attention_mask"] == 1
  np.testing.assert_array_equal(local["boundaries"], np.where(ids < 5, 3, ids % 4) * valid)
  batch = input_pipeline.to_global(local, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data")))
  assert batch["boundaries"].sharding == batch["input_ids"].sharding
  assert [s.index for s in batch["boundaries"].addressable_shards] == [
      s.index for s in batch["input_ids"].addressable_shards]
  np.testing.assert_array_equal(np.asarray(batch["boundaries"]), local["boundaries"])


def test_records_without_boundaries_are_read_but_not_for_their_boundaries(corpus, tmp_path):
  source, _ = corpus
  old = records.RecordFormat(np.dtype("<u2"), boundaries=False)
  manifest = json.loads(open(os.path.join(source, records.MANIFEST)).read())
  for split in manifest["splits"].values():
    for shard in split["shards"]:
      data = [old.encode(records.decode_record(r, "<u2")) for r in writer_lib.read_records(
          os.path.join(source, shard["file"]))]
      writer_lib.write_records(str(tmp_path / shard["file"]), data, writer_lib.SHARD_OPTIONS)
      shard["sha256"] = writer_lib.sha256_file(str(tmp_path / shard["file"]))
  (tmp_path / records.MANIFEST).write_text(json.dumps(dict(manifest, schema=records.SCHEMA_WITHOUT_BOUNDARIES)))
  kwargs = dict(global_batch_size=4, seed=0, process_index=0, process_count=1)
  old_batch = next(input_pipeline.make_iterator(str(tmp_path), **kwargs))
  new_batch = next(input_pipeline.make_iterator(source, **kwargs))
  for name in input_pipeline.FEATURES:
    np.testing.assert_array_equal(old_batch[name], new_batch[name])
  with pytest.raises(KorpatError, match=r"needs the morpheme and eojeol boundaries .* re-run `korpat-jax prepare`"):
    input_pipeline.make_iterator(str(tmp_path), with_boundaries=True, **kwargs)


def _corrupt_copy(corpus, tmp_path, damage) -> tuple[str, str]:
  """A copy of the prepared directory with train shard 1 damaged by `damage(bytes) -> bytes`."""
  source, _ = corpus
  for name in os.listdir(source):
    data = open(os.path.join(source, name), "rb").read()
    if name == records.shard_name("train", 1, 3):
      data = damage(data)
    (tmp_path / name).write_bytes(data)
  return str(tmp_path), str(tmp_path / records.shard_name("train", 1, 3))


def _unreadable_chunks(data: bytes) -> bytes:
  """Overwrites some record chunks of a shard; its index at the end stays intact."""
  data = bytearray(data)
  data[400:900] = bytes(500)
  return bytes(data)


def test_truncated_shard_is_named(corpus, tmp_path):
  directory, shard = _corrupt_copy(corpus, tmp_path, lambda data: data[: len(data) // 2])
  with pytest.raises(KorpatError, match=f"^{shard}: holds 0 records, manifest.json says 17"):
    input_pipeline.make_iterator(directory, global_batch_size=4, seed=0, process_index=0, process_count=1)


@pytest.mark.parametrize("worker_count", [0, 2])
def test_garbage_inside_a_shard_names_file_and_record(corpus, tmp_path, worker_count):
  directory, shard = _corrupt_copy(corpus, tmp_path, _unreadable_chunks)
  it = input_pipeline.make_iterator(directory, split="train", global_batch_size=60, seed=0, shuffle=False,
                                    num_epochs=1, worker_count=worker_count, process_index=0, process_count=1)
  with pytest.raises(KorpatError, match=f"^{shard}: record [0-9]+: unreadable ArrayRecord data"):
    next(it)
  if worker_count:
    it.close()


NOT_A_RECORD = ("not a korpat-electra-records/3 record (a tf.train.Example with the bytes features 'boundaries' and "
                "'input_ids')")
BAD_RECORDS = [
    (b"\x02\x00\x03\x00", NOT_A_RECORD),  # schema 1's bare ids
    (records.RecordFormat(np.dtype("<u2"), boundaries=False).encode([2, 5, 3]), NOT_A_RECORD),  # schema 2's
    (records.encode_record([2] * (SEQ_LEN + 1), "<u2"), f"{SEQ_LEN + 1} ids, not 1..{SEQ_LEN}"),
    (records.encode_record([], "<u2"), f"0 ids, not 1..{SEQ_LEN}"),
    (records.encode_record([2, 1000, 3], "<u2"), "token id >= vocab size 1000"),
]


def _eval_shard_with(corpus, tmp_path, bad_record, at: int):
  """A copy of the prepared directory whose eval shard holds 13 records [2, 20, 3], `bad_record` at `at`."""
  source, _ = corpus
  for name in os.listdir(source):
    (tmp_path / name).write_bytes(open(os.path.join(source, name), "rb").read())
  shard = tmp_path / records.shard_name("eval", 0, 1)
  writer = array_record_module.ArrayRecordWriter(str(shard), "group_size:1")
  for i in range(13):
    writer.write(bad_record if i == at else records.encode_record([2, 20, 3], "<u2"))
  writer.close()
  return str(shard)


def _eval_batch(directory, **kwargs):
  return next(input_pipeline.make_iterator(directory, split="eval", global_batch_size=13, seed=0, shuffle=False,
                                           num_epochs=1, process_index=0, process_count=1, **kwargs))


@pytest.mark.parametrize("bad_record,message", BAD_RECORDS)
def test_bad_record_names_file_and_record_and_the_fix(corpus, tmp_path, bad_record, message):
  shard = _eval_shard_with(corpus, tmp_path, bad_record, at=5)
  with pytest.raises(KorpatError) as error:
    _eval_batch(str(tmp_path))
  # One line: what the CLI prints, with the three ways out.
  assert str(error.value) == f"{shard}: record 5: {message}; {shard_reader.bad_record_hint(str(tmp_path))}"
  assert f"korpat-jax verify --records {tmp_path}" in str(error.value) and "on_bad_record=skip" in str(error.value)


@pytest.mark.parametrize("bad_record,message", BAD_RECORDS)
def test_skip_leaves_a_bad_record_out_as_padding_and_counts_it(corpus, tmp_path, bad_record, message, caplog):
  shard = _eval_shard_with(corpus, tmp_path, bad_record, at=5)
  with caplog.at_level("WARNING", logger="korpat_jax"):
    batch = _eval_batch(str(tmp_path), on_bad_record="skip")
  assert f"{shard}: record 5 is bad: skipped" in caplog.text
  good = [i for i in range(13) if i != 5]
  assert (batch["attention_mask"][5] == 0).all() and (batch["input_ids"][5] == SPECIAL["pad"]).all()
  assert (batch["token_type_ids"][5] == 0).all()
  np.testing.assert_array_equal(batch["input_ids"][good, :4], [[2, 20, 3, 0]] * 12)
  assert batch[input_pipeline.SKIPPED_RECORDS].tolist() == [1] + [0] * 12


@pytest.mark.parametrize("at", [0, 6, 12])  # first, middle and last: the records sampled of a 13-record shard
def test_a_sampled_bad_record_stops_before_the_first_batch(corpus, tmp_path, at, caplog):
  shard = _eval_shard_with(corpus, tmp_path, b"\x02\x00\x03\x00", at=at)
  kwargs = dict(split="eval", global_batch_size=13, seed=0, shuffle=False, num_epochs=1, process_index=0,
                process_count=1, sample_per_shard=3)
  with pytest.raises(KorpatError, match=f"^{shard}: record {at}: not a korpat-electra-records/3 record .*"
                                        "korpat-jax verify --records"):
    input_pipeline.make_iterator(str(tmp_path), **kwargs)  # no batch asked for yet
  with caplog.at_level("WARNING", logger="korpat_jax"):
    input_pipeline.make_iterator(str(tmp_path), on_bad_record="skip", **kwargs)
  assert f"1 of the records sampled from its shards are bad (e.g. {shard}: record {at})" in caplog.text
  input_pipeline.make_iterator(corpus[0], **kwargs)  # the undamaged directory passes


@pytest.mark.parametrize("worker_count", [0, 2])
def test_skip_reads_past_unreadable_records(corpus, tmp_path, worker_count):
  directory, shard = _corrupt_copy(corpus, tmp_path, _unreadable_chunks)
  it = input_pipeline.make_iterator(directory, split="train", global_batch_size=60, seed=0, shuffle=False,
                                    num_epochs=1, worker_count=worker_count, process_index=0, process_count=1,
                                    on_bad_record="skip")
  batch = next(it)
  seen = _tags(batch)
  missing = sorted(set(range(60)) - set(seen))
  assert missing and all(23 <= tag < 40 for tag in missing)  # only records of the damaged shard 1 (23..39)
  assert batch[input_pipeline.SKIPPED_RECORDS][0] == len(missing) == 60 - len(seen)
  assert sorted(seen) == [t for t in range(60) if t not in missing]
  if worker_count:
    it.close()


@pytest.mark.parametrize("k,m", [(3, 6), (8, 4)])  # 60 records, 8 a batch: the second resumes in epoch 1
def test_skip_count_is_part_of_the_state_and_resumes_exactly(corpus, tmp_path, k, m):
  (tmp_path / "records").mkdir()
  directory, _ = _corrupt_copy(corpus, tmp_path / "records", _unreadable_chunks)
  def make():
    return input_pipeline.make_iterator(directory, global_batch_size=8, seed=11, process_index=0, process_count=1,
                                        on_bad_record="skip")
  reference, resumed = _save_and_restore(tmp_path, make, k, m)
  _assert_batches_equal(resumed, reference)
  counts = [int(b[input_pipeline.SKIPPED_RECORDS][0]) for b in reference]
  assert counts[-1] > 0 and counts == sorted(counts)  # counted from the start of the run, not of the resume
  ground_truth = _take(make(), k + m)
  assert [int(b[input_pipeline.SKIPPED_RECORDS][0]) for b in ground_truth[k:]] == counts


def test_a_state_saved_without_the_skip_count_restores_with_zero(corpus):
  directory, _ = corpus
  plain = input_pipeline.make_iterator(directory, global_batch_size=8, seed=1, process_index=0, process_count=1)
  _take(plain, 2)
  skipping = input_pipeline.make_iterator(directory, global_batch_size=8, seed=1, process_index=0, process_count=1,
                                          on_bad_record="skip")
  skipping.set_state(plain.get_state())  # a run that stopped on a bad record, resumed with on_bad_record=skip
  _assert_batches_equal([{k: v for k, v in b.items() if k != input_pipeline.SKIPPED_RECORDS}
                         for b in _take(skipping, 2)], _take(plain, 2))
  assert skipping.get_state()[input_pipeline.SKIPPED_RECORDS] == 0


@pytest.mark.parametrize("kwargs,message", [
    (dict(global_batch_size=6, process_count=4, process_index=0), "global_batch_size: 6 is not a positive"),
    (dict(global_batch_size=8, process_count=2, process_index=2), r"process_index: 2 is not in \[0, 2\)"),
    (dict(global_batch_size=8, split="dev", process_count=1, process_index=0), "no split 'dev'"),
])
def test_bad_arguments_are_user_errors(corpus, kwargs, message):
  directory, _ = corpus
  with pytest.raises(KorpatError, match=message):
    input_pipeline.make_iterator(directory, seed=0, **kwargs)
