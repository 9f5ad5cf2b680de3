"""`korpat-jax verify --records DIR`: every shard of a prepared directory against its manifest.json.

`prepare` records each shard's sha256 and record count in the manifest. A shard whose bytes changed since (a flipped
bit on disk, a bad copy, a half-finished rsync) is found here whole, before a training run reaches its bad record.
A shard whose sha256 differs is then read record by record to say which records are unreadable or are not records
of the manifest. One line per bad shard, a summary with the throughput; the exit code is 1 on any problem.

    korpat-jax verify --records records
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import time
from typing import Any, Optional, Sequence

from array_record.python import array_record_module

from korpat_jax.corpus import records, writer

_READ_BATCH = 1024  # records read at a time when a damaged shard is read through


@dataclasses.dataclass(frozen=True)
class ShardCheck:
  path: str
  nbytes: int
  problem: Optional[str]  # None: the shard is what the manifest says


@dataclasses.dataclass(frozen=True)
class Report:
  directory: str
  checks: list[ShardCheck]
  seconds: float

  @property
  def bad(self) -> list[ShardCheck]:
    return [c for c in self.checks if c.problem is not None]

  @property
  def nbytes(self) -> int:
    return sum(c.nbytes for c in self.checks)

  def summary(self) -> str:
    rate = self.nbytes / 1e6 / max(self.seconds, 1e-9)
    measured = f"{self.nbytes / 1e6:,.1f} MB in {self.seconds:.2f}s ({rate:,.0f} MB/s)"
    if not self.bad:
      return f"{self.directory}: all {len(self.checks)} shards match {records.MANIFEST}; {measured}"
    return (f"{self.directory}: {len(self.bad)} of {len(self.checks)} shards do not match {records.MANIFEST}; "
            f"{measured}; rewrite them by re-running the same `korpat-jax prepare` command")


def _count_records(path: str) -> int:
  """The records the shard's index lists; 0 when it cannot be opened (a truncated or overwritten index)."""
  try:
    reader = array_record_module.ArrayRecordReader(path, "readahead_buffer_size:0")
    count = reader.num_records() if reader.ok() else 0
    reader.close()
    return count
  except Exception:  # noqa: BLE001 - a damaged file fails to open or close with a bare RuntimeError.
    return 0


def bad_records(path: str, manifest: records.Manifest) -> tuple[int, Optional[str]]:
  """(how many records of `path` are unreadable or not usable examples, the first of them as "record N: why")."""
  reader = array_record_module.ArrayRecordReader(path, "readahead_buffer_size:0")
  bad, first = 0, None
  try:
    n = reader.num_records()
    for start in range(0, n, _READ_BATCH):
      positions = list(range(start, min(n, start + _READ_BATCH)))
      try:
        batch: list[Any] = list(reader.read(positions))
      except Exception:  # noqa: BLE001 - a damaged chunk: read one at a time to find it
        batch = []
        for position in positions:
          try:
            batch.append(reader.read([position])[0])
          except Exception as e:  # noqa: BLE001
            batch.append(e)
      for position, record in zip(positions, batch):
        if isinstance(record, Exception):
          what: Optional[str] = f"unreadable ArrayRecord data ({' '.join(str(record).split())[:200]})"
        else:
          what = manifest.format.problem(record, manifest.seq_len, manifest.vocab_size)
        if what is not None:
          bad += 1
          first = first or f"record {position}: {what}"
  finally:
    reader.close()
  return bad, first


def check_shard(path: str, entry: dict[str, Any], manifest: records.Manifest) -> ShardCheck:
  """One shard against its manifest entry ({"file", "examples", "sha256", ...})."""
  if not os.path.exists(path):
    return ShardCheck(path, 0, f"missing (listed in {records.MANIFEST})")
  nbytes, digest = os.path.getsize(path), writer.sha256_file(path)
  found, expected, want = _count_records(path), int(entry["examples"]), entry.get("sha256")
  problems = []
  if found != expected:
    problems.append(f"holds {found} records, {records.MANIFEST} says {expected}")
  if not want:
    problems.append(f"{records.MANIFEST} holds no sha256 to check it against")
  elif digest != want:
    problems.append(f"sha256 {digest[:12]}... differs from {records.MANIFEST}'s {want[:12]}...")
    if found:
      bad, first = bad_records(path, manifest)
      problems.append(f"{bad} of {found} records bad (first: {first})" if bad
                      else "every record reads and decodes: the changed bytes are outside the records")
  return ShardCheck(path, nbytes, "; ".join(problems) or None)


def verify_records(directory: str, workers: Optional[int] = None) -> Report:
  """Every shard of every split of `directory` (hashed in `workers` threads: hashlib releases the GIL)."""
  manifest = records.read_manifest(directory)
  shards = [(path, entry) for split in sorted(manifest.splits)
            for path, entry in zip(manifest.shard_paths(split), manifest.splits[split])]
  started = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
    checks = list(pool.map(lambda shard: check_shard(shard[0], shard[1], manifest), shards))
  return Report(manifest.directory, checks, time.perf_counter() - started)


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="korpat-jax verify", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--records", required=True, metavar="DIR", help="a directory written by `korpat-jax prepare`")
  p.add_argument("--workers", type=int, default=None, help="threads that hash shards (default: min(8, cores))")
  return p


def main(argv: Sequence[str]) -> int:
  args = build_parser().parse_args(list(argv))
  report = verify_records(args.records, args.workers)
  for check in report.bad:
    print(f"{check.path}: {check.problem}")
  print(report.summary())
  return 1 if report.bad else 0
