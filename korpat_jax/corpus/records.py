"""The on-disk record schema shared by the writer (prepare) and the reader (input pipeline).

One record is one packed ELECTRA example, `[CLS] A [SEP] B [SEP]` (or `[CLS] A [SEP]`), stored unpadded as a
serialized `tf.train.Example` with two bytes features, in key order (protobuf's deterministic order):
`boundaries`, one uint8 per token (korpat_jax.boundaries: bit 0 starts a morpheme, bit 1 an eojeol; what whole-unit
masking needs), and `input_ids`, the raw little-endian bytes of the token ids in the manifest's `id_dtype` (uint16
when the vocab fits, else uint32). That is what TFDS writes for `tfds.features.Tensor(shape=(None,), dtype=...,
encoding="bytes")`, so a prepared directory is also a TFDS dataset (tfds_metadata.py writes its dataset_info.json
and features.json). The proto bytes around the two payloads depend only on the token count, so our loader checks
them (`RecordFormat`) and slices the payloads off without a protobuf parse. Token type ids are not stored: they are
0 up to and including the first [SEP] and 1 after it.

A prepared directory holds `{split}-{i:05d}-of-{n:05d}.array_record` shards and `manifest.json`.
Schema 3 added the boundaries. Schema 2 (input_ids only) is still read, for token masking; schema 1 (before TFDS,
bare id bytes) is refused with "re-run prepare".
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Optional, Sequence

import numpy as np

from korpat_jax import boundaries
from korpat_jax.errors import KorpatError

SCHEMA = "korpat-electra-records/3"
SCHEMA_WITHOUT_BOUNDARIES = "korpat-electra-records/2"  # read for token masking only
MANIFEST = "manifest.json"
FEATURE = "input_ids"
BOUNDARIES = boundaries.FIELD
# Wire-format tags (field number << 3 | 2 = length-delimited): Example.features = 1, Features.feature (map) = 1,
# map entry key = 1 and value = 2, Feature.bytes_list = 1, BytesList.value = 1.
_FIELD_1, _FIELD_2 = b"\x0a", b"\x12"
_SPARE_HEADER = 80  # the most header bytes of a record (two features, 5-byte lengths) is under this


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


def _entry_header(key: str, payload_bytes: int) -> bytes:
  """One Features map entry {key: Feature{bytes_list{value: [payload]}}} up to its payload: every proto layer's tag
  and length, which depend only on the payload's byte count."""
  bytes_list = _FIELD_1 + _varint(payload_bytes)
  feature = _FIELD_1 + _varint(len(bytes_list) + payload_bytes)
  value = _FIELD_2 + _varint(len(feature) + len(bytes_list) + payload_bytes)
  key_part = _FIELD_1 + _varint(len(key)) + key.encode()
  inner = len(key_part) + len(value) + len(feature) + len(bytes_list) + payload_bytes
  return _FIELD_1 + _varint(inner) + key_part + value + feature + bytes_list


