"""Building the tokenizer as the corpus grows: `tokenizer userdic` and `tokenizer train` at several corpus sizes,
with 1 and 2 local workers and on Beam's DirectRunner; time, CPU, peak memory and what each stage costs, then a
projection to the seed's 130 GB (issue 21 item 6).

  python -m benchmarks.speed.tokenizer_build_scale [--work /tmp/tokenizer_scale] [--reviews 50000,100000,200000,400000]
      [--patent 10000,40000] [--runners w1,w2,beam] [--vocab-size 8000] [--shards 8]
      [--out benchmarks/results/tokenizer_scale.md]

Corpora: the first N reviews of ../shared/data/nsmc_reviews.tsv.zst (real informal Korean, a review a line) and N
long patent-like sentences of benchmarks/speed/patent_sentences.py (claims and abstracts, 150-400 characters),
each written as `--shards` text files (the Beam runner reads a file in one worker; the local runner splits lines
into blocks). Every build is the user's command in its own process (`python -m korpat_jax tokenizer ...`), so its
memory is its own: peak PSS of the process tree (pool workers and Beam's included, shared pages counted once), and
the largest single process's peak RSS. `train` runs without a user dictionary so that each runner's vocabulary can
be compared with the one-worker vocabulary: every row says whether user.csv / vocab.txt is byte-identical to it.
The stage times come from the outputs: userdic.json `seconds` (count: read + analyse + count, the part that workers
and Beam spread; select: choose and score candidates from the counts; compile) and the tokenizer's
`training.count_seconds` against `training.seconds` (the rest is the WordPiece training on the counts).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.common import REPO, machine, write_report
from benchmarks.speed.tokenizer_sampling import NSMC, _commit, read_reviews

RUNNERS = {"w1": ("--workers", "1"), "w2": ("--workers", "2"), "beam": ("--runner", "beam"),
           "beam_mp2": ("--runner", "beam", "--", "--direct_num_workers=2", "--direct_running_mode=multi_processing")}
RUNNER_NAMES = {"w1": "1 worker", "w2": "2 workers", "beam": "Beam DirectRunner",
                "beam_mp2": "Beam DirectRunner, 2 processes"}


def _process_tree(root: int) -> list[int]:
  children: dict[int, list[int]] = defaultdict(list)
  for entry in os.listdir("/proc"):
    if entry.isdigit():
      try:
        with open(f"/proc/{entry}/stat") as f:
          ppid = int(f.read().rsplit(")", 1)[1].split()[1])
      except (OSError, ValueError, IndexError):
        continue
      children[ppid].append(int(entry))
  tree, stack = [], [root]
  while stack:
    pid = stack.pop()
    tree.append(pid)
    stack.extend(children.get(pid, ()))
  return tree


def _kb_field(path: str, name: str) -> float:
  try:
    with open(path) as f:
      for line in f:
        if line.startswith(name):
          return int(line.split()[1]) / 1024
  except (OSError, ValueError):
    pass
  return 0.0


@dataclass
class Measured:
  wall: float
  cpu: float
  peak_tree_pss_mb: float
  peak_process_rss_mb: float


def run_measured(cmd: list[str], log_path: Path, interval: float = 0.2) -> Measured:
  """Run `cmd`, sampling its process tree every `interval` seconds; wall, CPU (it and its children), peak PSS of
  the tree and peak RSS (VmHWM) of its largest process. (wait4's ru_maxrss would count this process's memory too:
  a forked child starts with it.)"""
  peak, largest = [0.0], [0.0]
  with open(log_path, "w") as log:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    done = threading.Event()

    def sample() -> None:
      while not done.wait(interval):
        tree = _process_tree(proc.pid)
        peak[0] = max(peak[0], sum(_kb_field(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree))
        largest[0] = max([largest[0]] + [_kb_field(f"/proc/{p}/status", "VmHWM:") for p in tree])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
  if proc.returncode:
    tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
    raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); {log_path}: {' | '.join(tail)}")
  return Measured(wall, usage.ru_utime + usage.ru_stime, peak[0], largest[0])


@dataclass
class Row:
  corpus: str
  lines: int
  mb: float
  command: str
  runner: str
  wall: float
  cpu: float
  peak_tree_pss_mb: float
  peak_process_rss_mb: float
  count_s: float
  tail_s: float       # userdic: select + compile; train: WordPiece on the counts + saving
  distinct: int       # userdic: eojeols + L strings counted; train: distinct words handed to WordPiece
  output: str         # sha256 of user.csv / vocab.txt
  identical: str = ""


def write_corpus(lines: list[str], directory: Path, shards: int) -> float:
  """`lines` as `shards` text files of consecutive lines; returns the corpus size in MB."""
  shutil.rmtree(directory, ignore_errors=True)
  directory.mkdir(parents=True)
  per = -(-len(lines) // shards)
  size = 0
  for i in range(shards):
    data = "".join(line + "\n" for line in lines[i * per:(i + 1) * per]).encode("utf-8")
    (directory / f"part-{i:02d}.txt").write_bytes(data)
    size += len(data)
  return size / 1e6


def _sha(path: Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


def build(kind: str, corpus_dir: Path, out: Path, runner: str, vocab_size: int) -> tuple[Measured, dict, str]:
  shutil.rmtree(out, ignore_errors=True)
  cmd = [sys.executable, "-m", "korpat_jax", "tokenizer", kind, "--corpus", str(corpus_dir), "--out", str(out)]
  if kind == "train":
    cmd += ["--vocab-size", str(vocab_size)]
  cmd += RUNNERS[runner]   # last: Beam's own options follow `--`
  measured = run_measured(cmd, out.parent / f"{out.name}.log")
  if kind == "userdic":
    manifest = json.loads((out / "userdic.json").read_text())
    return measured, manifest, _sha(out / "user.csv")
  manifest = json.loads((out / "mwp_tokenizer.json").read_text())
  return measured, manifest, _sha(out / "vocab.txt")


def row_of(corpus: str, lines: int, mb: float, kind: str, runner: str, measured: Measured, manifest: dict,
           sha: str) -> Row:
  if kind == "userdic":
    seconds = manifest["seconds"]
    distinct = manifest["corpus_candidates"]["distinct"]
    count_s, tail_s = seconds["count"], seconds["select"] + seconds["compile"]
    n_distinct = distinct["eojeols"] + distinct["l_strings"]
  else:
    training = manifest["training"]
    count_s, tail_s, n_distinct = training["count_seconds"], training["seconds"] - training["count_seconds"], \
        training["distinct_words"]
  return Row(corpus, lines, mb, kind, runner, measured.wall, measured.cpu, measured.peak_tree_pss_mb,
             measured.peak_process_rss_mb, count_s, tail_s, n_distinct, sha)


def table(rows: list[Row]) -> list[str]:
  out = ["| corpus | lines | MB | command | runner | wall | CPU | count | tail | peak PSS (tree) | "
         "peak RSS (largest process) | distinct strings | output = 1 worker's |",
         "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
  for r in rows:
    out.append(f"| {r.corpus} | {r.lines:,} | {r.mb:.1f} | {r.command} | {RUNNER_NAMES[r.runner]} | {r.wall:.1f} s | "
               f"{r.cpu:.1f} s | {r.count_s:.1f} s | {r.tail_s:.1f} s | {r.peak_tree_pss_mb:.0f} MB | "
               f"{r.peak_process_rss_mb:.0f} MB | {r.distinct:,} | {r.identical} |")
  return out


# What the launcher's tail and memory grow with. userdic: choosing and scoring walk the distinct strings counted.
# train: HF's WordPiece trainer takes text, not counts, so the counts are fed back to it as words repeated `count`
# times (word_counts.feed): its tail grows with the corpus's tokens, whatever the runner.
TAIL_DRIVER = {"userdic": "distinct", "train": "MB"}


@dataclass
class Projection:
  corpus: str
  command: str
  count_cpu_s_per_mb: float      # one worker's count time per MB (the work that spreads)
  beam_count_s_per_mb: float     # the DirectRunner's (one process; Beam's own overhead included)
  two_worker_efficiency: float   # count time of 1 worker / (2 x that of 2 workers)
  heaps_k: float                 # distinct strings = k * MB ** beta, fitted over the measured sizes
  heaps_beta: float
  driver: str                    # TAIL_DRIVER: "distinct" (per million distinct strings) or "MB" (per MB)
  tail_s_per_unit: float         # launcher time per driver unit (select + compile, or WordPiece)
  mb_per_million: float          # peak PSS growth per million distinct strings, one worker (nan: they hardly grew)
  mb_base: float                 # and its intercept
  peak_mb: float                 # the largest peak PSS measured, one worker


def _fit_line(x: list[float], y: list[float]) -> tuple[float, float]:
  """Least-squares (slope, intercept)."""
  mx, my = sum(x) / len(x), sum(y) / len(y)
  sxx = sum((a - mx) ** 2 for a in x)
  slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sxx if sxx else 0.0
  return slope, my - slope * mx


def fit(rows: list[Row], corpus: str, command: str) -> Projection | None:
  """The cost model of one corpus and command from its measured sizes (None with fewer than two sizes)."""
  by = {(r.runner, r.lines): r for r in rows if r.corpus == corpus and r.command == command}
  ones = sorted((r for (runner, _), r in by.items() if runner == "w1"), key=lambda r: r.mb)
  if len(ones) < 2:
    return None
  count_slope, _ = _fit_line([r.mb for r in ones], [r.count_s for r in ones])
  beams = sorted((r for (runner, _), r in by.items() if runner == "beam"), key=lambda r: r.mb)
  beam_slope = _fit_line([r.mb for r in beams], [r.count_s for r in beams])[0] if len(beams) > 1 else float("nan")
  pairs = [(r, by[("w2", r.lines)]) for r in ones if ("w2", r.lines) in by and by[("w2", r.lines)].count_s > 0]
  efficiency = (sum(a.count_s / (2 * b.count_s) for a, b in pairs) / len(pairs)) if pairs else float("nan")
  beta, log_k = _fit_line([math.log(r.mb) for r in ones], [math.log(max(r.distinct, 1)) for r in ones])
  driver = TAIL_DRIVER[command]
  units = [r.distinct / 1e6 if driver == "distinct" else r.mb for r in ones]
  tail_slope, _ = _fit_line(units, [r.tail_s for r in ones])
  if ones[-1].distinct >= 2 * ones[0].distinct:
    mem_slope, mem_base = _fit_line([r.distinct / 1e6 for r in ones], [r.peak_tree_pss_mb for r in ones])
  else:   # a closed vocabulary (the synthetic patent set's morphemes): no growth to fit
    mem_slope, mem_base = float("nan"), float("nan")
  return Projection(corpus, command, count_slope, beam_slope, efficiency, math.exp(log_k), beta, driver,
                    tail_slope, mem_slope, mem_base, max(r.peak_tree_pss_mb for r in ones))


def _hours(seconds: float) -> str:
  return f"{seconds / 3600:,.1f} h" if seconds >= 360 else f"{seconds / 60:,.0f} min"


def _memory(m: Projection, distinct: float) -> str:
  if math.isnan(m.mb_per_million):
    return f"~{m.peak_mb / 1000:.1f} GB (no growth measured)"
  return f"{(m.mb_base + m.mb_per_million * distinct / 1e6) / 1000:,.1f} GB"


def projection_table(models: list[Projection], gb: float, cores: int, workers: int) -> list[str]:
  mb = gb * 1000
  out = [f"| corpus model | command | count, 1 worker | count, {cores} workers | count, Beam {workers} workers | "
         f"distinct strings at {gb:g} GB | launcher tail | launcher memory |",
         "|---|---|---:|---:|---:|---:|---:|---:|"]
  for m in models:
    distinct = m.heaps_k * mb ** m.heaps_beta
    units = distinct / 1e6 if m.driver == "distinct" else mb
    local = mb * m.count_cpu_s_per_mb / (cores * min(m.two_worker_efficiency, 1.0))
    beam_low, beam_high = mb * m.count_cpu_s_per_mb / workers, mb * m.beam_count_s_per_mb / workers
    out.append(f"| {m.corpus} (distinct ~ MB^{m.heaps_beta:.2f}) | {m.command} | "
               f"{_hours(mb * m.count_cpu_s_per_mb)} | {_hours(local)} | {_hours(beam_low)} - {_hours(beam_high)} | "
               f"{distinct / 1e6:.3g} M | {_hours(m.tail_s_per_unit * units)} | {_memory(m, distinct)} |")
  return out


def model_table(models: list[Projection]) -> list[str]:
  out = ["| corpus | command | count s/MB, 1 worker | count s/MB, DirectRunner | 2-worker efficiency | "
         "distinct = k MB^beta | tail grows with | tail s per unit | memory MB per million distinct |",
         "|---|---|---:|---:|---:|---|---|---:|---:|"]
  for m in models:
    unit = "million distinct strings" if m.driver == "distinct" else "MB of corpus"
    out.append(f"| {m.corpus} | {m.command} | {m.count_cpu_s_per_mb:.2f} | {m.beam_count_s_per_mb:.2f} | "
               f"{m.two_worker_efficiency:.0%} | {m.heaps_k:,.0f} MB^{m.heaps_beta:.2f} | {unit} | "
               f"{m.tail_s_per_unit:.3g} | {m.mb_per_million:.3g} |")
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--work", default="/tmp/tokenizer_scale")
  parser.add_argument("--reviews", default="50000,100000,200000,400000", help="review corpus sizes (lines)")
  parser.add_argument("--patent", default="10000,40000", help="patent-like corpus sizes (sentences; '' for none)")
  parser.add_argument("--runners", default="w1,w2,beam", help=f"of {','.join(RUNNERS)}")
  parser.add_argument("--commands", default="userdic,train")
  parser.add_argument("--vocab-size", type=int, default=8000)
  parser.add_argument("--shards", type=int, default=8)
  parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "tokenizer_scale.md"))
  parser.add_argument("--project-gb", type=float, default=130.0, help="corpus size of the projection (the seed's)")
  parser.add_argument("--project-cores", type=int, default=16, help="cores of the one machine of the projection")
  parser.add_argument("--project-workers", type=int, default=100, help="Beam workers of the projection")
  parser.add_argument("--report-only", action="store_true", help="rewrite the report from WORK/rows.json")
  args = parser.parse_args()
  work = Path(args.work)
  if args.report_only:
    rows = [Row(**r) for r in json.loads((work / "rows.json").read_text())]
    meta = json.loads((work / "meta.json").read_text())
  else:
    runners = args.runners.split(",")
    unknown = [r for r in runners if r not in RUNNERS]
    if unknown:
      parser.error(f"--runners: unknown {unknown}; choose from {list(RUNNERS)}")
    rows, meta = measure(args, runners, work)
  report(args, rows, meta)


def measure(args: argparse.Namespace, runners: list[str], work: Path) -> tuple[list[Row], dict]:
  """Every corpus x command x runner, in that order; WORK/rows.json and WORK/meta.json kept up to date."""
  from benchmarks.serving.onnx_speed import cpu_flags
  from benchmarks.speed.patent_sentences import patent_sentences
  work.mkdir(parents=True, exist_ok=True)
  meta = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
          "cpu_flags": cpu_flags(), "commit": _commit(), "load_before": Path("/proc/loadavg").read_text().split()[:3],
          "vocab_size": args.vocab_size, "shards": args.shards}
  corpora: list[tuple[str, list[str]]] = []
  reviews = read_reviews(NSMC) if args.reviews else []
  for n in filter(None, args.reviews.split(",")):
    corpora.append(("reviews", reviews[:int(n)]))
  for n in filter(None, args.patent.split(",")):
    corpora.append(("patent-like", patent_sentences(int(n))))
  rows: list[Row] = []
  for name, lines in corpora:
    corpus_dir = work / f"{name}_{len(lines)}"
    mb = write_corpus(lines, corpus_dir, args.shards)
    for kind in args.commands.split(","):
      first = None
      for runner in runners:
        measured, manifest, sha = build(kind, corpus_dir, work / f"{kind}_{name}_{len(lines)}_{runner}", runner,
                                        args.vocab_size)
        row = row_of(name, len(lines), mb, kind, runner, measured, manifest, sha)
        first = first or row.output
        row.identical = "yes" if row.output == first else "NO"
        rows.append(row)
        print(table([row])[-1], flush=True)
        meta["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
        (work / "rows.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
        (work / "meta.json").write_text(json.dumps(meta, indent=1))
  return rows, meta


def report(args: argparse.Namespace, rows: list[Row], meta: dict) -> None:
  models = [m for m in (fit(rows, corpus, command) for corpus in dict.fromkeys(r.corpus for r in rows)
                        for command in dict.fromkeys(r.command for r in rows)) if m is not None]
  lines = [
      "# Building the tokenizer as the corpus grows (`benchmarks/speed/tokenizer_build_scale.py`)", "",
      f"Date: {meta['started']}. Machine: {meta['machine']}; CPU flags: {meta['cpu_flags']}; commit "
      f"{meta['commit']}. Load average {' '.join(meta['load_before'])} before, "
      f"{' '.join(meta.get('load_after', ['?']))} after. One run each.", "",
      f"`korpat-jax tokenizer userdic` (default thresholds) and `tokenizer train --vocab-size {meta['vocab_size']}` "
      f"(no user dictionary), each corpus as {meta['shards']} text files. count: reading, Mecab-ko analysis and "
      "counting (the part workers and Beam spread); tail: what runs on the launching machine after it (userdic: "
      "choosing and scoring the candidates + compiling user.dic; train: WordPiece on the counts). Peak PSS: the "
      "process tree's, sampled every 0.2 s (shared pages counted once); peak RSS: the largest single process. "
      "distinct strings: userdic: eojeols + noun-candidate strings counted; train: distinct morphemes.", "",
      *table(rows), "",
      "## Cost model (fitted over the sizes above)", "",
      *model_table(models), "",
      f"## Projection to {args.project_gb:g} GB", "",
      f"Count time scales with the corpus (s/MB above); on {args.project_cores} cores at the measured 2-worker "
      f"efficiency; on Beam, {args.project_workers} one-core workers at this CPU's speed, from the local worker's "
      "s/MB (no Beam overhead) to the DirectRunner's (all of it), shuffle and start-up not included. Distinct "
      "strings follow the fitted power law (an extrapolation over four orders of magnitude: the largest "
      "uncertainty). The launcher's memory grows with the distinct strings (it holds every one: exact counts on "
      "Beam; locally --max-distinct bounds userdic's, 20M by default, past which its counts are lower bounds), "
      "its tail with what the model table names: userdic's with the distinct strings it walks, train's with the "
      "corpus (HF's WordPiece trainer takes text, so the counts are fed back to it as repeated words). Tails as "
      "measured here (2 cores).",
      "",
      *projection_table(models, args.project_gb, args.project_cores, args.project_workers), ""]
  write_report(args.out, "\n".join(lines) + "\n")
  Path(args.out).with_suffix(".json").write_text(
      json.dumps({"meta": meta, "rows": [asdict(r) for r in rows], "models": [asdict(m) for m in models]},
                 indent=1) + "\n")

if __name__ == "__main__":
  main()
