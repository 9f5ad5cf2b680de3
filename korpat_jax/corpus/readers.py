"""Corpus files -> raw documents: plain text, JSONL and TSV; uncompressed, gzip or zstd; globs.

Damaged input never raises: undecodable lines, bad JSON, missing fields, truncated compressed files, binary and
unreadable files are counted in `PrepStats` with their place, and reading goes on with what is left. Every document
a reader produces or drops counts as read (`PrepStats.documents_read`; report.py has the accounting); one that
lost lines on the way carries the reasons in `RawDocument.notes`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import zlib
from typing import Iterator, Sequence

import zstandard

from korpat_jax.corpus import sniff
from korpat_jax.corpus.report import PrepStats
from korpat_jax.errors import KorpatError

FORMATS = ("auto", "text", "jsonl", "tsv")
DEFAULT_JSONL_FIELDS = ("title", "abstract", "claims", "description", "text")
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_KEPT_FAILED_LINES = 20  # undecodable lines kept per file (cut to _FAILED_LINE_BYTES) to guess the encoding
_FAILED_LINE_BYTES = 512


@dataclasses.dataclass(frozen=True)
class ReaderConfig:
  format: str = "auto"  # by extension: .jsonl/.json -> jsonl, .tsv -> tsv, else text (after .gz/.zst)
  encoding: str = "utf-8"  # e.g. "cp949" for legacy Korean files
  jsonl_fields: tuple[str, ...] = DEFAULT_JSONL_FIELDS  # concatenated in this order; str, list or {"text": ...}
  tsv_column: str = "text"  # a header name, or a 0-based column index (then the file has no header)
  max_document_chars: int = 1_000_000  # longer documents are split into parts at line boundaries


@dataclasses.dataclass(frozen=True)
class RawDocument:
  source: str
  line: int  # 1-based line where the document starts
  text: str  # paragraphs separated by "\n"
  notes: tuple[str, ...] = ()  # why the document lost or changed lines on reading: "undecodable_line", ...

  @property
  def where(self) -> str:
    return f"{self.source}:{self.line}"


class TruncatedInput(Exception):
  """The compressed stream ended before its end-of-stream marker."""


def expand_corpus(patterns: Sequence[str]) -> list[str]:
  """Globs (recursive `**` allowed) and directories -> a sorted, de-duplicated list of files."""
  files: set[str] = set()
  for pattern in patterns:
    matches = glob.glob(os.path.expanduser(pattern), recursive=True)
    if not matches:
      raise KorpatError(f"--corpus {pattern}: no files match")
    for match in matches:
      if os.path.isdir(match):
        for root, _, names in os.walk(match):
          files.update(os.path.join(root, n) for n in names if not n.startswith("."))
      else:
        files.add(match)
  return sorted(os.path.abspath(f) for f in files)


def detect_format(path: str, configured: str = "auto") -> str:
  if configured != "auto":
    if configured not in FORMATS:
      raise KorpatError(f"--format {configured}: expected one of {', '.join(FORMATS)}")
    return configured
  name = path.lower()
  for suffix in (".gz", ".gzip", ".zst", ".zstd"):
    if name.endswith(suffix):
      name = name[: -len(suffix)]
  if name.endswith((".jsonl", ".json", ".ndjson")):
    return "jsonl"
  if name.endswith(".tsv"):
    return "tsv"
  return "text"


def _decompressed_chunks(path: str) -> Iterator[bytes]:
  """The file's bytes, decompressed by its magic number (gzip, zstd, or none); concatenated members are read."""
  with open(path, "rb") as f:
    head = f.read(4)
    f.seek(0)
    if head.startswith(_GZIP_MAGIC):
      yield from _stream(f, lambda: zlib.decompressobj(wbits=31), path)
    elif head.startswith(_ZSTD_MAGIC):
      yield from _stream(f, lambda: zstandard.ZstdDecompressor().decompressobj(), path)
    else:
      while chunk := f.read(_CHUNK):
        yield chunk


