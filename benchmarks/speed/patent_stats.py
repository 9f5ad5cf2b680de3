"""How hard a list of sentences is for the MWP encoder's caches: length, distinct morphemes, unseen morphemes.

  python -m benchmarks.speed.patent_stats [--warmup 300] [--generated 3000:2000]

The encoder caches each morpheme's ids, so its cost beyond Mecab-ko's parse grows with the morphemes it has not
met before (a dict miss, then a greedy WordPiece or a call into Rust). This measures, per set of sentences (Mecab-ko
with the system dictionary):

- sentence length: characters and morphemes per sentence;
- distinct-morpheme rate: distinct / all morphemes, the same over the first 10,000 morphemes (comparable across
  sets of different sizes), and the growth: new distinct morphemes per 1,000 sentences over the second half;
- after a warm-up on other sentences: the share of morphemes never seen in the warm-up, and the cache misses a run
  meets (first occurrences of those: per morpheme and per sentence; "plain" ones take the greedy path);
- the share of eojeols holding a run of >= 3 nouns (NNG/NNP), and the share of Latin letters and digits among the
  non-space characters.

References (no real patent corpus is on this machine, and it has no internet): the bundled patent-style sentences
(korpat_jax/demo/corpus/patent_style.txt) and the title + abstract of the demo CPC documents
(korpat_jax/demo/finetune/cpc_*.tsv; both original patent-style text, not real patents), against the generator
(benchmarks/speed/patent_sentences.py), each mode at the references' sizes and at the benchmark's.
"""

from __future__ import annotations

import argparse
import csv
import re
from typing import Iterable, Sequence

from korpat_jax.tokenizer.morphemes import FeatureAnalyzer
from korpat_jax.tokenizer.wordpiece import _PLAIN_WORD

from benchmarks.common import REPO
from benchmarks.speed.patent_sentences import patent_sentences

DEMO = REPO / "korpat_jax" / "demo"
NOUNS = frozenset(("NNG", "NNP"))
FIXED_MORPHEMES = 10_000
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def split_sentences(text: str) -> list[str]:
  return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def patent_style_sentences() -> list[str]:
  """The bundled patent-style corpus, one sentence a line."""
  lines = (DEMO / "corpus" / "patent_style.txt").read_text(encoding="utf-8").splitlines()
  return [line.strip() for line in lines if line.strip()]


def cpc_sentences(titles: bool = True) -> list[str]:
  """The demo CPC documents (train, then eval): each title (when `titles`) and its abstract's sentences."""
  out: list[str] = []
  for name in ("cpc_train.tsv", "cpc_eval.tsv"):
    with open(DEMO / "finetune" / name, encoding="utf-8", newline="") as f:
      for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
        out += ([row["title"].strip()] if titles else []) + split_sentences(row["abstract"])
  return out


def _eojeol_noun_runs(text: str, morphs: Sequence[tuple[str, str]]) -> list[int]:
  """For each space-separated eojeol of `text`, the longest run of consecutive noun morphemes in it."""
  runs: list[int] = []
  pos, end_of_word, best, run = 0, -1, 0, 0
  for surface, pos_tag in morphs:
    at = text.find(surface, pos)
    at = pos if at < 0 else at
    if at >= end_of_word:   # a new eojeol starts at this morpheme
      if end_of_word >= 0:
        runs.append(best)
      space = text.find(" ", at)
      end_of_word, best, run = (len(text) if space < 0 else space), 0, 0
    run = run + 1 if pos_tag in NOUNS else 0
    best = max(best, run)
    pos = at + len(surface)
  if end_of_word >= 0:
    runs.append(best)
  return runs


