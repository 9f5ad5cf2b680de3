"""Tokenized task features, cached in the run directory so that Mecab-ko runs once per input file.

  W/data/{split}.array_record    one record per feature: msgpack {name: little-endian int32 bytes}
  W/data/{split}.examples.jsonl  one line per input example: what scoring and predictions need (id, text, gold)
  W/data/{split}.skipped.jsonl   one line per input row the reader left out (DataReport.skipped_rows), so that the
                                 prediction files write an error line in its place
  W/data/{split}.json            counts, the fingerprint of what made them (file, tokenizer, data config), the
                                 data report, the label set and what else the task scores with (QA: the gold set)

`build_split` reuses a split whose fingerprint matches and otherwise reads, labels and featurizes the input once
through the task (the `Featurizer` protocol). The fingerprint holds only what changes the features: a setting that
only scoring reads (e.g. head.n_best_size of QA) reuses them.

Why ArrayRecord: the pretraining input already reads it by index, so the same Grain pipeline
(`input_pipeline.batch_iterator`) shuffles per epoch, splits rows over processes and resumes exactly from its saved
position. Why msgpack of int32 arrays: tasks store different, variable-length fields (ids, labels, windows), and a
feature decodes with one `np.frombuffer` per field.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Protocol, Sequence

import grain
import msgpack
import numpy as np
from array_record.python import array_record_module

from korpat_jax.config import require
from korpat_jax.datasets import source as source_lib
from korpat_jax.errors import KorpatError
from korpat_jax.files import write_json
from korpat_jax.finetune.report import DataReport
from korpat_jax.shard_reader import ShardReader
from korpat_jax.workdir import read_json_if_exists

log = logging.getLogger("korpat_jax")

FORMAT = "korpat-finetune-features/1"
# data.* keys that say where things lie or how they are read, not what the features are
_NOT_FEATURE_DATA_KEYS = (*source_lib.SPLITS, *source_lib.LOCATION_KEYS, "worker_count", "prefetch",
                          "max_skipped_fraction")
Features = Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]  # (example metadata, its features) in input order
FEATURE_INDEX = "feature_index"  # added by the decoder: the feature's position in its split, -1 for padding rows


def file_fingerprint(path: str) -> dict[str, Any]:
  """Identity of an input file without reading it all: path, size, modification time, hash of its first MiB."""
  stat = os.stat(path)
  with open(path, "rb") as f:
    head = hashlib.sha256(f.read(1 << 20)).hexdigest()
  return {"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_sha256": head}


def encode_feature(feature: Mapping[str, Any]) -> bytes:
  return msgpack.packb({k: np.asarray(v, dtype="<i4").tobytes() for k, v in feature.items()})


def decode_feature(data: bytes) -> dict[str, np.ndarray]:
  return {k: np.frombuffer(v, dtype="<i4") for k, v in msgpack.unpackb(data).items()}


class FeatureSplit:
  """A cached split: random access to its features and a stream of its examples' metadata."""

  def __init__(self, directory: str, split: str, info: Mapping[str, Any]):
    self.directory, self.split, self.info = directory, split, dict(info)
    self.num_features = int(info["num_features"])
    self.num_examples = int(info["num_examples"])
    self.reader = ShardReader([os.path.join(directory, f"{split}.array_record")], [self.num_features])

  def examples(self) -> Iterator[dict[str, Any]]:
    with open(os.path.join(self.directory, f"{self.split}.examples.jsonl"), encoding="utf-8") as f:
      for line in f:
        yield json.loads(line)

  def skipped_rows(self) -> list[dict[str, Any]]:
    """The input rows the reader left out, in input order: {"at": kept examples before it, "id", "where",
    "error", "detail"}."""
    path = os.path.join(self.directory, f"{self.split}.skipped.jsonl")
    if not os.path.exists(path):
      return []
    with open(path, encoding="utf-8") as f:
      return [json.loads(line) for line in f if line.strip()]

  def feature(self, index: int) -> dict[str, np.ndarray]:
    return decode_feature(self.reader.read(np.array([index]))[0])


def open_split(directory: str, split: str, fingerprint: Mapping[str, Any]) -> Optional[FeatureSplit]:
  """The cached split when it was made from the same inputs (fingerprint), else None."""
  info = read_json_if_exists(os.path.join(directory, f"{split}.json"))
  if not info or info.get("format") != FORMAT or info.get("fingerprint") != json.loads(json.dumps(fingerprint)):
    return None
  for name in (f"{split}.array_record", f"{split}.skipped.jsonl"):  # a cache made before skipped rows were kept
    if not os.path.exists(os.path.join(directory, name)):             # is made again
      return None
  return FeatureSplit(directory, split, info)


