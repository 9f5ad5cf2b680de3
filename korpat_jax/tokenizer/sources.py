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
from korpat_jax.tokenizer.sampling import Numbered, Sample, select

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
    self.lines = 0   # non-blank lines read
    self.kept = 0    # of them, lines handed to the builder (all, or a sample's: sampling.py)
    self.reader = PrepStats()

  def merge(self, other: "ReadStats") -> "ReadStats":
    """Add another worker's stats (the Beam runner reads files on many workers)."""
    self.files += other.files
    self.documents += other.documents
    self.lines += other.lines
    self.kept += other.kept
    self.reader.merge(other.reader)
    return self

  @property
  def undecodable(self) -> int:
    return self.reader.skipped["undecodable_line"]

  def summary(self) -> str:
    text = f"{self.files} files, {self.documents} documents, {self.lines} lines"
    if self.kept != self.lines:
      text += f" ({self.kept} kept by the sample)"
    problems = [(kind, reason, n) for kind, counts in (("skipped", self.reader.skipped),
                                                       ("changed", self.reader.adjusted))
                for reason, n in sorted(counts.items()) if n]
    for kind, reason, n in problems:
      places = self.reader.where.get(reason) or []
      text += f"; {kind} {n} {reason.replace('_', ' ')}" + (f" (e.g. {places[0]})" if places else "")
    return text

  def to_json(self) -> dict:
    return {"files": self.files, "documents": self.documents, "lines": self.lines, "kept": self.kept,
            "skipped": dict(sorted(self.reader.skipped.items())),
            "adjusted": dict(sorted(self.reader.adjusted.items()))}


def iter_numbered_lines(files: Iterable[str], stats: ReadStats | None = None, config: ReaderConfig | None = None,
                        progress=None, first_file: int = 0) -> Iterator[Numbered]:
  """(file index, line index in the file, line) of every non-blank line of every document of the files, stripped;
  the file index counts from `first_file` (a file's index in the whole corpus list, for the Beam runner).

  `progress` (a tqdm bar over `total_bytes(files)`) advances by the decoded bytes, at most to the end of the file
  being read: a compressed file's bar fills early, then waits for the file to end."""
  stats = stats if stats is not None else ReadStats()
  config = config or ReaderConfig()
  for file_index, path in enumerate(files, first_file):
    size = os.path.getsize(path)
    seen = number = 0
    for doc in read_documents(path, config, stats.reader):
      stats.documents += 1
      for line in doc.text.split("\n"):
        line = line.strip()
        if line:
          stats.lines += 1
          yield file_index, number, line
          number += 1
      if progress is not None and seen < size:
        step = min(len(doc.text.encode("utf-8")) + 1, size - seen)
        seen += step
        progress.update(step)
    stats.files += 1
    if progress is not None and seen < size:
      progress.update(size - seen)


def iter_lines(files: Iterable[str], stats: ReadStats | None = None, config: ReaderConfig | None = None,
               progress=None, sample: Sample | None = None, first_file: int = 0) -> Iterator[str]:
  """Non-blank lines of every document of the files, stripped: all of them, or `sample`'s (in corpus order;
  a --sample-lines sample comes once the files are read). `progress`, `first_file`: as iter_numbered_lines."""
  stats = stats if stats is not None else ReadStats()
  numbered = iter_numbered_lines(files, stats, config, progress, first_file)
  lines = (line for _, _, line in numbered) if sample is None else select(numbered, sample)
  for line in lines:
    stats.kept += 1
    yield line


def total_bytes(files: Iterable[str]) -> int:
  return sum(os.path.getsize(f) for f in files)
