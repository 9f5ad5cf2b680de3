"""The largest pretraining batch that fits: a linear prediction from the timed rows' memory estimates, then a bounded
binary search of probes around it, each probe a fresh process (it sees the whole device, reports its own peak, and
gives every byte back when it exits, out-of-memory or not)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

from .build import build
from .grid import ENTRY, Case, Profile, log, profile
from .measure import compile_run, device_memory, setup_jax, step

RESULT_TAG = "GPU_BENCH_RESULT "
OOM_MARKS = ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory", "OOM")
Probe = Callable[[Case, float], dict[str, Any]]


def predict(points: list[tuple[int, float, float]], limit: float, lo: int, step_: int) -> int:
  """The batch whose XLA estimate reaches 97% of `limit`: the line through the smallest and largest timed
  (batch, need, state) points; from one point, state + batch x its per-sequence temporaries; without points,
  twice the largest known fit."""
  down = lambda b: max(step_, int(b) // step_ * step_)
  if len(points) >= 2:
    (b1, n1, _), (b2, n2, _) = sorted(points)[0], sorted(points)[-1]
    slope = (n2 - n1) / (b2 - b1) if b2 != b1 else 0.0
    intercept = n1 - slope * b1
  elif points:
    b1, n1, s1 = points[0]
    slope, intercept = (n1 - s1) / b1, s1
  else:
    slope, intercept = 0.0, 0.0
  return down((0.97 * limit - intercept) / slope) if slope > 0 else down(2 * max(lo, step_))


def search(template: Case, points: list[tuple[int, float, float]], limit: float, prof: Profile, deadline: float,
           run_probe: Probe, known_fit: int = 0, min_probe_s: float = 0.0,
           progress: Optional[Callable[[dict[str, Any]], None]] = None) -> dict[str, Any]:
  """The largest batch of `template` that fits, from at most `prof.probes` probes. Points are timed rows, so their
  batches are known to fit, as is `known_fit`. No probe starts with less than `min_probe_s` left; `progress` gets
  the summary after every probe."""
  step_ = prof.batch_step
  down = lambda b: max(step_, int(b) // step_ * step_)
  lo = max([known_fit] + [b for b, _, _ in points])
  if points and lo == max(b for b, _, _ in points):
    source = "a timed row"
  else:
    source = "the remat-off search" if known_fit else "none"
  predicted = predict(points, limit, lo, step_)
  guess = max(predicted, lo + step_)
  hi, tried, best = None, [], None

  def summary() -> dict[str, Any]:
    return {"template": dataclasses.asdict(template), "predicted": predicted, "largest_fit": lo,
            "smallest_fail": hi, "largest_fit_from": source, "probes": list(tried), "best_probe": best,
            "limit_bytes": limit, "status": "ok" if tried else "not run: time budget (probes)"}

  while len(tried) < prof.probes and time.time() + min_probe_s <= deadline:
    result = run_probe(dataclasses.replace(template, batch=guess, name=f"probe b{guess}"), deadline)
    tried.append(result)
    if result.get("unfinished"):  # the budget ended it: says nothing about the batch, and no time is left
      if progress:
        progress(summary())
      break
    if result.get("fits"):
      lo, best, source = guess, result, "a probe"
    else:
      hi = guess
    if progress:
      progress(summary())
    if hi is None:
      guess = down(guess * 1.25) if down(guess * 1.25) > guess else guess + step_
    else:
      guess = down((lo + hi) // 2)
      if guess <= lo or hi - lo <= step_:
        break
  return summary()


def probe(args: argparse.Namespace) -> int:
  """In a fresh process: builds one case, compiles it, and runs it unless XLA's estimate already exceeds the
  limit; prints one result line."""
  prof = profile(args.cpu_smoke)
  spec = json.loads(args.probe)
  case = Case(**spec["case"])
  import jax
  from korpat_jax.mfu import mfu
  setup_jax(args.cache_dir)
  on_cpu = jax.devices()[0].platform == "cpu"
  result: dict[str, Any] = {"batch": case.batch, "fits": False}
  limit = spec.get("limit_bytes") or device_memory()["bytes_limit"]
  result["limit_bytes"] = limit
  try:
    with tempfile.TemporaryDirectory(prefix="gpu_probe_") as work:
      run = build(case, prof, on_cpu, None, work)
      compile_run(run)
      result.update(run["memory"], compile_s=run["compile_s"])
      need = run["memory"]["need_bytes"]
      if limit and need and need > limit:
        result["why"] = "XLA's estimate exceeds the device limit"
      else:
        times = [step(run) for _ in range(2)]  # the first pays for first-run set-up; the second is the figure
        result.update(fits=True, step_s=times[-1], peak_bytes=device_memory()["peak_bytes"], loss=run["losses"][-1],
                      tokens_per_s=case.batch * run["seq"] / times[-1],
                      mfu=mfu(run["flops"], times[-1], 1, jax.devices()[0].device_kind))
  except Exception as e:  # noqa: BLE001 - an out-of-memory error is a result here
    text = f"{type(e).__name__}: {e}"
    oom = any(s in text for s in OOM_MARKS)
    result.update(fits=False, why=("out of memory: " if oom else "failed: ") + text[:300], error=not oom)
  print(RESULT_TAG + json.dumps(result), flush=True)
  return 0


def probe_result(stdout: str, stderr: str, returncode: int, batch: int) -> dict[str, Any]:
  """A probe process's result line, or why there is none (a crash, e.g. the driver killing it, is no fit)."""
  lines = [line for line in stdout.splitlines() if line.startswith(RESULT_TAG)]
  if lines:
    return json.loads(lines[-1][len(RESULT_TAG):])
  tail = (stderr or stdout).strip().splitlines()[-3:]
  text = " | ".join(tail)
  oom = any(s in text for s in OOM_MARKS)
  return {"batch": batch, "fits": False, "why": f"probe exited {returncode}: {text}"[:400],
          "error": returncode != 0 and not oom}


def probe_process(args: argparse.Namespace, env: dict[str, str], limit: Optional[float]) -> Probe:
  """Runs each probe as `python -m benchmarks.gpu --probe` in its own process, killed at the deadline."""
  def run(case: Case, deadline: float) -> dict[str, Any]:
    spec = {"case": dataclasses.asdict(case), "limit_bytes": limit}
    command = [sys.executable, "-m", ENTRY, "--probe", json.dumps(spec), "--cache-dir", args.cache_dir]
    command += ["--cpu-smoke"] if args.cpu_smoke else []
    t0 = time.time()
    try:
      done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=max(5.0, deadline - t0))
    except subprocess.TimeoutExpired:  # the budget ran out, not the probe: no answer, not a failure
      return {"batch": case.batch, "fits": False, "why": "not finished: time budget", "error": False,
              "unfinished": True}
    result = probe_result(done.stdout, done.stderr, done.returncode, case.batch)
    result["wall_s"] = time.time() - t0
    log(f"probe batch {case.batch}: {'fits' if result['fits'] else result.get('why', 'does not fit')} "
        f"({result['wall_s']:.1f}s)")
    return result
  return run
