"""Patent user dictionary: noun / compound-noun candidates from a corpus (nouns.py), merged with a user's CSV,
compiled to user.dic.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from korpat_jax import files
from korpat_jax.corpus.readers import ReaderConfig
from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer import dic_csv
from korpat_jax.tokenizer.morphemes import dictionary_hash, file_sha256, make_tagger
from korpat_jax.tokenizer.noun_counts import Tally
from korpat_jax.tokenizer.nouns import (Candidate, ExtractOptions, ExtractReport, NounCounter, extract_candidates,
                                       select_candidates)
from korpat_jax.tokenizer.pool import WorkerPool
from korpat_jax.tokenizer.sampling import Sample
from korpat_jax.tokenizer.sources import ReadStats, expand_corpus, iter_lines, total_bytes

__all__ = ["build_user_dictionary", "check_entries_win", "user_dic_path", "UserDicResult", "Candidate",
           "ExtractOptions", "ExtractReport", "extract_candidates"]

VERBOSE_EXAMPLES = 30   # candidates listed per reason with `verbose`


@dataclass
class UserDicResult:
  out_dir: str
  user_dic: str
  entries: int
  from_corpus: int
  reports: list[dic_csv.RowReport] = field(default_factory=list)
  compile_seconds: float = 0.0
  peak_rss_mb: float = 0.0
  won: float = float("nan")   # share of sampled entries that Mecab-ko now returns as one morpheme


def check_entries_win(user_dic: str, csv_path: str, entries: int, sample: int = 2000) -> float:
  """Share of a sample of entries that the tagger with `user_dic` analyses as that one entry."""
  if not entries:
    return float("nan")
  step = max(1, entries // sample)
  tagger = make_tagger(user_dic, '--node-format="%m\\t%f[0]\\n" --unk-format="%m\\tUNK\\n" --eos-format=""')
  won = tried = 0
  with open(csv_path, encoding="utf-8") as f:
    for i, line in enumerate(f):
      if i % step:
        continue
      surface, _, _, _, pos = line.split(",", 5)[:5]
      out = tagger.parse(surface).rstrip("\n").split("\n")
      won += len(out) == 1 and out[0].split("\t") == [surface, pos]
      tried += 1
  return won / tried


# (corpus files, read stats to fill, reader config, options, sample or None) -> exact (or bounded) counts of the
# corpus, or of the sample's lines.
TallyCounter = Callable[[list[str], ReadStats, ReaderConfig | None, ExtractOptions, Sample | None], Tally]


def _corpus_candidates(corpus_files: list[str], options: ExtractOptions, report: ExtractReport,
                       reader: ReaderConfig | None, workers: int, log: Callable[[str], None],
                       counter: TallyCounter | None, sample: Sample | None, stats: ReadStats) -> list[Candidate]:
  """Count the corpus or its `sample` (here, or with `counter`), choose the candidates, and log what was read
  (into `stats`) and found."""
  if counter is None:
    with tqdm(total=total_bytes(corpus_files), unit="B", unit_scale=True, desc="noun candidates",
              disable=None) as bar:
      lines = iter_lines(corpus_files, stats, reader, progress=bar, sample=sample)
      whole = sample is None or sample.lines is None   # a --sample-lines sample comes once every file is read
      locate = (lambda: corpus_files[min(stats.files, len(corpus_files) - 1)]) if whole else None
      candidates = extract_candidates(lines, options, report, workers, locate=locate)
  else:
    start = time.perf_counter()
    tally = counter(corpus_files, stats, reader, options, sample)
    report.count_seconds = time.perf_counter() - start
    with WorkerPool(workers, NounCounter, options.max_chars) as pool:
      candidates = select_candidates(pool, tally, options, report)
  log(f"corpus: {stats.summary()}")
  if sample is not None:
    log(f"sample: kept {stats.kept} of {stats.lines} lines ({sample.describe()})")
  log(report.summary(options))
  if report.limit:
    log("kept:")
    for cand in candidates:
      log(f"  {cand.describe()}")
    for line in report.details(options):
      log(line)
  return candidates


def build_user_dictionary(corpus: str | list[str] | None, out_dir: str, user_csvs: Iterable[str] = (),
                          options: ExtractOptions | None = None, default_cost: int = 1000,
                          log: Callable[[str], None] = print, max_bad_shown: int = 20,
                          quiet_compile: bool = False, reader: ReaderConfig | None = None,
                          verbose: bool = False, workers: int = 1,
                          counter: TallyCounter | None = None, sample: Sample | None = None) -> UserDicResult:
  """Merge user CSVs and corpus candidates (earlier sources win a (surface, POS) clash) into user.csv,
  compile it to user.dic, and check on a sample that the entries win.

  `corpus`: paths, globs or directories, read as `prepare` reads them (`reader`). `verbose` logs every kept
  candidate and the most frequent ones each threshold dropped. `counter` counts the corpus instead of this
  process's `workers` (the Beam runner, tokenizer/beam.py); the candidates are chosen here either way. `sample`
  (sampling.py): count only those corpus lines; userdic.json records it, with the lines read and kept."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  user_csvs = list(user_csvs)
  for path in user_csvs:
    if not os.path.isfile(path):
      raise KorpatError(f"{path}: user CSV not found")
  ids = dic_csv.ContextIds()
  seen: set[str] = set()
  reports = []
  shown = [0]
  csv_path = out / "user.csv"

  def on_bad(message: str) -> None:
    if shown[0] < max_bad_shown:
      log(f"skipped bad row: {message}")
    shown[0] += 1

  def add(rows, report, f) -> None:
    for row in rows:
      key = f"{row[0]}\t{row[4]}"
      if key in seen:
        report.duplicates += 1
        continue
      seen.add(key)
      f.write(",".join(row) + "\n")
      report.kept += 1

  corpus_files: list[str] = expand_corpus(corpus) if corpus else []
  extract_report: ExtractReport | None = None
  stats = ReadStats()
  with open(csv_path, "w", encoding="utf-8", newline="") as f:
    for path in user_csvs:
      report = dic_csv.RowReport(path)
      rows = dic_csv.read_user_csv(path, ids, default_cost, report, on_bad)
      add(tqdm(rows, desc=os.path.basename(path), unit=" rows", unit_scale=True, disable=None), report, f)
      reports.append(report)
    if shown[0] > max_bad_shown:
      log(f"... {shown[0] - max_bad_shown} more bad rows not shown")
    if corpus_files:
      options = options or ExtractOptions()
      extract_report = ExtractReport(limit=VERBOSE_EXAMPLES if verbose else 0)
      candidates = _corpus_candidates(corpus_files, options, extract_report, reader, workers, log, counter, sample,
                                      stats)
      report = dic_csv.RowReport("corpus candidates", rows=len(candidates))
      add((cand.csv_row(ids) for cand in candidates), report, f)
      reports.append(report)
  for report in reports:
    log(report.summary())
  entries = len(seen)
  del seen
  if not entries:
    raise KorpatError(f"{out_dir}: no dictionary entries (empty corpus and no usable user CSV rows)")
  from_corpus = reports[-1].kept if corpus_files else 0
  result = dic_csv.compile_user_dic(str(csv_path), str(out / "user.dic"), entries, quiet=quiet_compile)
  won = check_entries_win(result.path, str(csv_path), entries)
  manifest = {
      "entries": entries, "from_corpus": from_corpus,
      "user_csvs": [os.path.abspath(p) for p in user_csvs], "corpus_files": len(corpus_files),
      "runner": getattr(counter, "runner", "local") if corpus_files else None,
      "corpus_candidates": extract_report.to_json(options) if extract_report else None,
      "counts": extract_report.counts.to_json() if extract_report else None,
      "sample": sample.to_json(stats.lines, stats.kept) if sample is not None and corpus_files else None,
      "rows": [r.summary() for r in reports],
      "user_dic_sha256": file_sha256(result.path), "system_dictionary_sha256": dictionary_hash(),
      "compile_seconds": round(result.seconds, 2), "compile_peak_rss_mb": round(result.peak_rss_mb, 1),
      "seconds": {"count": round(extract_report.count_seconds, 2) if extract_report else 0.0,
                  "select": round(extract_report.select_seconds, 2) if extract_report else 0.0,
                  "compile": round(result.seconds, 2)},
      "entries_won_sample": round(won, 4), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }
  files.write_json(out / "userdic.json", manifest)
  counts = f", {extract_report.counts.short()}" if extract_report else ""
  log(f"wrote {result.path}: {entries} entries ({from_corpus} from the corpus{counts}), compiled in "
      f"{result.seconds:.1f}s, compiler peak RSS {result.peak_rss_mb:.0f} MB; {won:.1%} of sampled entries "
      f"come out as one morpheme")
  return UserDicResult(str(out), result.path, entries, from_corpus, reports, result.seconds,
                       result.peak_rss_mb, won)


def user_dic_path(path: str) -> str:
  """`DIR` (holding user.dic) or a .dic file -> the .dic file."""
  p = Path(path)
  if p.is_dir():
    p = p / "user.dic"
  if not p.is_file():
    raise KorpatError(f"{p}: user dictionary not found (build it with `korpat-jax tokenizer userdic`)")
  return str(p)
