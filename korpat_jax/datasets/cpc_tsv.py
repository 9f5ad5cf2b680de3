"""Patent CPC classification from local TSV files as a TFDS dataset: the text fields and the CPC codes.

Manual files: `train.tsv`, `dev.tsv` (or `validation.tsv`), `test.tsv` (each also `.gz` / `.zst`), with a header
naming an `id` column (optional), a `label` column (CPC codes, `;`-separated, the main code first) and any of the
text columns `title`, `abstract`, `claims`, `description`, `text` (the file format of the cpc variants). Read by
`korpat_jax.classification.read_examples`; the codes are stored as written and cut to `data.cpc_level` when a run
reads them, so one prepared dataset serves every level.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import tensorflow_datasets as tfds

from korpat_jax.classification import TextExample, read_examples
from korpat_jax.corpus.readers import iter_lines
from korpat_jax.datasets.manual import ManualFilesBuilder
from korpat_jax.datasets.text_rows import chosen_fields, to_text_examples
from korpat_jax.errors import KorpatError
from korpat_jax.finetune.report import DataReport

TEXT_FIELDS = ("title", "abstract", "claims", "description", "text")
LABEL_COLUMN = "label"
TASK = "sequence_classification"


def _globs(stem: str) -> tuple[str, ...]:
  return tuple(f"{stem}.tsv{suffix}" for suffix in ("", ".gz", ".zst"))


def header_columns(path: str) -> list[str]:
  """The column names of a TSV's header (its first non-empty line)."""
  for raw in iter_lines(path, 1 << 28):
    line = raw.decode("utf-8", "replace").lstrip("\ufeff")
    if line.strip():
      return [name.strip() for name in line.split("\t")]
  raise KorpatError(f"{path}: empty file, no header row (a TSV needs one naming its columns)")


class CpcTsv(ManualFilesBuilder):
  """Patent documents with their CPC codes, from TSV files."""

  name = "cpc_tsv"
  DESCRIPTION = "Patent text fields (title, abstract, claims, description, text) with their CPC codes."
  SPLIT_FILES = {"train": _globs("train"), "validation": _globs("dev") + _globs("validation"),
                 "test": _globs("test")}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put train.tsv and dev.tsv (test.tsv optional; .gz or .zst too) in manual_dir: a header row with a 'label' "
      "column of CPC codes (';'-separated, main code first), an optional 'id' column and any of the text columns "
      f"{', '.join(TEXT_FIELDS)}.")

  def _features(self) -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict({
        "id": tfds.features.Text(),
        **{field: tfds.features.Text() for field in TEXT_FIELDS},  # "" where the file has no such column
        "codes": tfds.features.Sequence(tfds.features.Text()),
        "where": tfds.features.Text(),  # file:line of the row in the manual file
    })

  def _read(self, split: str, path: str, report: DataReport) -> list[dict[str, Any]]:
    columns = header_columns(path)
    present = tuple(f for f in TEXT_FIELDS if f in columns)
    if not present:
      raise KorpatError(f"{path}: no text column in the header (columns: {', '.join(columns)}); cpc_tsv reads "
                        f"{', '.join(TEXT_FIELDS)}")
    self.info.metadata.setdefault("columns", {})[split] = list(present)
    records = []
    for example in read_examples(path, text_fields=present, label_field=LABEL_COLUMN, report=report,
                                 multi_separator=";"):
      texts = dict(zip(present, example.texts))
      records.append({"id": example.id, **{f: texts.get(f, "") for f in TEXT_FIELDS}, "codes": example.labels,
                      "where": example.where})
    return records


BUILDER = CpcTsv

def to_examples(rows: Iterable[Mapping[str, Any]], config: Any, report: DataReport, columns: Any = None
                ) -> list[TextExample]:
  """The documents as TextExamples: `data.text_fields` in their order, codes cut to `data.cpc_level`.
  `columns`: the text columns the split's manual file had (a field it lacked is a config mistake, as in a file)."""
  fields = chosen_fields(config, tuple(columns or TEXT_FIELDS), CpcTsv.name)
  return to_text_examples(({**row, "labels": row["codes"]} for row in rows), fields, config, report)
