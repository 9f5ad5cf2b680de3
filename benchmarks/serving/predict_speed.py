"""Predict at scale on this CPU: `korpat-jax predict` streaming raw documents against transformers' pipeline on the
same run's export (its tokenizer runs Mecab-ko as remote code), documents a second on the same file, side by side;
and the memory of predict on growing inputs (flat: it streams).

    python -m benchmarks.serving.predict_speed --workdir W --docs 20000 --out benchmarks/results/predict_speed.md
    python -m benchmarks.serving.predict_speed --workdir W --memory 20000,200000,1000000 --skip-pipeline --out ...
    python -m benchmarks.serving.predict_speed --quick --out /tmp/predict_speed.md   # the smoke test (tiny model)

W is a fine-tuned sequence-classification run (a 20,000-line run takes minutes at the `cpu` sizes); without it a
random classifier is built at the `cpu` sizes (`--quick`: tiny sizes) with the demo MWP tokenizer. Documents: the
reviews of ../shared/data/nsmc_reviews.tsv.zst (one a line, in file order), else the demo corpus' lines, repeated.

Each side gets the same cores: predict runs as its own process (`python -m korpat_jax predict`, its tokenizer
workers included, pinned to the first --threads cores); the pipeline runs in this process with
torch.set_num_threads(--threads) and OMP_WAIT_POLICY=PASSIVE (as benchmarks/serving/onnx_speed.py), at batch size 1 (the pipeline's default) and --pipeline-batch (padded per batch,
truncation=True, as predict cuts documents at the training length). Timed: predict's whole command (JAX start,
compilation, workers included) and its streaming loop alone (what it logs); the pipeline's calls over all
documents (its loading timed apart). Peak memory: the RSS of predict's process tree, sampled every 0.2 s. The two
label lists are compared: they must agree (both cut at the training length).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Optional, Sequence

from benchmarks.common import REPO, machine, pin_cpus, write_report

SHARED_REVIEWS = REPO.parent / "shared" / "data" / "nsmc_reviews.tsv.zst"
CPU = dict(num_layers=2, hidden_size=128, embedding_size=64, num_heads=2, intermediate_size=512)
QUICK = dict(num_layers=2, hidden_size=32, embedding_size=16, num_heads=2, intermediate_size=64)
_SUMMARY = re.compile(r": (\d+) lines in ([\d.]+) s \(")


def documents(count: int) -> list[str]:
  """`count` Korean documents, one line each: NSMC reviews where ../shared/data has them, else demo corpus lines."""
  lines: list[str] = []
  if SHARED_REVIEWS.is_file():
    import zstandard
    with open(SHARED_REVIEWS, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as reader:
      text = reader.read().decode("utf-8")
    lines = [row.split("\t", 2)[2].strip() for row in text.splitlines()[1:] if row.count("\t") >= 2]
  else:
    from korpat_jax.tokenizer import demo_corpus_files
    for path in demo_corpus_files():
      with open(path, encoding="utf-8") as f:
        lines += [line.strip() for line in f]
  lines = [line for line in lines if line and "\n" not in line]
  return [lines[i % len(lines)] for i in range(count)]


def build_run(root: str, sizes: dict[str, int], seq_len: int) -> str:
  """A random 3-class classifier at `sizes` with the demo MWP tokenizer, as a fine-tuning run directory."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from benchmarks.common import REPO as repo
  from korpat_jax import config as config_lib
  from korpat_jax import workdir as workdir_lib
  from korpat_jax.checkpoint import Checkpointer
  from korpat_jax.export.task_info import write_task_info
  from korpat_jax.model.config import ElectraConfig
  from korpat_jax.model.heads import task_model
  from korpat_jax.tokenizer import MWPTokenizer, demo_corpus_files, train_tokenizer

  tok_dir = os.path.join(root, "tok")
  train_tokenizer(demo_corpus_files(), tok_dir, vocab_size=8000, show_progress=False, log=lambda m: None)
  tok = MWPTokenizer.load(tok_dir)
  cfg = ElectraConfig.from_config({**sizes, "vocab_size": tok.vocab_size, "max_position_embeddings": 512,
                                   "generator_hidden_fraction": 0.25})
  ids = jnp.ones((1, 8), jnp.int32)
  params = jax.jit(task_model("sequence_classification", cfg, 3).init)(jax.random.PRNGKey(0), ids,
                                                                       jnp.zeros_like(ids), ids)["params"]
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map(lambda x: (np.asarray(x) + 0.02 * rng.standard_normal(x.shape)).astype(np.float32),
                                  params)
  workdir = os.path.join(root, "run")
  workdir_lib.write_model_info(workdir, cfg, tok_dir, {"pad": tok.pad_id, "unk": tok.unk_id, "cls": tok.cls_id,
                                                       "sep": tok.sep_id, "mask": tok.mask_id})
  write_task_info(workdir, "sequence_classification", {0: "A", 1: "B", 2: "C"})
  state = {"params": params, "opt_state": {}, "step": np.asarray(1, np.int32), "rng": np.array([0, 1], np.uint32)}
  checkpointer = Checkpointer(workdir_lib.checkpoint_dir(workdir), interval=1, keep=1, async_save=False)
  checkpointer.save(1, state, force=True)
  checkpointer.close()
  config = config_lib.with_values(config_lib.load(str(repo / "configs" / "finetune.py") + ":cpc_cpu"),
                                  {"train.seq_len": seq_len, "data.cpc_level": "none"})
  workdir_lib.write_run_config(workdir, config.to_dict())
  return workdir


