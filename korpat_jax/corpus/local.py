"""The single-machine runner: a process pool over all cores, with a progress bar.

1. Scan: each file's documents are counted and hashed (in parallel over files) to settle the eval split.
2. Examples: the main process reads documents in order and hands batches to the pool (at most a few batches in
   flight); results come back in order and go to one intermediate file per input file and split. A finished input
   file leaves a marker, so a rerun skips it.
3. Shards: the shard plan (shard_plan.py) cuts the intermediate files into shards, written in parallel under temporary
   names and renamed; a rerun keeps the finished ones. Then the manifest, and the intermediate files go.
"""

from __future__ import annotations

import collections
import json
import multiprocessing
import os
import shutil
import sys
import time
from typing import Any, Callable, Sequence

from array_record.python import array_record_module
from tqdm import tqdm

from korpat_jax import files as files_lib
from korpat_jax.corpus import manifest as manifest_lib
from korpat_jax.corpus import records, shard_plan, writer
from korpat_jax.corpus.pipeline import EVAL, TRAIN, EvalRule, PrepConfig, ScanSummary, batched_documents
from korpat_jax.corpus.pipeline import process_documents, scan_file
from korpat_jax.corpus.report import FILE_WARNINGS, PrepStats
from korpat_jax.corpus.tokenizing import TokenizerFactory

_worker: dict[str, Any] = {}


def _init_worker(factory: TokenizerFactory, config: PrepConfig) -> None:
  _worker["tokenizer"] = factory()
  _worker["config"] = config


def _scan_task(path: str) -> ScanSummary:
  return scan_file(path, _worker["config"])


def _process_task(batch, rule: EvalRule):
  stats = PrepStats()
  docs = process_documents(batch, _worker["config"], _worker["tokenizer"], rule, stats)
  return docs, stats, len(batch)


def _shard_task(pieces: list[tuple[str, int, int]], path: str, expected: int, id_dtype: str) -> tuple[str, dict]:
  def all_records():
    for spill, start, end in pieces:
      yield from writer.read_records(spill, start, end)
  with writer.write_errors(path):  # one line, raised again in the main process by the pool
    return path, writer.write_shard(path, all_records(), expected, id_dtype)


class _InProcess:
  """Pool stand-in for workers=0: everything runs in this process (benchmarks, debugging)."""

  class _Done:
    def __init__(self, value):
      self._value = value

    def get(self):
      return self._value

  def __init__(self, factory: TokenizerFactory, config: PrepConfig):
    _init_worker(factory, config)

  def apply_async(self, fn: Callable, args: tuple):
    return self._Done(fn(*args))

  def imap_unordered(self, fn: Callable, items):
    return map(fn, items)

  def starmap(self, fn: Callable, items):
    return [fn(*args) for args in items]

  def map(self, fn: Callable, items):
    return [fn(item) for item in items]

  def close(self):
    pass

  def join(self):
    pass


def _log(message: str, quiet: bool) -> None:
  if not quiet:
    print(f"[prepare] {message}", file=sys.stderr, flush=True)


class _SpillSink:
  """Receives one input file's examples in order; writes its intermediate files and its completion marker."""

  def __init__(self, work: str, index: int, path: str):
    self.work, self.index, self.path = work, index, path
    self.stats = PrepStats()
    self.counts = collections.Counter()
    self._writers: dict[str, Any] = {}

  def spill_path(self, split: str) -> str:
    return spill_path(self.work, self.index, split)

  def add(self, docs, stats: PrepStats) -> None:
    self.stats.merge(stats)
    for doc in docs:
      with writer.write_errors(self.spill_path(doc.split)):
        if doc.split not in self._writers:
          self._writers[doc.split] = array_record_module.ArrayRecordWriter(
              self.spill_path(doc.split) + ".tmp", writer.SPILL_OPTIONS)
        for record in doc.records:
          self._writers[doc.split].write(record)
      self.counts[doc.split] += len(doc.records)

  def finish(self, reader_stats: PrepStats) -> dict[str, Any]:
    self.stats.merge(reader_stats)
    for split, w in self._writers.items():
      with writer.write_errors(self.spill_path(split)):
        w.close()
        os.replace(self.spill_path(split) + ".tmp", self.spill_path(split))
    done = {"path": self.path, "counts": dict(self.counts), "stats": self.stats.to_json()}
    marker = marker_path(self.work, self.index)
    with writer.write_errors(marker):
      files_lib.write_json(marker, done, indent=None)
    return done


def spill_path(work: str, index: int, split: str) -> str:
  return os.path.join(work, f"f{index:06d}.{split}.spill")


def marker_path(work: str, index: int) -> str:
  return os.path.join(work, f"f{index:06d}.done.json")


