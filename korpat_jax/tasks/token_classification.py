"""Token classification (NER) on the shared loop: KLUE-style character BIO or word-level CoNLL (configs/finetune.py
variants ner, ner_conll).

A token takes the label of its first character (KLUE's rule); sentences longer than the model are covered by
overlapping windows (korpat_jax.finetune.windows) and each token is predicted from the window in which it is most
central; predictions are decoded back to character spans of the original text (korpat_jax.ner): the entities of
W/eval/predictions.jsonl are the ones the metric scored (unit tags, strict rule; whole words for word-level
input), and an input sentence the reader left out is a line {"id", "error", "where", "detail"} in its place.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from korpat_jax import ner
from korpat_jax.files import write_jsonl
from korpat_jax.finetune import features as features_lib
from korpat_jax.finetune.raw_input import RawDoc, Unusable
from korpat_jax.finetune.report import DataReport
from korpat_jax.finetune.windows import best_window, windows
from korpat_jax.model.heads import TOKEN_CLASSIFICATION
from korpat_jax.tasks.base import Batch, EvalResult
from korpat_jax.tasks.finetuning import FineTuningTask
from korpat_jax.tasks.losses import masked_cross_entropy

IGNORE = -100


class TokenClassificationTask(FineTuningTask):
  name = "ner"  # in logs: the variants' family
  head = TOKEN_CLASSIFICATION
  main_metric = "f1"

  def read(self, path: str, report: DataReport, labelled: bool) -> list[ner.NerExample]:
    return ner.read_ner(path, self.config.data.format, report, labelled=labelled)

  def label_set(self, examples: Sequence[ner.NerExample]) -> list[str]:
    return ner.label_set(examples)

  def check_labels(self, examples: Sequence[ner.NerExample], labels: Sequence[str], report: DataReport) -> None:
    ner.check_labels(examples, labels, report)

  def _windows(self, num_tokens: int) -> list[tuple[int, int]]:
    max_tokens = self.config.train.seq_len - 2
    return windows(num_tokens, max_tokens, self.window_stride(max_tokens))

  def featurize(self, examples: Sequence[ner.NerExample], labels: Sequence[str], report: DataReport, split: str,
                labelled: bool) -> features_lib.Features:
    label2id = {label: i for i, label in enumerate(labels)}
    cls, sep = self.tok.cls_id, self.tok.sep_id
    for index, example in enumerate(examples):
      enc = self.tok.encode(example.text, add_special_tokens=False)
      ids, offsets = list(enc.ids), [tuple(o) for o in enc.offsets]
      tags = None
      if labelled and example.tags is not None:
        alignment = ner.token_tags(example, offsets, labels)
        tags = [label2id[t] for t in alignment.tags]
        for reason, count in (("unit_not_covered_by_a_token", alignment.uncovered_units),
                              ("entity_starts_inside_a_token", alignment.entity_starts_inside_token),
                              ("entity_ends_inside_a_token", alignment.entity_ends_inside_token)):
          if count:
            report.adjust(reason, example.where, example.text[:60], count)
      if not ids:
        report.adjust("no_tokens", example.where, "nothing to predict: no entities")
      features = []
      for window, (start, end) in enumerate(self._windows(len(ids)) if ids else []):
        feature = {"input_ids": [cls, *ids[start:end], sep], "token_type_ids": [0] * (end - start + 2),
                   "example": [index], "window": [window]}
        feature["labels"] = [IGNORE, *tags[start:end], IGNORE] if tags is not None else [IGNORE] * (end - start + 2)
        features.append(feature)
      if len(features) > 1:
        report.adjust("sentence_split_into_windows", example.where, f"{len(ids)} tokens")
      meta = {"id": example.id, "text": example.text, "spans": example.spans, "tags": example.tags,
              "offsets": offsets}
      yield meta, features

  def fields(self):
    return {"input_ids": self.tok.pad_id, "token_type_ids": 0, "labels": IGNORE}, {"example": (1, -1),
                                                                                   "window": (1, -1)}

  def loss_denominator(self, batch: Mapping[str, jax.Array]) -> jax.Array:
    return (batch["labels"] >= 0).sum().astype(jnp.float32)

  def loss_sums(self, logits: jax.Array, batch: Mapping[str, jax.Array]):
    valid = batch["labels"] >= 0
    loss, correct = masked_cross_entropy(logits, batch["labels"], valid)
    return loss, {"count": valid.sum().astype(jnp.float32), "accuracy": correct}

  def outputs(self, logits: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
    return jnp.argmax(logits, -1).astype(jnp.int32)

  def raw_example(self, doc: RawDoc) -> ner.NerExample:
    """A raw document's example: its characters are the units (as the `text` format reads a line)."""
    text = doc.fields.get("text")
    if text is None:
      raise Unusable("missing_field", f"no \"text\" field (fields: {', '.join(sorted(doc.fields)) or 'none'})")
    if not text.strip():
      raise Unusable("empty_text", "only spaces" if text else "")
    return ner.NerExample(doc.id, text, [(i, i + 1) for i in range(len(text))], None, doc.where)

  def score(self, split: str, meta: Iterator[dict], outputs: Iterable[tuple[Batch, Any]], labelled: bool
            ) -> EvalResult:
    rows, gold_units, pred_units, gold_chars, pred_chars, texts = [], [], [], [], [], []
    for example, char_tags, unit_tags, row in self._decoded(meta, outputs):
      rows.append(row)
      if labelled and example.tags is not None:
        gold_units.append(example.tags)
        pred_units.append(unit_tags)
        gold_chars.append(ner.unit_char_tags(example))
        pred_chars.append(char_tags)
        texts.append(example.text)
    scores = ner.ner_scores(gold_units, pred_units, gold_chars, pred_chars, self.labels, texts=texts) \
        if gold_units else {}
    lines = self.with_skipped_rows(split, rows)
    return EvalResult(scores, write=lambda directory: write_jsonl(os.path.join(directory, self.predictions_file),
                                                                  lines))

  def prediction_lines(self, meta: Iterable[dict], outputs: Iterable[tuple[Batch, Any]]) -> list[dict[str, Any]]:
    return [row for *_, row in self._decoded(meta, outputs)]

  def _decoded(self, meta: Iterable[dict], outputs: Iterable[tuple[Batch, Any]]
               ) -> Iterator[tuple[ner.NerExample, list[str], list[str], dict[str, Any]]]:
    """(example, character tags, unit tags, prediction line) per example: each token's tag from the window where it
    is most central, decoded to the units; the line's entities are the unit tags read with the strict rule."""
    predicted: dict[int, dict[int, np.ndarray]] = {}
    for batch, ids in outputs:
      for row in np.flatnonzero(batch["feature_index"] >= 0):
        length = int(batch["attention_mask"][row].sum()) - 2
        predicted.setdefault(int(batch["example"][row]), {})[int(batch["window"][row])] = ids[row, 1:1 + length]
    id2label = dict(enumerate(self.labels))
    for index, m in enumerate(meta):
      example = ner.NerExample(m["id"], m["text"], [tuple(s) for s in m["spans"]], m["tags"], "")
      offsets = [tuple(o) for o in m["offsets"]]
      by_window = predicted.get(index, {})
      token_tags = ["O"] * len(offsets)
      if by_window:
        spans = self._windows(len(offsets))
        for position, window in enumerate(best_window(spans)):
          token_tags[position] = id2label[int(by_window[window][position - spans[window][0]])]
      char_tags = ner.char_tags_from_tokens(example.text, offsets, token_tags)
      unit_tags = ner.unit_tags_from_chars(example, char_tags)
      row = {"id": example.id, "text": example.text, "entities": ner.entities_from_tags(example.spans, unit_tags)}
      yield example, char_tags, unit_tags, row
