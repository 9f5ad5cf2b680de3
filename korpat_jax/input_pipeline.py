"""Grain input pipeline: prepared ArrayRecord shards -> per-process batches -> global `jax.Array`s.

The pipeline is a Grain `MapDataset` of *batches*, not of records:

  batch index b -> `_HostBatchKeys` (which records; seeded shuffle, per epoch; this process's rows)
               -> `_ReadAndDecode` (one batched read per shard, the ids (and, for whole-unit masking, the boundary
                  flags) sliced off each record's fixed proto headers (records.py), one vectorised decode and pad)
               -> `to_iter_dataset` (thread prefetch) -> `mp_prefetch` (worker processes, optional)
               -> `SkipCounter` (only with on_bad_record="skip": counts the bad records left out as padding rows).

Global batch b is the slice [b*G, (b+1)*G) of one endless stream of record keys, where epoch e of the stream
is a permutation of the split seeded by (seed, e). Process p takes rows [p*G/P, (p+1)*G/P) of it, so the
processes see disjoint examples whose union is the global batch, and all of them yield the same number of
batches (a process that ran out early would hang the collectives of the train step). Because an element is a
whole batch picked by its index, the iterator state is one index per worker (and the skip count) and a restored
iterator yields exactly the batches of an uninterrupted run: which records are bad depends on the data alone, so a
skipped record is the same padding row on every rerun.

Grain's own `MapDataset.shuffle` maps one index at a time (measured 4-8 us per record on the 2-core CI
machine); a numpy permutation per epoch costs ~4 bytes per record and is computed once per epoch and worker.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from typing import Any, Mapping, Optional

import grain
import numpy as np

from korpat_jax import boundaries, special_tokens
from korpat_jax.corpus import records
from korpat_jax.errors import KorpatError
from korpat_jax.shard_reader import ShardReader, bad_record_hint, open_split, repair_hint

FEATURES = ("input_ids", "token_type_ids", "attention_mask")
ON_BAD_RECORD = ("fail", "skip")  # config.data.on_bad_record
SKIPPED_RECORDS = "skipped_records"  # the batch column (SkipCounter), the metric and the iterator state's key
BAD_KEYS = "bad_record_keys"  # _ReadAndDecode -> SkipCounter with on_bad_record="skip": the skipped rows' keys
_SKIPS_NAMED = 10  # skipped records named in the log one by one; after that only at 100, 1000, ...
log = logging.getLogger("korpat_jax")


class _HostBatchKeys:
  """Grain data source: batch index -> this process's record keys of that global batch (-1 = padding row)."""

  def __init__(self, *, num_records: int, global_batch_size: int, process_index: int, process_count: int,
               seed: int, shuffle: bool, num_epochs: int | None):
    self.num_records = num_records
    self.global_batch_size = global_batch_size
    self.local_batch_size = global_batch_size // process_count
    self.first_row = process_index * self.local_batch_size
    self.seed = seed
    self.shuffle = shuffle
    self.stream_length = None if num_epochs is None else num_records * num_epochs
    self._permutations: dict[int, np.ndarray] = {}
    self._lock = threading.Lock()

  def __getstate__(self) -> dict[str, Any]:
    return {k: v for k, v in self.__dict__.items() if k not in ("_permutations", "_lock")}

  def __setstate__(self, state: dict[str, Any]) -> None:
    self.__dict__.update(state)
    self._permutations = {}
    self._lock = threading.Lock()

  def __len__(self) -> int:
    if self.stream_length is None:
      return sys.maxsize
    return math.ceil(self.stream_length / self.global_batch_size)

  def __repr__(self) -> str:
    return (f"_HostBatchKeys(records={self.num_records}, global_batch={self.global_batch_size}, "
            f"rows={self.first_row}+{self.local_batch_size}, seed={self.seed}, shuffle={self.shuffle})")

  def permutation(self, epoch: int) -> np.ndarray:
    with self._lock:
      if epoch not in self._permutations:
        if len(self._permutations) >= 3:  # Prefetch threads work on at most a few adjacent epochs.
          del self._permutations[min(self._permutations)]
        order = np.arange(self.num_records, dtype=np.uint32 if self.num_records < 2**32 else np.int64)
        np.random.default_rng([self.seed, epoch]).shuffle(order)
        self._permutations[epoch] = order
      return self._permutations[epoch]

  def __getitem__(self, index: int) -> np.ndarray:
    start = int(index) * self.global_batch_size + self.first_row
    stream = np.arange(start, start + self.local_batch_size, dtype=np.int64)
    epochs, positions = np.divmod(stream, self.num_records)
    keys = positions
    if self.shuffle:
      keys = np.empty_like(positions)
      for epoch in np.unique(epochs).tolist():
        in_epoch = epochs == epoch
        keys[in_epoch] = self.permutation(epoch)[positions[in_epoch]]
    if self.stream_length is not None:
      keys = np.where(stream < self.stream_length, keys, -1)
    return keys


