"""The official KorQuAD 1.0 metric (its `evaluate-v1.0.py`, itself adapted from SQuAD v1.1's), re-implemented.

Normalisation, in the script's order: the characters ' " 《 》 < > 〈 〉 ( ) ‘ ’ are REPLACED WITH A SPACE, then
lowercase, then ASCII `string.punctuation` is deleted (no space), then whitespace runs collapse to one space.
There is no English article removal. So "가(나)" normalises to "가 나" and does not exact-match "가나",
while "가-나" becomes "가나". EM compares the normalised strings. F1 is over CHARACTERS: the normalised string
split on whitespace and flattened to its characters (spaces do not count), with multiset overlap.
Both are maxed over the gold answers, summed over questions, divided by the number of questions, times 100.
A question missing from the predictions counts in that number with score 0 (the script prints
"Unanswered question ... will receive score 0."; here it is logged once with a count).
"""

from __future__ import annotations

import collections
import logging
import string
from typing import Any, Callable, Mapping, Sequence

log = logging.getLogger("korpat_jax")

_TO_SPACE = str.maketrans({c: " " for c in "'\"《》<>〈〉()‘’"})
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
  return " ".join(s.translate(_TO_SPACE).lower().translate(_PUNCTUATION).split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
  return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
  """Character-level F1 of the normalised strings, whitespace excluded; 0 when nothing overlaps (so an
  empty prediction scores 0 even against an empty gold, as in the script)."""
  pred = normalize_answer(prediction).replace(" ", "")
  gold = normalize_answer(ground_truth).replace(" ", "")
  same = sum((collections.Counter(pred) & collections.Counter(gold)).values())
  if same == 0:
    return 0.0
  precision, recall = same / len(pred), same / len(gold)
  return 2 * precision * recall / (precision + recall)


def max_over_ground_truths(metric: Callable[[str, str], float], prediction: str, ground_truths: list[str]) -> float:
  return max(metric(prediction, gold) for gold in ground_truths)


def evaluate(dataset_json: Mapping[str, Any] | list, predictions: Mapping[str, str]) -> dict[str, float]:
  """{"exact_match", "f1"} (0-100) of `predictions` {question id: text} on a SQuAD-format dataset (the whole
  JSON object, or its `data` list).

  Like the official script, every question of the dataset counts; one without a prediction scores 0. A
  question with no gold answers (where the script would crash on max of nothing) is left out and logged."""
  articles = dataset_json["data"] if isinstance(dataset_json, Mapping) else dataset_json
  questions = [{"id": qa["id"], "answers": [{"text": a["text"]} for a in qa.get("answers", [])]}
               for article in articles for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
  return score_questions(questions, predictions)


def score_questions(questions: Sequence[Mapping[str, Any]], predictions: Mapping[str, str]) -> dict[str, float]:
  """`evaluate` on a dataset's questions as `gold_questions` gives them ({"id", "answers": [{"text"}]})."""
  total = 0
  exact = f1 = 0.0
  missing: list[str] = []
  no_gold: list[str] = []
  for qa in questions:
    golds = [a["text"] for a in qa["answers"]]
    if not golds:
      no_gold.append(str(qa["id"]))
      continue
    total += 1
    if qa["id"] not in predictions:
      missing.append(str(qa["id"]))
      continue
    prediction = predictions[qa["id"]]
    exact += max_over_ground_truths(exact_match_score, prediction, golds)
    f1 += max_over_ground_truths(f1_score, prediction, golds)
  if missing:
    log.warning("%d unanswered questions receive score 0 (e.g. %s)", len(missing), ", ".join(missing[:3]))
  if no_gold:
    log.warning("%d questions without gold answers are not scored (e.g. %s)", len(no_gold),
                ", ".join(no_gold[:3]))
  if not total:
    return {"exact_match": 0.0, "f1": 0.0}
  return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def gold_questions(dataset_json: Mapping[str, Any] | list) -> list[dict[str, Any]]:
  """Every question of a SQuAD-format dataset as {"id", "answers": [{"text"}]}, in file order: all that `evaluate`
  reads, so that a run keeps its gold set with its cached features and scores it with `score_questions`.
  Parts `evaluate` could not read (not an object, no "id", an answer without text) are left out."""
  articles = dataset_json.get("data") if isinstance(dataset_json, Mapping) else dataset_json
  questions = []
  for article in _objects(articles):
    for paragraph in _objects(article.get("paragraphs")):
      for qa in _objects(paragraph.get("qas")):
        if "id" in qa:
          answers = [{"text": a["text"]} for a in _objects(qa.get("answers")) if isinstance(a.get("text"), str)]
          questions.append({"id": qa["id"], "answers": answers})
  return questions


def _objects(value: Any) -> list[Mapping[str, Any]]:
  return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
