"""Noun and compound-noun candidates for the patent user dictionary, found in a corpus.

Each eojeol is cut, soynlp-style, into L + R: R starts at the first particle, ending, copula, verb-forming
suffix or punctuation mark of Mecab-ko's analysis in context (`질화갈륨층|은`, `구동부|는`, `기판|(110)에`), and L
is the text before it. The analysis INSIDE L is not trusted: Mecab-ko splits unknown compounds in many wrong ways
(`구동부는` -> 구동/NNG 부/VV 는/ETM, or 구/NR 동부/NNG 는/JX; `질화갈륨층` ends in 층/XSN), so an L is counted by
its string, however it was split. L strings seen at least `min_count` times are analysed on their own (which
Mecab-ko does far more cleanly) and kept when that analysis is a compound noun: nouns, with determiner / prefix /
numeral / suffix-noun pieces, ending in a noun or a lexical suffix noun (층, 막, 부, 기, 체 ...; not 들, 적). Then
soynlp's scores, over the corpus's eojeols:
- cohesion: (count_L(w) / count_L(w[0])) ** (1 / (len(w) - 1)), count_L = eojeols that start with the string;
- right branching entropy: entropy of the R parts that follow w in its eojeols (particles, endings, nothing).
An entry's cost is set from MeCab's connection matrix so that it beats the split in every context it was seen in.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional

from korpat_jax.tokenizer import dic_csv
from korpat_jax.tokenizer.morphemes import FeatureAnalyzer, Morpheme, sanitize
from korpat_jax.tokenizer.noun_counts import DEFAULT_MAX_DISTINCT, PruneLog, Tally, count_corpus
from korpat_jax.tokenizer.pool import WorkerPool

NOUN_TAGS = {"NNG", "NNP", "SL", "SH", "UNKNOWN"}
# Pieces of a compound between (or, for the first four, before) its nouns: 합성/세/MM/제액, 제/XPN/1/SN/층,
# 구/NR/동부, 이/NR/차/NNBC/전지, 제/NP+JKG/어부, 전해질/층/XSN.
LEAD_TAGS = {"MM", "XPN", "NR", "NP+JKG"}
INNER_TAGS = LEAD_TAGS | {"XSN", "SN", "NNBC"}
# Determiners that start a phrase written without its space (이영화, 두시간), not a compound (unlike 전/MM+극체).
PHRASE_DETERMINERS = {"이", "그", "저", "두", "세", "네", "한", "몇", "각", "모든", "이런", "그런", "저런", "어떤", "여러",
                      "본", "새", "헌", "온", "첫"}
# Suffixes that make a word form, not a new noun: plural 들, 화학적, 부품별, 소자당, 기판상, 3일간, 1개씩 ...
GRAMMATICAL_SUFFIXES = {"들", "적", "별", "당", "상", "간", "씩", "님", "째", "쯤", "여", "끼리"}
BOUNDARY_TAG_STARTS = ("J", "E", "VCP", "VCN", "XSV", "XSA", "SF", "SE", "SS", "SP", "SC", "SY", "SO")
_HANGUL = re.compile("[\uac00-\ud7a3]")
COST_MARGIN = 200
COST_CAP = 4000   # no entry costs more than a common noun
JUDGE_BLOCK = 512   # L strings per worker task when they are analysed on their own
REASONS = {
    "min_count": "seen as a whole fewer than --min-count {min_count} times",
    "not_a_noun": "not a compound noun when analysed on its own",
    "min_cohesion": "cohesion below --min-cohesion {min_cohesion}",
    "min_branching": "right branching entropy below --min-branching {min_branching}",
}


@dataclass
class ExtractOptions:
  min_count: int = 3
  min_cohesion: float = 0.05
  min_branching: float = 0.0   # nats; 0 keeps candidates seen with one R part only
  max_chars: int = 20
  max_distinct: int = DEFAULT_MAX_DISTINCT   # distinct strings counted exactly before the rarest are forgotten


@dataclass
class Candidate:
  surface: str
  parts: tuple[tuple[str, str], ...]   # (surface, POS) of its morphemes, analysed on its own
  count: int = 0                       # eojeols whose L part is exactly this string
  max_cost: int = 1 << 30              # word cost under which the entry beats the split in every context seen
  cohesion: float = 0.0
  branching: float = 0.0
  note: str = ""                       # why it is not a compound noun, for the report

  @property
  def compound(self) -> bool:
    return len(self.parts) > 1

  def describe(self) -> str:
    analysis = " + ".join(f"{s}/{p}" for s, p in self.parts)
    scores = f", cohesion {self.cohesion:.2f}, branching {self.branching:.2f}" if self.cohesion else ""
    return f"{self.surface} x{self.count} ({analysis}{': ' + self.note if self.note else ''}){scores}"

  def csv_row(self, ids: dic_csv.ContextIds) -> list[str]:
    pos = _entry_pos(self.parts)
    jong = dic_csv.has_jongseong(self.surface) or "*"
    if self.compound and not any("+" in p for _, p in self.parts):   # NP+JKG cannot be written in an expression
      expr = "+".join(f"{s}/{'NNG' if p == 'UNKNOWN' else p}/*" for s, p in self.parts)
      feature = (pos, "*", jong, self.surface, "Compound", "*", "*", expr)
    else:
      feature = (pos, "*", jong, self.surface, "*", "*", "*", "*")
    cost = max(dic_csv.COST_MIN, min(self.max_cost, COST_CAP) - COST_MARGIN)
    return [self.surface, str(ids.lookup("left", feature)), str(ids.lookup("right", feature)), str(cost),
            *feature]


@dataclass
class ExtractReport:
  """How many candidates each threshold dropped, with up to `limit` examples each (the most frequent)."""
  limit: int = 0
  kept: int = 0
  single_morphemes: int = 0   # L parts that Mecab-ko already reads as one morpheme: no entry needed
  dropped: Counter = field(default_factory=Counter)
  examples: dict[str, list[Candidate]] = field(default_factory=lambda: defaultdict(list))
  counts: PruneLog = field(default_factory=PruneLog)   # exact, or what the --max-distinct bound cost
  distinct_eojeols: int = 0     # what the counts held: their memory is about BYTES_PER_STRING bytes a string
  distinct_l_strings: int = 0
  count_seconds: float = 0.0    # reading + analysing + counting the corpus (the part workers and Beam spread)
  select_seconds: float = 0.0   # choosing and scoring the candidates from the counts (one machine)

  def drop(self, reason: str, cand: Candidate | None = None) -> None:
    self.dropped[reason] += 1
    if cand is not None and self.limit:
      self.examples[reason].append(cand)

  def summary(self, options: ExtractOptions) -> str:
    reasons = "; ".join(f"{self.dropped[r]} {REASONS[r].format(**vars(options))}" for r in REASONS)
    return (f"noun candidates: {self.kept} kept; dropped: {reasons}; {self.single_morphemes} already one "
            f"morpheme; {self.counts.summary()}")

  def to_json(self, options: ExtractOptions) -> dict:
    return {"kept": self.kept, "single_morphemes": self.single_morphemes,
            "dropped": {r: self.dropped[r] for r in REASONS}, "options": vars(options),
            "distinct": {"eojeols": self.distinct_eojeols, "l_strings": self.distinct_l_strings}}

  def details(self, options: ExtractOptions) -> Iterator[str]:
    for reason in REASONS:
      shown = sorted(self.examples.get(reason, []), key=lambda c: (-c.count, c.surface))[:self.limit]
      if not shown:
        continue
      what = REASONS[reason].format(**vars(options))
      if reason == "min_count":   # most of these strings were never analysed: list the nouns among the most frequent
        yield f"dropped, {what} ({self.dropped[reason]} strings; the most frequent compound nouns among them):"
      else:
        more = self.dropped[reason] - len(shown)
        yield f"dropped, {what}" + (f" ({more} more)" if more > 0 else "") + ":"
      yield from (f"  {c.describe()}" for c in shown)


def _is_boundary(pos: str) -> bool:
  return pos.split("+", 1)[0].startswith(BOUNDARY_TAG_STARTS)


def _starts_compound(m: Morpheme) -> bool:
  return m.pos in NOUN_TAGS or (m.pos in LEAD_TAGS and not (m.pos == "MM" and m.surface in PHRASE_DETERMINERS))


NounPart = tuple[str, list[Morpheme], "Morpheme | None", "Morpheme | None"]


def eojeol_noun_parts(morphs: list[Morpheme], line: str) -> Iterator[NounPart]:
  """(eojeol, L morphemes, the morphemes before and after L) for each eojeol of `line` that starts like a
  compound noun; L ends before the first boundary morpheme (particle, ending, copula, verb suffix, punctuation)
  or at the end of the eojeol."""
  starts: list[tuple[str, int]] = []   # (eojeol, index of its first morpheme)
  pos = 0
  for i, m in enumerate(morphs):
    at = line.find(m.surface, pos)
    if at < 0:
      return
    if not starts or at == 0 or line[at - 1].isspace():
      end = at
      while end < len(line) and not line[end].isspace():
        end += 1
      starts.append((line[at:end], i))
    pos = at + len(m.surface)
  ends = [i for _, i in starts[1:]] + [len(morphs)]
  for (eojeol, first), stop in zip(starts, ends):
    if not _starts_compound(morphs[first]):
      continue
    cut = next((i for i in range(first, stop) if _is_boundary(morphs[i].pos)), stop)
    if cut > first:
      yield (eojeol, morphs[first:cut], morphs[first - 1] if first else None,
             morphs[cut] if cut < len(morphs) else None)


def _plausible(surface: str, max_chars: int) -> bool:
  """2..max_chars letters and digits, at least one Hangul syllable."""
  return 2 <= len(surface) <= max_chars and surface.isalnum() and _HANGUL.search(surface) is not None


def noun_verdict(surface: str, morphs: list[Morpheme]) -> str:
  """'' when `morphs` (the analysis of `surface` on its own) make a new noun entry; else why not
  ('single' for one morpheme that Mecab-ko already reads as a word)."""
  if "".join(m.surface for m in morphs) != surface:
    return "the analysis does not cover the string"
  if len(morphs) == 1:
    m = morphs[0]
    if m.unknown and m.pos in NOUN_TAGS and all("\uac00" <= c <= "\ud7a3" for c in surface):
      return ""
    return "single"
  if not _starts_compound(morphs[0]):
    return f"starts with {morphs[0].surface}/{morphs[0].pos}"
  for m in morphs[1:]:
    if m.pos not in NOUN_TAGS and m.pos not in INNER_TAGS:
      return f"contains {m.surface}/{m.pos}"
  last = morphs[-1]
  if last.pos not in NOUN_TAGS and not (last.pos == "XSN" and last.surface not in GRAMMATICAL_SUFFIXES):
    return f"ends in {last.surface}/{last.pos}"
  if not any(m.pos in NOUN_TAGS for m in morphs):
    return "no noun"
  return ""


class EntryCosts:
  """The highest word cost at which a one-morpheme noun entry still beats the split it replaces.

  MeCab takes the cheapest path. Between the same neighbours, the split costs conn(prev, m1) + w(m1) +
  conn(m1, m2) + w(m2) ... + conn(mk, next), the entry conn(prev, E) + w(E) + conn(E, next); the surface alone
  has BOS and EOS (id 0) as neighbours."""

  def __init__(self):
    self._ids = dic_csv.ContextIds()
    self._conn = dic_csv.ConnectionCosts()
    self._entry_ids: dict[tuple[str, str], tuple[int, int]] = {}

  def entry_ids(self, pos: str, surface: str) -> tuple[int, int]:
    """(left, right) context ids of a noun entry; for nouns they depend on POS and has_jongseong only."""
    key = (pos, dic_csv.has_jongseong(surface) or "*")
    if key not in self._entry_ids:
      feature = (pos, "*", key[1], surface, "*", "*", "*", "*")
      self._entry_ids[key] = (self._ids.lookup("left", feature) or 0, self._ids.lookup("right", feature) or 0)
    return self._entry_ids[key]

  def bound(self, pos: str, surface: str, morphs: list[Morpheme], prev: Morpheme | None = None,
            next_: Morpheme | None = None) -> int:
    prev_right = prev.right_id if prev else 0
    next_left = next_.left_id if next_ else 0
    left, right = self.entry_ids(pos, surface)
    split = (self._conn(prev_right, morphs[0].left_id) + morphs[0].first_cost + sum(m.cost for m in morphs[1:])
             + self._conn(morphs[-1].right_id, next_left))
    return split - self._conn(prev_right, left) - self._conn(right, next_left)


def _entry_pos(parts: Iterable[tuple[str, str]]) -> str:
  return "NNP" if all(p == "NNP" for _, p in parts) else "NNG"


class NounCounter:
  """A worker's state: the tagger and the connection matrix, built once per process."""

  def __init__(self, max_chars: int):
    self.analyzer = FeatureAnalyzer()
    self.entry_costs = EntryCosts()
    self.max_chars = max_chars


