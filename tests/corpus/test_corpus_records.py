"""The record codec: a tf.train.Example with one bytes feature, whose ids the loader slices off its header."""

from __future__ import annotations

import json

import numpy as np
import pytest

from korpat_jax.corpus import records
from korpat_jax.errors import KorpatError

# Payload sizes around the varint boundaries of every proto length (1, 2 and 3 byte lengths).
SIZES = [0, 1, 2, 100, 101, 102, 103, 104, 105, 106, 107, 126, 127, 128, 129, 16_300, 16_383, 16_384, 20_000]


@pytest.mark.parametrize("n", SIZES)
def test_payload_size_inverts_the_header(n):
  record = records.record_header(n) + bytes(range(256)) * (n // 256) + bytes(n % 256)
  assert len(record) == len(records.record_header(n)) + n
  assert records.payload_size(record) == n


def test_header_is_the_protobuf_encoding_of_a_tf_example():
  tf_example_pb2 = pytest.importorskip("tensorflow_datasets.proto").tf_example_pb2
  for n in SIZES:
    payload = bytes([7]) * n
    example = tf_example_pb2.Example()
    example.features.feature[records.FEATURE].bytes_list.value.append(payload)
    assert example.SerializeToString() == records.record_header(n) + payload, n
    parsed = tf_example_pb2.Example.FromString(records.record_header(n) + payload)
    assert parsed.features.feature[records.FEATURE].bytes_list.value == [payload]


@pytest.mark.parametrize("dtype", ["<u2", "<u4"])
def test_encode_decode_round_trip(dtype):
  ids = [2, 0, 999, 65_535, 3] if dtype == "<u2" else [2, 70_000, 2**32 - 1, 3]
  record = records.encode_record(ids, dtype)
  assert record.endswith(np.array(ids, dtype).tobytes())
  decoded = records.decode_record(record, dtype)
  assert decoded.dtype == np.int32 and decoded.astype(np.int64).tolist() == [i if i < 2**31 else i - 2**32
                                                                               for i in ids]


@pytest.mark.parametrize("data,message", [
    (b"\x02\x00\x03\x00", "not a korpat-electra-records/2 record"),  # schema 1: the bare ids
    (b"", "not a korpat-electra-records/2 record"),
    (records.record_header(4).replace(b"input_ids", b"input_idz") + bytes(4), "not a korpat-electra-records/2"),
    (records.record_header(4) + bytes(5), "not a korpat-electra-records/2 record"),  # one byte too many
    (records.record_header(3) + bytes(3), "3-byte payload is not a whole number of uint16 ids"),
])
def test_decode_refuses_what_is_not_a_record(data, message):
  with pytest.raises(ValueError, match=message):
    records.decode_record(data, "<u2")


def test_join_payloads_slices_the_ids_of_a_batch():
  batch = [[2, 5, 3], [2, 3], list(range(2, 66)), [2] * 200]
  data = [records.encode_record(ids, "<u2") for ids in batch]
  sizes, joined = records.join_payloads(data, max_payload=400)
  assert sizes.tolist() == [2 * len(ids) for ids in batch]
  assert np.frombuffer(joined, "<u2").tolist() == sum(batch, [])
  assert records.join_payloads([], max_payload=400)[1] == b""


@pytest.mark.parametrize("bad", [
    b"\x02\x00\x03\x00",  # schema 1
    records.encode_record([2] * 201, "<u2"),  # longer than max_payload
    records.record_header(4).replace(b"input_ids", b"input_idz") + bytes(4),  # same size, another feature
])
def test_join_payloads_refuses_a_batch_with_a_foreign_record(bad):
  good = records.encode_record([2, 5, 3], "<u2")
  assert records.join_payloads([good, bad, good], max_payload=400) is None


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
