"""The Apache Beam runner of `tokenizer userdic` and `tokenizer train`: the Mecab-ko analysis and the counting
as a distributed map + combine, then the rest on the launching machine, as the local commands do it.

    userdic: Files -> Reshuffle -> CountNouns (read, analyse, count per file) -> eojeols: CombinePerKey(sum)
                                                                             -> L strings: CombinePerKey(count, min cost)
                                                                             -> read stats: CombineGlobally
    train:   Files -> Reshuffle -> CountMorphemes (read, segment, count per file) -> CombinePerKey(sum), read stats
    --sample-lines N: Files -> LineRanks (read, hash) -> Top.Smallest(N) -> the N-th rank, a side input of the
                      counting, which keeps the lines ranked at most that (one more read of the corpus)

A sample (sampling.py) keeps the lines the local runner keeps: a line's rank is a hash of (seed, the file's index
in the corpus list, the line's index in its file), known to whichever worker reads the file.

The combined counts are written as JSON lines under a scratch directory (`--temp_location`, else inside --out),
read back by the launcher, and handed to the local code: the candidate choice, scoring and user.csv / user.dic
compile of userdic.py, or the WordPiece training of vocab.py. The counts are EXACT: Beam never prunes
(`--max-distinct` is the local runner's memory bound), so the launcher needs memory for every distinct string
(about noun_counts.BYTES_PER_STRING bytes each). Exact counts are what make the outputs equal the local ones,
byte for byte: neither builder depends on the order in which counts were merged.

Tested with the DirectRunner. For Dataflow / Flink / Spark pass the runner's options after `--`
(`... --runner beam -- --runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp`); the corpus,
the user dictionary and the scratch directory must be paths every worker sees, and workers need korpat-jax
installed (`--setup_file` or a custom container). A file is read by one worker: split huge files to spread them.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import shutil
import time
import uuid
import warnings
from collections import Counter
from typing import Any, Callable, Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from korpat_jax.corpus.readers import ReaderConfig
from korpat_jax.tokenizer.morphemes import MorphAnalyzer
from korpat_jax.tokenizer.noun_counts import Tally, blocks
from korpat_jax.tokenizer.nouns import ExtractOptions, NounCounter, count_block
from korpat_jax.tokenizer.sampling import Rank, Sample, up_to
from korpat_jax.tokenizer.sources import ReadStats, iter_lines, iter_numbered_lines
from korpat_jax.tokenizer.word_counts import segment_and_count

_STATS, _NOUNS = "stats", "nouns"
FLUSH_DISTINCT = 500_000   # a worker emits its partial counts for a file past this many distinct strings


# -- combining -----------------------------------------------------------------------------------------------

class _MergeReadStats(beam.CombineFn):
  """Read stats of every file, summed."""

  def create_accumulator(self) -> ReadStats:
    return ReadStats()

  def add_input(self, acc: ReadStats, stats: ReadStats) -> ReadStats:
    return acc.merge(stats)

  def merge_accumulators(self, accs: Iterable[ReadStats]) -> ReadStats:
    total = ReadStats()
    for acc in accs:
      total.merge(acc)
    return total

  def extract_output(self, acc: ReadStats) -> ReadStats:
    return acc


def count_and_cost(values: Iterable[tuple[int, int]]) -> tuple[int, int]:
  """(count, entry cost bound) of an L string: counts add up, the bound is the lowest seen (as Tally.add)."""
  total, low = 0, None
  for n, cost in values:
    total += n
    low = cost if low is None or cost < low else low
  return total, low


# -- counting on the workers ---------------------------------------------------------------------------------

IndexedFile = tuple[int, str]   # (index in the corpus file list, path)


def file_lines(file: IndexedFile, stats: ReadStats, reader: ReaderConfig | None, sample: Sample | None = None,
               last: Rank | None = None) -> Iterator[str]:
  """The lines of one corpus file the builders count: all, or a sample's (a --sample-lines sample needs `last`,
  the N-th smallest rank of the whole corpus)."""
  index, path = file
  if sample is None or sample.fraction is not None:
    return iter_lines([path], stats, reader, sample=sample, first_file=index)
  return _kept(up_to(iter_numbered_lines([path], stats, reader, first_file=index), sample, last), stats)


def _kept(lines: Iterable[str], stats: ReadStats) -> Iterator[str]:
  for line in lines:
    stats.kept += 1
    yield line


# A rank's key is an unsigned 64-bit hash; Beam's integer coder is signed 64-bit (it refuses keys >= 2**63), so the
# ranks travel shifted by 2**63, which keeps their order.
_KEY_SHIFT = 1 << 63


def line_ranks(file: IndexedFile, reader: ReaderConfig | None, sample: Sample) -> Iterator[Rank]:
  """The sample rank of every line of one file, its key shifted into the signed range (for Top.Smallest: the N-th
  smallest is the sample's last)."""
  index, path = file
  for file_index, line_index, _ in iter_numbered_lines([path], ReadStats(), reader, first_file=index):
    key, file_index, line_index = sample.rank(file_index, line_index)
    yield key - _KEY_SHIFT, file_index, line_index


def nouns_of_file(state: NounCounter, file: IndexedFile, reader: ReaderConfig | None, sample: Sample | None = None,
                  last: Rank | None = None, flush: int = FLUSH_DISTINCT) -> Iterator[tuple[str, Any]]:
  """("eojeol", (e, n)), ("noun", (s, (n, cost))) and finally ("stats", ReadStats) of one file (or of its lines
  in the sample): the local counting (noun_counts.Tally over nouns.count_block), emitted in partial sums whenever
  it holds `flush` strings."""
  stats = ReadStats()
  tally = Tally(0)
  for block in blocks(file_lines(file, stats, reader, sample, last)):
    tally.add(block.lines, *count_block(state, block.lines))
    if tally.distinct >= flush:
      yield from _emit_tally(tally)
      tally = Tally(0)
  yield from _emit_tally(tally)
  yield _STATS, stats


def _emit_tally(tally: Tally) -> Iterator[tuple[str, Any]]:
  for eojeol, n in tally.eojeols.items():
    yield "eojeol", (eojeol, n)
  for surface, n in tally.counts.items():
    yield "noun", (surface, (n, tally.costs[surface]))


def morphemes_of_file(analyzer: MorphAnalyzer, file: IndexedFile, reader: ReaderConfig | None,
                      sample: Sample | None = None, last: Rank | None = None,
                      flush: int = FLUSH_DISTINCT) -> Iterator[tuple[str, Any]]:
  """("morpheme", (m, n)) and finally ("stats", ReadStats) of one file (or of its lines in the sample), as
  vocab.count_morphemes counts."""
  stats = ReadStats()
  counts: Counter[str] = Counter()
  for block in blocks(file_lines(file, stats, reader, sample, last)):
    counts.update(segment_and_count(analyzer, block.lines))
    if len(counts) >= flush:
      yield from (("morpheme", item) for item in counts.items())
      counts = Counter()
  yield from (("morpheme", item) for item in counts.items())
  yield _STATS, stats


class _CountFile(beam.DoFn):
  """One corpus file -> its partial counts (main output, or the `nouns` tag for L strings) and its read stats;
  `last`: the side input of a --sample-lines sample."""

  def __init__(self, counter: Callable[..., Iterator[tuple[str, Any]]], build: Callable[..., Any], args: tuple,
               reader: ReaderConfig | None, sample: Sample | None = None):
    self._counter, self._build, self._args, self.reader, self.sample = counter, build, args, reader, sample
    self._state = None

  def setup(self):
    self._state = self._build(*self._args)

  def process(self, file: IndexedFile, last: Rank | None = None):
    for kind, value in self._counter(self._state, file, self.reader, self.sample, last):
      if kind == _STATS:
        yield beam.pvalue.TaggedOutput(_STATS, value)
      elif kind == "noun":
        yield beam.pvalue.TaggedOutput(_NOUNS, value)
      else:
        yield value


# -- the pipeline and its results -----------------------------------------------------------------------------

def _json_line(item: tuple[str, Any]) -> str:
  return json.dumps(item, ensure_ascii=False)


def _pickle_line(value: Any) -> str:
  return base64.b64encode(pickle.dumps(value)).decode("ascii")


def _write(pcoll, label: str, scratch: str, kind: str, to_line: Callable[[Any], str]):
  return (pcoll | f"{label}Lines" >> beam.Map(to_line)
          | f"Write{label}" >> beam.io.WriteToText(os.path.join(scratch, kind), file_name_suffix=".txt"))


def _last_rank(ranks: list) -> Rank | None:
  """Top.Smallest's list of shifted ranks -> its largest rank unshifted, the last line the sample keeps (None: no
  lines)."""
  if not ranks:
    return None
  key, file_index, line_index = ranks[-1]
  return key + _KEY_SHIFT, file_index, line_index


def build_counting(pipeline: beam.Pipeline, files: Sequence[str], do_fn: _CountFile, scratch: str,
                   nouns: bool) -> None:
  """Files -> exact counts (and read stats) as text files under `scratch`."""
  spread = (pipeline
            | "Files" >> beam.Create(list(enumerate(files)))
            | "SpreadFiles" >> beam.Reshuffle())
  sample, side = do_fn.sample, {}
  if sample is not None and sample.lines is not None:
    last = (spread
            | "LineRanks" >> beam.FlatMap(line_ranks, do_fn.reader, sample)
            | "SmallestRanks" >> beam.combiners.Top.Smallest(sample.lines)
            | "LastRank" >> beam.Map(_last_rank))
    side["last"] = beam.pvalue.AsSingleton(last)
  outputs = spread | "CountFiles" >> beam.ParDo(do_fn, **side).with_outputs(_STATS, _NOUNS, main="words")
  words = outputs.words | "SumWords" >> beam.CombinePerKey(sum)
  _write(words, "Words", scratch, "words", _json_line)
  if nouns:
    combined = outputs[_NOUNS] | "CombineNouns" >> beam.CombinePerKey(count_and_cost)
    _write(combined, "Nouns", scratch, "nouns", _json_line)
  stats = outputs[_STATS] | "MergeStats" >> beam.CombineGlobally(_MergeReadStats())
  _write(stats, "Stats", scratch, "stats", _pickle_line)


def _read_lines(scratch: str, kind: str) -> Iterator[str]:
  for match in FileSystems.match([os.path.join(scratch, kind) + "*"]):
    for meta in sorted(match.metadata_list, key=lambda m: m.path):
      with FileSystems.open(meta.path) as f:
        for raw in f:
          line = raw.decode("utf-8").rstrip("\n")
          if line:
            yield line


def _read_stats(scratch: str, into: ReadStats) -> ReadStats:
  for line in _read_lines(scratch, "stats"):
    into.merge(pickle.loads(base64.b64decode(line)))
  return into


def _options(beam_args: Sequence[str]) -> tuple[PipelineOptions, str | None]:
  args = list(beam_args)
  if not any(a.startswith("--runner") for a in args):
    args.append("--runner=DirectRunner")
  options = PipelineOptions(args)
  return options, options.get_all_options().get("temp_location")


def _run(files: Sequence[str], do_fn: _CountFile, nouns: bool, scratch_root: str, beam_args: Sequence[str],
         read: Callable[[str], Any]) -> Any:
  """Run the counting pipeline into a fresh scratch directory, `read(scratch)` its results, remove it."""
  options, temp_location = _options(beam_args)
  scratch = os.path.join(temp_location or scratch_root, f".korpat-beam-counts-{uuid.uuid4().hex[:12]}")
  try:
    with beam.Pipeline(options=options) as pipeline:
      build_counting(pipeline, files, do_fn, scratch, nouns)
    return read(scratch)
  finally:
    _remove(scratch)


def _remove(scratch: str) -> None:
  """Delete the scratch directory. On a local file system the whole tree goes (a runner may leave its
  beam-temp-* directory behind for a moment after the pipeline returns, so retry briefly); a scratch directory
  that will not go is reported, never fatal: the counts were already read."""
  if not os.path.isdir(scratch):
    found = [m.path for r in FileSystems.match([os.path.join(scratch, "*")]) for m in r.metadata_list]
    if found:
      FileSystems.delete(found)
    return
  for attempt in range(5):
    try:
      shutil.rmtree(scratch)
      return
    except FileNotFoundError:
      return
    except OSError as e:
      if attempt == 4:
        warnings.warn(f"could not remove the Beam scratch directory {scratch}: {e}; delete it by hand")
        return
      time.sleep(0.2 * (attempt + 1))


class BeamNounCounter:
  """userdic.TallyCounter on Beam: the exact counts of the noun-candidate search (no --max-distinct bound)."""
  runner = "beam"

  def __init__(self, scratch_root: str, beam_args: Sequence[str] = ()):
    self.scratch_root, self.beam_args = scratch_root, list(beam_args)

  def __call__(self, files: list[str], stats: ReadStats, reader: ReaderConfig | None,
               options: ExtractOptions, sample: Sample | None = None) -> Tally:
    do_fn = _CountFile(nouns_of_file, NounCounter, (options.max_chars,), reader, sample)
    return _run(files, do_fn, True, self.scratch_root, self.beam_args, lambda s: _read_tally(s, stats))


def _read_tally(scratch: str, stats: ReadStats) -> Tally:
  tally = Tally(0)
  for line in _read_lines(scratch, "words"):
    eojeol, n = json.loads(line)
    tally.eojeols[eojeol] = n
  for line in _read_lines(scratch, "nouns"):
    surface, (n, cost) = json.loads(line)
    tally.counts[surface] = n
    tally.costs[surface] = cost
  _read_stats(scratch, stats)
  return tally


def count_morphemes_beam(files: Sequence[str], user_dic: str | None, stats: ReadStats, reader: ReaderConfig | None,
                         scratch_root: str, beam_args: Sequence[str] = (), sample: Sample | None = None) -> Counter:
  """vocab.count_morphemes on Beam: exact morpheme counts of the corpus (or of `sample`'s lines); `stats` gets
  what was read."""

  def read(scratch: str) -> Counter:
    counts: Counter[str] = Counter()
    for line in _read_lines(scratch, "words"):
      morpheme, n = json.loads(line)
      counts[morpheme] = n
    _read_stats(scratch, stats)
    return counts

  do_fn = _CountFile(morphemes_of_file, MorphAnalyzer, (user_dic,), reader, sample)
  return _run(files, do_fn, False, scratch_root, beam_args, read)


def train_tokenizer_beam(corpus_files: list[str] | str, out_dir: str, vocab_size: int, *,
                         user_dic_dir: str | None = None, limit_alphabet: int, min_frequency: int,
                         beam_args: Sequence[str] = (), show_progress: bool = True, log=print,
                         reader: ReaderConfig | None = None, sample: Sample | None = None):
  """`train_tokenizer` with the segmentation and counting on Beam; the same vocab.txt as the local runner."""
  from korpat_jax.tokenizer.sources import expand_corpus
  from korpat_jax.tokenizer.vocab import check_options, resolve_user_dic, train_on_counts
  check_options(vocab_size)
  files = expand_corpus(corpus_files)
  user_dic = resolve_user_dic(user_dic_dir)
  start = time.perf_counter()
  stats = ReadStats()
  os.makedirs(out_dir, exist_ok=True)
  counts = count_morphemes_beam(files, user_dic and os.path.abspath(user_dic), stats, reader,
                                os.path.abspath(out_dir), beam_args, sample)
  log(f"beam: {len(counts)} distinct morphemes, counted exactly")
  return train_on_counts(counts, stats, files, out_dir, vocab_size, user_dic, limit_alphabet, min_frequency,
                         start, show_progress, log, runner="beam", sample=sample)


__all__ = ["BeamNounCounter", "count_morphemes_beam", "train_tokenizer_beam", "count_and_cost", "nouns_of_file",
           "morphemes_of_file"]