def write_split(directory: str, split: str, fingerprint: Mapping[str, Any],
                examples: Iterable[tuple[Mapping[str, Any], Iterable[Mapping[str, Any]]]],
                extra: Optional[Callable[[], Mapping[str, Any]]] = None,
                skipped_rows: Iterable[Mapping[str, Any]] = ()) -> FeatureSplit:
  """Writes (example metadata, its features) pairs; the info file goes last, so a killed build is rebuilt.
  `extra()` adds to the info after every feature was made (e.g. the data report that making them filled);
  `skipped_rows`: the input rows the reader left out (DataReport.skipped_rows)."""
  os.makedirs(directory, exist_ok=True)
  info_path = os.path.join(directory, f"{split}.json")
  if os.path.exists(info_path):
    os.remove(info_path)
  records_path = os.path.join(directory, f"{split}.array_record")
  writer = array_record_module.ArrayRecordWriter(records_path, "group_size:1")
  num_features = num_examples = 0
  try:
    with open(os.path.join(directory, f"{split}.examples.jsonl"), "w", encoding="utf-8") as meta:
      for example, features in examples:
        for feature in features:
          writer.write(encode_feature(feature))
          num_features += 1
        meta.write(json.dumps(example, ensure_ascii=False) + "\n")
        num_examples += 1
  finally:
    writer.close()
  with open(os.path.join(directory, f"{split}.skipped.jsonl"), "w", encoding="utf-8") as f:
    for row in skipped_rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
  info = {"format": FORMAT, "fingerprint": fingerprint, "num_features": num_features,
          "num_examples": num_examples, **(extra() if extra else {})}
  write_json(info_path, info)
  return FeatureSplit(directory, split, info)


class Featurizer(Protocol):
  """What a fine-tuning task gives the cache (korpat_jax.tasks.finetuning.FineTuningTask)."""

  config: Any

  def read(self, path: str, report: DataReport, labelled: bool) -> list[Any]:
    """The examples of one input file; bad rows are counted in `report`."""

  def label_set(self, examples: Sequence[Any]) -> list[str]:
    """The labels of a training set, in model-output order."""

  def check_labels(self, examples: Sequence[Any], labels: Sequence[str], report: DataReport) -> None:
    """Reports labels outside the training label set."""

  def featurize(self, examples: Sequence[Any], labels: Sequence[str], report: DataReport, split: str,
                labelled: bool) -> Features:
    """(metadata, features) per example."""

  def scoring_info(self, split: str, source: source_lib.Input, examples: Sequence[Any], labelled: bool
                   ) -> dict[str, Any]:
    """What scoring needs besides the examples' metadata, kept in the split's info."""


def fingerprint(source: source_lib.Input, *, tokenizer: Any, config: Any, task: str, head_keys: Sequence[str],
                labels: Optional[Sequence[str]], labelled: bool) -> dict[str, Any]:
  """What the cached features of one input depend on: the input, the tokenizer (vocabulary, user dictionary),
  the data config, the sequence length, the `head.*` keys that featurizing reads (`head_keys`), the task, the
  label set (for training: the configured one, None when it is read from the file) and whether it is labelled."""
  data = {k: v for k, v in config.data.to_dict().items() if k not in _NOT_FEATURE_DATA_KEYS}
  return {"file": source_lib.fingerprint(source), "vocab_sha256": tokenizer.vocab_hash,
          "user_dic": (tokenizer.config.get("user_dic") or {}).get("sha256"), "data": data,
          "seq_len": config.train.seq_len, "head": {k: config.head[k] for k in head_keys}, "task": task,
          "labels": list(labels) if labels is not None else None, "labelled": labelled}


def build_split(featurizer: Featurizer, split: str, source: source_lib.Input, *, labelled: bool,
                labels: Optional[Sequence[str]], fingerprint: Mapping[str, Any], directory: str) -> FeatureSplit:
  """The features of `source`, from the cache when `fingerprint` matches, else read, labelled and featurized once.

  `labels`: the training label set (for "train": the configured one, or None to read it from the examples). The
  split's info holds the label set it was made with ("labels") and its data report ("report")."""
  # Labelled splits only: `predict` writes an error line for each row it leaves out instead.
  limit = float(featurizer.config.data.get("max_skipped_fraction", DEFAULT_MAX_SKIPPED_FRACTION)) if labelled else 1.0
  cached = open_split(directory, split, fingerprint)
  if cached is not None:
    log.info("%s: %d features of %s from the cache in %s", split, cached.num_features, source, directory)
    check_skipped(cached.info.get("report") or {}, limit, split, source)
    return cached
  report = DataReport(f"{split} ({source})")
  examples = source.examples(featurizer.config, report) if isinstance(source, source_lib.TfdsSplit) \
      else featurizer.read(source, report, labelled)
  if split == "train":
    labels = list(labels or featurizer.label_set(examples))
    require(len(labels) >= 2, f"config.data.train={source}: fewer than 2 labels ({labels})")
  elif labelled:
    featurizer.check_labels(examples, labels, report)
  log.info("%s: tokenizing %d examples of %s", split, len(examples), source)
  built = write_split(directory, split, fingerprint, featurizer.featurize(examples, labels, report, split, labelled),
                      extra=lambda: {"report": report.to_dict(), "labels": labels,
                                     **featurizer.scoring_info(split, source, examples, labelled)},
                      skipped_rows=report.skipped_rows)
  report.log_summary()
  check_skipped(report.to_dict(), limit, split, source)
  return built


