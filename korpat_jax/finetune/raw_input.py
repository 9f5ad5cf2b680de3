"""Raw documents for `korpat-jax predict`: a .txt with one document a line, or JSONL with one object a line.

  .txt    every line is a document ({"text": line}); its id is its 0-based line number
  .jsonl  every line is an object of string fields: `text` (sentence pairs: `text` + `text_pair`, or the run's
          data.text_fields), QA: `question` + `context`; the run's data.id_field, `id` or `guid` names it, else its 0-based
          line number

Read lazily from a byte offset, so that `predict` streams a file of any length and resumes where it stopped. A
line that is not usable (invalid UTF-8 or JSON, not an object) is a `RawDoc` with its `error` set: the prediction
file keeps one line per input line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Iterator, Optional

INPUT_FORMATS = ("auto", "text", "jsonl", "task")
RAW_FORMATS = ("text", "jsonl")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_TEXT_SUFFIXES = (".txt", ".text")
_SNIFF_LINES = 2000
_TAG = re.compile(r"^(O|[BIES]-\S+|\S+-[BIES])$")
_BOM = b"\xef\xbb\xbf"


@dataclasses.dataclass
class RawDoc:
  line: int                   # 0-based line number in the input
  id: str
  fields: dict[str, str]      # text: {"text": line}; JSONL: the object's string fields
  where: str                  # "file:line" (1-based, for messages)
  error: str = ""             # why the line is unusable ("" when it is usable)
  detail: str = ""


class Unusable(Exception):
  """A document a task cannot predict on: (reason, detail); it becomes an error line of the output."""

  def __init__(self, reason: str, detail: str = ""):
    super().__init__(reason)
    self.reason, self.detail = reason, detail


def iter_docs(path: str, fmt: str, start_line: int = 0, start_offset: int = 0, id_field: str = "id"
              ) -> Iterator[tuple[RawDoc, int]]:
  """(document, byte offset after its line) for every line from `start_offset` (the start of line `start_line`)."""
  with open(path, "rb") as f:
    f.seek(start_offset)
    offset, number = start_offset, start_line
    for raw in f:
      offset += len(raw)
      if number == 0 and raw.startswith(_BOM):
        raw = raw[len(_BOM):]
      yield _doc(raw.rstrip(b"\n").rstrip(b"\r"), number, path, fmt, id_field), offset
      number += 1


def _doc(raw: bytes, number: int, path: str, fmt: str, id_field: str) -> RawDoc:
  where = f"{path}:{number + 1}"
  try:
    line = raw.decode("utf-8")
  except UnicodeDecodeError as e:
    return RawDoc(number, str(number), {}, where, "invalid_utf8", f"byte {e.start}")
  if fmt == "text":
    return RawDoc(number, str(number), {"text": line}, where)
  if not line.strip():
    return RawDoc(number, str(number), {}, where, "empty_line")
  try:
    obj = json.loads(line)
  except json.JSONDecodeError as e:
    return RawDoc(number, str(number), {}, where, "invalid_json", f"{e.msg} at column {e.colno}")
  if not isinstance(obj, dict):
    return RawDoc(number, str(number), {}, where, "not_an_object", type(obj).__name__)
  fields = {k: v for k, v in obj.items() if isinstance(v, str)}
  doc_id = next((obj[k] for k in (id_field, "id", "guid") if obj.get(k) is not None), None)
  return RawDoc(number, str(doc_id) if doc_id is not None else str(number), fields, where)


def count_lines(path: str) -> int:
  """Lines of a file (a last line without a newline counts), read in 16 MiB blocks: about 1 s a GB."""
  count, last = 0, b"\n"
  with open(path, "rb") as f:
    while block := f.read(1 << 24):
      count += block.count(b"\n")
      last = block[-1:]
  return count + (last != b"\n")


def input_format(path: str, forced: str, task_type: str, ner_format: Optional[str] = None) -> str:
  """"text", "jsonl" (raw documents, streamed) or "task" (the training format, read by the task's readers).

  auto: .jsonl -> jsonl; .txt -> text, except for a NER run whose lines look like its training format (KLUE's
  character a line, or CoNLL's WORD TAG lines / a word a line in blank-line-separated sentences); anything else
  (.tsv, .json, .conll) -> task."""
  if forced != "auto":
    return forced
  suffix = os.path.splitext(path)[1].lower()
  if suffix in _JSONL_SUFFIXES:
    return "jsonl"
  if suffix not in _TEXT_SUFFIXES:
    return "task"
  if task_type == "token_classification" and ner_format != "text" and looks_like_ner_training_file(path):
    return "task"
  return "text"


def looks_like_ner_training_file(path: str) -> bool:
  """Most of the first lines hold one character before a tab (KLUE) or end in a tag (CoNLL), or the file is
  single words in blank-line-separated sentences (unlabelled CoNLL)."""
  single = tagged = one_word = blank = total = 0
  with open(path, "rb") as f:
    for number, raw in enumerate(f):
      if number >= _SNIFF_LINES:
        break
      line = raw.decode("utf-8", "replace").rstrip("\r\n")
      if not line.strip("\t "):
        blank += 1
        continue
      if line.startswith("## ") or line.split()[0] == "-DOCSTART-":
        continue
      total += 1
      parts = line.split()
      single += len(line.split("\t", 1)[0]) == 1 and "\t" in line
      tagged += len(parts) >= 2 and bool(_TAG.match(parts[-1]))
      one_word += len(parts) == 1
  if not total:
    return False
  return 2 * single > total or 2 * tagged > total or (2 * one_word > total and blank * 20 >= total)
