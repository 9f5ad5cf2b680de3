"""The worker process: builds every case, compiles them in threads, times them interleaved round by round
(A B A B, every step synchronised), then writes the best pretraining row's optimised HLO and a profiler trace.
The report is published (gpu.json, gpu.md) after every stage and every timed case, so a kill keeps the numbers."""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .build import build, finetune_data
from .grid import Profile, cases, log, not_run, profile
from .measure import compile_run, device_memory, row_of, setup_jax, step, vocab_logits_in_hlo
from .report import commit, publish

TRACE_LIMIT = 15 * 2 ** 20


def _failed(e: BaseException) -> str:
  return f"failed: {type(e).__name__}: {e}"[:400]


def build_all(prof: Profile, on_cpu: bool, work: str, deadline: float, pool: concurrent.futures.Executor,
              rows: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, concurrent.futures.Future]]:
  """Builds the cases in order until `deadline` and submits each compile; what fails or is late goes to `rows`."""
  runs, futures, initial = {}, {}, {}
  data: Any = None  # the fine-tuning files, made once; or why they could not be (not retried per case)
  for case in cases(prof):
    if time.time() > deadline:
      rows[case.name] = not_run(case, "not run: time budget (build phase)")
      continue
    try:
      if case.task != "pretrain" and data is None:
        try:
          data = finetune_data(work, prof)
        except Exception as e:  # noqa: BLE001
          data = e
      if isinstance(data, Exception) and case.task != "pretrain":
        raise data
      run = build(case, prof, on_cpu, data, work, initial)
    except Exception as e:  # noqa: BLE001 - one broken case must not stop the others
      rows[case.name] = not_run(case, _failed(e))
      continue
    runs[case.name] = run
    futures[case.name] = pool.submit(compile_run, run, deadline)
    log(f"built {case.name} ({run['setup_s']:.1f}s), compiling")
  return runs, futures


def await_compiles(runs: dict[str, dict[str, Any]], futures: dict[str, concurrent.futures.Future], deadline: float,
                   rows: dict[str, Any], notes: list[str], hard_deadline: Optional[float] = None) -> bool:
  """Waits for the compiles until `deadline` (every case compiled before any runs: the autotuner uses the device);
  drops the late, skipped and failed ones. A late compile cannot be stopped, and its autotuning would time kernels
  beside the timed rows, so timing waits for it until `hard_deadline` too. True when one is still running then."""
  concurrent.futures.wait(list(futures.values()), timeout=max(0.0, deadline - time.time()))
  late = [name for name, future in futures.items() if not future.done()]
  for name, future in futures.items():
    if name in late:
      rows[name] = not_run(runs.pop(name)["case"], "not run: time budget (still compiling)")
    elif future.exception() is not None:
      rows[name] = not_run(runs.pop(name)["case"], _failed(future.exception()))
    elif runs[name].get("skipped"):
      rows[name] = not_run(runs.pop(name)["case"], "not run: time budget (compile phase)")
  if late and hard_deadline is not None:
    concurrent.futures.wait([futures[n] for n in late], timeout=max(0.0, hard_deadline - time.time()))
  running = any(not futures[n].done() for n in late)
  if running:
    notes.append("a compile was still running while the rows were timed: the timings may be a little slow")
  return running


def warm_up(runs: dict[str, dict[str, Any]], prof: Profile, rows: dict[str, Any]) -> None:
  for name, run in list(runs.items()):
    try:
      if run["case"].task == "pretrain":
        run["vocab_logits"] = vocab_logits_in_hlo(run)
      warm = [step(run) for _ in range(prof.warmup)]
      log(f"compiled {name} in {run['compile_s']:.1f}s, warm-up step {warm[-1] * 1e3:.1f} ms")
    except Exception as e:  # noqa: BLE001 - out of memory included: the case's buffers go with it
      rows[name] = not_run(runs.pop(name)["case"], _failed(e))


def time_rounds(runs: dict[str, dict[str, Any]], prof: Profile, deadline: float, device_kind: str,
                rows: dict[str, Any], notes: list[str], save: Callable[[str], None]) -> None:
  """A B A B: every case `prof.steps` steps per round, at least one round; each row updated as it is timed."""
  for r in range(prof.rounds):
    if r and time.time() > deadline:
      notes.append(f"timing stopped after {r} of {prof.rounds} rounds (time budget)")
      return
    for name, run in list(runs.items()):
      try:
        run["times"].extend(step(run) for _ in range(prof.steps))
      except Exception as e:  # noqa: BLE001
        rows[name] = not_run(runs.pop(name)["case"], _failed(e))
        continue
      rows[name] = row_of(run, device_kind, r + 1)
      save(f"worker: timing round {r + 1} of {prof.rounds}")


