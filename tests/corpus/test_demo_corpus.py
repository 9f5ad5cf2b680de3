"""The bundled demo pretraining corpus holds no text of the demo fine-tuning eval sets.

A model pretrained on the demo corpus is fine-tuned and scored on `korpat_jax/demo/finetune/*_eval.tsv`; if the
corpus held those sentences, the scores would be measured on text the model had already seen. The train splits may
be in the corpus (unlabelled pretraining on the fine-tuning train text is legitimate); the eval splits may not.
Every eval file is read with the project's own readers (NER: `korpat_jax.ner.readers`, TSVs:
`korpat_jax.classification.readers`), so the texts are exactly what fine-tuning sees (NER: the sentence rebuilt
from its characters).

Tests that cut their own eval set from a shared data file get the same check where the file is there:
`tests/tasks/test_token_classification.py::test_klue_ner_80_20_beats_the_all_o_baseline` scores on KLUE NER dev
sentences 4000-4299 (`../shared/data/klue-ner-v1.1_dev.tsv`).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

import korpat_jax
from korpat_jax.classification.readers import read_examples
from korpat_jax.finetune.report import DataReport
from korpat_jax.ner.readers import read_ner

DEMO = Path(korpat_jax.__file__).resolve().parent / "demo"
MIN_SUBSTRING = 20   # eval texts longer than this must not occur inside a corpus line either
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def normalise(text: str) -> str:
  """NFC, whitespace runs collapsed to one space, stripped."""
  return " ".join(unicodedata.normalize("NFC", text).split())


def eval_texts(path: Path, ner: bool | None = None) -> list[tuple[str, str]]:
  """(where, text) of every text field of one eval file, read as fine-tuning reads it; a multi-sentence text
  (a CPC abstract, a KLUE premise) also gives each of its sentences. `ner`: read as a KLUE NER file (default:
  when the name starts with `ner_`)."""
  report = DataReport(path.name)
  if ner if ner is not None else path.name.startswith("ner_"):
    found = [(ex.where, ex.text) for ex in read_ner(str(path), "char_bio", report)]
  else:
    header = path.read_text(encoding="utf-8").split("\n", 1)[0].split("\t")
    fields = [f for f in header if f not in ("id", "label")]
    examples = read_examples(str(path), text_fields=fields, label_field="label", report=report)
    found = [(ex.where, text) for ex in examples for text in ex.texts]
  assert report.read > 0 and report.used == report.read and not report.skipped, (path, report.skipped)
  out = []
  for where, text in found:
    out.append((where, normalise(text)))
    pieces = [normalise(p) for p in _SENTENCE_END.split(text)]
    if len(pieces) > 1:
      out += [(where, p) for p in pieces if p]
  return out


def corpus_lines(files: list[str]) -> list[str]:
  lines = []
  for f in files:
    lines += [normalise(line) for line in Path(f).read_text(encoding="utf-8").split("\n")]
  return [line for line in lines if line]


def leaks(texts: list[tuple[str, str]], lines: list[str]) -> list[str]:
  """The eval texts that are a corpus line, or (longer than MIN_SUBSTRING) inside one."""
  as_lines = set(lines)
  joined = "\n".join(lines)   # a normalised text holds no line break: inside `joined` = inside one line
  out = []
  for where, text in texts:
    if text in as_lines:
      out.append(f"{where}: a corpus line: {text[:60]!r}")
    elif len(text) > MIN_SUBSTRING and text in joined:
      out.append(f"{where}: inside a corpus line: {text[:60]!r}")
  return out


def eval_files() -> list[Path]:
  files = sorted((DEMO / "finetune").glob("*_eval.tsv"))
  assert {f.name for f in files} >= {"ner_eval.tsv", "pair_eval.tsv", "cpc_eval.tsv"}, files
  return files


@pytest.mark.parametrize("name", ["ner_eval.tsv", "pair_eval.tsv", "cpc_eval.tsv"])
def test_demo_corpus_holds_no_eval_text(name):
  from korpat_jax.tokenizer import demo_corpus_files
  path = next(f for f in eval_files() if f.name == name)
  texts = eval_texts(path)
  found = leaks(texts, corpus_lines(demo_corpus_files()))
  assert not found, f"{len(found)} of {len(texts)} eval texts of {name} are in the demo corpus:\n" + \
      "\n".join(found[:10])


def test_demo_corpus_holds_no_text_of_any_eval_file():
  """Also an eval file added later (any `*_eval.tsv` beside the three above)."""
  from korpat_jax.tokenizer import demo_corpus_files
  lines = corpus_lines(demo_corpus_files())
  found = [leak for f in eval_files() for leak in leaks(eval_texts(f), lines)]
  assert not found, f"{len(found)} eval texts in the demo corpus:\n" + "\n".join(found[:10])


def test_the_check_sees_eval_text_in_a_corpus(tmp_path):
  """The check itself: an eval sentence with other spacing, as a line or inside a longer line, is found; the train
  split's text is allowed and not looked at."""
  ner = eval_texts(DEMO / "finetune" / "ner_eval.tsv")
  pair = eval_texts(DEMO / "finetune" / "pair_eval.tsv")
  first, long_one = ner[0][1], next(t for _, t in pair if len(t) > MIN_SUBSTRING)
  corpus = tmp_path / "c.txt"
  corpus.write_text(f"다른 문장.\n  {first.replace(' ', '   ')} \n\n앞에 붙은 글 {long_one} 뒤에 붙은 글\n", encoding="utf-8")
  lines = corpus_lines([str(corpus)])
  assert len(leaks(ner, lines)) >= 1 and leaks(ner, lines)[0].endswith(f"a corpus line: {first[:60]!r}")
  assert any("inside a corpus line" in leak for leak in leaks(pair, lines))
  assert not leaks(ner + pair, ["다른 문장."])


