"""Loader speed: the naive Grain ArrayRecord read vs korpat_jax.input_pipeline, sequences/s at seq 512.

  python -m benchmarks.speed.loader_speed [--shards 4] [--records 10000] [--runs 5] [--batch 256] [--dir DIR]

Writes `--shards` ArrayRecord shards of `--records` examples each (90% full 512-token sequences, 10% shorter,
as ELECTRA's packing makes them; ids of a 35k vocab as uint16), a manifest and the TFDS metadata, then measures,
`--runs` times each:
  naive:    grain.MapDataset.source(ArrayRecordDataSource(paths)).shuffle(seed), iterating the record bytes;
  per-record decode + batch: the same, decoded and padded per record in Python, then `IterDataset.batch`;
  tfds:     grain.MapDataset.source(tfds.builder_from_directory(dir).as_data_source("train")).shuffle(seed), the
            unpadded ids TFDS's numpy parser decodes (only with tensorflow-datasets installed);
  pipeline: input_pipeline.make_iterator (shuffled, decoded, padded [batch, 512] int32 x3), 0 and 2 workers,
            timed after its first batch (worker start-up is reported apart).
Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time

import grain
import numpy as np
from array_record.python import array_record_module

from korpat_jax import input_pipeline
from korpat_jax.corpus import records, tfds_metadata

SEQ_LEN = 512
VOCAB = 35000
SPECIAL = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}


def write_corpus(directory: str, shards: int, per_shard: int) -> list[str]:
  rng = np.random.default_rng(0)
  entries, paths = [], []
  for i in range(shards):
    name = records.shard_name("train", i, shards)
    path = os.path.join(directory, name)
    writer = array_record_module.ArrayRecordWriter(path, "group_size:1")
    tokens = 0
    for _ in range(per_shard):
      length = SEQ_LEN if rng.random() < 0.9 else int(rng.integers(32, SEQ_LEN))
      ids = rng.integers(5, VOCAB, size=length)
      ids[0], ids[length // 2], ids[-1] = SPECIAL["cls"], SPECIAL["sep"], SPECIAL["sep"]
      writer.write(records.encode_record(ids, "<u2"))
      tokens += length
    writer.close()
    with open(path, "rb") as f:
      digest = hashlib.sha256(f.read()).hexdigest()
    entries.append({"file": name, "examples": per_shard, "tokens": tokens, "sha256": digest})
    paths.append(path)
  manifest = {"schema": records.SCHEMA, "seq_len": SEQ_LEN, "id_dtype": "uint16", "vocab_size": VOCAB,
              "vocab_hash": "benchmark", "special_ids": SPECIAL, "splits": {"train": {"shards": entries}}}
  tfds_metadata.write(directory, manifest)
  with open(os.path.join(directory, records.MANIFEST), "w") as f:
    json.dump(manifest, f)
  return paths


def naive_rate(paths: list[str], count: int, seed: int) -> float:
  dataset = grain.MapDataset.source(grain.sources.ArrayRecordDataSource(paths)).shuffle(seed=seed)
  start = time.perf_counter()
  for n, _ in enumerate(dataset.to_iter_dataset(), 1):
    if n == count:
      break
  return count / (time.perf_counter() - start)


def tfds_rate(directory: str, count: int, seed: int) -> float | None:
  """Records/s through TFDS's data source (its numpy tf.Example parser); None without tensorflow-datasets."""
  try:
    import tensorflow_datasets as tfds
  except ImportError:
    return None
  source = tfds.builder_from_directory(directory).as_data_source("train")
  dataset = grain.MapDataset.source(source).shuffle(seed=seed)
  start = time.perf_counter()
  for n, _ in enumerate(dataset.to_iter_dataset(), 1):
    if n == count:
      break
  return count / (time.perf_counter() - start)


