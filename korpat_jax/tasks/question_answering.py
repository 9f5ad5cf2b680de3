"""Extractive question answering (SQuAD v1.1 / KorQuAD 1.0 / PatQuAD-style JSON) on the shared loop.

Features are `[CLS] question [SEP] context window [SEP]` (korpat_jax.qa.features); predictions take the n-best
start/end pairs over every window of a question and cut the answer out of the original context through the
tokenizer's offsets (korpat_jax.qa.postprocess); scores are the official KorQuAD 1.0 EM/F1 (0-100) over every
question of the eval file, as the official script would compute them on predictions.json: the gold set is taken
from the file once, when its features are cached (a question the reader skipped still counts, as a miss).

The prediction files name every question of the input: one the reader left out is "" in predictions.json (what
the metric scored it as; the official script reads the same) when it has an id of its own, and
{"error": reason, "where", "detail"} in nbest_predictions.json, under its id (under its place `file: data[i]...`
when it has no id or repeats one).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from korpat_jax import qa
from korpat_jax.config import require
from korpat_jax.datasets import source as source_lib
from korpat_jax.files import write_json
from korpat_jax.finetune import features as features_lib
from korpat_jax.finetune.raw_input import RawDoc, Unusable
from korpat_jax.finetune.report import DataReport
from korpat_jax.model.heads import QUESTION_ANSWERING
from korpat_jax.tasks.base import Batch, EvalResult
from korpat_jax.tasks.finetuning import FineTuningTask, interleave_skipped
from korpat_jax.tasks.losses import masked_cross_entropy

SPAN_LABELS = list(QUESTION_ANSWERING.fixed_labels)


class QuestionAnsweringTask(FineTuningTask):
  name = "qa"
  head = QUESTION_ANSWERING
  feature_keys = ("max_query_length", "doc_stride")  # n_best_size, max_answer_length: scoring only
  main_metric = "f1"
  predictions_file = "predictions.json"
  console_keys = ("loss", "start_accuracy", "end_accuracy", "learning_rate")

  def validate(self, num_devices: int) -> None:
    super().validate(num_devices)
    h, seq = self.config.head, self.config.train.seq_len
    for key in ("max_query_length", "doc_stride", "n_best_size", "max_answer_length"):
      require(h[key] > 0, f"config.head.{key}={h[key]}: must be > 0")
    require(seq - h.max_query_length - 3 >= h.doc_stride,
            f"config.head.doc_stride={h.doc_stride}: larger than the context window (train.seq_len={seq} - "
            f"head.max_query_length={h.max_query_length} - 3): windows would leave gaps")

  def read(self, path: str, report: DataReport, labelled: bool) -> list[qa.QAExample]:
    return qa.read_squad(path, report, labelled=labelled)

  def label_set(self, examples: Sequence[qa.QAExample]) -> list[str]:
    return list(SPAN_LABELS)

  def label_names(self) -> list[str]:
    return list(SPAN_LABELS)

  def featurize(self, examples: Sequence[qa.QAExample], labels: Sequence[str], report: DataReport, split: str,
                labelled: bool) -> features_lib.Features:
    h = self.config.head
    # Training features carry the answer's token span; eval features are scored through the post-processing.
    training = labelled and split == "train"
    stream = qa.iter_features(examples, self.tok, max_seq_length=self.config.train.seq_len,
                              max_query_length=h.max_query_length, doc_stride=h.doc_stride, training=training,
                              report=report)
    pending = next(stream, None)
    for index, example in enumerate(examples):
      features = []
      while pending is not None and pending.example_index == index:
        features.append(_record(pending))
        pending = next(stream, None)
      yield {"id": example.id, "question": example.question, "context": example.context,
             "answers": example.answers}, features

  def scoring_info(self, split: str, source: source_lib.Input, examples: Sequence[qa.QAExample], labelled: bool
                   ) -> dict[str, Any]:
    """The gold answers of every question of a labelled eval/test input, for the official metric."""
    if not labelled or split == "train":
      return {}
    if isinstance(source, source_lib.TfdsSplit):  # its questions are the gold set
      return {"gold": [{"id": e.id, "answers": [{"text": a["text"]} for a in e.answers]} for e in examples]}
    with open(source, encoding="utf-8-sig") as f:
      return {"gold": qa.gold_questions(json.load(f))}

  def fields(self):
    seq = {"input_ids": self.tok.pad_id, "token_type_ids": 0, "context_start": -1, "context_end": -1,
           "max_context": 0}
    return seq, {"example": (1, -1), "window": (1, -1), "start_position": (1, 0), "end_position": (1, 0)}

  def loss_denominator(self, batch: Mapping[str, jax.Array]) -> jax.Array:
    return 2.0 * (batch["feature_index"] >= 0).sum().astype(jnp.float32)  # mean of the start and end losses

  def loss_sums(self, logits, batch: Mapping[str, jax.Array]):
    valid = batch["feature_index"] >= 0
    mask = batch["attention_mask"].astype(bool)
    loss, sums = 0.0, {"count": valid.sum().astype(jnp.float32)}
    for name, scores in zip(SPAN_LABELS, logits):
      scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
      nll, correct = masked_cross_entropy(scores, batch[f"{name}_position"], valid)
      loss = loss + nll
      sums[f"{name}_accuracy"] = correct
    return loss, sums

  def outputs(self, logits, batch: Mapping[str, jax.Array]):
    return logits  # (start [B, S], end [B, S])

  def score(self, split: str, meta: Iterator[dict], outputs: Iterable[tuple[Batch, Any]], labelled: bool
            ) -> EvalResult:
    examples = [qa.QAExample(m["id"], m["question"], m["context"], m["answers"], "") for m in meta]
    h = self.config.head
    predictions, nbest = qa.best_answers(examples, _features_with_logits(outputs), n_best_size=h.n_best_size,
                                         max_answer_length=h.max_answer_length)
    gold = self.splits[split].info.get("gold") if labelled and split in self.splits else None
    scores = qa.score_questions(gold, predictions) if gold is not None else {}
    predictions, nbest = with_skipped_questions(examples, predictions, nbest, self.skipped_rows(split))

    def write(directory: str) -> None:
      write_json(os.path.join(directory, self.predictions_file), predictions)
      write_json(os.path.join(directory, "nbest_predictions.json"), nbest)

    return EvalResult(scores, write=write)


  def raw_example(self, doc: RawDoc) -> qa.QAExample:
    """A JSONL line's question over its context."""
    missing = [f for f in ("question", "context") if f not in doc.fields]
    if missing:
      raise Unusable("missing_field", f"needs question and context; fields: {', '.join(sorted(doc.fields)) or 'none'}")
    question, context = doc.fields["question"], doc.fields["context"]
    if not question.strip() or not context.strip():
      raise Unusable("empty_text", "empty question" if not question.strip() else "empty context")
    return qa.QAExample(doc.id, question, context, [], doc.where)

  def prediction_lines(self, meta: Iterable[dict], outputs: Iterable[tuple[Batch, Any]]) -> list[dict[str, Any]]:
    """One line per question: {"id", "answer", "start", "end", "score"} (character offsets into the context; score:
    the answer's probability among the n-best, as transformers' question-answering pipeline gives them)."""
    examples = [qa.QAExample(m["id"], m["question"], m["context"], m["answers"], "") for m in meta]
    h = self.config.head
    predictions, nbest = qa.best_answers(examples, _features_with_logits(outputs), n_best_size=h.n_best_size,
                                         max_answer_length=h.max_answer_length)
    lines = []
    for example in examples:
      answer = predictions[example.id]
      chosen = next((c for c in nbest[example.id] if c["text"] == answer), None)
      lines.append({"id": example.id, "answer": answer, "start": chosen["start"] if chosen else None,
                    "end": chosen["end"] if chosen else None,
                    "score": round(float(chosen["probability"]), 6) if chosen else 0.0})
    return lines


