"""What pretraining reads: prepared records through the Grain pipeline, or the synthetic stream (tests only).

Either way the trainer sees a `TrainInput`: an iterator of per-process numpy batches (made global by
`input_pipeline.to_global`), the special token ids, and the object whose state goes into checkpoints.

Whole-unit masking (objective.masking morpheme or eojeol) needs the records' boundary flags: the batches then carry
them as "boundaries" [B, S] uint8 beside input_ids (sharded the same way, like every batch column), and records of
schema 2, which have none, are refused in one line naming `korpat-jax prepare`.

Records must be local files: the ArrayRecord reader opens local paths only (a gs:// path makes it block, with no
error, on a machine without network), so a URL is refused in one line. A tokenizer directory may be a URL: its
vocab.txt is read through a local copy (korpat_jax.files.local_copy) and the URL itself is recorded for export.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import os
from typing import Any, Callable, Iterable, Iterator, Optional

import ml_collections
import numpy as np

from korpat_jax import files
from korpat_jax.errors import ConfigError
from korpat_jax.special_tokens import SpecialIds

log = logging.getLogger("korpat_jax")
SAMPLE_PER_SHARD = 3  # records of every shard decoded before training starts (first, middle, last)


@dataclasses.dataclass
class TrainInput:
  train: Iterator[dict[str, np.ndarray]]
  checkpointable: Any                 # saved with each checkpoint (None for the stateless synthetic stream)
  special: SpecialIds
  vocab_size: int
  tokenizer_dir: Optional[str]
  eval_factory: Optional[Callable[[], Iterable[dict[str, np.ndarray]]]]
  identity: dict[str, Any] = dataclasses.field(default_factory=dict)  # what a resumed run must still read
  records_dir: Optional[str] = None   # the prepared records (None for the synthetic stream)

  @property
  def special_ids(self) -> dict[str, int]:
    return dataclasses.asdict(self.special)

  def eval_batches(self, max_batches: int) -> Optional[Iterable[dict[str, np.ndarray]]]:
    return None if self.eval_factory is None else itertools.islice(self.eval_factory(), max_batches)


def resolve(path: str, workdir: str) -> str:
  """`{workdir}` filled in; local paths made absolute, URLs kept (korpat_jax.files.resolve)."""
  return files.resolve(path.replace("{workdir}", workdir)) if path else ""


def make_input(config: ml_collections.ConfigDict, workdir: str, start_step: int) -> TrainInput:
  from korpat_jax import masking
  t, d = config.train, config.data
  masking_name = config.objective.get("masking", "token")
  with_boundaries = masking.needs_boundaries(masking_name)
  if d.source == "synthetic":
    from korpat_jax.synthetic_data import SyntheticTokenStream
    special = SpecialIds()
    make = lambda seed, step: SyntheticTokenStream(config.model.vocab_size, t.seq_len, t.batch_size, seed, special,
                                                   start_step=step, with_boundaries=with_boundaries)
    log.info("input: SYNTHETIC token stream (tests and benchmarks only)")
    eval_stream = make(config.seed + 10_000, 0)
    return TrainInput(make(config.seed, start_step), None, special, config.model.vocab_size, None,
                      lambda: map(eval_stream.global_batch, itertools.count()))

  from korpat_jax import input_pipeline
  from korpat_jax.corpus.records import read_manifest
  records_dir = resolve(d.records_dir, workdir)
  files.require_local(records_dir, "config.data.records_dir",
                      "ArrayRecord shards are read from local files only; copy them to a local disk (gcloud storage "
                      "cp -r) or mount the bucket (gcsfuse) and pass that path")
  tokenizer_dir = resolve(d.tokenizer_dir, workdir)
  manifest = read_manifest(records_dir)
  if manifest.seq_len != t.seq_len:
    raise ConfigError(f"config.train.seq_len={t.seq_len}: the records in {records_dir} have seq_len "
                      f"{manifest.seq_len}")
  tokenizer_dir = tokenizer_dir or manifest.raw.get("tokenizer_dir") or None
  if tokenizer_dir and files.exists(files.join(tokenizer_dir, "vocab.txt")):
    _check_vocab(tokenizer_dir, manifest.vocab_hash, records_dir)
  if with_boundaries:
    manifest.require_boundaries(f"config.objective.masking={masking_name!r}")
  special = SpecialIds.from_mapping(manifest.special_ids)
  common = dict(global_batch_size=t.batch_size, worker_count=d.worker_count, prefetch=d.prefetch,
                on_bad_record=d.get("on_bad_record", "fail"), with_boundaries=with_boundaries)
  # A few records of every shard are decoded now: a damaged shard stops the run before step 1.
  train = input_pipeline.make_iterator(records_dir, split="train", seed=config.seed, shuffle=True,
                                       sample_per_shard=SAMPLE_PER_SHARD, **common)
  eval_factory = None
  if manifest.num_examples("eval") > 0:
    input_pipeline.sample_split(records_dir, "eval", SAMPLE_PER_SHARD, common["on_bad_record"], with_boundaries)

    def eval_factory() -> Iterator[dict[str, np.ndarray]]:
      # Evaluation reads whole global batches on every process (the loop feeds each its rows). It counts tokens:
      # on_bad_record=skip's count column goes (the skipped rows are padding, and the log names them).
      for batch in input_pipeline.make_iterator(records_dir, split="eval", seed=config.seed, shuffle=False,
                                                num_epochs=1, process_index=0, process_count=1, **common):
        batch.pop(input_pipeline.SKIPPED_RECORDS, None)
        yield batch
  log.info("input: %s (%d train / %d eval examples, seq_len %d)", records_dir, manifest.num_examples("train"),
           manifest.num_examples("eval"), manifest.seq_len)
  splits = json.dumps(manifest.splits, sort_keys=True)
  identity = {"vocab_sha256": manifest.vocab_hash,
              "records": hashlib.sha256(splits.encode("utf-8")).hexdigest()}  # shard names, counts and sha256s
  return TrainInput(train, train, special, manifest.vocab_size, tokenizer_dir, eval_factory, identity, records_dir)


def _check_vocab(tokenizer_dir: str, vocab_hash: str, records_dir: str) -> None:
  """The tokenizer recorded for export must be the one that made the records."""
  from korpat_jax.tokenizer.mwp import read_vocab, vocab_sha256
  found = vocab_sha256(read_vocab(os.path.join(files.local_copy(tokenizer_dir, "tokenizer directory"),
                                               "vocab.txt")))
  if found != vocab_hash:
    raise ConfigError(f"config.data.tokenizer_dir={tokenizer_dir}: its vocab.txt is not the one that made the "
                      f"records in {records_dir} (vocab hash {found[:12]} vs {vocab_hash[:12]})")
