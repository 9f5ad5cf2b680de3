"""Start/end logits of every window -> each question's n-best answers, cut out of the ORIGINAL context.

A candidate answer is a (start, end) token pair inside the context with end >= start, at most
`max_answer_length` tokens long, whose start token has its maximum context in that window; its score is
start_logit + end_logit. The text is `context[start_char:end_char]` through the tokens' character offsets,
so it is a substring of the context with its original spacing (the token stream has lost the spaces).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from korpat_jax.qa.features import QAFeature
from korpat_jax.qa.squad import QAExample


def best_answers(examples: Sequence[QAExample],
                 features_with_logits: Iterable[tuple[QAFeature, np.ndarray, np.ndarray]], *,
                 n_best_size: int = 20, max_answer_length: int = 30) -> tuple[dict[str, str], dict[str, list[dict]]]:
  """(predictions {id: text}, nbest {id: [{"text", "probability", "start_logit", "end_logit", "start", "end"}]}).

  Features may come in any order. Only one feature is held at a time: each is reduced to its window's best
  `n_best_size` distinct answer texts at once, merged into its question's list (which keeps the best score
  per text, as run_squad's n-best does). Logit arrays may be padded beyond the feature's length. Every
  example gets an entry; "" and an empty list when no window offered a valid span."""
  if n_best_size < 1 or max_answer_length < 1:
    raise ValueError(f"n_best_size={n_best_size} and max_answer_length={max_answer_length} must be >= 1")
  pending: dict[int, dict[str, dict]] = {}
  for feature, start_logits, end_logits in features_with_logits:
    index = feature.example_index
    if not 0 <= index < len(examples):
      raise ValueError(f"feature example_index {index} is outside the {len(examples)} examples")
    found = _window_candidates(examples[index].context, feature, start_logits, end_logits, n_best_size,
                               max_answer_length)
    merged = pending.setdefault(index, {})
    for cand in found:
      old = merged.get(cand["text"])
      if old is None or cand["score"] > old["score"]:
        merged[cand["text"]] = cand
    if len(merged) > n_best_size:
      pending[index] = dict(sorted(merged.items(), key=lambda kv: -kv[1]["score"])[:n_best_size])
  predictions: dict[str, str] = {}
  nbest: dict[str, list[dict]] = {}
  for index, example in enumerate(examples):
    ranked = sorted(pending.pop(index, {}).values(), key=lambda c: -c["score"])[:n_best_size]
    nbest[example.id] = _with_probabilities(ranked)
    predictions[example.id] = next((c["text"] for c in ranked if c["text"].strip()), "")
  return predictions, nbest


def _window_candidates(context: str, feature: QAFeature, start_logits, end_logits, n_best_size: int,
                       max_answer_length: int) -> list[dict]:
  """This window's best `n_best_size` distinct-text candidates, best first."""
  n = len(feature.input_ids)
  start_logits = np.asarray(start_logits, dtype=np.float64).reshape(-1)
  end_logits = np.asarray(end_logits, dtype=np.float64).reshape(-1)
  if start_logits.shape[0] < n or end_logits.shape[0] < n:
    raise ValueError(f"example {feature.example_index} window {feature.window_index}: logits of length "
                     f"{start_logits.shape[0]}/{end_logits.shape[0]} for {n} input positions")
  offsets = feature.context_offsets
  in_context = np.array([o is not None for o in offsets], dtype=bool)
  can_start = in_context & np.asarray(feature.token_is_max_context, dtype=bool)
  starts = _top(np.flatnonzero(can_start), start_logits, n_best_size)
  ends = _top(np.flatnonzero(in_context), end_logits, n_best_size)
  if not starts.size or not ends.size:
    return []
  scores = start_logits[starts][:, None] + end_logits[ends][None, :]
  length = ends[None, :] - starts[:, None] + 1
  valid = (length >= 1) & (length <= max_answer_length)
  rows, cols = np.nonzero(valid)
  order = np.argsort(-scores[rows, cols], kind="stable")
  out: list[dict] = []
  seen: set[str] = set()
  for k in order:
    s, e = int(starts[rows[k]]), int(ends[cols[k]])
    start_char, end_char = offsets[s][0], offsets[e][1]
    text = context[start_char:end_char]
    if text in seen:
      continue
    seen.add(text)
    out.append({"text": text, "score": float(start_logits[s] + end_logits[e]),
                "start_logit": float(start_logits[s]), "end_logit": float(end_logits[e]),
                "start": start_char, "end": end_char})
    if len(out) >= n_best_size:
      break
  return out


def _top(positions: np.ndarray, logits: np.ndarray, k: int) -> np.ndarray:
  """The k positions with the highest logits, best first.

  run_squad takes the top k over all positions and then drops invalid ones; picking among the valid
  positions only gives the same best answer and never an n-best emptied by question or padding logits."""
  if positions.size <= k:
    return positions[np.argsort(-logits[positions], kind="stable")]
  top = positions[np.argpartition(-logits[positions], k - 1)[:k]]
  return top[np.argsort(-logits[top], kind="stable")]


def _with_probabilities(ranked: list[dict]) -> list[dict]:
  if not ranked:
    return []
  scores = np.array([c["score"] for c in ranked])
  probs = np.exp(scores - scores.max())
  probs /= probs.sum()
  return [{"text": c["text"], "probability": float(p), "start_logit": c["start_logit"],
           "end_logit": c["end_logit"], "start": c["start"], "end": c["end"]} for c, p in zip(ranked, probs)]
