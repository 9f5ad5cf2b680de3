"""ArrayRecord shard files: written under a temporary name, renamed when complete, reused when already there.

A write that fails (a full disk, a read-only or vanished directory) stops `prepare` with one line naming the file and
the free space (`write_errors`), never a traceback; what was finished stays, so the rerun resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from typing import Any, Iterable, Iterator, Optional

import numpy as np
from array_record.python import array_record_module

from korpat_jax import files
from korpat_jax.corpus import records
from korpat_jax.errors import KorpatError

# ArrayRecord's (Riegeli's) writer reports a failed system call as a RuntimeError:
# "write() failed: No space left on device; writing PATH; at byte N; Failed to close chunk_writer".
_RIEGELI_IO = re.compile(r"\w+\(\) failed: (?P<reason>[^;]+); \w+ (?P<path>[^;]+)")
_TEMPORARY = re.compile(r"\.tmp(-\d+)?$")  # files.atomic_path's and the intermediate files' temporary names

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


def is_temporary(name: str) -> bool:
  """A temporary name: files.atomic_path's `NAME.tmp-PID`, or an intermediate file's `NAME.tmp`."""
  return bool(_TEMPORARY.search(name))


def final_name(name: str) -> str:
  """The name a temporary file becomes when it is complete."""
  return _TEMPORARY.sub("", name)


def write_error(error: BaseException, path: str) -> Optional[KorpatError]:
  """`error` as one line naming the file it failed on (its own, else `path`) and the free space; None when it is
  not a failed read or write (then it is a bug to report as it is)."""
  if isinstance(error, OSError):
    reason, where = error.strerror or str(error), error.filename or path
  elif isinstance(error, RuntimeError) and (found := _RIEGELI_IO.search(str(error))):
    reason, where = found["reason"], found["path"]
  else:
    return None
  where = final_name(os.fspath(where))  # the file being written, not its temporary name
  return KorpatError(f"{where}: {reason} ({files.free_space(where)}); once fixed, rerun the same command: it resumes "
                     "where this one stopped")


@contextlib.contextmanager
def write_errors(path: str) -> Iterator[None]:
  """Turns a failed read or write of `path` (or of a file named by the error) into `write_error`'s one line."""
  try:
    yield
  except (OSError, RuntimeError) as e:
    error = write_error(e, path)
    if error is None:
      raise
    raise error from None


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
  fmt = records.RecordFormat(np.dtype(id_dtype))
  try:
    n = reader.num_records()
    tokens = sum(map(fmt.token_count, reader.read(0, n))) if n else 0
  finally:
    reader.close()
  return {"file": os.path.basename(path), "examples": n, "tokens": tokens, "sha256": sha256_file(path)}


def write_shard(path: str, encoded: Iterable[bytes], expected: int, id_dtype: np.dtype) -> dict[str, Any]:
  """Write one shard unless a complete one (right record count) is already at `path`; returns its manifest entry."""
  if os.path.exists(path):
    try:
      info = shard_info(path, id_dtype)
    except (ValueError, RuntimeError):  # not records of this schema, or unreadable: rewritten
      info = {"examples": None}
    if info["examples"] == expected:
      return info
  written = write_records(path, encoded, SHARD_OPTIONS)
  if written != expected:
    raise RuntimeError(f"{path}: wrote {written} records, the plan says {expected}")
  return shard_info(path, id_dtype)
