"""NER scores: entity-level precision / recall / F1 (seqeval's strict IOB2 mode and conlleval's default rule) and
KLUE's character-level macro F1. Pure Python, no seqeval / sklearn; fractions in [0, 1].

Entities are (type, start, end) with `end` exclusive, in unit positions of one sentence.
  strict   an entity starts only at B-T and continues over I-T of the same type; an I-T that does not continue
           an entity of type T starts nothing and ends the current one (seqeval mode="strict", scheme=IOB2).
  default  conlleval / seqeval's default: B-T always starts an entity; an I-T that does not continue an entity
           of type T starts a new one; O ends the current one.
"""

from __future__ import annotations

from typing import Sequence

from korpat_jax.ner.tags import split_tag

MODES = ("strict", "default")
Entity = tuple[str, int, int]


def extract_entities(tags: Sequence[str], mode: str) -> set[Entity]:
  """The entities of one sentence's normal-form tags, as {(type, start, end)}."""
  if mode not in MODES:
    raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
  strict = mode == "strict"
  found: set[Entity] = set()
  kind: str | None = None   # type of the open entity
  start = 0
  for i, tag in enumerate(tags):
    prefix, tag_kind = split_tag(tag)
    if prefix == "I" and tag_kind == kind:
      continue                                    # continues the open entity
    if kind is not None:
      found.add((kind, start, i))
    kind = None
    if prefix == "B" or (prefix == "I" and not strict):
      kind, start = tag_kind, i
  if kind is not None:
    found.add((kind, start, len(tags)))
  return found


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
  precision = tp / n_pred if n_pred else 0.0
  recall = tp / n_gold if n_gold else 0.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return precision, recall, f1


def _check_lengths(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
  if len(gold) != len(pred):
    raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
  for i, (g, p) in enumerate(zip(gold, pred)):
    if len(g) != len(p):
      raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str) -> dict:
  """Micro precision / recall / F1 over all entities of all sentences, and the same per type with `support`
  (the number of gold entities of the type). 0 where undefined (no predictions, no gold)."""
  _check_lengths(gold, pred)
  tp: dict[str, int] = {}
  n_gold: dict[str, int] = {}
  n_pred: dict[str, int] = {}
  for g_tags, p_tags in zip(gold, pred):
    g = extract_entities(g_tags, mode)
    p = extract_entities(p_tags, mode)
    for kind, _, _ in g:
      n_gold[kind] = n_gold.get(kind, 0) + 1
    for kind, _, _ in p:
      n_pred[kind] = n_pred.get(kind, 0) + 1
    for kind, _, _ in g & p:
      tp[kind] = tp.get(kind, 0) + 1
  precision, recall, f1 = _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
  per_type = {}
  for kind in sorted(set(n_gold) | set(n_pred)):
    p, r, f = _prf(tp.get(kind, 0), n_pred.get(kind, 0), n_gold.get(kind, 0))
    per_type[kind] = {"precision": p, "recall": r, "f1": f, "support": n_gold.get(kind, 0)}
  return {"precision": precision, "recall": recall, "f1": f1, "per_type": per_type}


def char_macro_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: Sequence[str],
                  *, texts: Sequence[str] | None = None) -> float:
  """KLUE-NER's character-level macro F1, as a fraction.

  KLUE-baseline (klue_baseline/metrics/functional.py, `klue_ner_char_macro_f1`) pools the characters of all
  sentences and calls sklearn `f1_score(trues, preds, labels=range(len(label_list)), average="macro",
  zero_division=True)`: the docstring says "except O tag" but the label list passed keeps "O", so O is one of
  the averaged classes; and with zero_division=1 a label that is neither in the gold nor predicted scores 1.0.
  Per label F1 = 2TP / (2TP + FP + FN). Its characters are the sentence's non-space characters
  (klue_baseline/data/klue_ner.py drops the " " lines) plus one [CLS] and one [SEP] position scored as gold O;
  those two are not added here. Pass `texts` (one per sentence, aligned with the tags) to drop the spaces the
  same way; without it every position counts.
  """
  _check_lengths(gold, pred)
  if texts is not None and len(texts) != len(gold):
    raise ValueError(f"{len(texts)} texts for {len(gold)} sentences")
  index = {label: i for i, label in enumerate(labels)}
  n = len(index)
  tp, fp, fn = [0] * n, [0] * n, [0] * n
  for s, (g_tags, p_tags) in enumerate(zip(gold, pred)):
    text = texts[s] if texts is not None else None
    if text is not None and len(text) != len(g_tags):
      raise ValueError(f"sentence {s}: {len(text)} characters but {len(g_tags)} tags")
    for j, (g, p) in enumerate(zip(g_tags, p_tags)):
      if text is not None and text[j] == " ":
        continue
      gi, pi = index.get(g), index.get(p)
      if gi is not None and gi == pi:
        tp[gi] += 1
        continue
      if gi is not None:
        fn[gi] += 1
      if pi is not None:
        fp[pi] += 1
  if not n:
    return 0.0
  scores = [2 * t / (2 * t + a + b) if t + a + b else 1.0 for t, a, b in zip(tp, fp, fn)]
  return sum(scores) / n


def ner_scores(gold_units: Sequence[Sequence[str]], pred_units: Sequence[Sequence[str]],
               gold_chars: Sequence[Sequence[str]], pred_chars: Sequence[Sequence[str]], labels: Sequence[str],
               *, texts: Sequence[str] | None = None) -> dict:
  """The evaluation dict: f1 / precision / recall (strict, micro over entities of the units), f1_default
  (conlleval's rule), char_macro_f1 (KLUE's, over the per-character tags; `texts` drops spaces as KLUE does)
  and per_type (strict)."""
  strict = entity_scores(gold_units, pred_units, "strict")
  default = entity_scores(gold_units, pred_units, "default")
  return {
      "f1": strict["f1"],
      "precision": strict["precision"],
      "recall": strict["recall"],
      "f1_default": default["f1"],
      "char_macro_f1": char_macro_f1(gold_chars, pred_chars, labels, texts=texts),
      "per_type": strict["per_type"],
  }
