"""Seeded samples of the corpus lines, for a first vocabulary or user dictionary (`--sample-lines N`,
`--sample-fraction F`, `--sample-seed S` of `tokenizer userdic` and `tokenizer train`).

Every non-blank corpus line (what the builders read, sources.iter_lines) gets a key: a 64-bit hash (splitmix64)
of the seed, the index of its file in the sorted corpus file list and its index among that file's non-blank
lines. A fraction keeps the lines whose key is below F * 2**64: each line independently with probability F. A
line count keeps the N lines of smallest (key, file, line): a uniform sample of N lines without replacement (all
of them when the corpus has fewer), found in one pass with a heap of N lines. A key depends on nothing else read
nor on who reads it, so one process, any number of workers and the Beam runner (which reads files on many
workers) keep the same lines, and the same seed always keeps the same lines of the same corpus.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterable, Iterator

from korpat_jax.errors import KorpatError

_MASK = (1 << 64) - 1
SPACE = 1 << 64   # keys are in [0, SPACE)

Numbered = tuple[int, int, str]          # (file index, line index in the file, line)
Rank = tuple[int, int, int]              # (key, file index, line index): the --sample-lines order


def _mix(x: int) -> int:
  """splitmix64's finalizer: a 64-bit integer -> a well-spread 64-bit integer."""
  x = (x + 0x9E3779B97F4A7C15) & _MASK
  x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
  x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
  return x ^ (x >> 31)


def line_key(seed: int, file_index: int, line_index: int) -> int:
  """The line's key in [0, 2**64): uniform, independent between lines, fixed by (seed, file, line)."""
  return _mix(_mix(_mix(seed & _MASK) ^ file_index) ^ line_index)


@dataclass(frozen=True)
class Sample:
  """Which lines to keep: `lines` (the N of smallest key) or `fraction` (key below F * 2**64), never both."""
  lines: int | None = None
  fraction: float | None = None
  seed: int = 0

  @property
  def cutoff(self) -> int:
    """Keys below this are kept by a fraction."""
    return int(self.fraction * SPACE) if self.fraction is not None else SPACE

  def rank(self, file_index: int, line_index: int) -> Rank:
    return line_key(self.seed, file_index, line_index), file_index, line_index

  @property
  def flag(self) -> str:
    """The option that asked for it: `--sample-lines N` or `--sample-fraction F`."""
    return f"--sample-lines {self.lines}" if self.lines is not None else f"--sample-fraction {self.fraction}"

  def describe(self) -> str:
    return f"{self.flag}, --sample-seed {self.seed}"

  def to_json(self, lines_read: int, lines_kept: int) -> dict:
    method = ("the N lines of smallest seeded hash of (file index, line index in the file)" if self.lines is not None
              else "the lines whose seeded hash of (file index, line index in the file) is below F * 2**64")
    return {"lines": self.lines, "fraction": self.fraction, "seed": self.seed, "lines_read": lines_read,
            "lines_kept": lines_kept, "method": method}


def make_sample(lines: int | None, fraction: float | None, seed: int) -> Sample | None:
  """The sample the flags ask for (None: the whole corpus); a one-line error for a bad combination."""
  if lines is not None and fraction is not None:
    raise KorpatError("--sample-lines and --sample-fraction: give one of them, not both")
  if lines is not None and lines < 1:
    raise KorpatError(f"--sample-lines {lines}: give a number of lines, 1 or more")
  if fraction is not None and not 0.0 < fraction <= 1.0:
    raise KorpatError(f"--sample-fraction {fraction}: give a share of the lines in (0, 1], e.g. 0.1")
  if lines is None and fraction is None:
    if seed:
      raise KorpatError(f"--sample-seed {seed}: seeds a sample; add --sample-lines N or --sample-fraction F")
    return None
  return Sample(lines, fraction, seed)


def by_fraction(numbered: Iterable[Numbered], sample: Sample) -> Iterator[str]:
  """The lines whose key is below the sample's cutoff, in order."""
  cutoff, seed = sample.cutoff, sample.seed
  for file_index, line_index, line in numbered:
    if line_key(seed, file_index, line_index) < cutoff:
      yield line


def up_to(numbered: Iterable[Numbered], sample: Sample, last: Rank | None) -> Iterator[str]:
  """The lines ranked at most `last` (the N-th smallest rank of the corpus, found beforehand), in order."""
  if last is None:
    return
  for file_index, line_index, line in numbered:
    if sample.rank(file_index, line_index) <= last:
      yield line


def smallest(numbered: Iterable[Numbered], sample: Sample) -> list[Numbered]:
  """The `sample.lines` lines of smallest rank, in corpus order: one pass, a heap of N lines."""
  n = sample.lines or 0
  heap: list[tuple[int, int, int, str]] = []   # (-key, -file, -line, line): the largest rank on top
  for file_index, line_index, line in numbered:
    key = line_key(sample.seed, file_index, line_index)
    item = (-key, -file_index, -line_index, line)
    if len(heap) < n:
      heapq.heappush(heap, item)
    elif item > heap[0]:
      heapq.heapreplace(heap, item)
  return sorted(((-f, -i, line) for _, f, i, line in heap))


def select(numbered: Iterable[Numbered], sample: Sample) -> Iterator[str]:
  """The sample's lines of `numbered`, in corpus order."""
  if sample.fraction is not None:
    yield from by_fraction(numbered, sample)
  else:
    yield from (line for _, _, line in smallest(numbered, sample))


__all__ = ["Sample", "make_sample", "line_key", "select", "smallest", "by_fraction", "up_to"]
