"""The Apache Beam runner: the same transforms as the local runner (pipeline.py, shard_plan.py, writer.py) as a
Beam pipeline, for corpora beyond one machine.

    Files -> Scan (per file) -> EvalRule ----------------------------.
    Files -> ProcessFile (read, clean, split, tokenize, pack per file) -> ((split, file), (rank, record))
          -> counts per (split, file) -> shard plan -> ((split, shard), (position, record)) -> GroupByKey
          -> write shard (temp name + rename; finished shards are kept) -> manifest

Tested with the DirectRunner. For Dataflow / Flink / Spark pass the runner's options after `--`
(`korpat-jax prepare ... --runner beam -- --runner=DataflowRunner --project=... --region=...`); the corpus and --out
must be paths that every worker sees (a shared file system or a FUSE mount: the ArrayRecord writer writes local
paths), and workers need korpat-jax installed (`--setup_file` or a custom container).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from korpat_jax.corpus import manifest as manifest_lib
from korpat_jax.corpus import records, shard_plan, writer
from korpat_jax.corpus.pipeline import EVAL, TRAIN, EvalRule, PrepConfig, ScanSummary, process_file, scan_file
from korpat_jax.corpus.report import PrepStats
from korpat_jax.corpus.tokenizing import TokenizerFactory

_STATS = "stats"


class _MergeScans(beam.CombineFn):

  def create_accumulator(self):
    return ScanSummary()

  def add_input(self, acc, summary):
    return acc.merge(summary)

  def merge_accumulators(self, accs):
    total = ScanSummary()
    for acc in accs:
      total = total.merge(acc)
    return total

  def extract_output(self, acc):
    return acc


class _MergeStats(beam.CombineFn):

  def create_accumulator(self):
    return PrepStats()

  def add_input(self, acc, stats):
    return acc.merge(stats)

  def merge_accumulators(self, accs):
    total = PrepStats()
    for acc in accs:
      total.merge(acc)
    return total

  def extract_output(self, acc):
    return acc


class _ProcessFile(beam.DoFn):
  """One input file -> its examples keyed by (split, file index), ranked in document order; then its stats."""

  def __init__(self, config: PrepConfig, tokenizer_factory: TokenizerFactory):
    self._config = config
    self._factory = tokenizer_factory
    self._tokenizer = None

  def setup(self):
    self._tokenizer = self._factory()

  def process(self, element, rule: EvalRule):
    index, path = element
    stats = PrepStats()
    for split, rank, record in process_file(path, self._config, self._tokenizer, rule, stats):
      yield (split, index), (rank, record)
    yield beam.pvalue.TaggedOutput(_STATS, stats)


def _plans(counts: Iterable[tuple[tuple[str, int], int]], records_per_shard: int) -> dict[str, shard_plan.SplitPlan]:
  per_split: dict[str, dict[int, int]] = {TRAIN: {}, EVAL: {}}
  for (split, index), n in counts:
    per_split[split][index] = n
  return {split: shard_plan.plan_split(split, c, records_per_shard) for split, c in per_split.items()}


def _assign(element, plans: dict[str, shard_plan.SplitPlan]):
  (split, index), (rank, record) = element
  shard, position = plans[split].locate(index, rank)
  return (split, shard), (position, record)


def _write_group(element, plans: dict[str, shard_plan.SplitPlan], out_dir: str, id_dtype: str):
  (split, shard), items = element
  ordered = [record for _, record in sorted(items, key=lambda item: item[0])]
  plan = plans[split]
  info = writer.write_shard(os.path.join(out_dir, plan.shard_file(shard)), ordered, plan.shard_size(shard), id_dtype)
  return split, shard, info


def _write_manifest(shard_infos: list, stats: PrepStats, *, files, config, tokenizer_factory, out_dir,
                    run_fingerprint) -> str:
  shards: dict[str, list[dict[str, Any]]] = {TRAIN: [], EVAL: []}
  for split, _, info in sorted(shard_infos, key=lambda t: (t[0], t[1])):
    shards[split].append(info)
  result = manifest_lib.build_manifest(files=files, config=config, tokenizer=tokenizer_factory(), stats=stats,
                                       shards=shards, runner="beam", run_fingerprint=run_fingerprint,
                                       tokenizer_dir=getattr(tokenizer_factory, "directory", None))
  return manifest_lib.write_manifest(out_dir, result)


def build_pipeline(pipeline: beam.Pipeline, files: Sequence[str], config: PrepConfig,
                   tokenizer_factory: TokenizerFactory, out_dir: str, run_fingerprint: str, id_dtype: str):
  indexed = (pipeline
             | "Files" >> beam.Create(list(enumerate(files)))
             | "SpreadFiles" >> beam.Reshuffle())
  rule = (indexed
          | "Scan" >> beam.Map(lambda element, cfg: scan_file(element[1], cfg), config)
          | "MergeScans" >> beam.CombineGlobally(_MergeScans())
          | "EvalRule" >> beam.Map(lambda scan, fraction: EvalRule.from_scan(fraction, scan), config.eval_fraction))
  processed = indexed | "ProcessFiles" >> beam.ParDo(
      _ProcessFile(config, tokenizer_factory), beam.pvalue.AsSingleton(rule)).with_outputs(_STATS, main="examples")
  examples = processed.examples
  plans = (examples
           | "One" >> beam.Map(lambda element: (element[0], 1))
           | "CountPerFile" >> beam.CombinePerKey(sum)
           | "AllCounts" >> beam.combiners.ToList()
           | "Plan" >> beam.Map(_plans, config.records_per_shard))
  shard_infos = (examples
                 | "Assign" >> beam.Map(_assign, beam.pvalue.AsSingleton(plans))
                 | "GroupShards" >> beam.GroupByKey()
                 | "WriteShards" >> beam.Map(_write_group, beam.pvalue.AsSingleton(plans), out_dir, id_dtype)
                 | "AllShards" >> beam.combiners.ToList())
  stats = processed[_STATS] | "MergeStats" >> beam.CombineGlobally(_MergeStats())
  return shard_infos | "Manifest" >> beam.Map(
      _write_manifest, beam.pvalue.AsSingleton(stats), files=list(files), config=config,
      tokenizer_factory=tokenizer_factory, out_dir=out_dir, run_fingerprint=run_fingerprint)


def run_beam(files: Sequence[str], config: PrepConfig, tokenizer_factory: TokenizerFactory, out_dir: str, *,
             beam_args: Sequence[str] = (), overwrite: bool = False) -> dict[str, Any]:
  """Prepare `files` into `out_dir` with Beam (DirectRunner unless `beam_args` name another); returns the manifest."""
  tokenizer = tokenizer_factory()
  run_fingerprint = manifest_lib.fingerprint(files, config, tokenizer)
  out_dir = os.path.abspath(out_dir)
  if not manifest_lib.claim_output_dir(out_dir, manifest_lib.run_identity(files, config, tokenizer), overwrite):
    args = list(beam_args)
    if not any(a.startswith("--runner") for a in args):
      args.append("--runner=DirectRunner")
    id_dtype = records.id_dtype_for(tokenizer.vocab_size).str
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
      build_pipeline(pipeline, files, config, tokenizer_factory, out_dir, run_fingerprint, id_dtype)
  with open(os.path.join(out_dir, records.MANIFEST), encoding="utf-8") as f:
    return json.load(f)
