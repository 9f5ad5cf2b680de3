"""Read SQuAD v1.1 / KorQuAD 1.0 JSON: `data[].paragraphs[].{context, qas[].{id, question, answers[]}}`.

Every question becomes one `QAExample`. Bad questions and answers are counted in the `DataReport` (with
`file: data[i].paragraphs[j].qas[k]` and the question id; a skipped question is kept there as a skipped row, so
that the prediction files name it) instead of stopping the file; only a file that is
not JSON, or not SQuAD-shaped at the top, is a whole-file `KorpatError`.

An answer is checked against its context: the text must occur at `answer_start`. Whitespace may differ (a
gold "a b" matches "a  b" or a line break in the context), and a text found within `NEARBY` characters of the given
offset has its offset fixed. An answer that still does not match keeps its place in `answers`
(gold answers are scored as texts) but has no character span, so it gives no training label.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

from korpat_jax.errors import KorpatError
from korpat_jax.finetune.report import DataReport

NEARBY = 10   # characters either side of answer_start searched for a misplaced answer text

Span = tuple[int, int]


@dataclasses.dataclass
class QAExample:
  """One question over one context.

  `answers` are the gold answers as given ([{"text", "answer_start"}], offsets fixed where they were off),
  possibly empty in prediction files. `spans` holds, per answer, its (start, end) character span in the
  context, or None when the text could not be located (that answer is scored but never used as a label).
  An empty `spans` (a hand-built example) means every answer lies at answer_start + len(text)."""

  id: str
  question: str
  context: str
  answers: list[dict]
  where: str
  spans: list[Span | None] = dataclasses.field(default_factory=list)

  def answer_spans(self) -> list[Span | None]:
    if self.spans:
      return list(self.spans)
    return [(a["answer_start"], a["answer_start"] + len(a["text"])) for a in self.answers]

  def train_span(self) -> Span | None:
    """The character span of the first answer that lies in the context (the training label), or None."""
    for span in self.answer_spans():
      if span is not None:
        return span
    return None


def read_squad(path: str | os.PathLike, report: DataReport, labelled: bool = True) -> list[QAExample]:
  """The questions of one SQuAD-format file.

  labelled=True (a training file): a question needs an answer whose text lies in the context; one without
  answers or with no locatable answer is skipped. labelled=False (evaluation or prediction): questions are
  kept whatever their answers; answer problems are only counted (under `report.adjusted`)."""
  try:
    with open(path, encoding="utf-8-sig") as f:
      text = f.read()
  except FileNotFoundError:
    raise KorpatError(f"{path}: no such file") from None
  except UnicodeDecodeError as e:
    raise KorpatError(f"{path}: not UTF-8 text (byte {e.start})") from None
  try:
    dataset = json.loads(text)
  except json.JSONDecodeError as e:
    raise KorpatError(f"{path}:{e.lineno}:{e.colno}: invalid JSON ({e.msg})") from None
  if not isinstance(dataset, dict):
    raise KorpatError(f"{path}: not SQuAD-format JSON (top level is {type(dataset).__name__}, not an object)")
  return examples_from_json(dataset, report, labelled=labelled, name=str(path))


def examples_from_json(dataset: Any, report: DataReport, labelled: bool = True,
                       name: str = "<json>") -> list[QAExample]:
  """`read_squad` on an already-parsed dataset (the whole JSON object, or its `data` list)."""
  if isinstance(dataset, dict):
    if not isinstance(dataset.get("data"), list):
      raise KorpatError(f"{name}: not SQuAD-format JSON (no top-level \"data\" list)")
    articles = dataset["data"]
  elif isinstance(dataset, list):
    articles = dataset
  else:
    raise KorpatError(f"{name}: not SQuAD-format JSON (top level is {type(dataset).__name__})")
  examples: list[QAExample] = []
  seen: set[str] = set()
  for i, article in enumerate(articles):
    paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
    if not isinstance(paragraphs, list):
      report.skip("malformed", f"{name}: data[{i}]", "no \"paragraphs\" list")
      continue
    for j, paragraph in enumerate(paragraphs):
      at = f"{name}: data[{i}].paragraphs[{j}]"
      qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
      if not isinstance(qas, list):
        report.skip("malformed", at, "no \"qas\" list")
        continue
      context = paragraph.get("context")
      for k, qa in enumerate(qas):
        report.read += 1
        example = _example(qa, context, f"{at}.qas[{k}]", report, labelled, seen)
        if example is not None:
          seen.add(example.id)
          examples.append(example)
          report.used += 1
        else:
          report.row_skipped(len(examples), _question_id(qa))
  return examples


def _question_id(qa: Any) -> str | None:
  """A question's id as the file writes it, or None when it has none."""
  qid = qa.get("id") if isinstance(qa, dict) else None
  if isinstance(qid, int) and not isinstance(qid, bool):
    return str(qid)
  return qid if isinstance(qid, str) and qid else None


