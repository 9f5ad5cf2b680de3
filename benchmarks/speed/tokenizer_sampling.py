"""How good is a vocabulary (and a user dictionary) built from a sample of the corpus? `tokenizer train|userdic
--sample-fraction F / --sample-lines N` against the full corpus, on NSMC movie reviews.

  python -m benchmarks.speed.tokenizer_sampling [--fractions 0.01,0.05,0.1,0.25] [--lines 50000] [--head 0.05]
      [--reviews N] [--vocab-size 16000] [--workers 1] [--out benchmarks/results/tokenizer_sampling.md]

Data: ../shared/data/nsmc_reviews.tsv.zst (`movie_id<TAB>rating<TAB>review`, a header line). 10,000 reviews
(`--holdout`, drawn with seed 0) are held out; the rest (or the first `--reviews` of the rest, in file order) are
the corpus, written as a one-column TSV (a review a document). For the full corpus and each sample: the vocabulary
(`train_tokenizer`, system dictionary only, so every tokenizer sees the same Mecab-ko morphemes) and the user
dictionary (`build_user_dictionary`, default thresholds), each timed (wall clock, and CPU seconds of this process
and its children: the machine may be shared); then the vocabulary's overlap with the full one (share of the full
vocabulary's tokens it holds), tokens per held-out review and the [UNK] share of them, and the share of the full
user dictionary's entries (surface, POS) the sampled one finds. `--head F`: the first F of the corpus lines, the
naive "sample" (NSMC is ordered by movie), for comparison.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from benchmarks.common import REPO, machine, write_report

NSMC = REPO.parent / "shared" / "data" / "nsmc_reviews.tsv.zst"


def read_reviews(path: Path) -> list[str]:
  """The non-empty reviews of nsmc_reviews.tsv.zst, in file order."""
  import zstandard
  with open(path, "rb") as f:
    text = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8").read()
  reviews = []
  for line in text.split("\n")[1:]:
    fields = line.split("\t")
    if len(fields) == 3 and fields[2].strip():
      reviews.append(fields[2].strip())
  return reviews


def split(reviews: list[str], holdout: int, limit: int | None, seed: int = 0) -> tuple[list[str], list[str]]:
  """(held-out reviews drawn at random, the others in file order, the first `limit` of them)."""
  held = set(random.Random(seed).sample(range(len(reviews)), holdout))
  rest = [r for i, r in enumerate(reviews) if i not in held]
  return [reviews[i] for i in sorted(held)], rest[:limit] if limit else rest


def write_tsv(path: Path, lines: list[str]) -> str:
  with open(path, "w", encoding="utf-8") as f:
    f.write("text\n")
    for line in lines:
      f.write(line + "\n")
  return str(path)


def _cpu() -> float:
  own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
  wall, cpu = time.perf_counter(), _cpu()
  out = fn()
  return out, time.perf_counter() - wall, _cpu() - cpu


@dataclass
class Run:
  name: str
  kept: int = 0
  train_wall: float = 0.0
  train_cpu: float = 0.0
  vocab: list[str] | None = None
  tokens_per_review: float = 0.0
  unk: float = 0.0
  userdic_wall: float = 0.0
  userdic_cpu: float = 0.0
  entries: set | None = None


def heldout_scores(tok_dir: Path, heldout: list[str]) -> tuple[float, float]:
  """(tokens per review, share of the tokens that are [UNK]) on the held-out reviews."""
  from korpat_jax.tokenizer import MWPTokenizer
  tok = MWPTokenizer.load(tok_dir)
  unk_id = tok.token_to_id("[UNK]")
  tokens = unks = 0
  for text in heldout:
    ids = tok.encode(text, add_special_tokens=False).ids
    tokens += len(ids)
    unks += ids.count(unk_id)
  return tokens / len(heldout), unks / max(tokens, 1)


def user_entries(out_dir: Path) -> set[tuple[str, str]]:
  with open(out_dir / "user.csv", encoding="utf-8") as f:
    return {(row[0], row[4]) for row in (line.split(",", 5) for line in f) if len(row) > 4}


def build(name: str, corpus: str, sample, work: Path, heldout: list[str], args) -> Run:
  from korpat_jax.tokenizer.userdic import build_user_dictionary
  from korpat_jax.tokenizer.vocab import train_tokenizer
  quiet = lambda message: None   # noqa: E731
  run = Run(name)
  slug = re.sub(r"[^\w.]+", "_", name).strip("_")
  tok_dir, ud_dir = work / f"tok_{slug}", work / f"ud_{slug}"
  for d in (tok_dir, ud_dir):
    shutil.rmtree(d, ignore_errors=True)
  tok, run.train_wall, run.train_cpu = timed(lambda: train_tokenizer(
      corpus, str(tok_dir), args.vocab_size, num_workers=args.workers, show_progress=False, log=quiet, sample=sample))
  run.kept = (tok.config["training"]["sample"] or {}).get("lines_kept") or tok.config["training"]["lines"]
  run.vocab = tok.vocab
  run.tokens_per_review, run.unk = heldout_scores(tok_dir, heldout)
  _, run.userdic_wall, run.userdic_cpu = timed(lambda: build_user_dictionary(
      corpus, str(ud_dir), log=quiet, quiet_compile=True, workers=args.workers, sample=sample))
  run.entries = user_entries(ud_dir)
  print(f"{name}: {run.kept} lines, train {run.train_wall:.0f}s wall / {run.train_cpu:.0f}s CPU, "
        f"{len(run.vocab)} tokens, {run.tokens_per_review:.2f} tokens/review, [UNK] {run.unk:.3%}; userdic "
        f"{run.userdic_wall:.0f}s wall / {run.userdic_cpu:.0f}s CPU, {len(run.entries)} entries", flush=True)
  return run


def _commit() -> str:
  git = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()   # noqa
  dirty = git("status", "--porcelain", "--untracked-files=no")
  return git("rev-parse", "--short", "HEAD") + (" (uncommitted changes in the tree)" if dirty else "")


def table(runs: list[Run]) -> list[str]:
  full = runs[0]
  lines = ["| corpus | lines | train wall | train CPU | vocab size | tokens also in the full vocab | "
           "tokens / held-out review | [UNK] | userdic wall | userdic CPU | userdic entries | full entries found | "
           "entries also in the full |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for r in runs:
    common = len(set(r.vocab) & set(full.vocab))
    found = len(r.entries & full.entries)
    lines.append(
        f"| {r.name} | {r.kept:,} | {r.train_wall:.1f} s | {r.train_cpu:.1f} s | {len(r.vocab):,} | "
        f"{common / len(full.vocab):.1%} | {r.tokens_per_review:.2f} | {r.unk:.3%} | {r.userdic_wall:.1f} s | "
        f"{r.userdic_cpu:.1f} s | {len(r.entries):,} | {found / max(len(full.entries), 1):.1%} | "
        f"{found / max(len(r.entries), 1):.1%} |")
  return lines


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--fractions", default="0.01,0.05,0.1,0.25", help="--sample-fraction values, comma-separated")
  parser.add_argument("--lines", default="50000", help="--sample-lines values, comma-separated ('' for none)")
  parser.add_argument("--head", default="0.05", help="first-F-of-the-corpus runs, comma-separated ('' for none)")
  parser.add_argument("--seed", type=int, default=0, help="--sample-seed")
  parser.add_argument("--holdout", type=int, default=10_000, help="held-out reviews")
  parser.add_argument("--reviews", type=int, default=None, help="corpus: the first N reviews not held out")
  parser.add_argument("--vocab-size", type=int, default=16_000)
  parser.add_argument("--workers", type=int, default=1, help="segmentation processes (1: CPU time is exact)")
  parser.add_argument("--work", default="/tmp/tokenizer_sampling")
  parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "tokenizer_sampling.md"))
  args = parser.parse_args()
  from korpat_jax.tokenizer.sampling import Sample
  from benchmarks.serving.onnx_speed import cpu_flags

  started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
  load_before = Path("/proc/loadavg").read_text().split()[:3]
  work = Path(args.work)
  work.mkdir(parents=True, exist_ok=True)
  heldout, rest = split(read_reviews(NSMC), args.holdout, args.reviews)
  corpus = write_tsv(work / "corpus.tsv", rest)
  print(f"{len(rest)} corpus reviews, {len(heldout)} held out", flush=True)
  runs = [build("full", corpus, None, work, heldout, args)]
  for f in filter(None, args.fractions.split(",")):
    runs.append(build(f"--sample-fraction {f}", corpus, Sample(fraction=float(f), seed=args.seed), work, heldout,
                      args))
  for n in filter(None, args.lines.split(",")):
    runs.append(build(f"--sample-lines {n}", corpus, Sample(lines=int(n), seed=args.seed), work, heldout, args))
  for f in filter(None, args.head.split(",")):
    head = write_tsv(work / f"head_{f}.tsv", rest[:round(float(f) * len(rest))])
    runs.append(build(f"first {float(f):.0%} of the corpus (not a sample)", head, None, work, heldout, args))
  load_after = Path("/proc/loadavg").read_text().split()[:3]
  full = runs[0]
  lines = [
      "# A first vocabulary from a sample of the corpus (`benchmarks/speed/tokenizer_sampling.py`)", "",
      f"Date: {started}. Machine: {machine()}; CPU flags: {cpu_flags()}; commit {_commit()}. Shared with other "
      f"jobs (load average {' '.join(load_before)} before, {' '.join(load_after)} after, on {machine().split()[0]} "
      f"CPUs), every run niced: compare the CPU seconds (this process and its children), not the wall clock.", "",
      f"Corpus: NSMC movie reviews (`nsmc_reviews.tsv.zst`), {args.holdout:,} reviews held out at random (seed 0), "
      f"the other {len(rest):,} reviews as the corpus{f' (the first {args.reviews:,})' if args.reviews else ''}, "
      f"a review a line. Vocabulary: `train_tokenizer`, --vocab-size {args.vocab_size}, defaults otherwise, no user "
      f"dictionary (every tokenizer sees the same Mecab-ko morphemes), --workers {args.workers}. User dictionary: "
      f"`build_user_dictionary`, default thresholds. Samples: --sample-seed {args.seed}. Held-out figures: "
      f"`MWPTokenizer.encode` without [CLS]/[SEP].", "",
      f"The full run: {len(full.vocab):,} tokens, {len(full.entries):,} user dictionary entries. \"tokens also in "
      f"the full vocab\": share of the full vocabulary's tokens that the run's vocabulary holds. \"full entries "
      f"found\": share of the full user dictionary's (surface, POS) entries that the run finds; \"entries also in "
      f"the full\": share of the run's own entries that the full one has.", "",
      *table(runs), ""]
  write_report(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
