"""korpat-jax commands run one after another in ONE worker process (one JAX import, warm compilation caches): the
benchmark's tokenizer, prepare, pretrain, import-hf and finetune runs.

    python -m benchmarks.transfer.worker JOBS.json RESULTS.jsonl

Each job is `korpat-jax ARGV` exactly as on the command line (`korpat_jax.cli.main`), its output in its own log
file; a job that fails is reported and the next one runs. A job that succeeds writes its `done` file (the marker
that makes a rerun skip it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Optional, Sequence

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Job:
  name: str                    # what the progress line calls it
  argv: list[str]              # korpat-jax's arguments
  log: str                     # the job's stdout and stderr
  done: Optional[str] = None   # written ({"seconds": ...}) when the job succeeds


def write_json(path: str | Path, value) -> None:
  """Atomically (a finished marker is never half-written)."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(value, indent=1, ensure_ascii=False), encoding="utf-8")
  os.replace(tmp, path)


def worker_env(cache_dir: str) -> dict[str, str]:
  """The environment of the worker: JAX's persistent compilation cache under the benchmark's directory (the many
  fine-tuning runs of one set compile one program), unless the caller set one."""
  env = dict(os.environ)
  env.setdefault("JAX_COMPILATION_CACHE_DIR", cache_dir)
  env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  env.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
  return env


def run_jobs(jobs: Sequence[Job], scratch: Path, cache_dir: str) -> dict[str, dict]:
  """Runs the jobs in one worker process; {job name: {"rc", "seconds", "log"}}."""
  if not jobs:
    return {}
  scratch.mkdir(parents=True, exist_ok=True)
  stamp = time.strftime("%Y%m%d-%H%M%S")
  jobs_file, results_file = scratch / f"jobs-{stamp}.json", scratch / f"results-{stamp}.jsonl"
  jobs_file.write_text(json.dumps([dataclasses.asdict(j) for j in jobs], indent=1, ensure_ascii=False))
  results_file.unlink(missing_ok=True)
  subprocess.run([sys.executable, "-m", "benchmarks.transfer.worker", str(jobs_file), str(results_file)],
                 cwd=REPO, env=worker_env(cache_dir), check=False)
  results = {}
  if results_file.exists():
    for line in results_file.read_text(encoding="utf-8").splitlines():
      row = json.loads(line)
      results[row["name"]] = row
  for job in jobs:  # the worker itself died (e.g. out of memory) before reporting these
    results.setdefault(job.name, {"name": job.name, "rc": -1, "seconds": 0.0, "log": job.log})
  return results


@contextlib.contextmanager
def _output_to(path: str):
  """This process's stdout and stderr file descriptors (so also XLA's and child processes' output) into `path`."""
  Path(path).parent.mkdir(parents=True, exist_ok=True)
  sys.stdout.flush()
  sys.stderr.flush()
  saved = os.dup(1), os.dup(2)
  try:
    with open(path, "a", encoding="utf-8") as log:
      os.dup2(log.fileno(), 1)
      os.dup2(log.fileno(), 2)
      try:
        yield
      finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
  finally:
    os.close(saved[0])
    os.close(saved[1])


def _run_one(job: Job) -> int:
  from korpat_jax import cli
  with _output_to(job.log):
    print("korpat-jax " + " ".join(job.argv), flush=True)
    try:
      return int(cli.main(job.argv) or 0)
    except SystemExit as e:  # argparse
      return e.code if isinstance(e.code, int) else 1
    except Exception:  # noqa: BLE001 - reported in the job's log; the next job runs
      traceback.print_exc()
      return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
  jobs_file, results_file = argv if argv is not None else sys.argv[1:]
  jobs = [Job(**j) for j in json.loads(Path(jobs_file).read_text(encoding="utf-8"))]
  for i, job in enumerate(jobs, 1):
    t0 = time.perf_counter()
    rc = _run_one(job)
    seconds = time.perf_counter() - t0
    if rc == 0 and job.done:
      write_json(job.done, {"seconds": seconds, "argv": job.argv})
    with open(results_file, "a", encoding="utf-8") as f:
      f.write(json.dumps({"name": job.name, "rc": rc, "seconds": seconds, "log": job.log}) + "\n")
    status = "done" if rc == 0 else f"FAILED (exit {rc}), see {job.log}"
    print(f"  [{i}/{len(jobs)}] {job.name}: {status} in {seconds:.0f} s", flush=True)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