class _ReadAndDecode(grain.transforms.Map):
  """Record keys -> padded int32 `input_ids`, `token_type_ids`, `attention_mask` of shape [len(keys), S], and with
  `with_boundaries` the uint8 `boundaries` flags (korpat_jax.boundaries; 0 in padding).

  A bad record (an unreadable chunk, not a record of this schema, too long or empty, an id outside the vocab) stops
  with one line naming the shard, the record and the fix; with on_bad_record="skip" its row is all padding
  (attention_mask 0: out of every loss) and the batch's BAD_KEYS column holds its key (-1 in the other rows), which
  `SkipCounter` turns into the count.
  """

  def __init__(self, reader: ShardReader, manifest: records.Manifest, on_bad_record: str = "fail",
               with_boundaries: bool = False):
    if on_bad_record not in ON_BAD_RECORD:
      raise KorpatError(f"on_bad_record: {on_bad_record!r} is not one of {', '.join(ON_BAD_RECORD)}")
    if with_boundaries:
      manifest.require_boundaries("reading batches with_boundaries")
    self.reader = reader
    self.seq_len = manifest.seq_len
    self.format = manifest.format
    self.dtype = self.format.id_dtype
    self.with_boundaries = with_boundaries
    self.vocab_size = manifest.vocab_size
    self.pad_id = manifest.special_ids["pad"]
    self.sep_id = manifest.special_ids["sep"]
    self.skip = on_bad_record == "skip"
    self.hint = bad_record_hint(manifest.directory)

  def map(self, keys: np.ndarray) -> dict[str, np.ndarray]:
    rows = np.flatnonzero(keys >= 0)
    try:
      data = self.reader.read(keys[rows], skip_bad=self.skip)
    except KorpatError as e:
      raise KorpatError(f"{e}; {self.hint}") from None
    joined, bad_rows = self._join(data), rows[:0]
    if joined is None:  # some record is bad: the slow path names it or, skipping, leaves its row as padding
      good = np.ones(len(rows), dtype=bool)
      good[self._bad_records(keys[rows], data)] = False
      bad_rows, rows = rows[~good], rows[good]
      joined = self._join([record for record, keep in zip(data, good.tolist()) if keep])
    lengths, flat, flags = joined

    batch, positions = len(keys), np.arange(self.seq_len)
    attention_mask = np.zeros((batch, self.seq_len), dtype=bool)
    attention_mask[rows] = positions < lengths[:, None]
    input_ids = np.full((batch, self.seq_len), self.pad_id, dtype=np.int32)
    input_ids[attention_mask] = flat  # Row-major order of the mask = the records concatenated.
    token_type_ids = special_tokens.token_type_ids(input_ids, self.sep_id, attention_mask)
    out = {"input_ids": input_ids, "token_type_ids": token_type_ids,
           "attention_mask": attention_mask.astype(np.int32)}
    if self.with_boundaries:
      out[boundaries.FIELD] = np.zeros((batch, self.seq_len), dtype=boundaries.DTYPE)
      out[boundaries.FIELD][attention_mask] = np.frombuffer(flags, dtype=boundaries.DTYPE)
    if self.skip:
      out[BAD_KEYS] = np.full(batch, -1, dtype=np.int64)
      out[BAD_KEYS][bad_rows] = keys[bad_rows]
    return out

  def _join(self, data: list[Optional[bytes]]) -> Optional[tuple[np.ndarray, np.ndarray, Optional[bytes]]]:
    """(ids per record, all ids concatenated, all flags concatenated or None) when every record is good, else
    None."""
    if any(record is None for record in data):
      return None
    joined = self.format.join(data, self.seq_len)
    if joined is None:
      return None
    lengths, payloads, flags = joined
    if (lengths < 1).any():
      return None
    flat = np.frombuffer(payloads, dtype=self.dtype)
    if flat.size and flat.max() >= self.vocab_size:
      return None
    return lengths, flat, flags

  def _bad_records(self, keys: np.ndarray, data: list[Optional[bytes]]) -> list[int]:
    """Checks the records one at a time (the slow path, only when a batch holds a bad one): raises for the first
    bad one or, skipping, returns the indices of all of them."""
    bad = []
    for i, (key, record) in enumerate(zip(keys.tolist(), data)):
      what = ("unreadable ArrayRecord data" if record is None
              else self.format.problem(record, self.seq_len, self.vocab_size))
      if what is not None:
        if not self.skip:
          path, position = self.reader.locate(key)
          raise KorpatError(f"{path}: record {position}: {what}; {self.hint}")
        bad.append(i)
    if not bad:
      raise AssertionError("join_payloads refused a batch of good records")
    return bad


