"""Sequence classification on the shared loop: CPC codes (one main label, or every code of a document) and
sentence pairs (NLI, data.pair), from TSV, JSONL or JSON files (korpat_jax.classification).

Long documents (data.long_text): `head` keeps the first tokens, `head_tail` the first quarter and the end (Sun et
al. 2019's head+tail), `windows` covers the whole text with overlapping windows, each a training feature with the
document's labels, whose logits are averaged per document at evaluation.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from korpat_jax import classification as cls_lib
from korpat_jax.config import require
from korpat_jax.errors import ConfigError
from korpat_jax.files import write_jsonl
from korpat_jax.finetune import features as features_lib
from korpat_jax.finetune.raw_input import RawDoc, Unusable
from korpat_jax.finetune.report import DataReport
from korpat_jax.finetune.windows import windows as token_windows
from korpat_jax.model.heads import SEQUENCE_CLASSIFICATION
from korpat_jax.tasks.base import Batch, EvalResult
from korpat_jax.tasks.finetuning import FineTuningTask
from korpat_jax.tasks.losses import masked_cross_entropy

LONG_TEXT = ("head", "head_tail", "windows")
TOP_SCORES = 10  # labels with their probability in each prediction line


class SequenceClassificationTask(FineTuningTask):
  head = SEQUENCE_CLASSIFICATION
  feature_keys = ("multi_label",)  # multi-hot labels or one label id per feature

  def __init__(self, config, workdir):
    super().__init__(config, workdir)
    self.multi = bool(config.head.multi_label)
    self.text_fields = [f.strip() for f in config.data.text_fields.split(",") if f.strip()]
    self.pair = is_pair(config)
    self.name = "pair" if self.pair else ("cpc_multi" if self.multi else "cpc")
    self.main_metric = "micro_f1" if self.multi else "accuracy"
    self.problem_type = "multi_label_classification" if self.multi else "single_label_classification"
    if self.multi:
      self.console_keys = ("loss", "learning_rate")

  def validate(self, num_devices: int) -> None:
    super().validate(num_devices)
    d = self.config.data
    require(bool(self.text_fields), f"config.data.text_fields={d.text_fields!r}: name at least one field")
    require(not self.pair or len(self.text_fields) == 2,
            f"config.data.text_fields={d.text_fields!r}: sentence pairs (data.pair) need exactly two fields")
    require(d.long_text in LONG_TEXT, f"config.data.long_text={d.long_text!r}: expected one of {', '.join(LONG_TEXT)}")
    require(d.cpc_level in cls_lib.CUT_LEVELS,
            f"config.data.cpc_level={d.cpc_level!r}: expected one of {', '.join(cls_lib.CUT_LEVELS)}")
    require(0 < self.config.head.multi_label_threshold < 1,
            f"config.head.multi_label_threshold={self.config.head.multi_label_threshold}: must be in (0, 1)")

  # -- data ---------------------------------------------------------------------------------------------

  def read(self, path: str, report: DataReport, labelled: bool) -> list[cls_lib.TextExample]:
    d = self.config.data
    parser = None if d.cpc_level == "none" else cls_lib.cpc_label_parser(d.cpc_level)
    examples = cls_lib.read_examples(path, text_fields=self.text_fields,
                                     label_field=d.label_field if labelled else None, report=report,
                                     label_parser=parser, id_field=d.id_field, labelled=labelled,
                                     multi_separator=d.label_separator or None,
                                     settings={k: self.setting(k) for k in ("text_fields", "label_field")})
    if parser is not None:
      _check_cpc_labels(path, d.cpc_level, examples, report)
    return examples

  def label_set(self, examples: Sequence[cls_lib.TextExample]) -> list[str]:
    if self.multi:
      return cls_lib.label_set(examples)
    return sorted({ex.labels[0] for ex in examples if ex.labels})  # single label: the main codes

  def check_labels(self, examples: Sequence[cls_lib.TextExample], labels: Sequence[str], report: DataReport) -> None:
    known = set(labels)
    if self.multi:
      cls_lib.check_labels(examples, labels, report)
      return
    for ex in examples:
      if ex.labels and ex.labels[0] not in known:
        report.adjust("label_not_in_training_set", ex.where, repr(ex.labels[0]))

  def _token_ids(self, text: str) -> list[int]:
    return list(self.tok.encode(text, add_special_tokens=False).ids)

  def _inputs(self, example: cls_lib.TextExample, report: DataReport) -> list[tuple[list[int], list[int]]]:
    """(input ids, token types) of each feature of one example."""
    limit = self.config.train.seq_len
    cls, sep = self.tok.cls_id, self.tok.sep_id
    if self.pair:
      enc = self.tok.encode_pair(example.texts[0], example.texts[1], max_length=limit)
      if len(enc.ids) == limit:
        report.adjust("pair_truncated", example.where, f"to {limit} tokens")
      return [(list(enc.ids), list(enc.token_type_ids))]
    ids = self._token_ids(" ".join(t for t in example.texts if t))
    room = limit - 2
    if len(ids) > room:
      mode = self.config.data.long_text
      report.adjust(f"long_text_{mode}", example.where, f"{len(ids)} tokens")
      if mode == "head":
        ids = ids[:room]
      elif mode == "head_tail":
        head = room // 4
        ids = ids[:head] + ids[len(ids) - (room - head):]
      else:
        spans = token_windows(len(ids), room, self.window_stride(room))
        return [([cls, *ids[s:e], sep], [0] * (e - s + 2)) for s, e in spans]
    return [([cls, *ids, sep], [0] * (len(ids) + 2))]

  def featurize(self, examples: Sequence[cls_lib.TextExample], labels: Sequence[str], report: DataReport,
                split: str, labelled: bool) -> features_lib.Features:
    label2id = {label: i for i, label in enumerate(labels)}
    for index, example in enumerate(examples):
      ids = cls_lib.label_ids(example, label2id) if labelled and example.labels else []
      features = []
      for input_ids, types in self._inputs(example, report):
        feature = {"input_ids": input_ids, "token_type_ids": types, "example": [index]}
        if self.multi:
          feature["labels"] = cls_lib.multi_hot([ids], len(labels))[0] if labelled else \
              np.zeros(len(labels), np.int32)
        else:
          feature["label"] = [ids[0] if ids else -1]
        features.append(feature)
      yield {"id": example.id, "labels": example.labels}, features

  # -- model --------------------------------------------------------------------------------------------

  def fields(self):
    fixed = {"example": (1, -1)}
    fixed.update({"labels": (len(self.labels), 0)} if self.multi else {"label": (1, -1)})
    return {"input_ids": self.tok.pad_id, "token_type_ids": 0}, fixed

  def _valid(self, batch: Mapping[str, jax.Array]) -> jax.Array:
    if self.multi:
      return batch["feature_index"] >= 0
    return (batch["feature_index"] >= 0) & (batch["label"] >= 0)

  def loss_denominator(self, batch: Mapping[str, jax.Array]) -> jax.Array:
    count = self._valid(batch).sum().astype(jnp.float32)
    return count * len(self.labels) if self.multi else count  # multi: mean over examples x labels (HF's BCE)

  def loss_sums(self, logits: jax.Array, batch: Mapping[str, jax.Array]):
    valid = self._valid(batch)
    if self.multi:
      targets = batch["labels"].astype(jnp.float32)
      losses = (jnp.logaddexp(0.0, logits) - logits * targets).sum(-1)
      count = valid.sum().astype(jnp.float32)
      return (losses * valid).sum(), {"count": count * len(self.labels)}
    loss, correct = masked_cross_entropy(logits, batch["label"], valid)
    return loss, {"count": valid.sum().astype(jnp.float32), "accuracy": correct}

  def outputs(self, logits: jax.Array, batch: Mapping[str, jax.Array]) -> jax.Array:
    return logits

  # -- scoring ------------------------------------------------------------------------------------------

  def raw_example(self, doc: RawDoc) -> cls_lib.TextExample:
    """A raw document's example: the run's text fields when the line has them all, else `text` (pairs: `text` and
    `text_pair`, as transformers' text-classification pipeline takes them)."""
    names = self.text_fields if all(f in doc.fields for f in self.text_fields) else \
        (["text", "text_pair"] if self.pair else ["text"])
    missing = [f for f in names if f not in doc.fields]
    if missing:
      wanted = f"{', '.join(self.text_fields)} (or text, text_pair)" if self.pair else "text"
      raise Unusable("missing_field", f"needs {wanted}; fields: {', '.join(sorted(doc.fields)) or 'none'}")
    texts = [doc.fields[f].strip() for f in names]
    if not any(texts):
      raise Unusable("empty_text")
    return cls_lib.TextExample(doc.id, texts, None, doc.where)

  def score(self, split: str, meta: Iterator[dict], outputs: Iterable[tuple[Batch, Any]], labelled: bool
            ) -> EvalResult:
    label2id = {label: i for i, label in enumerate(self.labels)}
    rows, gold, scored = [], [], []
    for m, logits in self._example_logits(meta, outputs):
      rows.append(self._prediction(m["id"], logits))
      if labelled and m["labels"]:
        gold.append([label2id.get(label, -1) for label in m["labels"]])
        scored.append(logits)
    scores: dict[str, Any] = {}
    if gold:
      logits = np.stack(scored)
      if self.multi:
        scores = cls_lib.multi_label_scores(cls_lib.multi_hot(gold, len(self.labels)), _sigmoid(logits),
                                            self.config.head.multi_label_threshold,
                                            main_label_ids=np.array([g[0] for g in gold]))
      else:
        scores = cls_lib.single_label_scores(np.array([g[0] for g in gold]), logits)
    lines = self.with_skipped_rows(split, rows)  # an error line in the place of each row the reader left out
    return EvalResult(scores, write=lambda directory: write_jsonl(os.path.join(directory, self.predictions_file),
                                                                  lines))

  def prediction_lines(self, meta: Iterable[dict], outputs: Iterable[tuple[Batch, Any]]) -> list[dict[str, Any]]:
    return [self._prediction(m["id"], logits) for m, logits in self._example_logits(meta, outputs)]

  def _example_logits(self, meta: Iterable[dict], outputs: Iterable[tuple[Batch, Any]]
                      ) -> Iterator[tuple[dict, np.ndarray]]:
    """(metadata, logits) per example: the mean over its features (windows)."""
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for batch, logits in outputs:
      for row in np.flatnonzero(batch["feature_index"] >= 0):
        example = int(batch["example"][row])
        sums[example] = sums.get(example, 0.0) + np.asarray(logits[row], np.float64)
        counts[example] = counts.get(example, 0) + 1
    for index, m in enumerate(meta):
      yield m, sums[index] / counts[index] if index in counts else np.zeros(len(self.labels))

  def _prediction(self, example_id: str, logits: np.ndarray) -> dict[str, Any]:
    probs = _sigmoid(logits) if self.multi else _softmax(logits)
    order = np.argsort(-probs, kind="stable")
    top = {self.labels[i]: round(float(probs[i]), 6) for i in order[:TOP_SCORES]}
    if self.multi:
      chosen = [self.labels[i] for i in order if probs[i] >= self.config.head.multi_label_threshold]
      return {"id": example_id, "labels": chosen, "scores": top}
    return {"id": example_id, "label": self.labels[int(order[0])], "scores": top}


def _check_cpc_labels(path: str, level: str, examples: Sequence[cls_lib.TextExample], report: DataReport) -> None:
  """A file whose labels are mostly not CPC codes (as many rows dropped for it as kept) was read with the wrong
  config.data.cpc_level: one line that says so, instead of a training set without labels."""
  bad = report.skipped.get("unparseable_label", 0)
  if bad and bad >= len(examples):
    first = (report.examples("unparseable_label") or [""])[0]
    if first.startswith(f"{path}:"):  # the path starts the message already
      first = first[len(path) + 1:] if first[len(path) + 1:].startswith("#") else "line " + first[len(path) + 1:]
    raise ConfigError(f"{path}: the labels of {bad} of {report.read} rows do not parse as CPC codes (e.g. {first}); "
                      f"config.data.cpc_level={level} cuts CPC codes: for other labels set "
                      "--config.data.cpc_level=none")


def is_pair(config: Any) -> bool:
  """Sentence pairs ([CLS] A [SEP] B [SEP]) by config.data.pair; a run directory written before that key was
  added says so by its variant (pair, pair_cpu, pair_tiny)."""
  data = config.data
  return bool(data.pair) if "pair" in data else config.variant.startswith("pair")


def _softmax(x: np.ndarray) -> np.ndarray:
  e = np.exp(x - x.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 1.0 / (1.0 + np.exp(-x))
