"""The record codec: a tf.train.Example with the bytes features boundaries and input_ids (schema 3), or input_ids
alone (schema 2, still read), whose payloads the loader slices off their headers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from korpat_jax import boundaries
from korpat_jax.corpus import records
from korpat_jax.errors import KorpatError

# Token counts around the varint boundaries of every proto length (1, 2 and 3 byte lengths), for 2-byte ids.
SIZES = [0, 1, 2, 41, 42, 43, 44, 63, 64, 65, 100, 127, 128, 129, 5_000, 5_455, 5_462, 8_191, 8_192, 20_000]
FORMATS = [records.RecordFormat(np.dtype(d), b) for d in ("<u2", "<u4") for b in (True, False)]


def _payloads(n: int, fmt: records.RecordFormat) -> tuple[np.ndarray, np.ndarray]:
  ids = (np.arange(n) * 7919 % min(2**16, 2**(8 * fmt.id_dtype.itemsize))).astype(fmt.id_dtype)
  return ids, (np.arange(n) % 4).astype(np.uint8)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.id_dtype.name}-{f.schema[-1]}")
def test_token_count_inverts_the_layout(fmt):
  for n in SIZES:
    ids, flags = _payloads(n, fmt)
    record = fmt.encode(ids, flags)
    assert len(record) == fmt.size(n) and fmt.token_count(record) == n, n
    got_ids, got_flags = fmt.decode(record)
    assert got_ids.dtype == np.int32 and got_ids.tolist() == ids.tolist()
    assert (got_flags is None) if not fmt.boundaries else got_flags.tolist() == flags.tolist()


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.id_dtype.name}-{f.schema[-1]}")
def test_records_are_the_protobuf_encoding_of_a_tf_example(fmt):
  tf_example_pb2 = pytest.importorskip("tensorflow_datasets.proto").tf_example_pb2
  for n in SIZES:
    ids, flags = _payloads(n, fmt)
    example = tf_example_pb2.Example()
    example.features.feature[records.FEATURE].bytes_list.value.append(ids.tobytes())
    if fmt.boundaries:
      example.features.feature[records.BOUNDARIES].bytes_list.value.append(flags.tobytes())
    record = fmt.encode(ids, flags)
    assert example.SerializeToString(deterministic=True) == record, n
    parsed = tf_example_pb2.Example.FromString(record)
    assert parsed.features.feature[records.FEATURE].bytes_list.value == [ids.tobytes()]


def test_the_current_schema_has_boundaries_and_defaults_them_to_units():
  record = records.encode_record([2, 70, 3], "<u2")
  ids, flags = records.RecordFormat(np.dtype("<u2")).decode(record)
  assert records.SCHEMA == "korpat-electra-records/3" and ids.tolist() == [2, 70, 3]
  assert flags.tolist() == [boundaries.UNIT] * 3 and records.decode_record(record, "<u2").tolist() == [2, 70, 3]
  with pytest.raises(ValueError, match="2 boundary flags for 3 ids"):
    records.encode_record([2, 70, 3], "<u2", b"\x03\x03")


@pytest.mark.parametrize("dtype", ["<u2", "<u4"])
def test_encode_decode_round_trip(dtype):
  ids = [2, 0, 999, 65_535, 3] if dtype == "<u2" else [2, 70_000, 2**32 - 1, 3]
  record = records.encode_record(ids, dtype, [3, 1, 0, 2, 3][:len(ids)])
  assert record.endswith(np.array(ids, dtype).tobytes())
  decoded = records.decode_record(record, dtype)
  assert decoded.dtype == np.int32 and decoded.astype(np.int64).tolist() == [i if i < 2**31 else i - 2**32
                                                                               for i in ids]


CURRENT = records.RecordFormat(np.dtype("<u2"))
OLD = records.RecordFormat(np.dtype("<u2"), boundaries=False)


@pytest.mark.parametrize("data,fmt", [
    (b"\x02\x00\x03\x00", CURRENT),  # schema 1: the bare ids
    (b"", CURRENT),
    (OLD.encode([2, 5, 3]), CURRENT),  # schema 2 read as 3
    (CURRENT.encode([2, 5, 3]), OLD),  # and the other way round
    (CURRENT.encode([2, 5, 3]).replace(b"input_ids", b"input_idz"), CURRENT),
    (CURRENT.encode([2, 5, 3]).replace(b"boundaries", b"boundarief"), CURRENT),
    (CURRENT.encode([2, 5, 3]) + bytes(1), CURRENT),  # one byte too many
    (OLD.headers(2)[0] + bytes(3), OLD),  # an odd number of id bytes
])
def test_decode_refuses_what_is_not_a_record(data, fmt):
  with pytest.raises(ValueError, match=f"^not a {fmt.schema} record"):
    fmt.decode(data)
  assert fmt.problem(data, 64, 1000).startswith(f"not a {fmt.schema} record")


def test_not_a_record_names_the_features():
  assert CURRENT.describe() == ("a korpat-electra-records/3 record (a tf.train.Example with the bytes features "
                                "'boundaries' and 'input_ids')")
  assert OLD.describe().endswith("(a tf.train.Example with one bytes feature 'input_ids')")


@pytest.mark.parametrize("fmt", [CURRENT, OLD], ids=["3", "2"])
def test_join_slices_the_ids_and_flags_of_a_batch(fmt):
  batch = [[2, 5, 3], [2, 3], list(range(2, 66)), [2] * 200]
  flags = [bytes([3]) + bytes([i % 4 for i in range(len(ids) - 2)]) + bytes([3]) for ids in batch]
  data = [fmt.encode(ids, f) for ids, f in zip(batch, flags)]
  counts, ids, joined_flags = fmt.join(data, max_tokens=200)
  assert counts.tolist() == [len(ids) for ids in batch]
  assert np.frombuffer(ids, "<u2").tolist() == sum(batch, [])
  assert joined_flags == (b"".join(flags) if fmt.boundaries else None)
  assert fmt.join([], max_tokens=200)[1] == b""


@pytest.mark.parametrize("bad", [
    b"\x02\x00\x03\x00",  # schema 1
    OLD.encode([2, 5, 3]),  # schema 2
    CURRENT.encode([2] * 201),  # longer than max_tokens
    CURRENT.encode([2, 5, 3]).replace(b"input_ids", b"input_idz"),  # same size, another feature
    CURRENT.encode([2, 5, 3]).replace(b"boundaries", b"boundarief"),
])
def test_join_refuses_a_batch_with_a_foreign_record(bad):
  good = CURRENT.encode([2, 5, 3])
  assert CURRENT.join([good, bad, good], max_tokens=200) is None


def test_shard_names_follow_the_tfds_template():
  assert records.shard_name("train", 3, 12) == "train-00003-of-00012.array_record"
  assert records.shard_name("eval", 7, 123_456) == "eval-000007-of-123456.array_record"


def test_old_schema_directory_says_rerun_prepare(tmp_path):
  (tmp_path / records.MANIFEST).write_text(json.dumps({"schema": "korpat-electra-records/1"}))
  with pytest.raises(KorpatError) as error:
    records.read_manifest(str(tmp_path))
  message = str(error.value)
  assert message.startswith(f"{tmp_path / records.MANIFEST}: records schema 'korpat-electra-records/1'")
  assert "re-run `korpat-jax prepare`" in message and "\n" not in message


def test_schema_2_is_read_without_boundaries_and_refused_where_they_are_needed(tmp_path):
  manifest = {"schema": records.SCHEMA_WITHOUT_BOUNDARIES, "seq_len": 8, "id_dtype": "<u2", "vocab_size": 10,
              "vocab_hash": "x", "special_ids": {}, "splits": {}}
  (tmp_path / records.MANIFEST).write_text(json.dumps(manifest))
  read = records.read_manifest(str(tmp_path))
  assert not read.has_boundaries and read.format == OLD
  with pytest.raises(KorpatError) as error:
    read.require_boundaries("config.objective.masking='eojeol'")
  assert str(error.value) == (
      f"config.objective.masking='eojeol' needs the morpheme and eojeol boundaries of korpat-electra-records/3 "
      f"records; {tmp_path} holds korpat-electra-records/2 records (token masking only): re-run `korpat-jax "
      "prepare` (with --overwrite) to rewrite them")
