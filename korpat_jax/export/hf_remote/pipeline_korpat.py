"""korpat-jax's pipelines for raw Korean text, answering as `korpat-jax predict` answers.

KorpatQuestionAnsweringPipeline: transformers 5 removed its "question-answering" pipeline; `korpat-jax export`
registers this one for question answering models (config.json `custom_pipelines`), so that

    qa = pipeline("question-answering", model=DIR, trust_remote_code=True)
    qa(question="...", context="...")  # {"answer", "start", "end", "score"}; start/end index the raw context

works. Features and decoding are korpat-jax's (korpat_jax/qa/features.py, postprocess.py): `[CLS] question [SEP]
window [SEP]` with the question cut to `max_question_len` tokens, context windows `doc_stride` tokens APART (a step,
as google's run_squad; HF's stride is an overlap), and the answer is the span of the highest start + end logit
whose start token has its most context in that window, at most `max_answer_len` tokens long, cut out of the
context through the tokenizer's offsets. The defaults are the run's (config.json `korpat_question_answering`).
`score` is the answer's softmax probability among the n-best distinct answers, as nbest_predictions.json has it.

KorpatTokenClassificationPipeline: registered for token classification (NER) models, replacing transformers' own,
so that `pipeline("token-classification", model=DIR, trust_remote_code=True, aggregation_strategy="simple")` gives
predict's entities (korpat_jax/tasks/token_classification.py) as character spans of the raw text. (See its
docstring.)

Needs transformers, torch, numpy and the tokenizer shipped beside it (tokenization_korpat.py).
What it shares with korpat_jax (QA windows and span decoding; NER windows and tag decoding) is copied, not imported,
since this file runs where korpat_jax is not installed; tests/export/test_export_pipelines.py keeps the two equal.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline
from transformers.pipelines.token_classification import AggregationStrategy, TokenClassificationPipeline

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


# -- token classification (NER) --------------------------------------------------------------------------------------

NER_WINDOW_STRIDE = -1  # tokens between window starts when config.json gives none (-1: half a window)


def resolve_stride(stride: int, window: int) -> int:
  """Tokens between window starts, at most the window (-1: half of it), as the run's data.window_stride."""
  return max(1, window // 2) if stride < 0 else max(1, min(stride, window))


def token_windows(num_tokens: int, max_tokens: int, stride: int) -> list[tuple[int, int]]:
  """[start, end) windows of at most `max_tokens` tokens, starts `stride` apart, the last ending at the last token."""
  if num_tokens <= max_tokens:
    return [(0, num_tokens)]
  last = num_tokens - max_tokens
  return [(s, s + max_tokens) for s in range(0, last, stride)] + [(last, num_tokens)]


def best_windows(spans: Sequence[tuple[int, int]]) -> list[int]:
  """Per token, the window where it is most central (the largest min(pos - start, end - 1 - pos); the first on a
  tie)."""
  num_tokens = max((end for _, end in spans), default=0)
  best, margin = [0] * num_tokens, [-1] * num_tokens
  for w, (start, end) in enumerate(spans):
    for pos in range(start, end):
      m = min(pos - start, end - 1 - pos)
      if m > margin[pos]:
        best[pos], margin[pos] = w, m
  return best


def char_tags(text: str, offsets: Sequence[tuple[int, int]], token_tags: Sequence[str]) -> list[str]:
  """Per-character tags: a token's first character takes its tag, its other characters continue it (I-X, or O),
  and the characters between an X token and a following I-X token (spaces) continue the entity; O elsewhere."""
  chars = ["O"] * len(text)
  last_end, last_kind = 0, None
  for (start, end), tag in sorted(((o, t) for o, t in zip(offsets, token_tags) if o[0] < o[1] and o[0] < len(text)),
                                  key=lambda item: item[0][0]):
    kind = None if tag == "O" else tag[2:]
    if tag.startswith("I-") and kind == last_kind:
      chars[last_end:start] = [tag] * max(0, start - last_end)
    end = min(end, len(text))
    chars[start:end] = [tag] + ["O" if kind is None else f"I-{kind}"] * (end - start - 1)
    last_end, last_kind = max(last_end, end), kind
  return chars


def strict_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
  """(type, start, end) of the entities of IOB2 tags, strict rule: an entity starts at B-X only and goes on over
  I-X; an I-X that continues no X starts nothing (and ends the open entity)."""
  found, kind, start = [], None, 0
  for i, tag in enumerate([*tags, "O"]):
    if tag.startswith("I-") and tag[2:] == kind:
      continue
    if kind is not None:
      found.append((kind, start, i))
    kind, start = (tag[2:], i) if tag.startswith("B-") else (None, i)
  return found


@dataclasses.dataclass(frozen=True)
class _Sentence:
  """One input, shared by its windows (a plain object, so that the pipeline's batching passes it through)."""
  text: str
  ids: list[int]
  offsets: list[tuple[int, int]]


class KorpatTokenClassificationPipeline(TokenClassificationPipeline):
  """Raw text -> the entities `korpat-jax predict` finds, as character spans of the text.

  The text is tokenized whole (no truncation) and covered by windows of `max_seq_len` - 2 tokens whose starts are
  `window_stride` tokens apart (-1: half a window); the model runs on the windows (`batch_size` windows a call,
  8 by default), and each token takes its tag (the arg max) from the window where it is most central. With
  aggregation_strategy="simple", a token's first character takes its tag and its other characters continue it, and
  the entities are the character tags read with the strict IOB2 rule, as predict reads raw text (each character a
  unit): [{"entity_group", "score", "word", "start", "end"}], `word` the raw text[start:end], `score` the mean over
  the entity's tokens of their tag's softmax probability. With "none" (the default, as transformers'), one dict a
  token: {"entity", "score", "index" (the token's position after [CLS]), "word", "start", "end"}; tokens whose tag is
  in `ignore_labels` (["O"]) are left out. "first", "average" and "max" are refused: they are not predict's reading.
  The defaults of `max_seq_len` and `window_stride` are the run's (config.json `korpat_token_classification`).
  """

  def __init__(self, *args, **kwargs):
    if kwargs.get("batch_size") is None:
      kwargs["batch_size"] = 8
    super().__init__(*args, **kwargs)

  def _settings(self) -> dict[str, int]:
    saved = getattr(self.model.config, "korpat_token_classification", None) or {}
    return {"max_seq_length": int(saved.get("max_seq_length", self.tokenizer.model_max_length)),
            "window_stride": int(saved.get("window_stride", NER_WINDOW_STRIDE))}

  def _sanitize_parameters(self, aggregation_strategy=None, ignore_labels=None, max_seq_len: Optional[int] = None,
                           window_stride: Optional[int] = None, is_split_into_words: bool = False,
                           offset_mapping=None, stride=None, delimiter=None):
    """Only what the caller set (so __init__'s values survive); the run's window settings are filled in where used."""
    if is_split_into_words or offset_mapping is not None:
      raise ValueError("token-classification: this pipeline takes raw text (no is_split_into_words, offset_mapping)")
    if stride is not None:
      raise ValueError("token-classification: windows are set by window_stride (tokens between window starts), "
                       "not stride")
    preprocess = {k: v for k, v in (("max_seq_len", max_seq_len), ("window_stride", window_stride)) if v is not None}
    postprocess = {} if ignore_labels is None else {"ignore_labels": ignore_labels}
    if aggregation_strategy is not None:
      strategy = AggregationStrategy(aggregation_strategy.lower() if isinstance(aggregation_strategy, str)
                                     else aggregation_strategy)
      if strategy not in (AggregationStrategy.NONE, AggregationStrategy.SIMPLE):
        raise ValueError(f'token-classification: aggregation_strategy "{strategy.value}" is not supported; "simple" '
                         'gives the entities of `korpat-jax predict`, "none" the tag of each token')
      postprocess["aggregation_strategy"] = strategy
    return preprocess, {}, postprocess

  def preprocess(self, sentence: str, max_seq_len: Optional[int] = None, window_stride: Optional[int] = None
                 ) -> Iterator[dict[str, Any]]:
    if not isinstance(sentence, str):
      raise ValueError(f"token-classification: expected a string, not {type(sentence).__name__}")
    settings = self._settings()
    window = (max_seq_len or settings["max_seq_length"]) - 2
    if window < 1:
      raise ValueError(f"max_seq_len={window + 2} leaves no room for tokens")
    stride = resolve_stride(settings["window_stride"] if window_stride is None else window_stride, window)
    tok = self.tokenizer
    enc = tok(sentence, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    shared = _Sentence(sentence, list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]])
    spans = token_windows(len(shared.ids), window, stride)
    for w, (start, end) in enumerate(spans):
      ids = torch.tensor([[tok.cls_token_id, *shared.ids[start:end], tok.sep_token_id]])
      yield {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": torch.ones_like(ids),
             "span": (start, end), "sentence": shared, "is_last": w == len(spans) - 1}

  def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
    meta = {k: model_inputs.pop(k) for k in ("span", "sentence", "is_last")}
    return {"logits": self.model(**model_inputs).logits, **meta}

  def postprocess(self, all_outputs: list[dict[str, Any]], aggregation_strategy=AggregationStrategy.NONE,
                  ignore_labels=None) -> list[dict[str, Any]]:
    ignore_labels = ["O"] if ignore_labels is None else ignore_labels
    sentence = all_outputs[0]["sentence"]
    spans = [tuple(out["span"]) for out in all_outputs]
    by_window = [out["logits"][0].float().numpy() for out in all_outputs]  # [CLS] tokens [SEP] (padding)
    logits = np.zeros((len(sentence.ids), self.model.config.num_labels), np.float32)
    for pos, w in enumerate(best_windows(spans)):
      logits[pos] = by_window[w][1 + pos - spans[w][0]]
    best = logits.argmax(-1)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    score = probs.max(-1) / probs.sum(-1)
    tags = [self.model.config.id2label[int(i)] for i in best]
    if aggregation_strategy == AggregationStrategy.NONE:
      words = self.tokenizer.convert_ids_to_tokens(sentence.ids)
      return [{"entity": tag, "score": float(score[i]), "index": i + 1, "word": words[i],
               "start": sentence.offsets[i][0], "end": sentence.offsets[i][1]}
              for i, tag in enumerate(tags) if tag not in ignore_labels]
    starts = np.array([s if s < e else -1 for s, e in sentence.offsets], dtype=np.int64)
    entities = []
    for kind, start, end in strict_entities(char_tags(sentence.text, sentence.offsets, tags)):
      inside = (starts >= start) & (starts < end)
      entities.append({"entity_group": kind, "score": float(score[inside].mean()), "word": sentence.text[start:end],
                       "start": start, "end": end})
    return [e for e in entities if e["entity_group"] not in ignore_labels]
