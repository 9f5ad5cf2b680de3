"""Corpus text for the tokenizer builders, read by the same reader as `korpat-jax prepare` (corpus/readers.py).

Globs (`**` allowed), directories, plain text (blank line between documents), JSONL (title/abstract/claims/
description/text fields), TSV; uncompressed, gzip or zstd. The builders see each document's non-blank lines
(paragraphs), stripped; whatever the reader skips (undecodable lines, bad JSON, truncated files) is counted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from korpat_jax.corpus.readers import ReaderConfig, read_documents
from korpat_jax.corpus.readers import expand_corpus as expand_globs
from korpat_jax.corpus.report import PrepStats
from korpat_jax.errors import KorpatError

DEMO = "demo"   # stands for the bundled demo corpus wherever a corpus glob is expected
_DEMO_DIR = Path(__file__).resolve().parent.parent / "demo" / "corpus"


def demo_corpus_files() -> list[str]:
  """Paths of the bundled demo corpus (KLUE-derived text + a few patent-style documents)."""
  files = sorted(str(p) for p in _DEMO_DIR.glob("*.txt"))
  if not files:
    raise KorpatError(f"{_DEMO_DIR}: the bundled demo corpus is missing (broken installation?)")
  return files


def expand_corpus(patterns: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
  """Globs, paths and directories -> sorted, de-duplicated files, as `prepare --corpus`; `demo` = bundled corpus."""
  if isinstance(patterns, (str, os.PathLike)):
    patterns = [patterns]
  files: list[str] = []
  globs = [str(p) for p in patterns if str(p) != DEMO]
  if len(globs) < len(patterns):
    files += demo_corpus_files()
  if globs:
    files += expand_globs(globs)
  return list(dict.fromkeys(files))


class ReadStats:
  """What the builders read, and what the corpus reader skipped or changed (a PrepStats, as in `prepare`)."""

  def __init__(self):
    self.files = 0
    self.documents = 0
    self.lines = 0   # non-blank lines handed to the builder
    self.reader = PrepStats()

  def merge(self, other: "ReadStats") -> "ReadStats":
    """Add another worker's stats (the Beam runner reads files on many workers)."""
    self.files += other.files
    self.documents += other.documents
    self.lines += other.lines
    self.reader.merge(other.reader)
    return self

  @property
  def undecodable(self) -> int:
    return self.reader.skipped["undecodable_line"]

  def summary(self) -> str:
    text = f"{self.files} files, {self.documents} documents, {self.lines} lines"
    problems = [(kind, reason, n) for kind, counts in (("skipped", self.reader.skipped),
                                                       ("changed", self.reader.adjusted))
                for reason, n in sorted(counts.items()) if n]
    for kind, reason, n in problems:
      places = self.reader.where.get(reason) or []
      text += f"; {kind} {n} {reason.replace('_', ' ')}" + (f" (e.g. {places[0]})" if places else "")
    return text

  def to_json(self) -> dict:
    return {"files": self.files, "documents": self.documents, "lines": self.lines,
            "skipped": dict(sorted(self.reader.skipped.items())),
            "adjusted": dict(sorted(self.reader.adjusted.items()))}


def iter_lines(files: Iterable[str], stats: ReadStats | None = None, config: ReaderConfig | None = None,
               progress=None) -> Iterator[str]:
  """Non-blank lines of every document of the files, stripped.

  `progress` (a tqdm bar over `total_bytes(files)`) advances by the decoded bytes, at most to the end of the file
  being read: a compressed file's bar fills early, then waits for the file to end."""
  stats = stats if stats is not None else ReadStats()
  config = config or ReaderConfig()
  for path in files:
    size = os.path.getsize(path)
    seen = 0
    for doc in read_documents(path, config, stats.reader):
      stats.documents += 1
      for line in doc.text.split("\n"):
        line = line.strip()
        if line:
          stats.lines += 1
          yield line
      if progress is not None and seen < size:
        step = min(len(doc.text.encode("utf-8")) + 1, size - seen)
        seen += step
        progress.update(step)
    stats.files += 1
    if progress is not None and seen < size:
      progress.update(size - seen)


def total_bytes(files: Iterable[str]) -> int:
  return sum(os.path.getsize(f) for f in files)
