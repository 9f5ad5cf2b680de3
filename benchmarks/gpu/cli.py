"""The arguments and the orchestrating process: it holds no device; it runs the worker, then the probes of the
largest-batch searches, publishing the report after each."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .grid import ENTRY, REPO, SEARCHES, Case, log, profile
from .report import publish
from .search import probe, probe_process, search
from .worker import worker

WORKER_GRACE_S = 90.0  # past its deadline, for the HLO and trace, before the worker is killed


def child_env(cpu_smoke: bool) -> dict[str, str]:
  """The worker's and probes' environment: one device (no fake CPU devices), cheap compiles on the smoke run."""
  env = dict(os.environ)
  flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
  if cpu_smoke:
    env["JAX_PLATFORMS"] = "cpu"
    flags += ["--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true"]
  env["XLA_FLAGS"] = " ".join(flags)
  env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.9")  # as launch/xla_gpu_flags.sh
  env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
  return env


def search_candidates(rows: dict[str, Any]) -> list[dict[str, Any]]:
  """Timed pretraining rows a search can start from: no attention dropout, the model's own vocab projection."""
  return [r for r in rows.values() if r.get("status") == "ok" and r["task"] == "pretrain"
          and r["attention"] != "explicit" and not r["vocab_all"]]


def run_searches(report: dict[str, Any], args: argparse.Namespace, env: dict[str, str], deadline: float,
                 save: Callable[[str], None]) -> None:
  """Largest batch, remat off then on, with the attention of the fastest timed dropout-free pretraining row."""
  prof = profile(args.cpu_smoke)
  searches = report.setdefault("searches", {})
  plain = search_candidates(report["rows"])
  no_remat = [r for r in plain if not r["remat"]]
  if not no_remat:
    for title in SEARCHES:
      searches[title] = {"status": "not run: no timed pretraining row to start from"}
    return
  attention = max(no_remat, key=lambda r: r["tokens_per_s"])["attention"]
  # The smoke run has no device limit: 1.6x the largest estimate makes one.
  limit = (1.6 * max(r["need_bytes"] for r in no_remat) if args.cpu_smoke
           else (report.get("memory") or {}).get("bytes_limit"))
  run_probe = probe_process(args, env, limit if args.cpu_smoke else None)
  # A probe compiles one pretraining step in a fresh process: about what the worker's slowest compile took.
  min_probe_s = 0.0 if args.cpu_smoke else 15.0 + max(r["compile_s"] for r in no_remat)
  for title, remat in zip(SEARCHES, (False, True)):
    if limit is None:
      searches[title] = {"status": "not run: the device reports no memory limit"}
      continue
    same = [r for r in plain if r["attention"] == attention and r["remat"] == remat and r.get("need_bytes")]
    points = [(r["batch"], r["need_bytes"], r["state_bytes"]) for r in same]
    # What fits without remat fits with it (remat only drops activations).
    known = (searches.get(SEARCHES[0], {}).get("largest_fit") or 0) if remat else 0
    template = Case(title, "pretrain", 0, attention=attention, remat=remat)

    def progress(summary: dict[str, Any], title: str = title) -> None:
      searches[title] = summary
      save(f"probes: {title}")

    searches[title] = search(template, points, limit, prof, deadline, run_probe, known, min_probe_s, progress)
    save(f"probes: {title} done")


def failures(report: dict[str, Any], cpu_smoke: bool) -> list[str]:
  """What makes the exit status 1: failed rows and erroring probes; on the smoke run, anything not run too."""
  rows, searches = report["rows"], report.get("searches", {})
  failed = [n for n, r in rows.items() if r.get("status", "").startswith("failed")]
  failed += [t for t, s in searches.items() if any(p.get("error") for p in s.get("probes", []))]
  if cpu_smoke:
    failed += [n for n, r in rows.items() if r.get("status") != "ok"]
    failed += [t for t, s in searches.items() if s.get("status") != "ok"]
  return failed


def orchestrate(args: argparse.Namespace) -> int:
  prof = profile(args.cpu_smoke)
  args.budget_s = args.budget_s or prof.budget_s
  start = time.time()
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  for stale in ("gpu.json", "gpu.md", "best_step.hlo.txt.gz", "trace_best.tar.gz"):
    (out / stale).unlink(missing_ok=True)
  args.cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="gpu_bench_cache_")
  env = child_env(args.cpu_smoke)
  worker_deadline = start + args.budget_s * prof.worker_share
  command = [sys.executable, "-m", ENTRY, "--worker", "--out", str(out), "--cache-dir", args.cache_dir,
             "--deadline", str(worker_deadline), "--started", str(start), "--budget-s", str(args.budget_s)]
  command += ["--cpu-smoke"] if args.cpu_smoke else []
  try:
    code: Any = subprocess.run(command, env=env, timeout=worker_deadline - time.time() + WORKER_GRACE_S).returncode
  except subprocess.TimeoutExpired:
    code = "timeout"
  if not (out / "gpu.json").is_file():
    print(f"gpu_bench: the worker wrote no results (exit {code})", file=sys.stderr)
    return 1
  report = json.loads((out / "gpu.json").read_text(encoding="utf-8"))
  report["worker_exit"] = code
  if code != 0:
    report["notes"].append(f"the worker ended with exit {code} at stage '{report.get('stage')}'")

  def save(stage: str) -> None:
    report["stage"] = stage
    publish(report, out, prof, args.cpu_smoke)

  save("worker done; probes next")
  run_searches(report, args, env, start + args.budget_s, save)
  report["stage"] = "done"
  print(publish(report, out, prof, args.cpu_smoke))
  failed = failures(report, args.cpu_smoke)
  if failed:
    log(f"not as expected: {', '.join(failed)}")
  return 1 if failed else 0


def parse_args(argv: Optional[Sequence[str]], description: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_out", help="where tables, HLO and trace go")
  parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on CPU, 1-2 steps a case")
  parser.add_argument("--budget-s", type=float, default=0.0, help="wall-clock budget (default: 330 GPU, 900 smoke)")
  parser.add_argument("--cache-dir", default="", help="persistent compilation cache (default: a new temporary one)")
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--probe", default="", help=argparse.SUPPRESS)
  parser.add_argument("--deadline", type=float, default=0.0, help=argparse.SUPPRESS)
  parser.add_argument("--started", type=float, default=0.0, help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None, description: str = "") -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if argv[:1] == ["wheels"]:
    from . import wheels
    return wheels.main(argv[1:])
  if argv[:1] == ["preflight"]:
    from . import preflight
    return preflight.main(argv[1:])
  args = parse_args(argv, description)
  if args.worker:
    return worker(args)
  if args.probe:
    return probe(args)
  return orchestrate(args)
