"""KorQuAD 1.0 (SQuAD v1.1 format) as a TFDS dataset: one example per question with its context and answers.

The manual files are KorQuAD's JSON, read by `korpat_jax.qa.read_squad` (training rules: a question needs an
answer that lies in its context). Each answer keeps the character span the reader located, so a run gets the same
training labels as from the file. EM/F1 of a TFDS split are computed over its questions (the QA task's gold set):
a question the reader skipped (none of its answers lies in the context) is not scored, where the file path scores it
as a miss; data_report.json counts such questions.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

from korpat_jax import qa
from korpat_jax.datasets.manual import ManualFilesBuilder
from korpat_jax.datasets.manual_values import text
from korpat_jax.finetune.report import DataReport

TASK = "question_answering"
NO_SPAN = -1


class Korquad(ManualFilesBuilder):
  """KorQuAD 1.0 extractive question answering over local files."""

  name = "korquad"
  DESCRIPTION = "KorQuAD 1.0: Korean Wikipedia questions with answer spans in a context paragraph."
  HOMEPAGE = "https://korquad.github.io/KorQuad%201.0/"
  SPLIT_FILES = {"train": ("KorQuAD_v1*_train.json",), "validation": ("KorQuAD_v1*_dev.json",),
                 "test": ("KorQuAD_v1*_test.json",)}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put KorQuAD 1.0's files in manual_dir: KorQuAD_v1.0_train.json and KorQuAD_v1.0_dev.json (from "
      "korquad/korquad.github.io, dataset/); a KorQuAD_v1.0_test.json in the same format is used when present.")

  def _features(self) -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict({
        "id": tfds.features.Text(),
        "question": tfds.features.Text(),
        "context": tfds.features.Text(),
        "answers": tfds.features.Sequence({
            "text": tfds.features.Text(),
            "answer_start": tfds.features.Scalar(dtype=np.int32),   # as given (fixed where the reader fixed it)
            "span_start": tfds.features.Scalar(dtype=np.int32),     # located [start, end) in context; -1: none
            "span_end": tfds.features.Scalar(dtype=np.int32),
        }),
        "where": tfds.features.Text(),  # file: data[i].paragraphs[j].qas[k] in the manual file
    })

  def _read(self, split: str, path: str, report: DataReport) -> list[dict[str, Any]]:
    records = []
    for example in qa.read_squad(path, report, labelled=True):
      spans = example.answer_spans()
      answers = [{"text": a["text"], "answer_start": NO_SPAN if a.get("answer_start") is None else a["answer_start"],
                  "span_start": s[0] if s else NO_SPAN, "span_end": s[1] if s else NO_SPAN}
                 for a, s in zip(example.answers, spans)]
      records.append({"id": example.id, "question": example.question, "context": example.context,
                      "answers": answers, "where": example.where})
    return records


BUILDER = Korquad

def to_examples(rows: Iterable[Mapping[str, Any]], config: Any, report: DataReport) -> list[qa.QAExample]:
  """The questions as QAExamples with the answers' located spans."""
  del config, report  # the builder validated every question
  examples = []
  for row in rows:
    answers = row["answers"]
    starts = [int(x) for x in answers["answer_start"]]
    spans = [(int(s), int(e)) if s != NO_SPAN else None for s, e in zip(answers["span_start"], answers["span_end"])]
    given = [{"text": text(t), "answer_start": None if start == NO_SPAN else start}
             for t, start in zip(answers["text"], starts)]
    examples.append(qa.QAExample(text(row["id"]), text(row["question"]), text(row["context"]), given,
                                 text(row["where"]), spans))
  return examples


def squad_json(examples: Sequence[qa.QAExample]) -> dict[str, Any]:
  """The questions as a SQuAD-format dataset (one paragraph each), for the official EM/F1."""
  return {"version": "korquad-tfds", "data": [{"paragraphs": [
      {"context": e.context, "qas": [{"id": e.id, "question": e.question, "answers": e.answers}]}
      for e in examples]}]}
