"""Text sources for the tokenizer builders: corpus globs, lines, and the bundled demo corpus."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from korpat_jax.errors import KorpatError

_DEMO_DIR = Path(__file__).resolve().parent.parent / "demo" / "corpus"


def demo_corpus_files() -> list[str]:
  """Paths of the bundled demo corpus (KLUE-derived text + a few patent-style documents)."""
  files = sorted(str(p) for p in _DEMO_DIR.glob("*.txt"))
  if not files:
    raise KorpatError(f"{_DEMO_DIR}: the bundled demo corpus is missing (broken installation?)")
  return files


def expand_corpus(patterns: str | Sequence[str]) -> list[str]:
  """Files matched by one or more globs (or plain paths), sorted, de-duplicated; error if none."""
  if isinstance(patterns, (str, os.PathLike)):
    patterns = [patterns]
  files: list[str] = []
  for pattern in patterns:
    pattern = os.path.expanduser(str(pattern))
    matched = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
    matched = [m for m in matched if os.path.isfile(m)]
    if not matched:
      raise KorpatError(f"{pattern}: no corpus file matches")
    files += matched
  return list(dict.fromkeys(files))


class LineStats:
  """Counts of what the line reader skipped or repaired, reported by the commands."""

  def __init__(self):
    self.lines = 0
    self.blank = 0
    self.undecodable = 0   # lines with bytes that are not UTF-8 (replaced by U+FFFD)

  def summary(self) -> str:
    return (f"{self.lines} lines read, {self.blank} blank skipped, "
            f"{self.undecodable} with undecodable bytes (replaced by U+FFFD)")


def iter_lines(files: Iterable[str], stats: LineStats | None = None) -> Iterator[str]:
  """Non-blank lines of the files, stripped; undecodable bytes become U+FFFD and are counted."""
  stats = stats or LineStats()
  for path in files:
    with open(path, "rb") as f:
      for raw in f:
        try:
          line = raw.decode("utf-8")
        except UnicodeDecodeError:
          line = raw.decode("utf-8", errors="replace")
          stats.undecodable += 1
        stats.lines += 1
        line = line.strip()
        if not line:
          stats.blank += 1
          continue
        yield line


def total_bytes(files: Iterable[str]) -> int:
  return sum(os.path.getsize(f) for f in files)
