"""Classification / sentence-pair data files -> `TextExample`s: TSV, JSONL, JSON; plain, gzip or zstd.

Bad rows never raise: each is counted in a `DataReport` by reason with its `file:line` (`file:#index` for a JSON
array), kept there as a skipped row (prediction files write an error line in its place) and reading goes on. A
config mistake raises one-line `KorpatError` naming the file and the field: a missing file, an unknown extension,
a TSV header without a required column, a field that no JSON object of the file has; the message names the setting
to change (`settings`: `--config.data.text_fields` while fine-tuning, `predict`'s own option when predicting).

TSV quoting: a row is one line split on tabs, and quote characters are ordinary text (what `csv` does with
`QUOTE_NONE` and no escape character). Patent text is full of `"` (상기 "제1 전극"), often unbalanced, and a
quote-aware reader would swallow tabs and line breaks until the next quote and merge rows. The price: a field
cannot hold a tab or a line break; a stray tab shows up as a row with the wrong number of columns
("malformed_row").

Labels: a string is split on `multi_separator` (";" by default; "" or None keeps it whole) in every format, a JSON
list gives one label per element, an integer label becomes its decimal string. Each label goes through
`label_parser` (e.g. a CPC code cut to a level); duplicates after that are merged in first-seen order, so
`labels[0]` stays the main label. One label that does not parse skips the example ("unparseable_label"); among
several, just that one is dropped ("unparseable_label_dropped") unless none is left.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from korpat_jax.corpus.readers import TruncatedInput, iter_lines
from korpat_jax.errors import KorpatError
from korpat_jax.finetune.report import DataReport

_MAX_LINE_BYTES = 1 << 28   # only a guard against files without line breaks
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]")   # undecodable bytes of a JSON array file (surrogateescape)
_COMPRESSED = (".gz", ".gzip", ".zst", ".zstd")


@dataclasses.dataclass
class TextExample:
  id: str                    # the file's own id (`id_field`, or "guid" when "id" is absent), else the position
  texts: list[str]           # one entry per text field, in the given order, stripped
  labels: list[str] | None   # parsed labels, the main one first; None when unlabelled (prediction)
  where: str                 # "file:line" (JSONL/TSV) or "file:#index" (JSON array)


@dataclasses.dataclass(frozen=True)
class RecordSpec:
  """How `record_example` reads one record: its file (for messages), fields, labels and ids."""

  path: str
  text_fields: tuple[str, ...]
  label_field: str | None    # None: the examples are unlabelled
  id_field: str
  label_parser: Callable[[str], str] | None
  separator: str | None
  settings: Mapping[str, str] | None = None  # what a message tells to set, by key; default --config.data.KEY

  def setting(self, key: str) -> str:
    """How the message of a config mistake names the setting `key` (text_fields, label_field)."""
    return self.setting_of(self.settings, key)

  @staticmethod
  def setting_of(settings: Mapping[str, str] | None, key: str) -> str:
    return (settings or {}).get(key) or f"--config.data.{key}"


def file_format(path: str) -> str:
  """"tsv", "jsonl" or "json" by extension, after any compression suffix (compression itself is sniffed)."""
  name = path.lower()
  for suffix in _COMPRESSED:
    if name.endswith(suffix):
      name = name[: -len(suffix)]
      break
  if name.endswith(".tsv"):
    return "tsv"
  if name.endswith((".jsonl", ".ndjson")):
    return "jsonl"
  if name.endswith(".json"):
    return "json"
  raise KorpatError(f"{path}: unknown data format; expected .tsv, .jsonl or .json (optionally .gz or .zst)")


def read_examples(path: str, *, text_fields: Sequence[str], label_field: str | None, report: DataReport,
                  label_parser: Callable[[str], str] | None = None, id_field: str = "id",
                  labelled: bool = True, multi_separator: str | None = ";",
                  settings: Mapping[str, str] | None = None) -> list[TextExample]:
  """All usable examples of one file, in file order; `report.read` / `report.used` grow by this file's counts.

  `labelled=False` (prediction) ignores `label_field` and gives `labels=None`. `settings`: how messages name the
  setting to change, by key (text_fields, label_field); default `--config.data.KEY`.
  """
  path = os.fspath(path)
  if isinstance(text_fields, str):
    text_fields = (text_fields,)
  if not text_fields:
    raise KorpatError(f"{path}: no text fields given; set {RecordSpec.setting_of(settings, 'text_fields')}")
  if labelled and not label_field:
    raise KorpatError(f"{path}: labelled examples need a label field; set "
                      f"{RecordSpec.setting_of(settings, 'label_field')}")
  if not os.path.exists(path):
    raise KorpatError(f"{path}: no such file")
  if os.path.isdir(path):
    raise KorpatError(f"{path}: a directory, not a data file")
  spec = RecordSpec(path, tuple(text_fields), label_field if labelled else None, id_field, label_parser,
                    multi_separator or None, settings)
  fmt = file_format(path)
  records = {"tsv": _tsv_records, "jsonl": _jsonl_records, "json": _json_records}[fmt](spec, report)
  examples: list[TextExample] = []
  seen = 0
  missing = dict.fromkeys(spec.text_fields + ((spec.label_field,) if spec.label_field else ()), 0)
  for where, position, record in records:
    report.read += 1
    if record is None:   # the format reader has reported it
      report.row_skipped(len(examples), str(position))
      continue
    seen += 1
    for field in missing:
      if field not in record:
        missing[field] += 1
    example = record_example(record, where, position, spec, report)
    if example is not None:
      examples.append(example)
    else:
      report.row_skipped(len(examples), _example_id(record, position, spec))
  if fmt != "tsv" and seen:
    _check_fields_exist(spec, missing, seen)
  report.used += len(examples)
  return examples


def _check_fields_exist(spec: RecordSpec, missing: Mapping[str, int], seen: int) -> None:
  """A field that no object has is a config mistake, not bad rows."""
  for field, count in missing.items():
    if count == seen:
      key = "label_field" if field == spec.label_field else "text_fields"
      raise KorpatError(f"{spec.path}: no object has the field {field!r}; set {spec.setting(key)}")


# -- formats: (where, 0-based position, record or None when already reported) -----------------------------


def _lines(spec: RecordSpec, report: DataReport) -> Iterator[tuple[int, str | None]]:
  """(1-based line, text) per line; None for a line that is not UTF-8 (reported here)."""
  lineno = 0
  try:
    for lineno, raw in enumerate(iter_lines(spec.path, _MAX_LINE_BYTES), start=1):
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        if raw.strip():
          report.skip("invalid_utf8", f"{spec.path}:{lineno}", f"{e.reason} at byte {e.start}")
          yield lineno, None
        continue
      yield lineno, (line.lstrip("\ufeff") if lineno == 1 else line)
  except TruncatedInput as e:
    report.skip("truncated_file", f"{spec.path}:{lineno + 1}", f"{e}; the rest of the file is lost")
  except OSError as e:
    raise KorpatError(f"{spec.path}: cannot read ({e})") from None


def _tsv_records(spec: RecordSpec, report: DataReport) -> Iterator[tuple[str, int, dict | None]]:
  header: list[str] | None = None
  position = 0
  for lineno, line in _lines(spec, report):
    if header is None:
      if line is None:
        raise KorpatError(f"{spec.path}:{lineno}: the header row is not UTF-8")
      if not line.strip():
        continue
      header = [name.strip() for name in line.split("\t")]
      _check_header(spec, header)
      continue
    if line is not None and not line.strip():
      continue
    where = f"{spec.path}:{lineno}"
    record: dict[str, str] | None = None
    if line is not None:
      cells = line.split("\t")
      if len(cells) != len(header):
        report.skip("malformed_row", where, f"{len(cells)} columns, the header has {len(header)}")
      else:
        record = {}
        for name, cell in zip(header, cells):
          record.setdefault(name, cell)   # a repeated column name: the first one counts
    yield where, position, record
    position += 1
  if header is None:
    raise KorpatError(f"{spec.path}: empty file, no header row (a TSV needs one naming its columns)")


def _check_header(spec: RecordSpec, header: Sequence[str]) -> None:
  columns = ", ".join(header)
  for field in spec.text_fields:
    if field not in header:
      raise KorpatError(f"{spec.path}: no column {field!r} in the header (columns: {columns}); "
                        f"set {spec.setting('text_fields')}")
  if spec.label_field and spec.label_field not in header:
    raise KorpatError(f"{spec.path}: no column {spec.label_field!r} in the header (columns: {columns}); "
                      f"set {spec.setting('label_field')}")


def _jsonl_records(spec: RecordSpec, report: DataReport) -> Iterator[tuple[str, int, dict | None]]:
  position = 0
  for lineno, line in _lines(spec, report):
    if line is not None and not line.strip():
      continue
    where = f"{spec.path}:{lineno}"
    yield where, position, None if line is None else _object(line, where, report)
    position += 1


def _object(line: str, where: str, report: DataReport) -> dict | None:
  try:
    record = json.loads(line)
  except json.JSONDecodeError as e:
    report.skip("malformed_row", where, f"invalid JSON: {e.msg} at column {e.colno}")
    return None
  if not isinstance(record, dict):
    report.skip("malformed_row", where, f"a JSON {type(record).__name__}, not an object")
    return None
  return record


def _json_records(spec: RecordSpec, report: DataReport) -> Iterator[tuple[str, int, dict | None]]:
  """A JSON array of objects, or an object with a top-level "data" list; a .json file of JSON lines also reads."""
  try:
    raw = b"\n".join(iter_lines(spec.path, _MAX_LINE_BYTES))
  except TruncatedInput as e:
    raise KorpatError(f"{spec.path}: {e}") from None
  except OSError as e:
    raise KorpatError(f"{spec.path}: cannot read ({e})") from None
  # Undecodable bytes become lone surrogates, so one bad object is skipped instead of the whole file.
  text = raw.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    if e.msg == "Extra data" and text.lstrip().startswith("{"):
      yield from _jsonl_records(spec, report)   # JSON lines under a .json name
      return
    raise KorpatError(f"{spec.path}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
  if isinstance(data, dict) and isinstance(data.get("data"), list):
    data = data["data"]
  if not isinstance(data, list):
    raise KorpatError(f"{spec.path}: expected a JSON array of examples or an object with a \"data\" list")
  for index, record in enumerate(data):
    where = f"{spec.path}:#{index}"
    if not isinstance(record, dict):
      report.skip("malformed_row", where, f"a JSON {type(record).__name__}, not an object")
      record = None
    elif any(isinstance(v, str) and _ESCAPED_BYTES.search(v) for v in _strings(record, spec)):
      report.skip("invalid_utf8", where, "bytes that are not UTF-8")
      record = None
    yield where, index, record


def _strings(record: Mapping[str, Any], spec: RecordSpec) -> Iterable[Any]:
  for field in spec.text_fields + ((spec.label_field,) if spec.label_field else ()) + (spec.id_field, "guid"):
    value = record.get(field)
    yield from value if isinstance(value, list) else (value,)


# -- one record -> one example ------------------------------------------------------------------------------


def record_example(record: Mapping[str, Any], where: str, position: int, spec: RecordSpec,
                   report: DataReport) -> TextExample | None:
  """One parsed record -> a TextExample, or None with the reason counted in `report` (also used on TFDS rows)."""
  texts: list[str] = []
  for field in spec.text_fields:
    if field not in record:
      report.skip("missing_field", where, f"no field {field!r}")
      return None
    value = record[field]
    if value is None:   # JSON null: an absent abstract, read as empty
      value = ""
    if not isinstance(value, str):
      report.skip("non_string_text", where, f"field {field!r} is a {type(value).__name__}")
      return None
    texts.append(value.strip())
  if not any(texts):
    report.skip("empty_text", where, f"{', '.join(spec.text_fields)} empty")
    return None
  labels = None
  if spec.label_field:
    labels = _labels(record, where, spec, report)
    if labels is None:
      return None
  return TextExample(id=_example_id(record, position, spec), texts=texts, labels=labels, where=where)


def _example_id(record: Mapping[str, Any], position: int, spec: RecordSpec) -> str:
  value = record.get(spec.id_field)
  if value is None and spec.id_field == "id":
    value = record.get("guid")
  if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
    return str(position)
  return str(value).strip()


def _labels(record: Mapping[str, Any], where: str, spec: RecordSpec, report: DataReport) -> list[str] | None:
  """The parsed labels of a record (main first, de-duplicated), or None when the example is skipped."""
  field = spec.label_field
  value = record.get(field)
  if field not in record or value is None:
    report.skip("missing_field", where, f"no field {field!r}")
    return None
  raw = _raw_labels(value, spec.separator)
  if raw is None:
    report.skip("malformed_label", where, f"field {field!r} is not a string or a list of strings")
    return None
  if not raw:
    report.skip("empty_label", where, f"field {field!r} is empty")
    return None
  labels: list[str] = []
  bad: list[str] = []
  for label in raw:
    try:
      parsed = spec.label_parser(label) if spec.label_parser else label
    except ValueError as e:
      bad.append(f"{label!r} ({e})")
      continue
    if parsed not in labels:
      labels.append(parsed)
  if not labels:
    report.skip("unparseable_label", where, "; ".join(bad))
    return None
  if bad:
    report.adjust("unparseable_label_dropped", where, "; ".join(bad), count=len(bad))
  return labels


def _raw_labels(value: Any, separator: str | None) -> list[str] | None:
  """Stripped, non-empty label strings; None for a value of the wrong type."""
  items = value if isinstance(value, list) else [value]
  out: list[str] = []
  for item in items:
    if isinstance(item, bool) or not isinstance(item, (str, int)):
      return None
    parts = str(item).split(separator) if separator and isinstance(item, str) else [str(item)]
    out.extend(p.strip() for p in parts if p.strip())
  return out


# -- label sets -----------------------------------------------------------------------------------------------


def label_set(examples: Iterable[TextExample]) -> list[str]:
  """Sorted unique labels (main and other) of a training set; unlabelled examples add none."""
  return sorted({label for ex in examples for label in (ex.labels or ())})


def check_labels(examples: Iterable[TextExample], labels: Sequence[str], report: DataReport) -> list[str]:
  """Reports eval labels the training set lacks; returns them sorted. The examples are kept unchanged.

  Such a label gets id -1 in `label_ids`: a single-label example with it stays in the eval set and counts as an
  error (the model cannot predict it); in a multi-label example it is simply absent from the target columns.
  """
  known = set(labels)
  unknown: set[str] = set()
  for ex in examples:
    missing = [label for label in (ex.labels or ()) if label not in known]
    if missing:
      unknown.update(missing)
      report.adjust("label_not_in_training_set", ex.where, ", ".join(map(repr, missing)), count=len(missing))
  return sorted(unknown)


def label_ids(example: TextExample, label2id: Mapping[str, int]) -> list[int]:
  """The example's label ids in its label order (main first); -1 for a label not in `label2id`."""
  if example.labels is None:
    raise ValueError(f"{example.where}: an unlabelled example has no label ids")
  return [label2id.get(label, -1) for label in example.labels]