def count_block(state: NounCounter, lines: list[str]) -> tuple[Counter, dict[str, int]]:
  """(count, lowest entry cost) of the L strings of a block's eojeols: a worker task, so only these compact
  tables travel back, not the analyses."""
  counts: Counter[str] = Counter()
  costs: dict[str, int] = {}
  for line in lines:
    line = sanitize(line)
    for eojeol, part, prev, next_ in eojeol_noun_parts(state.analyzer.analyse(line), line):
      surface = "".join(m.surface for m in part)
      if not eojeol.startswith(surface) or not _plausible(surface, state.max_chars):
        continue
      counts[surface] += 1
      cost = state.entry_costs.bound("NNG", surface, part, prev, next_)   # POS settled later; NNG nearly always
      old = costs.get(surface)
      if old is None or cost < old:
        costs[surface] = cost
  return counts, costs


# (parts, why it is not a compound noun or '', entry cost bound of the string alone), None for one morpheme.
Judgement = Optional[tuple[tuple[tuple[str, str], ...], str, Optional[int]]]


def judge_block(state: NounCounter, surfaces: list[str]) -> list[Judgement]:
  """Per L string analysed on its own: None for one morpheme Mecab-ko already reads as a word, else (parts,
  why it is not a compound noun or '', the entry cost bound alone or None): a worker task."""
  out = []
  for surface in surfaces:
    morphs = state.analyzer.analyse(surface)
    verdict = noun_verdict(surface, morphs)
    if verdict == "single":
      out.append(None)
      continue
    parts = tuple((m.surface, m.pos) for m in morphs)
    cost = state.entry_costs.bound(_entry_pos(parts), surface, morphs) if morphs else None
    out.append((parts, verdict, cost))
  return out