def _example(qa: Any, context: Any, where: str, report: DataReport, labelled: bool,
             seen: set[str]) -> QAExample | None:
  if not isinstance(qa, dict):
    report.skip("malformed", where, f"a question must be an object, not {type(qa).__name__}")
    return None
  qid, question = qa.get("id"), qa.get("question")
  if isinstance(qid, int) and not isinstance(qid, bool):
    qid = str(qid)
  if not isinstance(qid, str) or not qid:
    report.skip("malformed", where, "no question \"id\"")
    return None
  if not isinstance(question, str) or not question.strip():
    report.skip("empty_question", where, f"id {qid}")
    return None
  if qid in seen:
    report.skip("duplicate_id", where, f"id {qid} appears twice (predictions are keyed by id)")
    return None
  if not isinstance(context, str) or not context.strip():
    report.skip("empty_context", where, f"id {qid}")
    return None
  raw_answers = qa.get("answers", [])
  if not isinstance(raw_answers, list):
    report.skip("malformed", where, f"id {qid}: \"answers\" must be a list")
    return None
  if labelled and not raw_answers:
    report.skip("no_answer", where, f"id {qid}")
    return None
  answers: list[dict] = []
  spans: list[Span | None] = []
  problems: list[str] = []
  for n, answer in enumerate(raw_answers):
    checked = _check_answer(answer, context, f"{where}.answers[{n}]", qid, report)
    if isinstance(checked, str):
      problems.append(checked)
      if checked == "malformed_answer":
        continue   # no text to score either
      answers.append({"text": answer["text"], "answer_start": answer.get("answer_start")})
      spans.append(None)
    else:
      fixed_start, span = checked
      answers.append({"text": answer["text"], "answer_start": fixed_start})
      spans.append(span)
  if labelled and not any(s is not None for s in spans):
    report.skip(problems[0] if problems else "no_answer", where, f"id {qid}: no answer lies in the context")
    return None
  for reason in problems:
    kept = "dropped" if reason == "malformed_answer" else "kept for scoring, not used as a label"
    report.adjust(reason, where, f"id {qid}: answer {kept}")
  return QAExample(qid, question, context, answers, where, spans)


def _check_answer(answer: Any, context: str, where: str, qid: str,
                  report: DataReport) -> tuple[int, Span] | str:
  """(answer_start, character span) of a usable answer, else the reason it is not usable."""
  if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) or not answer["text"].strip():
    return "malformed_answer"
  text, start = answer["text"], answer.get("answer_start")
  if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < len(context):
    return "answer_start_out_of_range"
  if context.startswith(text, start):
    return start, (start, start + len(text))
  pattern = _loose_pattern(text)
  m = pattern.match(context, start)
  if m:
    report.adjust("answer_whitespace_differs", where, f"id {qid}: matched with whitespace normalised")
    return start, m.span()
  for distance in range(1, NEARBY + 1):
    for at in (start - distance, start + distance):
      m = pattern.match(context, at) if 0 <= at < len(context) else None
      if m:
        report.adjust("answer_start_fixed", where, f"id {qid}: answer_start {start} -> {at}")
        return at, m.span()
  return "answer_text_mismatch"


def _loose_pattern(text: str) -> re.Pattern:
  """The answer text with any run of whitespace matching any other (and leading/trailing space dropped)."""
  return re.compile(r"\s+".join(re.escape(word) for word in text.split()))