def _stream(f, new_decompressor, path: str) -> Iterator[bytes]:
  decompressor = new_decompressor()
  pending = b""
  while True:
    data = pending or f.read(_CHUNK)
    pending = b""
    if not data:
      break
    try:
      out = decompressor.decompress(data)
    except (zlib.error, zstandard.ZstdError) as e:
      raise TruncatedInput(f"corrupt compressed data ({e})") from None
    if out:
      yield out
    if decompressor.eof:  # next member / frame, if any
      pending = decompressor.unused_data
      decompressor = new_decompressor()
      if not pending and not (pending := f.read(_CHUNK)):
        return
  if not decompressor.eof:
    raise TruncatedInput("compressed stream ends before its end marker")


def iter_lines(path: str, max_line_bytes: int) -> Iterator[bytes]:
  """Lines without their line ending; a line longer than `max_line_bytes` comes out in pieces.

  Raises TruncatedInput at the end of a damaged compressed file, after every complete line; the incomplete last
  line is not yielded.
  """
  buffer = b""
  for chunk in _decompressed_chunks(path):
    buffer += chunk
    start = 0
    while (end := buffer.find(b"\n", start)) >= 0:
      yield buffer[start:end].rstrip(b"\r")
      start = end + 1
    buffer = buffer[start:]
    while len(buffer) > max_line_bytes:
      yield buffer[:max_line_bytes]
      buffer = buffer[max_line_bytes:]
  if buffer:
    yield buffer.rstrip(b"\r")


def read_documents(path: str, config: ReaderConfig, stats: PrepStats) -> Iterator[RawDocument]:
  """All documents of one file; every problem goes into `stats`. Binary files (sniff.py) yield nothing."""
  fmt = detect_format(path, config.format)
  reader = {"text": _text_documents, "jsonl": _jsonl_documents, "tsv": _tsv_documents}[fmt]
  try:
    with contextlib.closing(_decompressed_chunks(path)) as chunks:
      why = sniff.binary_reason(sniff.head_sample(chunks))
  except TruncatedInput:  # counted when the lines are read
    why = None
  except OSError as e:
    stats.skip("unreadable_file", f"{path}:0: {e}")
    return
  if why:
    stats.skip("binary_file", f"{path}: {why}; not text, skipped")
    return
  lineno = decoded = undecodable = 0
  failed: list[bytes] = []

  def decoded_lines() -> Iterator[tuple[int, str | None, str]]:
    """(line number, text or None when undecodable, note for the document or "")."""
    nonlocal lineno, decoded, undecodable
    # Only a guard against files without line breaks: a JSONL line holds a whole (escaped) document.
    max_line_bytes = max(1 << 26, 8 * config.max_document_chars)
    for lineno, raw in enumerate(iter_lines(path, max_line_bytes), start=1):
      note = ""
      if len(raw) >= max_line_bytes:
        stats.adjust("huge_line_cut", f"{path}:{lineno}: a line over {max_line_bytes} bytes, read in pieces")
        note = "huge_line_cut"
      try:
        line = raw.decode(config.encoding)
      except UnicodeDecodeError as e:
        stats.skip("undecodable_line", f"{path}:{lineno}: {e.reason} at byte {e.start}")
        undecodable += 1
        if len(failed) < _KEPT_FAILED_LINES:
          failed.append(raw[:_FAILED_LINE_BYTES])
        yield lineno, None, "undecodable_line"
        continue
      if lineno == 1:
        line = line.lstrip("\ufeff")
      decoded += bool(line.strip())
      yield lineno, line, note

  try:
    for doc in reader(path, decoded_lines(), config, stats):
      for part in _split_huge(doc, config.max_document_chars, stats):
        stats.documents_read += 1
        yield part
  except TruncatedInput as e:
    stats.skip("truncated_file", f"{path}:{lineno + 1}: {e}; the rest of the file is lost")
  except OSError as e:
    stats.skip("unreadable_file", f"{path}:{lineno}: {e}")
  if sniff.mostly_undecodable(decoded, undecodable):
    stats.skip("undecodable_file", sniff.encoding_hint(path, decoded, undecodable, config.encoding, failed))