def klue_ner_80_20_eval(source: str) -> str:
  """The eval file of `tests/tasks/test_token_classification.py::test_klue_ner_80_20_beats_the_all_o_baseline`,
  built from the KLUE NER dev TSV exactly as that test builds it (keep the two in step): the 300 sentences after the
  first 80% (KLUE NER dev 4000-4299)."""
  sentences = [b for b in source.split("\n\n") if "\t" in b]
  sentences = ["\n".join(l for l in s.splitlines() if not l.startswith("## ") or l.startswith("## klue-ner"))
               for s in sentences]
  cut = int(0.8 * len(sentences))
  return "\n\n".join(sentences[cut:cut + 300]) + "\n"


def test_demo_corpus_holds_no_text_of_the_klue_ner_80_20_eval_set(shared_data, tmp_path):
  """The 80/20 KLUE NER test scores on sentences it cuts from the shared KLUE file, not on a bundled eval file."""
  from korpat_jax.tokenizer import demo_corpus_files
  source = shared_data / "klue-ner-v1.1_dev.tsv"
  if not source.is_file():
    pytest.skip(f"{source} is absent")
  path = tmp_path / "klue_ner_80_20_eval.tsv"
  path.write_text(klue_ner_80_20_eval(source.read_text(encoding="utf-8")), encoding="utf-8")
  texts = eval_texts(path, ner=True)
  ids = [line.split("\t", 1)[0] for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("## ")]
  assert len(ids) == 300 and ids[0].startswith("## klue-ner-v1_dev_04000") and \
      ids[-1].startswith("## klue-ner-v1_dev_04299"), (ids[:1], ids[-1:])
  found = leaks(texts, corpus_lines(demo_corpus_files()))
  assert not found, f"{len(found)} of {len(texts)} eval texts of the KLUE NER 80/20 test are in the demo " \
      "corpus:\n" + "\n".join(found[:10])
