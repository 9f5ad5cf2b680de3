"""ArrayRecord shard files: written under a temporary name, renamed when complete, reused when already there."""

from __future__ import annotations

import hashlib
import os
from typing import Any, Iterable

import numpy as np
from array_record.python import array_record_module

from korpat_jax import files
from korpat_jax.corpus import records

# One record per chunk: Grain reads single records at random; larger groups would decode neighbours for nothing.
SHARD_OPTIONS = "group_size:1"
# Intermediate files are read sequentially, so they group and compress.
SPILL_OPTIONS = "group_size:256"


def sha256_file(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    while block := f.read(1 << 20):
      digest.update(block)
  return digest.hexdigest()


def write_records(path: str, encoded: Iterable[bytes], options: str) -> int:
  """Write the `encoded` records to `path` atomically (temp name, then rename); returns the count."""
  count = 0
  with files.atomic_path(path) as tmp:
    writer = array_record_module.ArrayRecordWriter(tmp, options)
    try:
      for record in encoded:
        writer.write(record)
        count += 1
    finally:
      writer.close()
  return count


def read_records(path: str, start: int = 0, end: int | None = None) -> list[bytes]:
  reader = array_record_module.ArrayRecordReader(path)
  try:
    end = reader.num_records() if end is None else end
    return list(reader.read(start, end)) if end > start else []
  finally:
    reader.close()


def shard_info(path: str, id_dtype: np.dtype) -> dict[str, Any]:
  """The manifest entry of a finished shard, read back from disk."""
  reader = array_record_module.ArrayRecordReader(path)
  try:
    n = reader.num_records()
    nbytes = sum(records.payload_size(r) for r in reader.read(0, n)) if n else 0
  finally:
    reader.close()
  return {"file": os.path.basename(path), "examples": n, "tokens": nbytes // np.dtype(id_dtype).itemsize,
          "sha256": sha256_file(path)}


def write_shard(path: str, encoded: Iterable[bytes], expected: int, id_dtype: np.dtype) -> dict[str, Any]:
  """Write one shard unless a complete one (right record count) is already at `path`; returns its manifest entry."""
  if os.path.exists(path):
    try:
      info = shard_info(path, id_dtype)
    except ValueError:  # not records of this schema: rewritten
      info = {"examples": None}
    if info["examples"] == expected:
      return info
  written = write_records(path, encoded, SHARD_OPTIONS)
  if written != expected:
    raise RuntimeError(f"{path}: wrote {written} records, the plan says {expected}")
  return shard_info(path, id_dtype)