def sentence_stats(measured: Sequence[str], warmup: Iterable[str] = (),
                   analyzer: FeatureAnalyzer | None = None) -> dict[str, float]:
  """The statistics of `measured` (see the module docstring), its unseen morphemes counted after `warmup`."""
  analyzer = analyzer or FeatureAnalyzer()
  seen = {m.surface for text in warmup for m in analyzer.analyse(text)}
  warm = len(seen) > 0
  counted: set[str] = set()
  morphemes = misses = plain_misses = unseen = 0
  distinct_at_fixed, half_distinct = None, 0
  compounds = eojeols = latin = digits = chars = 0
  for k, text in enumerate(measured):
    if k == len(measured) // 2:
      half_distinct = len(counted)
    analysed = [(m.surface, m.pos) for m in analyzer.analyse(text)]
    for surface, _ in analysed:
      morphemes += 1
      if surface not in seen:
        unseen += 1
        if surface not in counted:
          misses += 1
          plain_misses += _PLAIN_WORD(surface) is not None
      counted.add(surface)
      if morphemes == FIXED_MORPHEMES:
        distinct_at_fixed = len(counted)
    runs = _eojeol_noun_runs(text, analysed)
    eojeols += len(runs)
    compounds += sum(r >= 3 for r in runs)
    letters = text.replace(" ", "")
    chars += len(letters)
    latin += sum(c.isascii() and c.isalpha() for c in letters)
    digits += sum(c.isascii() and c.isdigit() for c in letters)
  n = max(1, len(measured))
  second_half = n - n // 2
  out = {"sentences": len(measured), "chars/sentence": sum(map(len, measured)) / n,
         "morphemes/sentence": morphemes / n, "distinct/morphemes": len(counted) / max(1, morphemes),
         f"distinct in first {FIXED_MORPHEMES:,} morphemes": distinct_at_fixed or float("nan"),
         "new distinct per 1,000 sentences (2nd half)": (len(counted) - half_distinct) / second_half * 1000,
         "eojeols with >= 3 nouns": compounds / max(1, eojeols), "Latin letters": latin / max(1, chars),
         "digits": digits / max(1, chars)}
  if warm:
    out.update({"unseen after warm-up (of morphemes)": unseen / max(1, morphemes),
                "cache misses (of morphemes)": misses / max(1, morphemes), "cache misses/sentence": misses / n,
                "plain share of misses": plain_misses / max(1, misses)})
  return out


def split_stats(sentences: Sequence[str], warmup: int, analyzer: FeatureAnalyzer) -> dict[str, float]:
  """`sentence_stats` of a set's sentences after its first `warmup` ones (the warm-up)."""
  return sentence_stats(sentences[warmup:], sentences[:warmup], analyzer)


def generated_stats(mode: str, warmup: int, measured: int, analyzer: FeatureAnalyzer) -> dict[str, float]:
  """The generator's `mode` ("default" or a realism): `measured` sentences after `warmup` others."""
  kwargs = {} if mode == "default" else {"realism": mode}
  texts = patent_sentences(measured, seed=11, **kwargs)
  other = set(texts)
  warm = [s for s in patent_sentences(warmup + 10, seed=1011, **kwargs) if s not in other][:warmup]
  return sentence_stats(texts, warm, analyzer)


def print_table(rows: dict[str, dict[str, float]]) -> None:
  names = list(next(iter(rows.values())))
  print("| statistic | " + " | ".join(rows) + " |")
  print("|---|" + "---:|" * len(rows))
  for name in names:
    cells = []
    for stats in rows.values():
      value = stats.get(name, float("nan"))
      if name in ("sentences",) or name.startswith("distinct in first"):
        cells.append(f"{value:,.0f}" if value == value else "-")
      elif "/sentence" in name or "per 1,000" in name:
        cells.append(f"{value:,.1f}")
      else:
        cells.append(f"{value:.1%}")
    print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--warmup", type=int, default=300, help="warm-up sentences of each reference set")
  parser.add_argument("--generated", default="500:2000,3000:2000", help="WARMUP:MEASURED sentences of the "
                      "generator at the benchmark's sizes (comma-separated; patent_hard: 500:2000, patent: 3000:2000)")
  parser.add_argument("--modes", default="default,abstract", help="generator modes to measure")
  args = parser.parse_args()
  analyzer = FeatureAnalyzer()
  cpc = cpc_sentences()
  style = patent_style_sentences()
  rows = {"patent_style.txt": split_stats(style, len(style) // 3, analyzer),
          "CPC demo, title + abstract": split_stats(cpc, args.warmup, analyzer),
          "CPC demo, abstracts only": split_stats(cpc_sentences(titles=False), args.warmup, analyzer)}
  for mode in args.modes.split(","):
    rows[f"generator {mode}, CPC sizes"] = generated_stats(mode, args.warmup, len(cpc) - args.warmup, analyzer)
    for sizes in args.generated.split(","):
      warm, measured = map(int, sizes.split(":"))
      rows[f"generator {mode}, {warm}:{measured}"] = generated_stats(mode, warm, measured, analyzer)
  print_table(rows)


if __name__ == "__main__":
  main()