def _judged(pool: WorkerPool, surfaces: list[str], tally: Tally) -> Iterator[Candidate | None]:
  """A candidate per surface (its note says why when it is not a noun), or None for a single morpheme."""
  chunks = [surfaces[i:i + JUDGE_BLOCK] for i in range(0, len(surfaces), JUDGE_BLOCK)]
  for chunk, judgements in zip(chunks, pool.imap(judge_block, chunks)):
    for surface, judgement in zip(chunk, judgements):
      if judgement is None:
        yield None
        continue
      parts, verdict, cost = judgement
      seen = tally.costs[surface]
      yield Candidate(surface, parts, tally.counts[surface], seen if cost is None else min(seen, cost), note=verdict)


def extract_candidates(lines: Iterable[str], options: ExtractOptions | None = None,
                       report: ExtractReport | None = None, workers: int = 1,
                       locate: Callable[[], str] | None = None) -> list[Candidate]:
  """Score the L parts of a corpus's eojeols and keep the compound nouns that pass the thresholds, best first.

  `workers` processes analyse the text (1: this process); the result does not depend on their number.
  `locate()` names the file being read, for the report of a pruning (see noun_counts)."""
  options = options or ExtractOptions()
  report = report if report is not None else ExtractReport()
  with WorkerPool(workers, NounCounter, options.max_chars) as pool:
    start = time.perf_counter()
    tally = count_corpus(pool, count_block, lines, Tally(options.max_distinct), locate)
    report.count_seconds = time.perf_counter() - start
    return select_candidates(pool, tally, options, report)


