"""Tokenized task features, cached in the run directory so that Mecab-ko runs once per input file.

  W/data/{split}.array_record    one record per feature: msgpack {name: little-endian int32 bytes}
  W/data/{split}.examples.jsonl  one line per input example: what scoring and predictions need (id, text, gold)
  W/data/{split}.json            counts and the fingerprint of what made them (file, tokenizer, data config)

Why ArrayRecord: the pretraining input already reads it by index, so the same Grain pipeline
(`input_pipeline.batch_iterator`) shuffles per epoch, splits rows over processes and resumes exactly from its saved
position. Why msgpack of int32 arrays: tasks store different, variable-length fields (ids, labels, windows), and a
feature decodes with one `np.frombuffer` per field.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import grain
import msgpack
import numpy as np
from array_record.python import array_record_module

from korpat_jax.input_pipeline import ShardReader
from korpat_jax.files import write_json
from korpat_jax.workdir import read_json_if_exists

FORMAT = "korpat-finetune-features/1"
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

  def feature(self, index: int) -> dict[str, np.ndarray]:
    return decode_feature(self.reader.read(np.array([index]))[0])


def open_split(directory: str, split: str, fingerprint: Mapping[str, Any]) -> Optional[FeatureSplit]:
  """The cached split when it was made from the same inputs (fingerprint), else None."""
  info = read_json_if_exists(os.path.join(directory, f"{split}.json"))
  if not info or info.get("format") != FORMAT or info.get("fingerprint") != json.loads(json.dumps(fingerprint)):
    return None
  if not os.path.exists(os.path.join(directory, f"{split}.array_record")):
    return None
  return FeatureSplit(directory, split, info)


def write_split(directory: str, split: str, fingerprint: Mapping[str, Any],
                examples: Iterable[tuple[Mapping[str, Any], Iterable[Mapping[str, Any]]]],
                extra: Optional[Callable[[], Mapping[str, Any]]] = None) -> FeatureSplit:
  """Writes (example metadata, its features) pairs; the info file goes last, so a killed build is rebuilt.
  `extra()` adds to the info after every feature was made (e.g. the data report that making them filled)."""
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
  info = {"format": FORMAT, "fingerprint": fingerprint, "num_features": num_features,
          "num_examples": num_examples, **(extra() if extra else {})}
  write_json(info_path, info)
  return FeatureSplit(directory, split, info)


class PadAndStack(grain.transforms.Map):
  """Record keys -> a batch: sequence fields padded to `seq_len`, the other fields stacked as they are.

  Padding rows (key -1) are all padding, with `feature_index` -1, so a task can mask them out."""

  def __init__(self, reader: ShardReader, seq_len: int, seq_pad: Mapping[str, int],
               fixed: Mapping[str, tuple[int, int]]):
    """`seq_pad`: sequence field -> pad value; `fixed`: other field -> (length, fill value of padding rows)."""
    self.reader, self.seq_len, self.seq_pad, self.fixed = reader, seq_len, dict(seq_pad), dict(fixed)

  def map(self, keys: np.ndarray) -> dict[str, np.ndarray]:
    rows = np.flatnonzero(keys >= 0)
    batch = {name: np.full((len(keys), self.seq_len), pad, np.int32) for name, pad in self.seq_pad.items()}
    batch.update({name: np.full((len(keys), length), fill, np.int32) for name, (length, fill) in self.fixed.items()})
    lengths = np.zeros(len(keys), np.int64)
    for row, data in zip(rows.tolist(), self.reader.read(keys[rows])):
      feature = decode_feature(data)
      lengths[row] = min(len(feature["input_ids"]), self.seq_len)
      for name in self.seq_pad:
        value = feature[name][:self.seq_len]
        batch[name][row, :len(value)] = value
      for name, (length, _) in self.fixed.items():
        batch[name][row] = feature[name][:length]
    batch["attention_mask"] = (np.arange(self.seq_len)[None, :] < lengths[:, None]).astype(np.int32)
    batch[FEATURE_INDEX] = np.where(keys >= 0, keys, -1).astype(np.int32)
    for name, (length, _) in self.fixed.items():
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
