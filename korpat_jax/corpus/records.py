"""The on-disk record schema shared by the writer (prepare) and the reader (input pipeline).

One record is one packed ELECTRA example, `[CLS] A [SEP] B [SEP]` (or `[CLS] A [SEP]`), stored unpadded as the raw
little-endian bytes of its token ids in the manifest's `id_dtype` (uint16 when the vocab fits, else uint32).
Token type ids are not stored: they are 0 up to and including the first [SEP] and 1 after it.

A prepared directory holds `{split}-{i:05d}-of-{n:05d}.array_record` shards and `manifest.json`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import numpy as np

from korpat_jax.errors import KorpatError

SCHEMA = "korpat-electra-records/1"
MANIFEST = "manifest.json"


def id_dtype_for(vocab_size: int) -> np.dtype:
  """The smallest unsigned dtype that holds every id of the vocab."""
  return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def encode_record(ids: Sequence[int] | np.ndarray, id_dtype: np.dtype | str) -> bytes:
  return np.asarray(ids, dtype=np.dtype(id_dtype).newbyteorder("<")).tobytes()


def decode_record(data: bytes, id_dtype: np.dtype | str) -> np.ndarray:
  """Record bytes -> unpadded token ids as int32."""
  dtype = np.dtype(id_dtype).newbyteorder("<")
  if len(data) % dtype.itemsize:
    raise ValueError(f"record of {len(data)} bytes is not a whole number of {dtype} ids")
  return np.frombuffer(data, dtype=dtype).astype(np.int32)


def shard_name(split: str, index: int, count: int) -> str:
  return f"{split}-{index:05d}-of-{count:05d}.array_record"


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
    raise KorpatError(f"{path}: schema {raw.get('schema')!r}, this version reads {SCHEMA!r}")
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
