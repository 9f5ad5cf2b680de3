"""KorpatQuestionAnsweringPipeline: extractive QA on raw Korean text, answered as `korpat-jax predict` answers.

transformers 5 removed its "question-answering" pipeline; `korpat-jax export` registers this one for question
answering models (config.json `custom_pipelines`), so that

    qa = pipeline("question-answering", model=DIR, trust_remote_code=True)
    qa(question="...", context="...")  # {"answer", "start", "end", "score"}; start/end index the raw context

works. Features and decoding are korpat-jax's (korpat_jax/qa/features.py, postprocess.py): `[CLS] question [SEP]
window [SEP]` with the question cut to `max_question_len` tokens, context windows `doc_stride` tokens APART (a step,
as google's run_squad; HF's stride is an overlap), and the answer is the span of the highest start + end logit
whose start token has its most context in that window, at most `max_answer_len` tokens long, cut out of the
context through the tokenizer's offsets. The defaults are the run's (config.json `korpat_question_answering`).
`score` is the answer's softmax probability among the n-best distinct answers, as nbest_predictions.json has it.
Needs transformers, torch, numpy and the tokenizer shipped beside it (tokenization_korpat.py).
What it shares with korpat_jax (text clean-up and chunking; QA windows and span decoding) is copied, not imported,
since this file runs where korpat_jax is not installed; tests/export/test_export_pipelines.py keeps the two equal.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline

DEFAULTS = {"max_query_length": 64, "doc_stride": 128, "max_answer_length": 30, "n_best_size": 20}


def window_starts(num_tokens: int, window_len: int, doc_stride: int) -> list[tuple[int, int]]:
  """(start, length) of each window; starts `doc_stride` apart, the last ending at the last token."""
  spans, start = [], 0
  while True:
    length = min(num_tokens - start, window_len)
    spans.append((start, length))
    if start + length >= num_tokens:
      return spans
    start += min(length, doc_stride)


def max_context_flags(spans: list[tuple[int, int]], w: int) -> list[bool]:
  """Per token of window w: is w the window giving it the most context (min(left, right) + 0.01 * length)?"""
  start, length = spans[w]
  end = start + length
  lo, hi = w, w + 1
  while lo > 0 and sum(spans[lo - 1]) > start:
    lo -= 1
  while hi < len(spans) and spans[hi][0] < end:
    hi += 1
  pos = np.arange(start, end)
  scores = np.full((hi - lo, length), -1.0)
  for row, (s, n) in enumerate(spans[lo:hi]):
    inside = (pos >= s) & (pos < s + n)
    scores[row, inside] = np.minimum(pos - s, s + n - 1 - pos)[inside] + 0.01 * n
  return (np.argmax(scores, axis=0) == w - lo).tolist()


def _top(positions: np.ndarray, logits: np.ndarray, k: int) -> np.ndarray:
  """The k positions with the highest logits, best first."""
  if positions.size <= k:
    return positions[np.argsort(-logits[positions], kind="stable")]
  top = positions[np.argpartition(-logits[positions], k - 1)[:k]]
  return top[np.argsort(-logits[top], kind="stable")]


def window_candidates(context: str, offsets: list, can_start: list[bool], start_logits: np.ndarray,
                      end_logits: np.ndarray, n_best_size: int, max_answer_length: int) -> list[dict]:
  """One window's best `n_best_size` distinct-text answers, best first (`offsets[i]` None outside the context)."""
  in_context = np.array([o is not None for o in offsets], dtype=bool)
  starts = _top(np.flatnonzero(in_context & np.asarray(can_start, dtype=bool)), start_logits, n_best_size)
  ends = _top(np.flatnonzero(in_context), end_logits, n_best_size)
  if not starts.size or not ends.size:
    return []
  scores = start_logits[starts][:, None] + end_logits[ends][None, :]
  length = ends[None, :] - starts[:, None] + 1
  rows, cols = np.nonzero((length >= 1) & (length <= max_answer_length))
  out, seen = [], set()
  for k in np.argsort(-scores[rows, cols], kind="stable"):
    s, e = int(starts[rows[k]]), int(ends[cols[k]])
    text = context[offsets[s][0]:offsets[e][1]]
    if text in seen:
      continue
    seen.add(text)
    out.append({"answer": text, "logit": float(start_logits[s] + end_logits[e]), "start": offsets[s][0],
                "end": offsets[e][1]})
    if len(out) >= n_best_size:
      break
  return out


def rank_answers(windows: list[list[dict]], n_best_size: int) -> list[dict]:
  """Merges the windows' candidates (the best score per text), best first, with softmax probabilities as "score"."""
  merged: dict[str, dict] = {}
  for found in windows:
    for cand in found:
      old = merged.get(cand["answer"])
      if old is None or cand["logit"] > old["logit"]:
        merged[cand["answer"]] = cand
  ranked = sorted(merged.values(), key=lambda c: -c["logit"])[:n_best_size]
  if not ranked:
    return []
  logits = np.array([c["logit"] for c in ranked])
  probs = np.exp(logits - logits.max())
  probs /= probs.sum()
  return [{"score": float(p), "start": int(c["start"]), "end": int(c["end"]), "answer": c["answer"]}
          for c, p in zip(ranked, probs)]


