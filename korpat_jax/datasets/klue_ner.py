"""KLUE NER (klue-ner-v1.1) as a TFDS dataset: characters and their BIO tags, one example per sentence.

The manual files are KLUE's own (`## id<TAB>sentence` comments, `CHAR<TAB>TAG` lines), read by
`korpat_jax.ner.read_ner` in the char_bio format; a sentence with a tag outside KLUE's 13 is skipped and counted.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import tensorflow_datasets as tfds

from korpat_jax import ner
from korpat_jax.datasets.manual import ManualFilesBuilder
from korpat_jax.datasets.manual_values import text
from korpat_jax.finetune.report import DataReport

TAGS = ("B-DT", "I-DT", "B-LC", "I-LC", "B-OG", "I-OG", "B-PS", "I-PS", "B-QT", "I-QT", "B-TI", "I-TI", "O")
TASK = "token_classification"


class KlueNer(ManualFilesBuilder):
  """KLUE named entity recognition over local files (character BIO tags)."""

  name = "klue_ner"
  DESCRIPTION = "KLUE NER: Korean sentences as characters with BIO tags of 6 entity types (PS LC OG DT TI QT)."
  HOMEPAGE = "https://klue-benchmark.com"
  SPLIT_FILES = {"train": ("klue-ner-v*_train.tsv",), "validation": ("klue-ner-v*_dev.tsv",),
                 "test": ("klue-ner-v*_test.tsv",)}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put KLUE's NER files in manual_dir: klue-ner-v1.1_train.tsv and klue-ner-v1.1_dev.tsv (from "
      "KLUE-benchmark/KLUE, klue_benchmark/klue-ner-v1.1/); a klue-ner-v1.1_test.tsv of the same format is used "
      "when present.")

  def _features(self) -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict({
        "id": tfds.features.Text(),
        "characters": tfds.features.Sequence(tfds.features.Text()),
        "tags": tfds.features.Sequence(tfds.features.ClassLabel(names=list(TAGS))),
        "where": tfds.features.Text(),  # file:line of the sentence in the manual file
    })

  def _read(self, split: str, path: str, report: DataReport) -> list[dict[str, Any]]:
    known = set(TAGS)
    records = []
    for example in ner.read_ner(path, "char_bio", report, labelled=True):
      unknown = sorted(set(example.tags) - known)
      if unknown:
        report.skip("tag_not_in_klue_ner", example.where, ", ".join(unknown))
        report.used -= 1
        continue
      records.append({"id": example.id, "characters": list(example.text), "tags": list(example.tags),
                      "where": example.where})
    return records


BUILDER = KlueNer

def to_examples(rows: Iterable[Mapping[str, Any]], config: Any, report: DataReport) -> list[ner.NerExample]:
  """The NerExamples of a split, as `read_ner` gives them from the manual file."""
  del config, report  # the builder validated every sentence
  examples = []
  for row in rows:
    chars = "".join(text(c) for c in row["characters"])
    examples.append(ner.NerExample(text(row["id"]), chars, [(i, i + 1) for i in range(len(chars))],
                                   [TAGS[int(t)] for t in row["tags"]], text(row["where"])))
  return examples