def per_record_rate(paths: list[str], count: int, seed: int, batch: int) -> float:
  """The textbook Grain chain: decode and pad each record in Python, then `IterDataset.batch`."""
  positions = np.arange(SEQ_LEN)

  def decode(data: bytes) -> dict[str, np.ndarray]:
    ids = records.decode_record(data, "<u2")
    first_sep = int(np.argmax(ids == SPECIAL["sep"]))
    padded = np.full(SEQ_LEN, SPECIAL["pad"], np.int32)
    padded[: len(ids)] = ids
    return {"input_ids": padded, "token_type_ids": ((positions > first_sep) & (positions < len(ids))).astype(np.int32),
            "attention_mask": (positions < len(ids)).astype(np.int32)}

  dataset = grain.MapDataset.source(grain.sources.ArrayRecordDataSource(paths)).shuffle(seed=seed).map(decode)
  iterator = iter(dataset.to_iter_dataset().batch(batch))
  next(iterator)
  start = time.perf_counter()
  for _ in range(count // batch):
    next(iterator)
  return count // batch * batch / (time.perf_counter() - start)


def pipeline_rate(directory: str, batches: int, batch: int, workers: int, seed: int) -> tuple[float, float]:
  """(sequences/s after the first batch, seconds to the first batch)."""
  start = time.perf_counter()
  iterator = input_pipeline.make_iterator(directory, global_batch_size=batch, seed=seed, worker_count=workers,
                                          prefetch=4, process_index=0, process_count=1)
  first = next(iterator)
  assert first["input_ids"].shape == (batch, SEQ_LEN)
  ready = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  rate = batches * batch / (time.perf_counter() - ready)
  if hasattr(iterator, "close"):
    iterator.close()
  del iterator  # Now, not at interpreter exit, when Grain's __del__ finds its modules gone.
  return rate, ready - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--shards", type=int, default=4)
  parser.add_argument("--records", type=int, default=10_000)
  parser.add_argument("--runs", type=int, default=5)
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--naive-count", type=int, default=20_000, help="records read per naive run")
  parser.add_argument("--dir", help="where to write the shards (default: a temporary directory)")
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as scratch:
    directory = args.dir or scratch
    os.makedirs(directory, exist_ok=True)
    paths = write_corpus(directory, args.shards, args.records)
    total = args.shards * args.records
    batches = (total // 2) // args.batch  # Half an epoch per run.
    rows = {"naive": [], "per-record decode + batch": [], "tfds data source": [], "pipeline, 0 workers": [],
            "pipeline, 2 workers": []}
    startup = {"pipeline, 0 workers": [], "pipeline, 2 workers": []}
    for run in range(args.runs):
      rows["naive"].append(naive_rate(paths, args.naive_count, seed=run))
      rows["per-record decode + batch"].append(per_record_rate(paths, args.naive_count, run, args.batch))
      if (rate := tfds_rate(directory, args.naive_count, seed=run)) is not None:
        rows["tfds data source"].append(rate)
      for workers in (0, 2):
        rate, first = pipeline_rate(directory, batches, args.batch, workers, seed=run)
        rows[f"pipeline, {workers} workers"].append(rate)
        startup[f"pipeline, {workers} workers"].append(first)

  naive = statistics.median(rows["naive"])
  print(f"{args.shards} x {args.records} records, seq {SEQ_LEN}, batch {args.batch}, {args.runs} runs, "
        f"{os.cpu_count()} CPUs ({platform.machine()}), {time.strftime('%Y-%m-%d')}\n")
  print("| loader | output | median records/s = sequences/s | min-max | x naive | first batch (s) |")
  print("|---|---|---:|---:|---:|---:|")
  for name, rates in rows.items():
    if not rates:
      continue
    output = {"naive": "record bytes", "tfds data source": "unpadded uint16 ids"}.get(
        name, f"[{args.batch}, {SEQ_LEN}] int32 x3")
    first = f"{statistics.median(startup[name]):.2f}" if name in startup else "-"
    print(f"| {name} | {output} | {statistics.median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f} | "
          f"{statistics.median(rates) / naive:.1f} | {first} |")


if __name__ == "__main__":
  main()
