"""Corpus counts for the noun-candidate search (nouns.py): blocks of lines analysed in worker processes, merged
here in block order, exact up to a bound on the distinct strings held, and a log of what the bound cost.

The blocks are cut the same way whatever the number of workers, and the parent merges and prunes them in order,
so N workers give the same counts as one, byte for byte, pruned or not.

Past `max_distinct` distinct strings (eojeols and noun-candidate L strings together, about `BYTES_PER_STRING`
bytes each), the rarest are forgotten (every string seen at most t times so far, t the smallest threshold that
halves the budget). From then on every count is a lower bound: a string's true count is at most the sum of the
thresholds higher, a string forgotten and never seen again is gone, and a candidate's entry cost is bounded by the
contexts seen since it was last forgotten. `PruneLog` says when and by how much.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from korpat_jax.tokenizer.morphemes import sanitize

BLOCK_LINES = 1024          # lines per worker task (~0.15 s of Mecab-ko on short lines), at most ...
BLOCK_CHARS = 1 << 17       # ... or about this many characters (patent paragraphs are long)
BYTES_PER_STRING = 180      # RSS per distinct string counted, measured on 100k NSMC reviews (strings, dict slots)
DEFAULT_MAX_DISTINCT = 20_000_000   # about 3.6 GB of counts


@dataclass
class Block:
  lines: list[str]
  last_line: int   # 1-based number of its last line among all the lines read
  where: str       # the file its last line came from ('' when unknown)


def blocks(lines: Iterable[str], locate: Callable[[], str] | None = None) -> Iterator[Block]:
  """Lines in blocks of at most BLOCK_LINES lines or about BLOCK_CHARS characters; `locate()` names the file
  being read (asked at each line, since the reader may move on to the next file before a block is full)."""
  block: list[str] = []
  chars = number = 0
  where = ""
  for line in lines:
    block.append(line)
    number += 1
    chars += len(line)
    if locate is not None:
      where = locate()
    if len(block) >= BLOCK_LINES or chars >= BLOCK_CHARS:
      yield Block(block, number, where)
      block, chars = [], 0
  if block:
    yield Block(block, number, where)


def prune_threshold(counts: Iterable[int], keep: int) -> int:
  """The smallest t >= 1 such that at most `keep` of `counts` exceed t (0 when none need to go)."""
  histogram = Counter(counts)
  above = sum(histogram.values())
  if above <= keep:
    return 0
  for t in sorted(histogram):
    above -= histogram[t]
    if above <= keep:
      return t
  raise AssertionError("unreachable: dropping every count leaves none")


@dataclass
class PruneLog:
  """What the memory bound cost: nothing (exact counts), or when the counts became lower bounds and how low."""
  max_distinct: int = DEFAULT_MAX_DISTINCT   # 0: no bound
  prunes: int = 0
  forgotten: int = 0                # distinct strings dropped, over all prunes
  first_pruned_at_line: int = 0     # counts are exact over lines 1..this, lower bounds after
  first_pruned_in_file: str = ""
  thresholds: list[int] = field(default_factory=list)   # each prune dropped the strings seen <= t times

  @property
  def exact(self) -> bool:
    return not self.prunes

  @property
  def max_undercount(self) -> int:
    """How much lower than the true count any reported count can be."""
    return sum(self.thresholds)

  def record(self, line: int, where: str, threshold: int, forgotten: int) -> None:
    if not self.prunes:
      self.first_pruned_at_line, self.first_pruned_in_file = line, where
    self.prunes += 1
    self.forgotten += forgotten
    self.thresholds.append(threshold)

  def to_json(self) -> str | dict:
    if self.exact:
      return "exact"
    return {"exact": False, "max_distinct": self.max_distinct, "prunes": self.prunes, "pruned": self.forgotten,
            "first_pruned_at_line": self.first_pruned_at_line, "first_pruned_in_file": self.first_pruned_in_file,
            "thresholds": self.thresholds, "max_undercount": self.max_undercount,
            "meaning": "counts are exact up to first_pruned_at_line and lower bounds after it, each at most "
                       "max_undercount below the true count; strings forgotten at a prune (seen at most that "
                       "prune's threshold times by then) and not seen again are missing"}

  def short(self) -> str:
    if self.exact:
      return "counts exact"
    return f"counts lower bounds from line {self.first_pruned_at_line} on (--max-distinct {self.max_distinct} hit)"

  def summary(self) -> str:
    if self.exact:
      return "counts exact"
    where = f" ({self.first_pruned_in_file})" if self.first_pruned_in_file else ""
    return (f"counts are LOWER BOUNDS from line {self.first_pruned_at_line}{where} on: --max-distinct "
            f"{self.max_distinct} was hit {self.prunes} time(s), {self.forgotten} strings seen at most "
            f"{max(self.thresholds)} times were forgotten, any count may be up to {self.max_undercount} low")


class Tally:
  """Eojeol counts, L-string counts and the lowest entry cost seen per L string, merged block by block."""

  def __init__(self, max_distinct: int = DEFAULT_MAX_DISTINCT):
    self.eojeols: Counter[str] = Counter()
    self.counts: Counter[str] = Counter()
    self.costs: dict[str, int] = {}
    self.log = PruneLog(max_distinct)

  @property
  def distinct(self) -> int:
    return len(self.eojeols) + len(self.counts)

  def add(self, lines: list[str], counts: Counter, costs: dict[str, int]) -> None:
    """One block: its lines' eojeols (whitespace-separated, of the text as Mecab-ko saw it) and a worker's
    L-string counts and costs for it."""
    self.eojeols.update(sanitize(" ".join(lines)).split())
    self.counts.update(counts)
    mine = self.costs
    for surface, cost in costs.items():
      old = mine.get(surface)
      if old is None or cost < old:
        mine[surface] = cost

  def over(self) -> bool:
    return bool(self.log.max_distinct) and self.distinct > self.log.max_distinct

  def prune(self, line: int, where: str) -> None:
    """Forget the rarest strings until at most half the bound is held, and log it."""
    before = self.distinct
    t = prune_threshold(itertools.chain(self.eojeols.values(), self.counts.values()), self.log.max_distinct // 2)
    self.eojeols = Counter({e: n for e, n in self.eojeols.items() if n > t})
    self.counts = Counter({s: n for s, n in self.counts.items() if n > t})
    self.costs = {s: self.costs[s] for s in self.counts}
    self.log.record(line, where, t, before - self.distinct)


def count_corpus(pool: Any, task: Callable, lines: Iterable[str], tally: Tally,
                 locate: Callable[[], str] | None = None) -> Tally:
  """Run `task(state, block_lines) -> (counts, costs)` over the blocks on `pool` (a WorkerPool) and merge the
  results into `tally` in block order, pruning after a block that takes it over its bound."""
  pending: deque[Block] = deque()

  def sent() -> Iterator[list[str]]:
    for block in blocks(lines, locate):
      pending.append(block)
      yield block.lines

  for counts, costs in pool.imap(task, sent()):
    block = pending.popleft()
    tally.add(block.lines, counts, costs)
    if tally.over():
      tally.prune(block.last_line, block.where)
  return tally