def trace(run: dict[str, Any], num_steps: int, out: Path, work: str, notes: list[str]) -> Optional[str]:
  """A jax.profiler trace of `num_steps` steps as one tarball (the profiler's folders nest too deep to copy)."""
  import jax
  logdir = os.path.join(work, "trace")
  try:
    jax.profiler.start_trace(logdir)
    try:
      for i in range(num_steps):
        with jax.profiler.StepTraceAnnotation("train", step_num=i):
          step(run)
    finally:
      jax.profiler.stop_trace()
  except Exception as e:  # noqa: BLE001 - a missing profiler backend must not lose the tables
    notes.append(f"trace failed: {type(e).__name__}: {e}"[:300])
    return None
  target = out / "trace_best.tar.gz"
  for pattern in ("*", "*.trace.json.gz"):  # everything, else only the Perfetto trace when it is too large
    with tarfile.open(target, "w:gz") as tar:
      for path in sorted(Path(logdir).rglob(pattern)):
        if path.is_file():
          tar.add(path, arcname=str(path.relative_to(logdir)))
    if target.stat().st_size < TRACE_LIMIT:
      return target.name
  notes.append(f"trace tarball over 15 MiB even without the xplane files: left out ({target.stat().st_size} bytes)")
  target.unlink()
  return None


def best_artifacts(runs: dict[str, dict[str, Any]], report: dict[str, Any], prof: Profile, out: Path,
                   work: str) -> None:
  """The optimised HLO and a trace of the fastest pretraining row (the vocab-all switch is not a candidate)."""
  pretrain = [r for r in report["rows"].values() if r["task"] == "pretrain" and r["status"] == "ok"
              and not r["vocab_all"] and r["name"] in runs]
  if not pretrain:
    return
  best = max(pretrain, key=lambda r: r["tokens_per_s"])["name"]
  report["best"] = best
  hlo = out / "best_step.hlo.txt.gz"
  with gzip.open(hlo, "wt") as f:
    f.write(runs[best]["compiled"].as_text())
  report["files"]["hlo"] = hlo.name
  report["files"]["trace"] = trace(runs[best], prof.trace_steps, out, work, report["notes"])


def worker(args: argparse.Namespace) -> int:
  prof = profile(args.cpu_smoke)
  import jax
  from korpat_jax.mfu import peak_flops_per_device
  setup_jax(args.cache_dir)
  device = jax.devices()[0]
  on_cpu = device.platform == "cpu"
  out = Path(args.out)
  report: dict[str, Any] = {"device_kind": device.device_kind, "platform": device.platform, "jax": jax.__version__,
                            "peak_flops": peak_flops_per_device(device.device_kind), "commit": commit(),
                            "started": args.started or time.time(), "budget_s": args.budget_s,
                            "rows": {}, "files": {}, "notes": []}
  rows, notes = report["rows"], report["notes"]

  def save(stage: str) -> None:
    report["stage"] = stage
    publish(report, out, prof, args.cpu_smoke)

  pool = concurrent.futures.ThreadPoolExecutor(prof.compile_threads)
  with tempfile.TemporaryDirectory(prefix="gpu_bench_") as work:
    save("worker: building")
    runs, futures = build_all(prof, on_cpu, work, args.deadline - prof.reserve_s, pool, rows)
    save("worker: compiling")
    late = await_compiles(runs, futures, args.deadline - prof.reserve_s / 2, rows, notes,
                          hard_deadline=args.deadline - prof.reserve_s / 3)
    pool.shutdown(wait=False, cancel_futures=True)
    warm_up(runs, prof, rows)
    time_rounds(runs, prof, args.deadline - prof.reserve_s / 3, device.device_kind, rows, notes, save)
    report["memory"] = device_memory()
    save("worker: timed; HLO and trace next")
    log("timed")
    best_artifacts(runs, report, prof, out, work)
    report["memory"] = device_memory()
    save("worker done; probes next")
    log("trace and HLO written")
  if late:  # a compile thread would hold the exit (and the device) until it ends
    sys.stdout.flush()
    os._exit(0)
  return 0