def run_local(files: Sequence[str], config: PrepConfig, tokenizer_factory: TokenizerFactory, out_dir: str, *,
              workers: int | None = None, overwrite: bool = False, quiet: bool = False,
              batch_documents: int = 32) -> dict[str, Any]:
  """Prepare `files` into `out_dir`; returns the manifest. `workers=0` runs everything in this process."""
  started = time.time()
  tokenizer = tokenizer_factory()
  identity = manifest_lib.run_identity(files, config, tokenizer)
  run_fingerprint = manifest_lib.fingerprint(files, config, tokenizer)
  if manifest_lib.claim_output_dir(out_dir, identity, overwrite):
    _log(f"{out_dir} already holds these records", quiet)
    with open(os.path.join(out_dir, records.MANIFEST), encoding="utf-8") as f:
      return json.load(f)
  work = os.path.join(out_dir, manifest_lib.WORK_DIR)
  os.makedirs(work, exist_ok=True)
  if workers is None:
    workers = os.cpu_count() or 1
  if workers == 0:
    pool = _InProcess(tokenizer_factory, config)
  else:
    pool = multiprocessing.get_context("spawn").Pool(workers, _init_worker, (tokenizer_factory, config))
  try:
    _log(f"{len(files)} files, {max(workers, 1)} worker(s)", quiet)
    scan = _scan(pool, files, work)
    rule = EvalRule.from_scan(config.eval_fraction, scan)
    done = _examples(pool, files, config, rule, work, max(workers, 1), scan.documents, batch_documents, quiet)
    stats = PrepStats()
    for entry in done:
      stats.merge(PrepStats.from_json(entry["stats"]))
    shards = _shards(pool, done, config, tokenizer, out_dir, work, quiet)
  except BaseException:
    if workers:
      pool.terminate()  # finished files and shards stay on disk: a rerun resumes
    raise
  pool.close()
  pool.join()
  result = manifest_lib.build_manifest(files=files, config=config, tokenizer=tokenizer, stats=stats, shards=shards,
                                       runner="local", run_fingerprint=run_fingerprint,
                                       tokenizer_dir=getattr(tokenizer_factory, "directory", None))
  manifest_lib.write_manifest(out_dir, result)
  shutil.rmtree(work, ignore_errors=True)
  _log(f"{stats.documents} of {stats.documents_read} documents written -> {dict(stats.examples)} examples "
       f"in {time.time() - started:.1f}s", quiet)
  return result


def _scan(pool, files: Sequence[str], work: str) -> ScanSummary:
  path = os.path.join(work, "scan.json")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      return ScanSummary(**json.load(f))
  total = ScanSummary()
  for part in pool.map(_scan_task, list(files)):
    total = total.merge(part)
  with writer.write_errors(path):
    files_lib.write_json(path, {"documents": total.documents, "eval_documents": total.eval_documents,
                                "min_hash": total.min_hash}, indent=None)
  return total


def _examples(pool, files, config, rule, work, workers, documents, batch_size, quiet) -> list[dict[str, Any]]:
  done: dict[int, dict[str, Any]] = {}
  for index in range(len(files)):
    if os.path.exists(marker_path(work, index)):
      with open(marker_path(work, index), encoding="utf-8") as f:
        entry = json.load(f)
      if "documents_read" in entry["stats"]:  # else written by a version without document counts: redo the file
        done[index] = entry
  bar = tqdm(total=documents, unit="doc", disable=quiet, desc="examples", file=sys.stderr)
  bar.update(sum(PrepStats.from_json(d["stats"]).documents for d in done.values()))
  pending: collections.deque = collections.deque()
  sinks: dict[int, _SpillSink] = {}

  def handle(index: int, item) -> None:
    if isinstance(item, PrepStats):  # end of file: the reader's own counts
      done[index] = sinks.pop(index).finish(item)
      if not quiet:  # at once, not only in the final summary: a long run can be stopped early
        for reason in FILE_WARNINGS:
          for place in item.where.get(reason, []):
            bar.write(f"[prepare] {reason.replace('_', ' ')}: {place}", file=sys.stderr)
      return
    docs, stats, n_docs = item.get()
    sinks[index].add(docs, stats)
    bar.update(n_docs)

  for index, path in enumerate(files):
    if index in done:
      continue
    sinks[index] = _SpillSink(work, index, path)
    reader_stats = PrepStats()
    for batch in batched_documents(path, config, reader_stats, batch_size):
      pending.append((index, pool.apply_async(_process_task, (batch, rule))))
      while len(pending) > 2 * workers:
        handle(*pending.popleft())
    pending.append((index, reader_stats))
  while pending:
    handle(*pending.popleft())
  bar.close()
  return [done[i] for i in range(len(files))]


def _shards(pool, done, config, tokenizer, out_dir, work, quiet) -> dict[str, list[dict[str, Any]]]:
  id_dtype = records.id_dtype_for(tokenizer.vocab_size).str
  tasks, order = [], {}
  for split in (TRAIN, EVAL):
    counts = {i: entry["counts"].get(split, 0) for i, entry in enumerate(done)}
    plan = shard_plan.plan_split(split, counts, config.records_per_shard)
    for shard in range(plan.num_shards):
      pieces = [(spill_path(work, i, split), a, b) for i, a, b in plan.file_ranges(shard, counts)]
      path = os.path.join(out_dir, plan.shard_file(shard))
      tasks.append((pieces, path, plan.shard_size(shard), id_dtype))
      order[path] = (split, shard)
  _log(f"writing {len(tasks)} shard(s)", quiet)
  results = dict(pool.starmap(_shard_task, tasks))
  shards: dict[str, list[dict[str, Any]]] = {TRAIN: [], EVAL: []}
  for path in sorted(results, key=order.get):
    shards[order[path][0]].append(results[path])
  return shards