class TreeRss:
  """Peak resident memory of a process and its descendants, sampled every `every` seconds (from /proc)."""

  def __init__(self, pid: int, every: float = 0.2):
    self.pid, self.every, self.peak_mb = pid, every, 0.0
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()

  def _run(self) -> None:
    while not self._stop.is_set():
      self.peak_mb = max(self.peak_mb, sum(_rss_mb(p) for p in _tree(self.pid)))
      self._stop.wait(self.every)

  def stop(self) -> float:
    self._stop.set()
    self._thread.join()
    return self.peak_mb


def _tree(pid: int) -> list[int]:
  out, todo = [], [pid]
  while todo:
    p = todo.pop()
    out.append(p)
    try:
      for task in os.listdir(f"/proc/{p}/task"):
        with open(f"/proc/{p}/task/{task}/children") as f:
          todo += [int(c) for c in f.read().split()]
    except OSError:
      pass
  return out


def _rss_mb(pid: int) -> float:
  try:
    with open(f"/proc/{pid}/status") as f:
      return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
  except (OSError, StopIteration):
    return 0.0


def run_predict(workdir: str, source: str, output: str, workers: Optional[int], cpus: Sequence[int]
                ) -> dict[str, Any]:
  """`korpat-jax predict` on `source` as its own process pinned to `cpus`: wall time, streaming time, peak RSS."""
  command = [sys.executable, "-m", "korpat_jax", "predict", "--workdir", workdir, "--input", source,
             "--output", output] + (["--workers", str(workers)] if workers is not None else [])
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  started = time.perf_counter()
  proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=lambda: os.sched_setaffinity(0, cpus))
  rss = TreeRss(proc.pid)
  log, _ = proc.communicate()
  wall = time.perf_counter() - started
  peak = rss.stop()
  if proc.returncode:
    raise RuntimeError(f"predict failed ({proc.returncode}):\n{log[-3000:]}")
  found = _SUMMARY.search(log)
  lines, seconds = (int(found.group(1)), float(found.group(2))) if found else (0, float("nan"))
  return {"wall_s": wall, "stream_s": seconds, "lines": lines, "peak_rss_mb": peak}


def run_pipeline(export: str, docs: list[str], batch_size: int, threads: int) -> dict[str, Any]:
  import torch
  import transformers
  torch.set_num_threads(threads)
  started = time.perf_counter()
  classify = transformers.pipeline("text-classification", model=export, trust_remote_code=True)
  load = time.perf_counter() - started
  classify(docs[:16], truncation=True, batch_size=batch_size)  # warm-up
  started = time.perf_counter()
  found = classify(docs, truncation=True, batch_size=batch_size)
  return {"load_s": load, "seconds": time.perf_counter() - started, "labels": [f["label"] for f in found]}


