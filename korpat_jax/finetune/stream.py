"""`korpat-jax predict` on raw documents (korpat_jax.finetune.raw_input), streamed: memory stays flat whatever the
length of the input, and an interrupted run resumes where it stopped.

    chunks of lines -> tokenizer worker processes (task.raw_example + task.featurize) -> features sorted by length
    -> batches padded to a few length buckets -> the run's jitted eval step -> task.prediction_lines -> OUT.partial

The workers tokenize the next chunks while this process runs the model on the current one. Lines are written in
input order, one per input line (an unusable line is {"id", "error", "where", "detail"}), to OUT.partial, with
OUT.partial.json saying how many lines are done; the finished file is renamed to OUT. A rerun with the same input,
run and checkpoint continues after the last complete chunk; anything else leaves the partial file alone and says
so in one line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import jax
import ml_collections
import numpy as np

from korpat_jax import files, input_pipeline
from korpat_jax.errors import KorpatError
from korpat_jax.finetune import raw_input
from korpat_jax.finetune.features import FEATURE_INDEX, file_fingerprint, pad_and_stack
from korpat_jax.finetune.raw_input import RawDoc, Unusable
from korpat_jax.finetune.report import DataReport
from korpat_jax.metrics import format_duration
from korpat_jax.tasks.finetuning import FineTuningTask
from korpat_jax.tokenizer.pool import WorkerPool

log = logging.getLogger("korpat_jax")

CHUNK_LINES = 1024               # input lines per worker task: the unit of order, progress and resume
LENGTH_BUCKETS = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512)  # padded lengths (few shapes: few compilations)
PROGRESS_SECONDS = 10.0
PARTIAL_SUFFIX, STATE_SUFFIX = ".partial", ".partial.json"
EvalFn = Callable[[Any, Any, jax.Array], Any]


@dataclasses.dataclass
class Chunk:
  """One chunk's work from a worker: per input line the index of its example or its error line; the examples'
  metadata and features (for `task.prediction_lines`); the featurizer's report; where the next line starts."""

  slots: list[Any]                          # int (example index) or dict (error line), one per input line
  meta: list[dict]
  features: list[dict]                      # every feature of every example, "example" = its example index
  report: dict
  end_line: int
  end_offset: int


@dataclasses.dataclass
class Summary:
  lines: int = 0          # output lines written by this call (resumed lines not counted)
  errors: int = 0
  resumed_at: int = 0
  seconds: float = 0.0
  report: DataReport = dataclasses.field(default_factory=lambda: DataReport(name="predict"))


# -- worker side ------------------------------------------------------------------------------------------------------

def featurizer(config_json: str, workdir: str) -> FineTuningTask:
  """A worker's state: the run's task with its tokenizer and labels (no model)."""
  from korpat_jax.tasks import make_task
  task = make_task(ml_collections.ConfigDict(json.loads(config_json)), workdir)
  task.load_featurizer()
  return task


def featurize_chunk(task: FineTuningTask, item: tuple[list[RawDoc], int, int]) -> Chunk:
  docs, end_line, end_offset = item
  slots: list[Any] = []
  examples = []
  for doc in docs:
    try:
      if doc.error:
        raise Unusable(doc.error, doc.detail)
      example = task.raw_example(doc)
    except Unusable as bad:
      slots.append({"id": doc.id, "error": bad.reason, "where": doc.where, "detail": bad.detail})
      continue
    slots.append(len(examples))
    examples.append(example)
  report = DataReport()
  meta, features = [], []
  for m, feats in task.featurize(examples, task.labels, report, "predict", labelled=False):
    meta.append(m)
    features.extend(feats)
  return Chunk(slots, meta, features, report.to_dict(), end_line, end_offset)


def _chunks(docs: Iterator[tuple[RawDoc, int]], lines: int) -> Iterator[tuple[list[RawDoc], int, int]]:
  batch: list[RawDoc] = []
  offset = 0
  for doc, offset in docs:
    batch.append(doc)
    if len(batch) == lines:
      yield batch, doc.line + 1, offset
      batch = []
  if batch:
    yield batch, batch[-1].line + 1, offset


