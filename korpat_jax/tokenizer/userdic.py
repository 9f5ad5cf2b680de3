"""Patent user dictionary: noun / compound-noun candidates from a corpus, merged with a user's CSV.

Candidates are runs of noun morphemes at the start of an eojeol (the L part of soynlp's L-R model of an
eojeol), found with Mecab-ko. Each is scored over the corpus the way soynlp scores nouns:
- frequency: how often the run occurs as a whole;
- cohesion: (count_L(w) / count_L(w[0])) ** (1 / (len(w) - 1)), count_L = eojeols that start with the string;
- right branching entropy: entropy of the R parts (what follows w inside its eojeol: particles, endings, nothing).
Compound runs (two or more morphemes) become `Compound` entries with their parts as the expression; a single
unknown-word Hangul run becomes a plain noun. The cost is the run's own analysis cost (word + connection costs of
its parts) minus a margin, so the entry beats the split it replaces.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer import dic_csv
from korpat_jax.tokenizer.morphemes import FeatureAnalyzer, Morpheme, dictionary_hash, file_sha256, make_tagger
from korpat_jax.tokenizer.sources import LineStats, expand_corpus, iter_lines, total_bytes

NOUN_TAGS = {"NNG", "NNP", "SL", "SH", "UNKNOWN"}
INNER_TAGS = {"MM", "XPN", "XSN", "SN"}   # allowed between two nouns of a run (합성/세/제액)
MAX_RUN_MORPHEMES = 6
MAX_CANDIDATE_CHARS = 20
COST_MARGIN = 200
COST_CAP = 4000   # no entry costs more than a common noun


@dataclass
class ExtractOptions:
  min_count: int = 3
  min_cohesion: float = 0.05
  min_branching: float = 0.0   # nats; 0 keeps candidates seen with one R part only
  max_chars: int = MAX_CANDIDATE_CHARS
  max_tracked: int = 5_000_000   # distinct eojeols kept in memory before singletons are pruned


@dataclass
class Candidate:
  surface: str
  parts: tuple[tuple[str, str], ...]   # (surface, POS) of the morphemes
  count: int = 0
  inner_cost: int = 1 << 30
  cohesion: float = 0.0
  branching: float = 0.0

  @property
  def compound(self) -> bool:
    return len(self.parts) > 1

  def csv_row(self, ids: dic_csv.ContextIds) -> list[str]:
    pos = "NNP" if all(p == "NNP" for _, p in self.parts) else "NNG"
    jong = dic_csv.has_jongseong(self.surface) or "*"
    if self.compound:
      expr = "+".join(f"{s}/{'NNG' if p == 'UNKNOWN' else p}/*" for s, p in self.parts)
      feature = (pos, "*", jong, self.surface, "Compound", "*", "*", expr)
    else:
      feature = (pos, "*", jong, self.surface, "*", "*", "*", "*")
    cost = max(dic_csv.COST_MIN, min(self.inner_cost, COST_CAP) - COST_MARGIN)
    return [self.surface, str(ids.lookup("left", feature)), str(ids.lookup("right", feature)), str(cost),
            *feature]


def _eojeol_runs(morphs: list[Morpheme], line: str):
  """(eojeol, noun-run morphemes) for each eojeol of the line that starts with a noun run."""
  groups: list[tuple[str, list[Morpheme]]] = []
  pos = 0
  for m in morphs:
    at = line.find(m.surface, pos)
    if at < 0:
      return
    if not groups or at == 0 or line[at - 1].isspace():
      end = at
      while end < len(line) and not line[end].isspace():
        end += 1
      groups.append((line[at:end], []))
    groups[-1][1].append(m)
    pos = at + len(m.surface)
  for eojeol, ms in groups:
    run: list[Morpheme] = []
    for i, m in enumerate(ms[:MAX_RUN_MORPHEMES]):
      inner_ok = run and m.pos in INNER_TAGS and i + 1 < len(ms) and ms[i + 1].pos in NOUN_TAGS
      if m.pos not in NOUN_TAGS and not inner_ok:
        break
      run.append(m)
    while run and run[-1].pos in INNER_TAGS:
      run.pop()
    if run:
      yield eojeol, run


def _is_candidate(run: list[Morpheme], surface: str, max_chars: int) -> bool:
  if len(surface) < 2 or len(surface) > max_chars or not any("\uac00" <= c <= "\ud7a3" for c in surface):
    return False
  if len(run) == 1:
    return run[0].unknown and all("\uac00" <= c <= "\ud7a3" for c in surface)
  return True


def extract_candidates(lines: Iterable[str], options: ExtractOptions | None = None,
                       progress: tqdm | None = None) -> list[Candidate]:
  """Score the noun runs of a corpus and keep those that pass the thresholds, best first."""
  options = options or ExtractOptions()
  analyzer = FeatureAnalyzer()
  found: dict[str, Candidate] = {}
  eojeols: Counter[str] = Counter()
  for line in lines:
    if progress is not None:
      progress.update(len(line.encode("utf-8")) + 1)
    for eojeol in line.split():
      eojeols[eojeol] += 1
    if len(eojeols) > options.max_tracked:   # bounded memory on big corpora: forget what was seen once
      eojeols = Counter({e: n for e, n in eojeols.items() if n > 1})
      found = {s: c for s, c in found.items() if c.count > 1}
    for eojeol, run in _eojeol_runs(analyzer.analyse(line), line):
      surface = "".join(m.surface for m in run)
      if not eojeol.startswith(surface) or not _is_candidate(run, surface, options.max_chars):
        continue
      cand = found.get(surface)
      if cand is None:
        cand = found[surface] = Candidate(surface, tuple((m.surface, m.pos) for m in run))
      cand.count += 1
      cand.inner_cost = min(cand.inner_cost, run[0].first_cost + sum(m.cost for m in run[1:]))
  found = {s: c for s, c in found.items() if c.count >= options.min_count}
  # Second pass over the distinct eojeols: L counts for cohesion and R parts for branching entropy.
  count_l: Counter[str] = Counter()
  right_parts: dict[str, Counter[str]] = defaultdict(Counter)
  first_chars = {s[0] for s in found}
  for eojeol, n in eojeols.items():
    if eojeol[0] not in first_chars:
      continue
    count_l[eojeol[0]] += n
    for k in range(2, min(len(eojeol), options.max_chars) + 1):
      prefix = eojeol[:k]
      if prefix in found:
        count_l[prefix] += n
        right_parts[prefix][eojeol[k:]] += n
  kept = []
  for surface, cand in found.items():
    cand.cohesion = (count_l[surface] / max(count_l[surface[0]], 1)) ** (1 / (len(surface) - 1))
    rights = right_parts[surface]
    total = sum(rights.values())
    cand.branching = -sum(c / total * math.log(c / total) for c in rights.values()) if total else 0.0
    if cand.cohesion >= options.min_cohesion and cand.branching >= options.min_branching:
      kept.append(cand)
  kept.sort(key=lambda c: (-c.count * c.cohesion, c.surface))
  return kept


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


def build_user_dictionary(corpus: str | list[str] | None, out_dir: str, user_csvs: Iterable[str] = (),
                          options: ExtractOptions | None = None, default_cost: int = 1000,
                          log: Callable[[str], None] = print, max_bad_shown: int = 20,
                          quiet_compile: bool = False) -> UserDicResult:
  """Merge user CSVs and corpus candidates (earlier sources win a (surface, POS) clash) into user.csv,
  compile it to user.dic, and check on a sample that the entries win."""
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
  with open(csv_path, "w", encoding="utf-8", newline="") as f:
    for path in user_csvs:
      report = dic_csv.RowReport(path)
      rows = dic_csv.read_user_csv(path, ids, default_cost, report, on_bad)
      add(tqdm(rows, desc=os.path.basename(path), unit=" rows", unit_scale=True, disable=None), report, f)
      reports.append(report)
    if shown[0] > max_bad_shown:
      log(f"... {shown[0] - max_bad_shown} more bad rows not shown")
    if corpus_files:
      stats = LineStats()
      with tqdm(total=total_bytes(corpus_files), unit="B", unit_scale=True, desc="noun candidates",
                disable=None) as bar:
        candidates = extract_candidates(iter_lines(corpus_files, stats), options, bar)
      log(f"corpus: {len(corpus_files)} files, {stats.summary()}")
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
      "rows": [r.summary() for r in reports],
      "user_dic_sha256": file_sha256(result.path), "system_dictionary_sha256": dictionary_hash(),
      "compile_seconds": round(result.seconds, 2), "compile_peak_rss_mb": round(result.peak_rss_mb, 1),
      "entries_won_sample": round(won, 4), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }
  (out / "userdic.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
  log(f"wrote {result.path}: {entries} entries ({from_corpus} from the corpus), compiled in "
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
