"""Compile a user dictionary of the seed's size (6,663,693 entries) and record time and peak memory.

The entries are synthetic but shaped like the seed's `pat_all_mecab_dic.csv`: nouns and compound nouns made of
real Mecab-ko nouns (taken from the bundled demo corpus), half of them in the seed's short form with empty
context ids and cost (`질화갈륨,,,,NNG,*,T,질화갈륨,*,*,*,*`), half as `Compound` rows with an expression, and a
few deliberately bad rows. Slow (minutes) and memory-hungry: not part of the test suite.

  python -m benchmarks.speed.tokenizer_userdic_scale [--entries 6663693] [--work /tmp/userdic_scale]
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from pathlib import Path

from korpat_jax.tokenizer.morphemes import FeatureAnalyzer
from korpat_jax.tokenizer.sources import demo_corpus_files, iter_lines
from korpat_jax.tokenizer.userdic import build_user_dictionary


def noun_pool() -> list[str]:
  analyzer = FeatureAnalyzer()
  nouns = set()
  for line in iter_lines(demo_corpus_files()):
    for m in analyzer.analyse(line):
      if m.pos == "NNG" and not m.unknown and len(m.surface) >= 2:
        nouns.add(m.surface)
  return sorted(nouns)


def write_synthetic_csv(path: Path, entries: int, seed: int = 0) -> int:
  rng = random.Random(seed)
  nouns = noun_pool()
  seen: set[str] = set()
  bad = 0
  with open(path, "w", encoding="utf-8") as f:
    while len(seen) < entries:
      parts = rng.sample(nouns, rng.choice((2, 2, 3)))
      surface = "".join(parts)
      if surface in seen:
        continue
      seen.add(surface)
      if len(seen) % 1_000_000 == 0:   # a few broken rows, as real user files have
        f.write(f"{surface},,,,NNQ,*,T,{surface},*,*,*,*\n")
        bad += 1
        continue
      code = ord(surface[-1]) - 0xAC00
      jong = "T" if code % 28 else "F"
      if len(seen) % 2:
        f.write(f"{surface},,,,NNG,*,{jong},{surface},*,*,*,*\n")
      else:
        expr = "+".join(f"{p}/NNG/*" for p in parts)
        f.write(f"{surface},,,,NNG,*,{jong},{surface},Compound,*,*,{expr}\n")
  return bad


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--entries", type=int, default=6_663_693)
  parser.add_argument("--work", default="/tmp/userdic_scale")
  args = parser.parse_args()
  work = Path(args.work)
  work.mkdir(parents=True, exist_ok=True)
  src = work / "synthetic_user.csv"
  t0 = time.perf_counter()
  bad = write_synthetic_csv(src, args.entries)
  print(f"generated {args.entries} rows ({bad} bad) in {time.perf_counter() - t0:.0f}s: {src}", flush=True)
  t0 = time.perf_counter()
  result = build_user_dictionary(None, str(work / "dic"), user_csvs=[str(src)], quiet_compile=True)
  total = time.perf_counter() - t0
  parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  dic_mb = Path(result.user_dic).stat().st_size / 2**20
  print()
  print("| entries | validate + write CSV | compile (mecab_dict_index) | total | peak RSS builder | "
        "peak RSS compiler | user.dic size | sampled entries won |")
  print("|---|---|---|---|---|---|---|---|")
  print(f"| {result.entries:,} | {total - result.compile_seconds:.0f} s | {result.compile_seconds:.0f} s | "
        f"{total:.0f} s | {parent_mb:.0f} MB | {result.peak_rss_mb:.0f} MB | {dic_mb:.0f} MB | {result.won:.1%} |")


if __name__ == "__main__":
  main()