# -- model side -------------------------------------------------------------------------------------------------------

def bucket_length(length: int, seq_len: int) -> int:
  """The padded length of a batch whose longest feature has `length` tokens."""
  return next((b for b in LENGTH_BUCKETS if length <= b < seq_len), seq_len)


def bucket_rows(rows: int, batch_size: int, multiple: int) -> int:
  """Rows of a batch for a chunk of `rows` features: batch_size, or for a chunk smaller than one batch (a short
  input) the power of two times the device count that holds them (one shape more, not one per chunk)."""
  size = multiple
  while size < rows:
    size *= 2
  return min(size, batch_size)


def run_model(task: FineTuningTask, chunk: Chunk, eval_fn: EvalFn, params: Any, batch_size: int,
              batch_sharding: jax.sharding.Sharding, rng: jax.Array) -> list[tuple[dict, Any]]:
  """(batch, outputs) of every feature of `chunk`: sorted by length, batched, padded to a bucket, all dispatched
  before the first result is fetched."""
  seq_len = task.config.train.seq_len
  seq_pad, fixed = task.fields()
  order = sorted(range(len(chunk.features)), key=lambda i: len(chunk.features[i]["input_ids"]))
  devices = jax.device_count()
  pending = []
  for start in range(0, len(order), batch_size):
    picked = order[start:start + batch_size]
    rows = bucket_rows(len(order), batch_size, devices)
    length = bucket_length(max(len(chunk.features[i]["input_ids"]) for i in picked), seq_len)
    features = [chunk.features[i] for i in picked] + [None] * (rows - len(picked))
    batch = pad_and_stack(features, length, seq_pad, fixed)
    batch[FEATURE_INDEX] = np.array(picked + [-1] * (rows - len(picked)), np.int32)
    pending.append((batch, eval_fn(params, input_pipeline.to_global(batch, batch_sharding), rng)))
  return [(batch, jax.device_get(out)) for batch, out in pending]


# -- output -----------------------------------------------------------------------------------------------------------

class PartialOutput:
  """OUT.partial and its state OUT.partial.json ({"identity", "lines", "input_offset", "bytes"}); the finished file
  is renamed to OUT. A remote OUT keeps its partial file in the local cache (korpat_jax.files.local_cache_dir)."""

  def __init__(self, output: str, identity: dict[str, Any]):
    self.output, self.identity = output, identity
    base = output if not files.is_remote(output) else \
        os.path.join(files.local_cache_dir(output, "predict"), os.path.basename(output))
    self.path, self.state_path = base + PARTIAL_SUFFIX, base + STATE_SUFFIX
    self._file = None

  def open(self) -> tuple[int, int]:
    """(input lines done, byte offset of the next input line): (0, 0) unless a matching partial file is there."""
    os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
    state = _read_state(self.state_path)
    if state is not None and os.path.isfile(self.path):
      if state.get("identity") != self.identity:
        differs = sorted(k for k in self.identity if state.get("identity", {}).get(k) != self.identity[k])
        raise KorpatError(f"{self.path}: an unfinished prediction of another {' / '.join(differs) or 'run'} is "
                          "there; delete it (and its .json) or write --output elsewhere")
      self._file = open(self.path, "r+b")
      self._file.truncate(int(state["bytes"]))   # lines written after the last state: written again
      self._file.seek(0, os.SEEK_END)
      return int(state["lines"]), int(state["input_offset"])
    self._file = open(self.path, "wb")
    return 0, 0

  def append(self, lines: Sequence[dict], lines_done: int, input_offset: int) -> None:
    """Writes `lines` and then the state that counts them (so a crash between the two only repeats lines)."""
    self._file.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8"))
    self._file.flush()
    os.fsync(self._file.fileno())
    state = {"identity": self.identity, "lines": lines_done, "input_offset": input_offset,
             "bytes": self._file.tell()}
    with files.atomic_open(self.state_path) as f:
      json.dump(state, f)

  def finish(self) -> None:
    self._file.close()
    if not files.is_remote(self.output):
      os.makedirs(os.path.dirname(os.path.abspath(self.output)), exist_ok=True)
    files.rename(self.path, self.output)
    os.remove(self.state_path)

  def close(self) -> None:
    if self._file is not None and not self._file.closed:
      self._file.close()