def _drop(stats: PrepStats, reason: str, where: str | None = None) -> None:
  """A document read and dropped by the reader; `where` also counts it as an event (else the caller did)."""
  stats.documents_read += 1
  stats.drop_document(reason)
  if where is not None:
    stats.skip(reason, where)


def _text_documents(path: str, lines, config: ReaderConfig, stats: PrepStats) -> Iterator[RawDocument]:
  """Documents separated by blank lines; an undecodable line belongs to the document it stands in."""
  del config
  start, buffer, notes = 0, [], set()

  def finish() -> Iterator[RawDocument]:
    if buffer:
      yield RawDocument(path, start, "\n".join(buffer), tuple(sorted(notes)))
    elif notes:  # every line of it was undecodable
      _drop(stats, "undecodable")

  for lineno, line, note in lines:
    if line is not None and not line.strip():
      yield from finish()
      buffer, notes = [], set()
      continue
    if not buffer and not notes:
      start = lineno
    if note:
      notes.add(note)
    if line is not None:
      buffer.append(line)
  yield from finish()


def _field_text(value) -> list[str]:
  if isinstance(value, str):
    return [value]
  if isinstance(value, dict):
    return _field_text(value.get("text"))
  if isinstance(value, list):
    return [t for item in value for t in _field_text(item)]
  return []


def _jsonl_documents(path: str, lines, config: ReaderConfig, stats: PrepStats) -> Iterator[RawDocument]:
  for lineno, line, note in lines:
    if line is None:
      _drop(stats, "undecodable")
      continue
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      _drop(stats, "bad_json", f"{path}:{lineno}: {e.msg} at column {e.colno}")
      continue
    if not isinstance(record, dict):
      _drop(stats, "bad_json", f"{path}:{lineno}: a {type(record).__name__}, not an object")
      continue
    paragraphs = [p for field in config.jsonl_fields for p in _field_text(record.get(field))]
    if not any(p.strip() for p in paragraphs):
      _drop(stats, "no_text_field", f"{path}:{lineno}: none of {','.join(config.jsonl_fields)} holds text")
      continue
    yield RawDocument(path, lineno, "\n".join(paragraphs), (note,) if note else ())


def _tsv_documents(path: str, lines, config: ReaderConfig, stats: PrepStats) -> Iterator[RawDocument]:
  column = int(config.tsv_column) if config.tsv_column.isdigit() else None
  for lineno, line, note in lines:
    if line is None and column is not None:
      _drop(stats, "undecodable")
      continue
    cells = [] if line is None else line.split("\t")
    if column is None:  # the first line is the header
      if config.tsv_column not in cells:
        stats.skip("missing_column", f"{path}:{lineno}: no column {config.tsv_column!r} in the header; file skipped")
        return
      column = cells.index(config.tsv_column)
      continue
    if column >= len(cells):
      _drop(stats, "missing_column", f"{path}:{lineno}: {len(cells)} columns, the text is column {column}")
      continue
    if not cells[column].strip():
      _drop(stats, "empty_document", f"{path}:{lineno}: the text column is empty")
      continue
    yield RawDocument(path, lineno, cells[column], (note,) if note else ())


def _split_huge(doc: RawDocument, max_chars: int, stats: PrepStats) -> Iterator[RawDocument]:
  """A document over `max_chars` -> parts at line boundaries (a single over-long line is cut)."""
  if len(doc.text) <= max_chars:
    yield doc
    return
  stats.adjust("huge_document_split", f"{doc.where}: {len(doc.text)} chars")
  notes = tuple(sorted({*doc.notes, "huge_document_split"}))
  part: list[str] = []
  size = 0
  for line in doc.text.split("\n"):
    while len(line) > max_chars:
      if part:
        yield RawDocument(doc.source, doc.line, "\n".join(part), notes)
        part, size = [], 0
      yield RawDocument(doc.source, doc.line, line[:max_chars], notes)
      line = line[max_chars:]
    if size + len(line) > max_chars and part:
      yield RawDocument(doc.source, doc.line, "\n".join(part), notes)
      part, size = [], 0
    part.append(line)
    size += len(line) + 1
  if part:
    yield RawDocument(doc.source, doc.line, "\n".join(part), notes)