def select_candidates(pool: WorkerPool, tally: Tally, options: ExtractOptions,
                      report: ExtractReport | None = None) -> list[Candidate]:
  """The compound nouns among a corpus's counted L strings (`tally`, from either runner), best first: the
  frequent ones analysed on their own on `pool`, then scored. Depends on the counts only, not their order."""
  report = report if report is not None else ExtractReport()
  start = time.perf_counter()
  report.counts = tally.log
  report.distinct_eojeols, report.distinct_l_strings = len(tally.eojeols), len(tally.counts)
  frequent = []
  for surface, n in tally.counts.items():
    if n < options.min_count:
      report.drop("min_count")
    else:
      frequent.append(surface)
  found: dict[str, Candidate] = {}
  for surface, cand in zip(frequent, _judged(pool, frequent, tally)):
    if cand is None:
      report.single_morphemes += 1
    elif cand.note:
      report.drop("not_a_noun", cand)
    else:
      found[surface] = cand
  if report.limit:   # the most frequent strings below --min-count that would have been nouns
    counts = tally.counts
    below = sorted((s for s, n in counts.items() if n < options.min_count), key=lambda s: (-counts[s], s))
    shown = report.examples["min_count"]
    for cand in _judged(pool, below[:report.limit * 20], tally):
      if cand is not None and not cand.note and len(shown) < report.limit:
        shown.append(cand)
  kept = _score(found, tally.eojeols, options, report)
  report.kept = len(kept)
  report.select_seconds = time.perf_counter() - start
  return kept


