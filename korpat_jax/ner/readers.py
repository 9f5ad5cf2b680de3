"""NER files -> `NerExample`s: KLUE's character format, word-level CoNLL, and plain text for prediction.

Formats (`fmt`):
  char_bio  KLUE: `CHAR<TAB>TAG` per line (a space is the line " <TAB>O"), a blank line between sentences, lines
            starting with "## " are comments; "## <id><TAB><marked sentence>" right before a sentence gives its id.
  conll     `WORD TAG` per line (tab or spaces; the first field is the word, the LAST the tag, so 4-column
            CoNLL-2003 works), a blank line between sentences, `-DOCSTART-` lines skipped.
  text      one sentence per non-empty line (prediction only; the units are characters).
  auto      char_bio when most data lines (up to the first 2,000) have a single character before the first tab,
            else conll.
Unlabelled files (`labelled=False`) may leave the tag column out: a char_bio line is then the character alone
(a line of one space is a space) and a conll line the word alone; tags are None.

Bad input never raises mid-file: a malformed line or tag, invalid UTF-8 or an empty sentence skips that sentence,
counted by reason with `file:line` in the `DataReport` and kept there as a skipped row (with the id it would have
had), so that prediction files write an error line in its place.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Iterator

from korpat_jax.errors import KorpatError
from korpat_jax.finetune.report import DataReport
from korpat_jax.ner.tags import parse_tag

FORMATS = ("auto", "char_bio", "conll", "text")
_SNIFF_LINES = 2000
_ID_COMMENT = re.compile(r"^## (\S+)\t")
_BOM = b"\xef\xbb\xbf"


@dataclasses.dataclass
class NerExample:
  id: str                        # the file's own id (KLUE's "## <id>\t..." comment), else the 0-based position
  text: str                      # char format: the characters joined; word format: the words joined by spaces
  spans: list[tuple[int, int]]   # [start, end) character span in `text` of each tagged unit (char or word)
  tags: list[str] | None         # one normal-form tag per unit ("B-PS", "I-PS", "O"); None when unlabelled
  where: str                     # "file:line" of the example's first line


class _Bad(Exception):
  """One sentence is unusable: (reason, line number, detail)."""

  def __init__(self, reason: str, line: int, detail: str = ""):
    super().__init__(reason)
    self.reason, self.line, self.detail = reason, line, detail


def read_ner(path: str, fmt: str, report: DataReport, labelled: bool = True) -> list[NerExample]:
  """Read one NER file; bad sentences are skipped and counted in `report` (read / used / skipped by reason)."""
  p = Path(path)
  if not p.is_file():
    raise KorpatError(f"{path}: NER data file not found")
  if fmt not in FORMATS:
    raise KorpatError(f"{path}: unknown NER format {fmt!r} (one of {', '.join(FORMATS)})")
  try:
    data = p.read_bytes()
  except OSError as e:
    raise KorpatError(f"{path}: cannot read ({e.strerror})") from None
  if data.startswith(_BOM):
    data = data[len(_BOM):]
  lines = data.split(b"\n")
  if fmt == "auto":
    fmt = detect_format(lines)
  if fmt == "text":
    if labelled:
      raise KorpatError(f"{path}: the text format has no tags; use it only for prediction (labelled=False)")
    return _read_text(str(path), lines, report)
  out: list[NerExample] = []
  for index, block in enumerate(_blocks(lines, fmt)):
    report.read += 1
    try:
      out.append(_example(str(path), index, block, fmt, labelled, report))
    except _Bad as bad:
      report.skip(bad.reason, f"{path}:{bad.line}", bad.detail)
      report.row_skipped(len(out), _block_id(block, index))
  report.used += len(out)
  return out


def detect_format(lines: list[bytes]) -> str:
  """"char_bio" when most data lines have one character before the first tab, else "conll"."""
  single = total = 0
  for raw in lines:
    line = raw.rstrip(b"\r")
    if not line.strip() or line.startswith(b"## ") or line.split()[:1] == [b"-DOCSTART-"]:
      continue
    total += 1
    single += len(line.split(b"\t", 1)[0].decode("utf-8", "replace")) == 1
    if total >= _SNIFF_LINES:
      break
  return "char_bio" if total and 2 * single > total else "conll"


@dataclasses.dataclass
class _Block:
  start: int                                   # line of the id comment right before the data, else first data line
  comment: str | None                          # that comment line
  data: list[tuple[int, bytes]] = dataclasses.field(default_factory=list)


def _is_separator(line: bytes, fmt: str) -> bool:
  """conll: a blank line; char_bio: an empty line or tabs only (a space is a character there: " <TAB>O")."""
  return not (line.strip(b"\t") if fmt == "char_bio" else line.strip())


def _blocks(lines: list[bytes], fmt: str) -> Iterator[_Block]:
  """Sentences as blocks of data lines. A block of comments only is not a sentence unless its last comment
  carries an id (KLUE then lost the sentence's characters: reported as empty)."""
  comment: tuple[int, str] | None = None
  block: _Block | None = None

  def flush():
    nonlocal block, comment
    if block is not None:
      yield block
    elif comment is not None and _ID_COMMENT.match(comment[1]):
      yield _Block(comment[0], comment[1])
    block, comment = None, None

  for number, raw in enumerate(lines, 1):
    line = raw[:-1] if raw.endswith(b"\r") else raw
    if _is_separator(line, fmt) or (fmt == "conll" and line.split()[:1] == [b"-DOCSTART-"]):
      yield from flush()
      continue
    if fmt == "char_bio" and line.startswith(b"## "):
      if block is not None:    # a comment after data lines starts the next sentence
        yield from flush()
      comment = (number, line.decode("utf-8", "replace"))
      continue
    if block is None:
      block = _Block(comment[0], comment[1]) if comment else _Block(number, None)
    block.data.append((number, line))
  yield from flush()


def _decode(number: int, line: bytes) -> str:
  try:
    return line.decode("utf-8")
  except UnicodeDecodeError as e:
    raise _Bad("invalid_utf8", number, f"byte {e.start}: {line[e.start:e.start + 4]!r}") from None


def _block_id(block: _Block, index: int) -> str:
  """The file's own id of a sentence (KLUE's "## <id><TAB>..."), else its 0-based position among the sentences."""
  match = _ID_COMMENT.match(block.comment) if block.comment else None
  return match.group(1) if match else str(index)


def _example(path: str, index: int, block: _Block, fmt: str, labelled: bool, report: DataReport) -> NerExample:
  ex_id = _block_id(block, index)
  units: list[str] = []
  raw_tags: list[tuple[int, str]] = []
  for number, raw in block.data:
    line = _decode(number, raw)
    if fmt == "char_bio":
      fields = line.split("\t")
      unit = fields[0]
      if len(unit) != 1:
        raise _Bad("malformed_line", number, f"expected one character before the tab: {line[:40]!r}")
      if labelled and len(fields) < 2:
        raise _Bad("malformed_line", number, f"no tab (CHAR<TAB>TAG): {line[:40]!r}")
    else:
      fields = line.split()
      unit = fields[0]
      if labelled and len(fields) < 2:
        raise _Bad("malformed_line", number, f"no tag column (WORD TAG): {line[:40]!r}")
    units.append(unit)
    if labelled:
      raw_tags.append((number, fields[-1].strip()))
  if fmt == "char_bio":
    text = "".join(units)
    spans = [(i, i + 1) for i in range(len(units))]
  else:
    text = " ".join(units)
    spans, at = [], 0
    for unit in units:
      spans.append((at, at + len(unit)))
      at += len(unit) + 1
  if not text.strip():
    raise _Bad("empty_text", block.start, "no characters" if not text else "only spaces")
  tags = _tags(raw_tags, path, report) if labelled else None
  return NerExample(ex_id, text, spans, tags, f"{path}:{block.start}")


def _tags(raw_tags: list[tuple[int, str]], path: str, report: DataReport) -> list[str]:
  tags: list[str] = []
  mapped: list[tuple[int, str, str]] = []
  for number, raw in raw_tags:
    try:
      tag, was_mapped = parse_tag(raw)
    except ValueError:
      raise _Bad("malformed_tag", number, repr(raw)) from None
    if was_mapped:
      mapped.append((number, raw, tag))
    tags.append(tag)
  if mapped:    # only for a sentence that is kept
    number, raw, tag = mapped[0]
    report.adjust("bioes_tag_mapped", f"{path}:{number}", f"{raw} -> {tag}", len(mapped))
  return tags


def _read_text(path: str, lines: list[bytes], report: DataReport) -> list[NerExample]:
  """One example per non-empty line; the units are its characters."""
  out: list[NerExample] = []
  index = 0
  for number, raw in enumerate(lines, 1):
    line = raw[:-1] if raw.endswith(b"\r") else raw
    if not line:
      continue
    report.read += 1
    index += 1
    try:
      text = _decode(number, line)
      if not text.strip():
        raise _Bad("empty_text", number, "only spaces")
    except _Bad as bad:
      report.skip(bad.reason, f"{path}:{bad.line}", bad.detail)
      report.row_skipped(len(out), str(index - 1))
      continue
    out.append(NerExample(str(index - 1), text, [(i, i + 1) for i in range(len(text))], None, f"{path}:{number}"))
  report.used += len(out)
  return out