DEFAULT_MAX_SKIPPED_FRACTION = 0.05


def check_skipped(report: Mapping[str, Any], limit: float, split: str, source: Any) -> None:
  """Stops before training when more than `limit` of a split's examples were left out: a file whose tags or labels
  mostly failed to parse would otherwise train (and score) on what little is left. One line: counts by reason and
  the first places, and the key that accepts more."""
  read = int(report.get("read", 0))
  skipped = {reason: int(v.get("count", 0)) for reason, v in (report.get("skipped") or {}).items()}
  total = sum(skipped.values())
  if not read or total <= limit * read:
    return
  reasons = ", ".join(f"{n} x {reason} (e.g. {(report['skipped'][reason].get('examples') or ['?'])[0]})"
                      for reason, n in sorted(skipped.items(), key=lambda kv: -kv[1]))
  raise KorpatError(f"{split} ({source}): {total} of {read} examples skipped ({total / read:.0%}, more than "
                    f"config.data.max_skipped_fraction={limit:g}): {reasons}; fix the input, or accept it with "
                    f"--config.data.max_skipped_fraction={min(1.0, math.ceil(100 * total / read) / 100):g}")


class PadAndStack(grain.transforms.Map):
  """Record keys -> a batch: sequence fields padded to `seq_len`, the other fields stacked as they are.

  Padding rows (key -1) are all padding, with `feature_index` -1, so a task can mask them out."""

  def __init__(self, reader: ShardReader, seq_len: int, seq_pad: Mapping[str, int],
               fixed: Mapping[str, tuple[int, int]]):
    """`seq_pad`: sequence field -> pad value; `fixed`: other field -> (length, fill value of padding rows)."""
    self.reader, self.seq_len, self.seq_pad, self.fixed = reader, seq_len, dict(seq_pad), dict(fixed)

  def map(self, keys: np.ndarray) -> dict[str, np.ndarray]:
    rows = np.flatnonzero(keys >= 0)
    features = [None] * len(keys)
    for row, data in zip(rows.tolist(), self.reader.read(keys[rows])):
      features[row] = decode_feature(data)
    batch = pad_and_stack(features, self.seq_len, self.seq_pad, self.fixed)
    batch[FEATURE_INDEX] = np.where(keys >= 0, keys, -1).astype(np.int32)
    return batch


def pad_and_stack(features: Sequence[Optional[Mapping[str, Any]]], seq_len: int, seq_pad: Mapping[str, int],
                  fixed: Mapping[str, tuple[int, int]]) -> dict[str, np.ndarray]:
  """Features (None: a padding row) -> a batch of int32 arrays: sequence fields padded (or cut) to `seq_len`, the
  fixed fields stacked (a length-1 field as a vector), and `attention_mask`."""
  batch = {name: np.full((len(features), seq_len), pad, np.int32) for name, pad in seq_pad.items()}
  batch.update({name: np.full((len(features), length), fill, np.int32) for name, (length, fill) in fixed.items()})
  lengths = np.zeros(len(features), np.int64)
  for row, feature in enumerate(features):
    if feature is None:
      continue
    lengths[row] = min(len(feature["input_ids"]), seq_len)
    for name in seq_pad:
      value = feature[name][:seq_len]
      batch[name][row, :len(value)] = value
    for name, (length, _) in fixed.items():
      batch[name][row] = feature[name][:length]
  batch["attention_mask"] = (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int32)
  for name, (length, _) in fixed.items():
    if length == 1:
      batch[name] = batch[name][:, 0]
  return batch


def batches(split: FeatureSplit, decoder: PadAndStack, *, global_batch_size: int, seed: int, shuffle: bool,
            num_epochs: Optional[int], worker_count: int = 0, prefetch: int = 2, process_index: int = 0,
            process_count: int = 1):
  from korpat_jax.input_pipeline import batch_iterator
  return batch_iterator(split.reader, decoder, global_batch_size=global_batch_size, seed=seed, shuffle=shuffle,
                        num_epochs=num_epochs, worker_count=worker_count, prefetch=prefetch,
                        process_index=process_index, process_count=process_count)