def _score(found: dict[str, Candidate], eojeols: Counter, options: ExtractOptions,
           report: ExtractReport) -> list[Candidate]:
  """Cohesion and right branching entropy over the distinct eojeols; the candidates that pass, best first."""
  count_l: Counter[str] = Counter()
  right_parts: dict[str, Counter[str]] = defaultdict(Counter)
  lengths: dict[str, set[int]] = defaultdict(set)   # only prefixes of a found length can be found
  for surface in found:
    lengths[surface[0]].add(len(surface))
  by_first = {first: sorted(ks) for first, ks in lengths.items()}
  for eojeol, n in eojeols.items():
    ks = by_first.get(eojeol[0])
    if ks is None:
      continue
    count_l[eojeol[0]] += n
    for k in ks:
      if k > len(eojeol):
        break
      prefix = eojeol[:k]
      if prefix in found:
        count_l[prefix] += n
        right_parts[prefix][eojeol[k:]] += n
  kept = []
  for surface, cand in found.items():
    cand.cohesion = (count_l[surface] / max(count_l[surface[0]], 1)) ** (1 / (len(surface) - 1))
    rights = right_parts[surface]
    total = sum(rights.values())
    # fsum: exactly rounded, so the same whatever order the counts were merged in (local or Beam)
    cand.branching = 0.0 - math.fsum(c / total * math.log(c / total) for c in rights.values()) if total else 0.0
    if cand.cohesion < options.min_cohesion:
      report.drop("min_cohesion", cand)
    elif cand.branching < options.min_branching:
      report.drop("min_branching", cand)
    else:
      kept.append(cand)
  kept.sort(key=lambda c: (-c.count * c.cohesion, c.surface))
  return kept
