"""Random access to the records of a prepared split by global key (one ArrayRecord reader per shard), the check of
every shard against manifest.json, and the one-line errors (with their fixes) that name a damaged shard or record."""

from __future__ import annotations

import bisect
import os
import threading
from typing import Any, Optional

import numpy as np
from array_record.python import array_record_module

from korpat_jax.corpus import records
from korpat_jax.errors import KorpatError

# The reader reads only the records asked for: read-ahead would fetch the (shuffled-away) neighbours.
_READER_OPTIONS = "readahead_buffer_size:0"


class ShardReader:
  """Random access to the records of a split by global key, with errors that name the shard and record."""

  def __init__(self, paths: list[str], counts: list[int]):
    self.paths = paths
    self.starts = [0, *np.cumsum(counts).tolist()]
    self._readers: list[Any] = [None] * len(paths)
    self._lock = threading.Lock()

  def __getstate__(self) -> dict[str, Any]:  # Readers are reopened in each worker process.
    return {"paths": self.paths, "starts": self.starts}

  def __setstate__(self, state: dict[str, Any]) -> None:
    self.__dict__.update(state)
    self._readers = [None] * len(self.paths)
    self._lock = threading.Lock()

  def locate(self, key: int) -> tuple[str, int]:
    shard = bisect.bisect_right(self.starts, key) - 1
    return self.paths[shard], key - self.starts[shard]

  def _reader(self, shard: int) -> Any:
    with self._lock:  # One reader per shard, shared by the prefetch threads (its reads are thread-safe).
      if self._readers[shard] is None:
        self._readers[shard] = array_record_module.ArrayRecordReader(self.paths[shard], _READER_OPTIONS)
      return self._readers[shard]

  def read(self, keys: np.ndarray, skip_bad: bool = False) -> list[Optional[bytes]]:
    """The records of `keys` (global, in any order), in that order. A record that cannot be read (a damaged chunk)
    raises a one-line KorpatError naming it, or with `skip_bad` comes back as None."""
    out: list[Optional[bytes]] = [b""] * len(keys)
    shards = np.searchsorted(self.starts, keys, side="right") - 1
    for shard in np.unique(shards):
      rows = np.flatnonzero(shards == shard)
      positions = (keys[rows] - self.starts[shard]).tolist()
      try:
        data = self._reader(shard).read(positions)
      except Exception as e:  # noqa: BLE001 - the C++ reader raises RuntimeError/ValueError/OSError.
        if not skip_bad:
          raise self._corrupt_error(int(shard), positions, e) from None
        data = [self._read_or_none(int(shard), position) for position in positions]
      for row, record in zip(rows.tolist(), data):
        out[row] = record
    return out

  def _read_or_none(self, shard: int, position: int) -> Optional[bytes]:
    try:
      return self._reader(shard).read([position])[0]
    except Exception:  # noqa: BLE001
      return None

  def _corrupt_error(self, shard: int, positions: list[int], error: Exception) -> KorpatError:
    """Re-reads one record at a time to name the first bad one."""
    for position in sorted(positions):
      try:
        self._reader(shard).read([position])
      except Exception as e:  # noqa: BLE001
        return KorpatError(f"{self.paths[shard]}: record {position}: unreadable ArrayRecord data ({_line(e)})")
    return KorpatError(f"{self.paths[shard]}: unreadable ArrayRecord data ({_line(error)})")


def _line(error: Exception) -> str:
  return " ".join(str(error).split()) or type(error).__name__


def repair_hint(records_dir: str) -> str:
  """What to do about a damaged shard: the end of the one line that names it."""
  return (f"check every shard with `korpat-jax verify --records {records_dir}` and rewrite the damaged ones by "
          "re-running the same `korpat-jax prepare` command")


def bad_record_hint(records_dir: str) -> str:
  """What to do about a bad record: repair the records, or skip such records."""
  return f"{repair_hint(records_dir)}, or skip bad records with --config.data.on_bad_record=skip"


def open_split(manifest: records.Manifest, split: str) -> ShardReader:
  """Checks every shard of `split` against the manifest (a truncated file reads as 0 records)."""
  paths = manifest.shard_paths(split)
  counts = [int(s["examples"]) for s in manifest.splits[split]]
  for path, count in zip(paths, counts):
    if not os.path.exists(path):
      raise KorpatError(f"{path}: shard listed in {records.MANIFEST} is missing; {repair_hint(manifest.directory)}")
    try:
      reader = array_record_module.ArrayRecordReader(path, _READER_OPTIONS)
      found = reader.num_records() if reader.ok() else 0
      reader.close()
    except Exception:  # noqa: BLE001 - a damaged file fails to close with a bare RuntimeError.
      found = 0
    if found != count:
      raise KorpatError(f"{path}: holds {found} records, {records.MANIFEST} says {count} "
                        f"(truncated, corrupt or not an ArrayRecord file); {repair_hint(manifest.directory)}")
  if not sum(counts):
    raise KorpatError(f"{os.path.join(manifest.directory, records.MANIFEST)}: split {split!r} has no examples")
  return ShardReader(paths, counts)