@dataclasses.dataclass(frozen=True)
class RecordFormat:
  """The byte layout of one schema's records for one id dtype: `headers(n)[0] + flags + headers(n)[1] + ids` with
  the boundaries (schema 3), `headers(n)[0] + ids` without (schema 2), for a record of n tokens."""

  id_dtype: np.dtype
  boundaries: bool = True

  def __post_init__(self):
    object.__setattr__(self, "id_dtype", np.dtype(self.id_dtype).newbyteorder("<"))

  @property
  def schema(self) -> str:
    return SCHEMA if self.boundaries else SCHEMA_WITHOUT_BOUNDARIES

  def describe(self) -> str:
    features = f"the bytes features {BOUNDARIES!r} and {FEATURE!r}" if self.boundaries else \
        f"one bytes feature {FEATURE!r}"
    return f"a {self.schema} record (a tf.train.Example with {features})"

  @functools.lru_cache(maxsize=4096)
  def headers(self, n: int) -> tuple[bytes, ...]:
    payloads = [(BOUNDARIES, n)] * self.boundaries + [(FEATURE, n * self.id_dtype.itemsize)]
    entries = [_entry_header(key, size) for key, size in payloads]
    features = sum(len(entry) + size for entry, (_, size) in zip(entries, payloads))
    return (_FIELD_1 + _varint(features) + entries[0], *entries[1:])

  def size(self, n: int) -> int:
    """The byte count of a record of n tokens (it grows strictly with n)."""
    return sum(map(len, self.headers(n))) + n * (self.id_dtype.itemsize + self.boundaries)

  def encode(self, ids: Sequence[int] | np.ndarray, flags: Optional[bytes | np.ndarray] = None) -> bytes:
    """The record of `ids`; `flags` (one uint8 per id) default to every token a unit of its own."""
    data = np.asarray(ids, dtype=self.id_dtype).tobytes()
    n = len(data) // self.id_dtype.itemsize
    headers = self.headers(n)
    if not self.boundaries:
      return headers[0] + data
    if flags is None:
      flags = bytes([boundaries.UNIT]) * n
    elif not isinstance(flags, bytes):
      flags = np.asarray(flags, boundaries.DTYPE).tobytes()
    if len(flags) != n:
      raise ValueError(f"{len(flags)} boundary flags for {n} ids")
    return headers[0] + flags + headers[1] + data

  def token_count(self, data: bytes) -> int:
    """The number of tokens of the record `data`; ValueError if it is not a record of this format."""
    per_token = self.id_dtype.itemsize + self.boundaries
    for n in range(max(0, (len(data) - _SPARE_HEADER) // per_token), len(data) // per_token + 1):
      if self.size(n) == len(data) and self._matches(data, n):
        return n
    raise ValueError(f"not {self.describe()}")

  def _matches(self, data: bytes, n: int) -> bool:
    headers = self.headers(n)
    return data.startswith(headers[0]) and (not self.boundaries or data.startswith(headers[1], len(headers[0]) + n))

  def decode(self, data: bytes) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Record bytes -> (unpadded token ids as int32, their boundary flags as uint8, or None without them)."""
    n = self.token_count(data)
    ids = np.frombuffer(data, dtype=self.id_dtype, offset=len(data) - n * self.id_dtype.itemsize).astype(np.int32)
    if not self.boundaries:
      return ids, None
    start = len(self.headers(n)[0])
    return ids, np.frombuffer(data, dtype=boundaries.DTYPE, count=n, offset=start).copy()

  def problem(self, data: bytes, seq_len: int, vocab_size: int) -> str | None:
    """Why `data` is not a usable example of a manifest with these settings (not a record of this format, no ids
    or more than `seq_len`, an id outside the vocab), or None when it is one."""
    try:
      n = self.token_count(data)
    except ValueError as e:
      return str(e)
    if not 1 <= n <= seq_len:
      return f"{n} ids, not 1..{seq_len}"
    ids = np.frombuffer(data, dtype=self.id_dtype, offset=len(data) - n * self.id_dtype.itemsize)
    if int(ids.max()) >= vocab_size:
      return f"token id >= vocab size {vocab_size}"
    return None

  def join(self, data: Sequence[bytes], max_tokens: int) -> tuple[np.ndarray, bytes, Optional[bytes]] | None:
    """(token counts, the ids' bytes concatenated, the flags concatenated or None) of a batch of records of at most
    `max_tokens` tokens, or None if some record is not one (then `problem` on each says which and why)."""
    sizes = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
    table, headers = _layouts(self, max_tokens)
    counts = np.minimum(np.searchsorted(table, sizes), max_tokens)
    if not np.array_equal(table[counts], sizes):
      return None
    itemsize, ids, flags = self.id_dtype.itemsize, [], []
    for record, n in zip(data, counts.tolist()):
      head = headers[n]
      if not record.startswith(head[0]):
        return None
      view = memoryview(record)
      if self.boundaries:
        if not record.startswith(head[1], len(head[0]) + n):
          return None
        flags.append(view[len(head[0]):len(head[0]) + n])
      ids.append(view[len(record) - n * itemsize:])
    return counts, b"".join(ids), b"".join(flags) if self.boundaries else None


@functools.lru_cache(maxsize=8)
def _layouts(fmt: RecordFormat, max_tokens: int) -> tuple[np.ndarray, tuple[tuple[bytes, ...], ...]]:
  """The record size and headers for each token count 0..max_tokens; the sizes increase strictly, so a record's size
  gives its token count by binary search."""
  return np.array([fmt.size(n) for n in range(max_tokens + 1)], np.int64), tuple(map(fmt.headers,
                                                                                      range(max_tokens + 1)))


def encode_record(ids: Sequence[int] | np.ndarray, id_dtype: np.dtype | str,
                  flags: Optional[bytes | np.ndarray] = None) -> bytes:
  """A record of the current schema (flags default to every token a unit of its own)."""
  return RecordFormat(np.dtype(id_dtype)).encode(ids, flags)


def decode_record(data: bytes, id_dtype: np.dtype | str) -> np.ndarray:
  """A record of the current schema -> its unpadded token ids as int32."""
  return RecordFormat(np.dtype(id_dtype)).decode(data)[0]


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

  @property
  def schema(self) -> str:
    return self.raw["schema"]

  @property
  def has_boundaries(self) -> bool:
    return self.schema != SCHEMA_WITHOUT_BOUNDARIES

  @property
  def format(self) -> RecordFormat:
    return RecordFormat(self.id_dtype, self.has_boundaries)

  def require_boundaries(self, what: str) -> None:
    """One line when the records hold no morpheme/eojeol boundaries (schema 2), which `what` needs."""
    if not self.has_boundaries:
      raise KorpatError(f"{what} needs the morpheme and eojeol boundaries of {SCHEMA} records; {self.directory} "
                        f"holds {self.schema} records (token masking only): re-run `korpat-jax prepare` (with "
                        "--overwrite) to rewrite them")

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
  if raw.get("schema") not in (SCHEMA, SCHEMA_WITHOUT_BOUNDARIES):
    raise KorpatError(f"{path}: records schema {raw.get('schema')!r}, this version reads {SCHEMA!r} (and "
                      f"{SCHEMA_WITHOUT_BOUNDARIES!r} for token masking); re-run `korpat-jax prepare` (with "
                      "--overwrite) to rewrite the records")
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
