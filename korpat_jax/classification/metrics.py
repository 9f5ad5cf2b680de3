"""Scores of text classification (single- and multi-label, e.g. CPC) and sentence-pair (NLI) predictions, numpy.

Conventions, all fractions in [0, 1] (0.0 when there is nothing to score):
- Ranking: labels by descending score, ties to the lower label id (what `argmax` picks), so top-1 == accuracy.
  top3 / top5 are computed only where k < L (the number of labels): with k >= L every known label is among the
  k best, so they would only say 1 (2- and 3-class tasks have no top3 / top5). P@k uses k = min(k, L).
- Gold label id -1 (a label the training set lacks, see `check_labels`): a single-label example with it stays in
  the denominator of accuracy and top-k and is always wrong; its prediction is a false positive of the predicted
  label; it is nobody's false negative (it has no column).
- F1 of one label = 2TP / (2TP + FP + FN). macro_f1 averages it over the labels that occur in the gold labels or
  in the predictions; a label in neither has no defined F1 and is left out (a label present in gold but never
  predicted counts, with F1 0). micro_f1 pools TP/FP/FN over all labels (sklearn's average="micro" with
  labels=range(L)): for single-label that is 2TP / (N + N_known), equal to accuracy when every gold label is
  known, otherwise between accuracy (TP / N) and the accuracy over known labels (TP / N_known).
- Multi-label predictions are the labels with prob >= threshold, nothing else: an example may get no label (no
  forced top-1).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _ranks(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
  """0-based rank of label `ids[i]` in row i (higher score first, ties to the lower id); never top-k for id -1."""
  n, num_labels = scores.shape
  safe = np.clip(ids, 0, max(num_labels - 1, 0))
  own = scores[np.arange(n), safe][:, None]
  before = (scores > own) | ((scores == own) & (np.arange(num_labels)[None, :] < safe[:, None]))
  return np.where(ids >= 0, before.sum(axis=1), np.iinfo(np.int64).max)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
  """[N, min(k, L)] label ids of the k best scores of each row (ties to the lower id)."""
  k = min(k, scores.shape[1])
  return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[float, float]:
  """(micro, macro) F1 from per-label counts; macro over labels with 2TP + FP + FN > 0."""
  denom = 2 * tp + fp + fn
  micro = float(2 * tp.sum() / denom.sum()) if denom.sum() else 0.0
  present = denom > 0
  macro = float(np.mean(2 * tp[present] / denom[present])) if present.any() else 0.0
  return micro, macro


def _check_ids(name: str, ids: np.ndarray, n: int, num_labels: int) -> None:
  if ids.shape[0] != n:
    raise ValueError(f"{name}: expected {n} ids, got {ids.shape[0]}")
  if n and (ids.max() >= num_labels or ids.min() < -1):
    raise ValueError(f"{name}: ids must lie in [-1, {num_labels}), got {ids.min()}..{ids.max()}")


TOP_K = (3, 5)


def top_k_keys(num_labels: int) -> list[str]:
  """The top-k scores that say something with `num_labels` labels: k < num_labels."""
  return [f"top{k}" for k in TOP_K if k < num_labels]


def single_label_scores(label_ids: np.ndarray, logits: np.ndarray) -> dict[str, float]:
  """accuracy, top3 and top5 (where k < L), macro_f1, micro_f1 of argmax predictions; label id -1 = a label
  outside the set."""
  gold = np.asarray(label_ids, dtype=np.int64).reshape(-1)
  logits = np.asarray(logits, dtype=np.float64)
  if logits.ndim != 2:
    raise ValueError(f"logits: expected shape [N, L], got {list(logits.shape)}")
  n, num_labels = logits.shape
  _check_ids("label_ids", gold, n, num_labels)
  if n == 0 or num_labels == 0:
    return dict.fromkeys(("accuracy", *top_k_keys(num_labels), "macro_f1", "micro_f1"), 0.0)
  pred = logits.argmax(axis=1)
  ranks = _ranks(logits, gold)
  correct = pred == gold
  known = gold >= 0
  tp = np.bincount(gold[correct], minlength=num_labels)
  fp = np.bincount(pred[~correct], minlength=num_labels)
  fn = np.bincount(gold[known & ~correct], minlength=num_labels)
  micro, macro = _f1(tp, fp, fn)
  return {
      "accuracy": float(correct.mean()),
      **{f"top{k}": float((ranks < k).mean()) for k in TOP_K if k < num_labels},
      "macro_f1": macro,
      "micro_f1": micro,
  }


def pair_scores(label_ids: np.ndarray, logits: np.ndarray) -> dict[str, float]:
  """Sentence-pair classification (NLI): accuracy and macro F1, as in `single_label_scores`."""
  scores = single_label_scores(label_ids, logits)
  return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}


def multi_label_scores(targets: np.ndarray, probs: np.ndarray, threshold: float = 0.5,
                       main_label_ids: np.ndarray | None = None) -> dict[str, float]:
  """Multi-label (CPC) scores of [N, L] 0/1 targets against [N, L] probabilities.

  micro_f1 / macro_f1: of the labels with prob >= threshold. p_at_1 / p_at_3: gold labels among the k best
  ranked, divided by k, averaged over all examples (a row without gold labels scores 0). accuracy: subset
  accuracy, the thresholded set equals the gold set (an empty gold row with no prediction is right). top3 / top5
  (only where k < L): the main label (`main_label_ids`, the first gold label of each example, -1 when unknown) is
  among the k best; without `main_label_ids`, any gold label among the k best counts.
  """
  gold = np.asarray(targets) > 0
  probs = np.asarray(probs, dtype=np.float64)
  if gold.ndim != 2 or probs.shape != gold.shape:
    raise ValueError(f"probs {list(probs.shape)} and targets {list(gold.shape)} differ in shape")
  n, num_labels = gold.shape
  keys = ("micro_f1", "macro_f1", "p_at_1", "p_at_3", "accuracy", *top_k_keys(num_labels))
  if n == 0 or num_labels == 0:
    return dict.fromkeys(keys, 0.0)
  pred = probs >= threshold
  tp = (pred & gold).sum(axis=0)
  fp = (pred & ~gold).sum(axis=0)
  fn = (~pred & gold).sum(axis=0)
  micro, macro = _f1(tp, fp, fn)
  scores = {"micro_f1": micro, "macro_f1": macro}
  for k in (1, 3):
    best = _top_k(probs, k)
    scores[f"p_at_{k}"] = float(np.take_along_axis(gold, best, axis=1).sum(axis=1).mean() / best.shape[1])
  scores["accuracy"] = float((pred == gold).all(axis=1).mean())
  if main_label_ids is not None:
    main = np.asarray(main_label_ids, dtype=np.int64).reshape(-1)
    _check_ids("main_label_ids", main, n, num_labels)
    ranks = _ranks(probs, main)
    for k in (k for k in TOP_K if k < num_labels):
      scores[f"top{k}"] = float((ranks < k).mean())
  else:
    for k in (k for k in TOP_K if k < num_labels):
      scores[f"top{k}"] = float(np.take_along_axis(gold, _top_k(probs, k), axis=1).any(axis=1).mean())
  return scores


def multi_hot(label_id_lists: Sequence[Sequence[int]], num_labels: int) -> np.ndarray:
  """[N, num_labels] int32 0/1 targets from per-example label ids; -1 (unknown label) sets no column."""
  out = np.zeros((len(label_id_lists), num_labels), dtype=np.int32)
  for row, ids in enumerate(label_id_lists):
    for i in ids:
      if i >= 0:
        out[row, i] = 1
  return out
