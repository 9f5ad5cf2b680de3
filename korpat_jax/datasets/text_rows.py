"""Rows of a text-classification TFDS split -> `TextExample`s, through the classification reader's own per-record
rules (text fields chosen by `data.text_fields`, labels cut by `data.cpc_level`), so an example is kept, skipped or
adjusted for the same reasons as when the file is read directly. No TFDS import: rows are plain mappings.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from korpat_jax.classification import cpc_label_parser
from korpat_jax.classification import readers
from korpat_jax.classification.readers import TextExample
from korpat_jax.datasets.manual_values import text
from korpat_jax.errors import ConfigError
from korpat_jax.finetune.report import DataReport


def chosen_fields(config: Any, available: Sequence[str], dataset: str) -> list[str]:
  """`data.text_fields` checked against the fields the dataset has."""
  setting = config.data.text_fields
  wanted = [f.strip() for f in setting.split(",") if f.strip()]
  for field in wanted:
    if field not in available:
      raise ConfigError(f"config.data.text_fields={setting!r}: the TFDS dataset {dataset} has no field {field!r} "
                        f"(it has {', '.join(available)}); set --config.data.text_fields")
  return wanted


def to_text_examples(rows: Iterable[Mapping[str, Any]], fields: Sequence[str], config: Any,
                     report: DataReport) -> list[TextExample]:
  """TextExamples of rows with `id`, `where`, `labels` (strings) and the text `fields`; rows the reader's rules
  leave out are counted as skipped in `report` (and no longer as used)."""
  level = config.data.cpc_level
  # The classification reader's per-record rules and their spec: one set of rules for files and TFDS rows.
  spec = readers.RecordSpec(path="tfds", text_fields=tuple(fields), label_field="labels", id_field="id",
                       label_parser=None if level == "none" else cpc_label_parser(level), separator=None)
  examples = []
  for position, row in enumerate(rows):
    record = {**{f: text(row[f]) for f in fields}, "id": text(row["id"]),
              "labels": [text(label) for label in row["labels"]]}
    example = readers.record_example(record, text(row["where"]), position, spec, report)
    if example is None:
      report.used -= 1
    else:
      examples.append(example)
  return examples
