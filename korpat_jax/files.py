"""Atomic file writes for every module: a reader, or a rerun after a crash, never sees half a file.

Each write goes to a temporary name beside the target (with the process id, so two processes never share one) and
is renamed over it; the rename is atomic on POSIX file systems.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterable, Iterator, Mapping, TextIO


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
  """A temporary path to write; renamed to `path` when the block ends without an error, removed otherwise."""
  path = os.fspath(path)
  tmp = f"{path}.tmp-{os.getpid()}"
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, newline: str | None = None) -> Iterator[TextIO]:
  """A UTF-8 text file that appears at `path` only once it is completely written."""
  with atomic_path(path) as tmp:
    with open(tmp, "w", encoding="utf-8", newline=newline) as f:
      yield f


def write_text(path: str | os.PathLike, text: str, newline: str | None = None) -> None:
  with atomic_open(path, newline=newline) as f:
    f.write(text)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
  with atomic_open(path) as f:
    json.dump(obj, f, indent=indent, ensure_ascii=False, default=str)
    f.write("\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
  """One JSON object a line."""
  with atomic_open(path) as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