def measure(args: argparse.Namespace) -> str:
  os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: spinning threads lose shared cores
  cpus = pin_cpus(args.threads)
  root = tempfile.mkdtemp(prefix="predict-speed-")
  workdir = args.workdir or build_run(root, QUICK if args.quick else CPU, 128)
  lines = [f"# Predict at scale: `korpat-jax predict` vs transformers' pipeline "
           f"(`benchmarks/serving/predict_speed.py`), {time.strftime('%Y-%m-%d %H:%M')}", "",
           f"{machine()}; CPU flags: {_cpu_flags()}; pinned to cores {cpus}; load average before "
           f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}; commit {_commit()}.",
           f"Run: {workdir if args.workdir else 'random classifier, ' + ('tiny' if args.quick else 'cpu') + ' sizes'}"
           f"; documents: {'NSMC reviews' if SHARED_REVIEWS.is_file() else 'demo corpus lines'}, one a line.", ""]
  if args.docs:
    docs = documents(args.docs)
    source = os.path.join(root, "docs.txt")
    with open(source, "w", encoding="utf-8") as f:
      f.writelines(d + "\n" for d in docs)
    output = os.path.join(root, "predictions.jsonl")
    ours = run_predict(workdir, source, output, args.workers, cpus)
    with open(output, encoding="utf-8") as f:
      labels = [json.loads(line).get("label") for line in f]
    rows = [("`korpat-jax predict` (whole command)", len(docs) / ours["wall_s"], ours["wall_s"]),
            ("`korpat-jax predict` (streaming loop)", ours["lines"] / ours["stream_s"], ours["stream_s"])]
    agree = {}
    if not args.skip_pipeline:
      from korpat_jax.export import cli as export_cli
      export = os.path.join(root, "hf")
      if export_cli.main(["--workdir", workdir, "--out", export]) != 0:
        raise RuntimeError(f"korpat-jax export --workdir {workdir} failed")
      for batch in sorted({1, args.pipeline_batch}):
        theirs = run_pipeline(export, docs, batch, args.threads)
        rows.append((f"pipeline('text-classification'), batch {batch} (load {theirs['load_s']:.1f} s apart)",
                     len(docs) / theirs["seconds"], theirs["seconds"]))
        agree[batch] = sum(a == b for a, b in zip(labels, theirs["labels"]))
    base = {name: rate for name, rate, _ in rows if name.startswith("pipeline")}
    lines += [f"{len(docs):,} documents; predict with {args.workers if args.workers is not None else 'default'} "
              f"tokenizer workers, peak RSS {ours['peak_rss_mb']:.0f} MB.", "",
              "| runtime | docs/s | seconds | vs pipeline batch 1 | vs pipeline batch "
              f"{args.pipeline_batch} |", "|---|---:|---:|---:|---:|"]
    for name, rate, seconds in rows:
      ratios = [next((f"{rate / v:.2f}x" for k, v in base.items() if f"batch {b} " in k), "-")
                for b in (1, args.pipeline_batch)]
      lines.append(f"| {name} | {rate:,.0f} | {seconds:.1f} | {ratios[0]} | {ratios[1]} |")
    for batch, same in agree.items():
      lines.append(f"\nLabels equal to the pipeline's (batch {batch}): {same:,} of {len(docs):,}.")
  if args.memory:
    lines += ["", "Memory of `korpat-jax predict` (process tree, peak RSS) by input length:", "",
              "| lines | peak RSS (MB) | streaming docs/s | whole command (s) |", "|---:|---:|---:|---:|"]
    base_docs = documents(min(max(args.memory), 50_000))
    for count in args.memory:
      source = os.path.join(root, f"memory-{count}.txt")
      with open(source, "w", encoding="utf-8") as f:
        f.writelines(base_docs[i % len(base_docs)] + "\n" for i in range(count))
      run = run_predict(workdir, source, os.path.join(root, f"memory-{count}.jsonl"), args.workers, cpus)
      lines.append(f"| {count:,} | {run['peak_rss_mb']:.0f} | {run['lines'] / run['stream_s']:,.0f} | "
                   f"{run['wall_s']:.1f} |")
      os.remove(source)
  return "\n".join(lines) + "\n"


def _cpu_flags() -> str:
  from benchmarks.serving.onnx_speed import cpu_flags
  return cpu_flags()


def _commit() -> str:
  try:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout
    return head.strip() + (" (dirty tree)" if dirty.strip() else "")
  except OSError:
    return "unknown"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", default="", help="a fine-tuned sequence-classification run (default: random)")
  parser.add_argument("--docs", type=int, default=20_000, help="documents for the speed table (0: none)")
  parser.add_argument("--memory", default="", help="comma-separated line counts for the memory table")
  parser.add_argument("--workers", type=int, default=None, help="predict --workers (default: predict's own)")
  parser.add_argument("--threads", type=int, default=2, help="cores for each side")
  parser.add_argument("--pipeline-batch", type=int, default=32)
  parser.add_argument("--skip-pipeline", action="store_true")
  parser.add_argument("--quick", action="store_true", help="tiny random model, 200 documents")
  parser.add_argument("--out", required=True)
  args = parser.parse_args(list(argv) if argv is not None else None)
  args.memory = [int(x) for x in args.memory.split(",") if x.strip()]
  if args.quick:
    args.docs = min(args.docs, 200)
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  write_report(args.out, measure(args))
  return 0


if __name__ == "__main__":
  sys.exit(main())
