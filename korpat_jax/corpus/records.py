"""The on-disk record schema shared by the writer (prepare) and the reader (input pipeline).

One record is one packed ELECTRA example, `[CLS] A [SEP] B [SEP]` (or `[CLS] A [SEP]`), stored unpadded as a
serialized `tf.train.Example` with one feature, `input_ids`: a bytes list holding the raw little-endian bytes of the
token ids in the manifest's `id_dtype` (uint16 when the vocab fits, else uint32). That is what TFDS writes for
`tfds.features.Tensor(shape=(None,), dtype=..., encoding="bytes")`, so a prepared directory is also a TFDS dataset
(tfds_metadata.py writes its dataset_info.json and features.json). The proto bytes before the ids depend only on
their byte count, so our loader checks them against `record_header(n)` and slices the ids off without a protobuf
parse. Token type ids are not stored: they are 0 up to and including the first [SEP] and 1 after it.

A prepared directory holds `{split}-{i:05d}-of-{n:05d}.array_record` shards and `manifest.json`.
Schema 1 (before TFDS) stored the bare id bytes; its directories are refused with "re-run prepare".
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Sequence

import numpy as np

from korpat_jax.errors import KorpatError

SCHEMA = "korpat-electra-records/2"
MANIFEST = "manifest.json"
FEATURE = "input_ids"
# Wire-format tags (field number << 3 | 2 = length-delimited): Example.features = 1, Features.feature (map) = 1,
# map entry key = 1 and value = 2, Feature.bytes_list = 1, BytesList.value = 1.
_FIELD_1, _FIELD_2 = b"\x0a", b"\x12"
_KEY = _FIELD_1 + bytes([len(FEATURE)]) + FEATURE.encode()
_MIN_HEADER = 21  # record_header(0): 16 bytes of tags and key, five one-byte lengths.
_MAX_HEADER = 41  # Five 5-byte lengths (records under 4 GiB).


def id_dtype_for(vocab_size: int) -> np.dtype:
  """The smallest unsigned dtype that holds every id of the vocab."""
  return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def _varint(n: int) -> bytes:
  out = bytearray()
  while n >= 0x80:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)
  return bytes(out)


def _length_delimited(tag: bytes, length: int) -> bytes:
  return tag + _varint(length)


def record_header(payload_bytes: int) -> bytes:
  """The serialized Example{features{feature{"input_ids": Feature{bytes_list{value: [payload]}}}}} up to the
  payload: every proto layer's tag and length, which depend only on the payload's byte count."""
  bytes_list = _length_delimited(_FIELD_1, payload_bytes)
  feature = _length_delimited(_FIELD_1, len(bytes_list) + payload_bytes)
  inner = len(feature) + len(bytes_list) + payload_bytes
  entry = _KEY + _length_delimited(_FIELD_2, inner)
  features = _length_delimited(_FIELD_1, len(entry) + inner)
  example = _length_delimited(_FIELD_1, len(features) + len(entry) + inner)
  return example + features + entry + feature + bytes_list


def encode_record(ids: Sequence[int] | np.ndarray, id_dtype: np.dtype | str) -> bytes:
  payload = np.asarray(ids, dtype=np.dtype(id_dtype).newbyteorder("<")).tobytes()
  return record_header(len(payload)) + payload


def payload_size(data: bytes) -> int:
  """The byte count of the ids in `data`; ValueError if it is not a record of this schema."""
  for header_size in range(_MIN_HEADER, min(_MAX_HEADER, len(data)) + 1):
    n = len(data) - header_size
    header = record_header(n)
    if len(header) == header_size and data.startswith(header):
      return n
  raise ValueError(f"not a {SCHEMA} record (a tf.train.Example with one bytes feature {FEATURE!r})")


def decode_record(data: bytes, id_dtype: np.dtype | str) -> np.ndarray:
  """Record bytes -> unpadded token ids as int32."""
  dtype = np.dtype(id_dtype).newbyteorder("<")
  n = payload_size(data)
  if n % dtype.itemsize:
    raise ValueError(f"{n}-byte payload is not a whole number of {dtype.name} ids")
  return np.frombuffer(data, dtype=dtype, offset=len(data) - n).astype(np.int32)


def record_problem(data: bytes, id_dtype: np.dtype | str, seq_len: int, vocab_size: int) -> str | None:
  """Why `data` is not a usable example of a manifest with these settings (not a record of this schema, no ids or
  more than `seq_len`, an id outside the vocab), or None when it is one."""
  dtype = np.dtype(id_dtype).newbyteorder("<")
  try:
    n = len(decode_record(data, dtype))
  except ValueError as e:
    return str(e)
  if not 1 <= n <= seq_len:
    return f"{n} ids, not 1..{seq_len}"
  if int(np.frombuffer(data, dtype=dtype, offset=len(data) - n * dtype.itemsize).max()) >= vocab_size:
    return f"token id >= vocab size {vocab_size}"
  return None


@functools.lru_cache(maxsize=8)
def _layouts(max_payload: int) -> tuple[np.ndarray, tuple[bytes, ...]]:
  """The header and record size for each payload size 0..max_payload; the sizes increase strictly, so a record's
  size gives its payload size by binary search."""
  headers = tuple(record_header(n) for n in range(max_payload + 1))
  return np.array([len(h) + n for n, h in enumerate(headers)], dtype=np.int64), headers


def join_payloads(data: Sequence[bytes], max_payload: int) -> tuple[np.ndarray, bytes] | None:
  """(payload byte counts, the payloads concatenated) of a batch of records of at most `max_payload` bytes of ids,
  or None if some record is not one (then `decode_record` on each says which and why)."""
  sizes = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
  table, headers = _layouts(max_payload)
  payloads = np.minimum(np.searchsorted(table, sizes), max_payload)
  if not np.array_equal(table[payloads], sizes):
    return None
  views = []
  for record, n, offset in zip(data, payloads.tolist(), (sizes - payloads).tolist()):
    if not record.startswith(headers[n]):
      return None
    views.append(memoryview(record)[offset:])
  return payloads, b"".join(views)


def shard_name(split: str, index: int, count: int) -> str:
  """TFDS's `{SPLIT}-{SHARD_X_OF_Y}.array_record`: 5 digits, more when the count needs them."""
  digits = max(5, len(str(count)))
  return f"{split}-{index:0{digits}d}-of-{count:0{digits}d}.array_record"