def _read_state(path: str) -> Optional[dict]:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as e:
    raise KorpatError(f"{path}: unreadable ({e}); delete it and its .partial file to start over") from None


def identity(input_path: str, fmt: str, workdir: str, step: int, config: ml_collections.ConfigDict
             ) -> dict[str, Any]:
  """What a partial output must have been made from to be continued."""
  fp = file_fingerprint(input_path)
  return {"input": {k: fp[k] for k in ("path", "size", "head_sha256")}, "format": fmt,
          "workdir": files.resolve(workdir), "step": step,
          "fields": [config.data.get("text_fields", ""), config.data.get("id_field", "")]}


# -- the driver -------------------------------------------------------------------------------------------------------

def predict_stream(task: FineTuningTask, eval_fn: EvalFn, params: Any, batch_sharding: jax.sharding.Sharding,
                   input_path: str, fmt: str, output: PartialOutput, *, batch_size: int, workers: int,
                   chunk_lines: Optional[int] = None) -> Summary:
  """Predicts every line of `input_path` (raw_input format `fmt`) into `output`; see the module docstring."""
  if jax.process_count() > 1:
    raise KorpatError("predict on raw text runs in one process; run it on one host (its devices are all used)")
  summary = Summary()
  started = time.monotonic()
  total = raw_input.count_lines(input_path)
  done, offset = output.open()
  summary.resumed_at = done
  if done:
    log.info("predict: resuming %s at line %d of %d", output.path, done, total)
  docs = raw_input.iter_docs(input_path, fmt, done, offset, id_field=task.config.data.get("id_field") or "id")
  config_json = json.dumps(task.config.to_dict())
  rng = jax.random.PRNGKey(0)
  progress = _Progress(total, done)
  with WorkerPool(max(1, workers), featurizer, config_json, task.workdir, in_process=workers == 0) as pool:
    for chunk in pool.imap(featurize_chunk, _chunks(docs, chunk_lines or CHUNK_LINES)):
      outputs = run_model(task, chunk, eval_fn, params, batch_size, batch_sharding, rng)
      predicted = task.prediction_lines(chunk.meta, outputs)
      lines = [predicted[slot] if isinstance(slot, int) else slot for slot in chunk.slots]
      output.append(lines, chunk.end_line, chunk.end_offset)
      summary.lines += len(lines)
      summary.errors += sum(not isinstance(slot, int) for slot in chunk.slots)
      for slot in chunk.slots:
        if not isinstance(slot, int):
          summary.report.skip(slot["error"], slot["where"], slot["detail"])
      summary.report.merge(chunk.report)
      summary.report.read += len(chunk.slots)
      summary.report.used += len(chunk.meta)
      progress.update(chunk.end_line)
  output.finish()
  summary.seconds = time.monotonic() - started
  return summary


class _Progress:
  """A log line at most every PROGRESS_SECONDS: lines done, documents a second since the start, ETA."""

  def __init__(self, total: int, start: int):
    self.total, self.start = total, start
    self.t0 = self.last = time.monotonic()

  def update(self, done: int) -> None:
    now = time.monotonic()
    if now - self.last < PROGRESS_SECONDS or done >= self.total:
      return
    self.last = now
    rate = (done - self.start) / max(now - self.t0, 1e-9)
    eta = (self.total - done) / rate if rate > 0 else float("inf")
    log.info("predict: %s/%s lines (%.1f%%), %s docs/s, eta %s", f"{done:,}", f"{self.total:,}",
             100.0 * done / max(self.total, 1), f"{rate:,.0f}", format_duration(eta) if np.isfinite(eta) else "?")

