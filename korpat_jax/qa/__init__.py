"""Extractive question answering (SQuAD v1.1 / KorQuAD 1.0 schema), the pure-Python side.

  from korpat_jax.qa import read_squad, iter_features, best_answers, evaluate
  examples = read_squad("dev.json", report, labelled=False)
  features = iter_features(examples, tok, max_seq_length=512, doc_stride=128, training=False, report=report)
  predictions, nbest = best_answers(examples, ((f, start_logits, end_logits) for f in features ...))
  evaluate(json.load(open("dev.json")), predictions)   # {"exact_match", "f1"}, the official KorQuAD 1.0 metric

Answers are located by character offsets into the ORIGINAL context both ways: gold spans -> token labels,
predicted tokens -> context substrings.
"""

from __future__ import annotations

from korpat_jax.qa.features import QAFeature, iter_features, window_starts
from korpat_jax.qa.metric import evaluate, exact_match_score, f1_score, gold_questions, normalize_answer, score_questions
from korpat_jax.qa.postprocess import best_answers
from korpat_jax.qa.squad import QAExample, examples_from_json, read_squad

__all__ = ["QAExample", "read_squad", "examples_from_json", "QAFeature", "iter_features", "window_starts",
           "best_answers", "evaluate", "gold_questions", "score_questions", "exact_match_score", "f1_score",
           "normalize_answer"]