@dataclasses.dataclass(frozen=True)
class Manifest:
  """What `manifest.json` of a prepared directory says, with shard paths made absolute."""

  directory: str
  seq_len: int
  id_dtype: np.dtype
  vocab_size: int
  vocab_hash: str
  special_ids: dict[str, int]
  splits: dict[str, list[dict[str, Any]]]  # split -> [{"file", "examples", "tokens", "sha256"}, ...]
  raw: dict[str, Any]

  def shard_paths(self, split: str) -> list[str]:
    if split not in self.splits:
      raise KorpatError(f"{os.path.join(self.directory, MANIFEST)}: no split {split!r} "
                        f"(has {sorted(self.splits)})")
    return [os.path.join(self.directory, s["file"]) for s in self.splits[split]]

  def num_examples(self, split: str) -> int:
    return sum(int(s["examples"]) for s in self.splits.get(split, []))


def read_manifest(directory: str) -> Manifest:
  path = os.path.join(directory, MANIFEST)
  if not os.path.exists(path):
    raise KorpatError(f"{path}: no manifest; run `korpat-jax prepare` to create the records")
  try:
    with open(path, encoding="utf-8") as f:
      raw = json.load(f)
  except json.JSONDecodeError as e:
    raise KorpatError(f"{path}: not valid JSON ({e})") from None
  if raw.get("schema") != SCHEMA:
    raise KorpatError(f"{path}: records schema {raw.get('schema')!r}, this version reads {SCHEMA!r}; "
                      "re-run `korpat-jax prepare` (with --overwrite) to rewrite the records")
  try:
    return Manifest(
        directory=os.path.abspath(directory),
        seq_len=int(raw["seq_len"]),
        id_dtype=np.dtype(raw["id_dtype"]),
        vocab_size=int(raw["vocab_size"]),
        vocab_hash=str(raw["vocab_hash"]),
        special_ids={k: int(v) for k, v in raw["special_ids"].items()},
        splits={name: list(split["shards"]) for name, split in raw["splits"].items()},
        raw=raw,
    )
  except KeyError as e:
    raise KorpatError(f"{path}: missing key {e}") from None
