"""KLUE NLI (klue-nli-v1.1) as a TFDS dataset: premise, hypothesis and gold label, one example per pair.

The manual files are KLUE's JSON arrays (`guid`, `premise`, `hypothesis`, `gold_label`, ...), read by
`korpat_jax.classification.read_examples`; a label other than KLUE's three is skipped and counted.
Fine-tune with `configs/finetune.py:pair --config.data.text_fields=premise,hypothesis`.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import tensorflow_datasets as tfds

from korpat_jax.classification import TextExample, read_examples
from korpat_jax.datasets.manual import ManualFilesBuilder
from korpat_jax.datasets.text_rows import chosen_fields, to_text_examples
from korpat_jax.finetune.report import DataReport

LABELS = ("entailment", "neutral", "contradiction")
FIELDS = ("premise", "hypothesis")
TASK = "sequence_classification"


class KlueNli(ManualFilesBuilder):
  """KLUE natural language inference over local files."""

  name = "klue_nli"
  DESCRIPTION = "KLUE NLI: Korean premise/hypothesis pairs labelled entailment, neutral or contradiction."
  HOMEPAGE = "https://klue-benchmark.com"
  SPLIT_FILES = {"train": ("klue-nli-v*_train.json",), "validation": ("klue-nli-v*_dev.json",),
                 "test": ("klue-nli-v*_test.json",)}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put KLUE's NLI files in manual_dir: klue-nli-v1.1_train.json and klue-nli-v1.1_dev.json (from "
      "KLUE-benchmark/KLUE, klue_benchmark/klue-nli-v1.1/); a klue-nli-v1.1_test.json of the same format is used "
      "when present.")

  def _features(self) -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict({
        "id": tfds.features.Text(),
        "premise": tfds.features.Text(),
        "hypothesis": tfds.features.Text(),
        "label": tfds.features.ClassLabel(names=list(LABELS)),
        "where": tfds.features.Text(),  # file:#index of the pair in the manual file
    })

  def _read(self, split: str, path: str, report: DataReport) -> list[dict[str, Any]]:
    records = []
    for example in read_examples(path, text_fields=FIELDS, label_field="gold_label", report=report,
                                 id_field="guid", multi_separator=None):
      if example.labels[0] not in LABELS:
        report.skip("label_not_in_klue_nli", example.where, repr(example.labels[0]))
        report.used -= 1
        continue
      records.append({"id": example.id, "premise": example.texts[0], "hypothesis": example.texts[1],
                      "label": example.labels[0], "where": example.where})
    return records


BUILDER = KlueNli

def to_examples(rows: Iterable[Mapping[str, Any]], config: Any, report: DataReport) -> list[TextExample]:
  """The sentence pairs as TextExamples, in the order of `data.text_fields`."""
  fields = chosen_fields(config, FIELDS, KlueNli.name)
  return to_text_examples(({**row, "labels": [LABELS[int(row["label"])]]} for row in rows), fields, config, report)