class SkipCounter(grain.DatasetIterator):
  """Counts the records that on_bad_record="skip" left out, in the iterator's state (so a resumed run goes on
  counting from its checkpoint) and in every batch: column SKIPPED_RECORDS holds this process's count so far in row 0
  and zeros elsewhere, so that its sum over the global batch is the count of all processes (the training loop moves
  only batch-shaped arrays to the devices; the train step reports the sum as the `skipped_records` metric)."""

  def __init__(self, parent: grain.DatasetIterator, reader: ShardReader):
    super().__init__(parent)
    self._reader = reader
    self.skipped = 0

  def __next__(self) -> dict[str, np.ndarray]:
    batch = dict(next(self._parent))
    keys = batch.pop(BAD_KEYS)
    for key in keys[keys >= 0].tolist():
      self.skipped += 1
      if self.skipped <= _SKIPS_NAMED or str(self.skipped).rstrip("0") == "1":
        path, position = self._reader.locate(key)
        log.warning("%s: record %d is bad: skipped (data.on_bad_record=skip; %d so far); `korpat-jax verify "
                    "--records %s` checks every shard", path, position, self.skipped, os.path.dirname(path))
    count = np.zeros(len(keys), dtype=np.int32)
    count[0] = self.skipped
    batch[SKIPPED_RECORDS] = count
    return batch

  def get_state(self) -> dict[str, Any]:
    return {**self._parent.get_state(), SKIPPED_RECORDS: self.skipped}

  def set_state(self, state: dict[str, Any]) -> None:
    state = dict(state)
    self.skipped = int(state.pop(SKIPPED_RECORDS, 0))  # absent: saved by a run that stopped on bad records
    self._parent.set_state(state)