def with_skipped_questions(examples: Sequence[qa.QAExample], predictions: Mapping[str, str],
                           nbest: Mapping[str, Any], skipped: Sequence[Mapping[str, Any]]
                           ) -> tuple[dict[str, str], dict[str, Any]]:
  """predictions {id: text} and nbest {id: [...]} in input order with the questions the reader left out: "" and
  {"error", "where", "detail"} under their own id, or only the latter under their place when the id is missing or
  belongs to a kept question."""
  kept_ids = {e.id for e in examples}
  rows = [{"id": e.id} for e in examples]
  out_pred: dict[str, str] = {}
  out_nbest: dict[str, Any] = {}
  for row in interleave_skipped(rows, skipped):
    if "error" not in row:
      out_pred[row["id"]] = predictions[row["id"]]
      out_nbest[row["id"]] = nbest[row["id"]]
      continue
    qid = row["id"]
    error = {k: row[k] for k in ("error", "where", "detail")}
    if qid and qid not in kept_ids and qid not in out_nbest:
      out_pred[qid] = ""
      out_nbest[qid] = error
    else:
      out_nbest[row["where"]] = error
  return out_pred, out_nbest


def _record(feature: qa.QAFeature) -> dict[str, Any]:
  offsets = feature.context_offsets
  return {"input_ids": feature.input_ids, "token_type_ids": feature.token_type_ids,
          "context_start": [o[0] if o is not None else -1 for o in offsets],
          "context_end": [o[1] if o is not None else -1 for o in offsets],
          "max_context": [int(m) for m in feature.token_is_max_context],
          "example": [feature.example_index], "window": [feature.window_index],
          "start_position": [feature.start_position], "end_position": [feature.end_position]}


def _features_with_logits(outputs: Iterable[tuple[Batch, Any]]) -> Iterator[tuple[qa.QAFeature, np.ndarray,
                                                                                    np.ndarray]]:
  """Rebuilds each row's feature from the batch (offsets, max-context flags) next to its logits."""
  for batch, (start, end) in outputs:
    for row in np.flatnonzero(batch["feature_index"] >= 0):
      length = int(batch["attention_mask"][row].sum())
      starts, ends = batch["context_start"][row, :length], batch["context_end"][row, :length]
      feature = qa.QAFeature(
          example_index=int(batch["example"][row]), window_index=int(batch["window"][row]),
          input_ids=batch["input_ids"][row, :length].tolist(), token_type_ids=batch["token_type_ids"][row, :length].tolist(),
          context_offsets=[(int(s), int(e)) if s >= 0 else None for s, e in zip(starts, ends)],
          token_is_max_context=[bool(m) for m in batch["max_context"][row, :length]])
      yield feature, np.asarray(start[row]), np.asarray(end[row])