class KorpatQuestionAnsweringPipeline(ChunkPipeline):
  """`question` + `context` -> the answer span of the raw context (see the module docstring)."""

  _load_processor = False
  _load_image_processor = False
  _load_feature_extractor = False
  _load_tokenizer = True

  def _defaults(self) -> dict[str, int]:
    saved = getattr(self.model.config, "korpat_question_answering", None) or {}
    settings = {**DEFAULTS, "max_seq_length": int(self.tokenizer.model_max_length)}
    settings.update({k: int(v) for k, v in saved.items() if k in settings})
    return settings

  def __call__(self, *args, **kwargs):
    """qa(question=..., context=...), qa({"question": ..., "context": ...}) or a list of such dicts."""
    if not args and "question" in kwargs and "context" in kwargs:
      question, context = kwargs.pop("question"), kwargs.pop("context")
      if isinstance(question, (list, tuple)):
        args = ([{"question": q, "context": c} for q, c in zip(question, context)],)
      else:
        args = ({"question": question, "context": context},)
    if not args:
      raise ValueError("question-answering: pass question= and context= (or dicts with both keys)")
    return super().__call__(args[0], **kwargs)

  def _sanitize_parameters(self, top_k: Optional[int] = None, max_seq_len: Optional[int] = None,
                           max_question_len: Optional[int] = None, doc_stride: Optional[int] = None,
                           max_answer_len: Optional[int] = None, **kwargs):
    """Only what the caller set: the run's defaults are filled in where used (so __init__'s values survive)."""
    if kwargs:
      raise TypeError(f"question-answering: unexpected argument(s) {', '.join(sorted(kwargs))}")
    preprocess = {k: v for k, v in (("max_seq_len", max_seq_len), ("max_question_len", max_question_len),
                                    ("doc_stride", doc_stride)) if v is not None}
    postprocess = {k: v for k, v in (("top_k", top_k), ("max_answer_len", max_answer_len)) if v is not None}
    return preprocess, {}, postprocess

  def preprocess(self, inputs: dict[str, str], max_seq_len: Optional[int] = None,
                 max_question_len: Optional[int] = None, doc_stride: Optional[int] = None
                 ) -> Iterator[dict[str, Any]]:
    settings = self._defaults()
    max_seq_len = max_seq_len or settings["max_seq_length"]
    max_question_len = max_question_len or settings["max_query_length"]
    doc_stride = doc_stride or settings["doc_stride"]
    question, context = inputs["question"], inputs["context"]
    tok = self.tokenizer
    q_ids = tok(question, add_special_tokens=False, verbose=False)["input_ids"][:max_question_len]
    enc = tok(context, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids, offsets = enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]
    window_len = max_seq_len - len(q_ids) - 3
    if window_len < 1:
      raise ValueError(f"max_seq_len={max_seq_len} leaves no room for context after {len(q_ids)} question tokens")
    head = [tok.cls_token_id, *q_ids, tok.sep_token_id]
    spans = window_starts(len(ids), window_len, doc_stride) if ids else [(0, 0)]
    for w, (start, length) in enumerate(spans):
      input_ids = head + ids[start:start + length] + [tok.sep_token_id]
      flags = max_context_flags(spans, w) if ids else []
      yield {"input_ids": torch.tensor([input_ids]),
             "token_type_ids": torch.tensor([[0] * len(head) + [1] * (length + 1)]),
             "attention_mask": torch.ones((1, len(input_ids)), dtype=torch.long),
             "context_offsets": [None] * len(head) + offsets[start:start + length] + [None],
             "can_start": [False] * len(head) + flags + [False], "context": context, "is_last": w == len(spans) - 1}

  def _forward(self, inputs: dict[str, Any]) -> dict[str, Any]:
    meta = {k: inputs.pop(k) for k in ("context_offsets", "can_start", "context", "is_last")}
    output = self.model(**inputs)
    return {"start_logits": output.start_logits, "end_logits": output.end_logits, **meta}

  def postprocess(self, all_outputs: list[dict[str, Any]], top_k: int = 1, max_answer_len: Optional[int] = None):
    settings = self._defaults()
    max_answer_len = max_answer_len or settings["max_answer_length"]
    n_best_size = max(settings["n_best_size"], top_k)
    windows = [window_candidates(out["context"], out["context_offsets"], out["can_start"],
                                 out["start_logits"][0].float().numpy().astype(np.float64),
                                 out["end_logits"][0].float().numpy().astype(np.float64), n_best_size,
                                 max_answer_len) for out in all_outputs]
    ranked = rank_answers(windows, n_best_size)
    if top_k == 1:
      best = next((a for a in ranked if a["answer"].strip()), None)
      return best or {"score": 0.0, "start": 0, "end": 0, "answer": ""}
    return ranked[:top_k]