def check_sample(reader: ShardReader, decode: _ReadAndDecode, per_shard: int = 3) -> list[tuple[str, int]]:
  """Decodes `per_shard` records of every shard (first, middle, last) before training starts, so that a damaged
  or foreign shard stops the run at once, not at the step that reaches it. Raises the bad record's one line, or
  with on_bad_record="skip" returns the (shard, record) of every bad one."""
  keys = np.unique(np.concatenate([
      start + np.linspace(0, end - start - 1, per_shard).round().astype(np.int64)
      for start, end in zip(reader.starts[:-1], reader.starts[1:]) if end > start] or [np.zeros(0, np.int64)]))
  bad = []
  for chunk in np.array_split(keys, max(1, len(keys) // 1024)):
    batch = decode.map(chunk)
    bad += [reader.locate(key) for key in batch.get(BAD_KEYS, chunk[:0]).tolist() if key >= 0]
  return bad


def sample_split(records_dir: str, split: str, per_shard: int, on_bad_record: str = "fail",
                 with_boundaries: bool = False) -> None:
  """`check_sample` of a split that is read later (evaluation): raises the first bad record's line, or logs."""
  manifest = records.read_manifest(records_dir)
  reader = open_split(manifest, split)
  _sample(reader, _ReadAndDecode(reader, manifest, on_bad_record, with_boundaries), per_shard)


def _sample(reader: ShardReader, decode: _ReadAndDecode, per_shard: int) -> None:
  bad = check_sample(reader, decode, per_shard)
  if bad:
    directory = os.path.dirname(bad[0][0])
    log.warning("%s: %d of the records sampled from its shards are bad (e.g. %s: record %d): such records are "
                "skipped (data.on_bad_record=skip); %s", directory, len(bad), *bad[0], repair_hint(directory))


def make_iterator(records_dir: str, *, split: str = "train", global_batch_size: int, seed: int,
                  shuffle: bool = True, num_epochs: int | None = None, worker_count: int = 0, prefetch: int = 2,
                  process_index: int | None = None, process_count: int | None = None,
                  on_bad_record: str = "fail", sample_per_shard: int = 0,
                  with_boundaries: bool = False) -> grain.DatasetIterator:
  """A checkpointable iterator over this process's share of the global batches of `split`.

  Yields {"input_ids", "token_type_ids", "attention_mask"}: int32 [global_batch_size // process_count, seq_len],
  padded with the manifest's pad id; token types are 0 up to and including the first [SEP], 1 after.
  `num_epochs=None` repeats forever, reshuffling every epoch (seeded by seed and epoch; batches may span two
  epochs). With a finite `num_epochs` (eval: shuffle=False, num_epochs=1) the last batch is filled with all-pad
  rows (attention_mask all 0) so every batch has the same shape; skip those rows when counting examples.
  `with_boundaries` adds "boundaries", the records' uint8 morpheme/eojeol flags [.., seq_len] (0 in padding), which
  whole-unit masking needs; records of schema 2 have none and are refused then, in one line naming prepare.
  `prefetch` batches are read ahead in as many threads (the C++ reads run in parallel); `worker_count` > 0 also
  reads and decodes in that many worker processes, each with its own `prefetch` threads.
  `process_index`/`process_count` default to JAX's. The iterator's state (get_state/set_state, or
  `grain.checkpoint.CheckpointSave/CheckpointRestore` in Orbax) resumes exactly; restore it into an iterator made
  with the same arguments (the same worker_count and process count).
  A bad record stops with one line naming it and the fix (on_bad_record="fail"); with "skip" its row is all padding
  and each batch also holds SKIPPED_RECORDS (`SkipCounter`). `sample_per_shard` > 0 decodes that many records of
  every shard first (`check_sample`): a damaged shard is found now, not when a batch reaches it.
  """
  if process_index is None or process_count is None:
    import jax  # Imported here so that worker processes do not import it to unpickle the pipeline.
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise KorpatError(f"global_batch_size: {global_batch_size} is not a positive multiple of the "
                      f"process count {process_count}")
  if not 0 <= process_index < process_count:
    raise KorpatError(f"process_index: {process_index} is not in [0, {process_count})")
  if num_epochs is not None and num_epochs < 1:
    raise KorpatError(f"num_epochs: {num_epochs} must be None (forever) or >= 1")
  if not 0 <= seed < 2**63:
    raise KorpatError(f"seed: {seed} must be in [0, 2**63)")

  manifest = records.read_manifest(records_dir)
  reader = open_split(manifest, split)
  decode = _ReadAndDecode(reader, manifest, on_bad_record, with_boundaries)
  if sample_per_shard > 0:
    _sample(reader, decode, sample_per_shard)
  iterator = batch_iterator(reader, decode, global_batch_size=global_batch_size, seed=seed, shuffle=shuffle,
                            num_epochs=num_epochs, worker_count=worker_count, prefetch=prefetch,
                            process_index=process_index, process_count=process_count)
  return SkipCounter(iterator, reader) if decode.skip else iterator


def batch_iterator(reader: ShardReader, decode: grain.transforms.Map, *, global_batch_size: int, seed: int,
                   shuffle: bool, num_epochs: int | None, worker_count: int, prefetch: int, process_index: int,
                   process_count: int) -> grain.DatasetIterator:
  """The checkpointable batch iterator over any record reader: `decode` maps an array of record keys (-1 for the
  padding rows of a last batch) to a dict of numpy arrays. Pretraining records and fine-tuning features share it."""
  keys = _HostBatchKeys(num_records=reader.starts[-1], global_batch_size=global_batch_size,
                        process_index=process_index, process_count=process_count, seed=seed, shuffle=shuffle,
                        num_epochs=num_epochs)
  dataset = grain.MapDataset.source(keys).map(decode)
  buffer = max(1, prefetch)
  iter_dataset = dataset.to_iter_dataset(grain.ReadOptions(num_threads=buffer, prefetch_buffer_size=buffer))
  if worker_count > 0:
    _mark_absl_flags_parsed()
    iter_dataset = iter_dataset.mp_prefetch(
        grain.MultiprocessingOptions(num_workers=worker_count, per_worker_buffer_size=buffer))
  return iter(iter_dataset)


def _mark_absl_flags_parsed() -> None:
  """Grain 0.2.18's mp_prefetch reads an absl flag, which fails unless flags were parsed (google/grain#1355)."""
  from absl import flags

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def to_global(local_batch: Mapping[str, np.ndarray], sharding: Any) -> dict[str, Any]:
  """This process's rows -> global `jax.Array`s of [global_batch, S] laid out by `sharding`.

  `sharding` (e.g. `NamedSharding(mesh, PartitionSpec("data"))`) must split the batch axis so that each process
  addresses global_batch / process_count rows; the process's rows are placed in its devices' order.
  """
  import jax

  return {name: jax.make_array_from_process_local_data(sharding, np.asarray(value))
          for name, value in local_batch.items()}
