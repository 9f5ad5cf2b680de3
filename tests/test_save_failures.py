"""A checkpoint save that fails while Orbax writes it in the background (a full disk): the run stops at that step or
the next with one line on the console that names the error log holding the traces, eval/ never names a step whose
checkpoint is not complete, and the rerun resumes from the last complete checkpoint.

The failure is real to Orbax: its own write of `<step>/state/_METADATA`, done in its async commit thread, raises
ENOSPC (`failing_save.py`, run as the command line in a fresh process, so that what reaches the console at exit
counts too)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from helpers import DEMO_SETS, REPO, xla_flags
from korpat_jax import workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.evaluation import BestEval
from korpat_jax.tasks.base import EvalResult

# The command line with Orbax's write of the state's _METADATA failing for the step in $FAIL_STEP; the thread that
# wrote it is recorded in $FAIL_RECORD (the async commit's, not the main thread).
FAILING_SAVE = r"""
import errno, os, re, sys, threading
from orbax.checkpoint._src.path import async_path
real_write_text = async_path.write_text

async def write_text(path, text):
  if re.search(r"/%s\.orbax-checkpoint-tmp/state[^/]*/_METADATA$" % os.environ["FAIL_STEP"], str(path)):
    with open(os.environ["FAIL_RECORD"], "a") as f:
      f.write(threading.current_thread().name + "\n")
    raise OSError(errno.ENOSPC, "No space left on device", str(path))
  return await real_write_text(path, text)

async_path.write_text = write_text
from korpat_jax.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run(tmp_path, args, fail_step=None):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1), FAIL_STEP=str(fail_step or "none"),
             FAIL_RECORD=str(tmp_path / "failed_in.txt"))
  return subprocess.run([sys.executable, "-c", FAILING_SAVE, *args], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=600)


def _logged_train_steps(workdir):
  with open(workdir / "metrics.jsonl") as f:
    return [r["step"] for r in map(json.loads, f) if r["split"] == "train"]


def _one_error_line(result, command):
  """The console of a failed run: no traceback, and one error line, the last."""
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr and "never retrieved" not in result.stderr, result.stderr[-3000:]
  lines = result.stderr.strip().splitlines()
  assert [line for line in lines if "ERROR" in line or "error:" in line] == lines[-1:], result.stderr[-3000:]
  assert lines[-1].startswith(f"korpat-jax {command}: error: ")
  return lines[-1]


def _finetune(workdir, tok_dir):
  """A tiny CPC fine-tuning run: 12 steps, an evaluation (and with it a save) every 4."""
  return ["finetune", "--config", "configs/finetune.py:cpc_tiny", "--workdir", str(workdir),
          f"--config.data.train={DEMO_SETS / 'cpc_train.tsv'}", f"--config.data.eval={DEMO_SETS / 'cpc_eval.tsv'}",
          "--config.data.text_fields=title,abstract", f"--config.data.tokenizer_dir={tok_dir}",
          "--config.model.vocab_size=8000", "--config.model.embedding_size=16", "--config.model.hidden_size=16",
          "--config.model.num_layers=1", "--config.model.num_heads=2", "--config.model.intermediate_size=32",
          "--config.model.max_position_embeddings=64", "--config.train.num_steps=12", "--config.train.eval_every=4",
          "--config.train.log_every=1"]


def test_a_failed_async_save_stops_the_run_at_its_step_in_one_line_and_the_rerun_resumes(tmp_path, demo_tok_dir):
  workdir = tmp_path / "run"
  failed = _run(tmp_path, _finetune(workdir, demo_tok_dir), fail_step=8)
  threads = (tmp_path / "failed_in.txt").read_text().split()
  assert threads and "MainThread" not in threads  # the async commit's write failed, not a synchronous save
  line = _one_error_line(failed, "finetune")
  log = workdir / "logs" / "errors.log"
  assert re.fullmatch(
      rf"korpat-jax finetune: error: {workdir}/checkpoints/8: saving the checkpoint failed \(OSError: \[Errno 28\] "
      r"No space left on device: .*; [\d.]+ GiB free\); earlier checkpoints are intact: free space and rerun to "
      rf"resume from step 4 \(full trace in {log}\)", line), line
  assert max(_logged_train_steps(workdir)) in (8, 9)  # stopped at the step whose save failed, or the next
  trace = log.read_text()
  assert "Traceback" in trace and "No space left on device" in trace
  assert Checkpointer.latest_in(str(workdir / "checkpoints")) == 4
  assert workdir_lib.best_step(str(workdir)) == 4  # eval/ names the complete checkpoint

  rerun = _run(tmp_path, _finetune(workdir, demo_tok_dir))
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert f"resumed from {workdir}/checkpoints at step 4" in rerun.stderr
  assert _logged_train_steps(workdir) == list(range(1, 13))
  assert Checkpointer.latest_in(str(workdir / "checkpoints")) == 12 and workdir_lib.best_step(str(workdir))


def test_a_failed_save_of_the_best_checkpoint_writes_no_eval_files(tmp_path, demo_tok_dir):
  workdir = tmp_path / "run"
  failed = _run(tmp_path, _finetune(workdir, demo_tok_dir), fail_step=4)  # the first evaluation: always a best
  assert "eval step 4: best accuracy so far" in failed.stderr, failed.stderr[-3000:]
  line = _one_error_line(failed, "finetune")
  assert f"{workdir}/checkpoints/4: saving the checkpoint failed" in line and "no checkpoint yet" in line
  assert max(_logged_train_steps(workdir)) in (4, 5)
  assert not (workdir / "eval").exists(), "eval/ names a best step whose checkpoint was never completed"
  assert Checkpointer.latest_in(str(workdir / "checkpoints")) is None


def test_the_best_evaluation_is_written_when_its_checkpoint_is_complete(tmp_path):
  rows = [{"id": 0, "label": "H01L"}]

  def result(f1):
    return EvalResult({"f1": f1}, write=lambda d: open(os.path.join(d, "predictions.jsonl"), "w").write(
        json.dumps(rows[0]) + "\n"))

  best = BestEval(str(tmp_path), "f1", start_step=0)
  assert best.offer(10, result(0.5)) == {"f1": 0.5}
  assert not (tmp_path / "eval").exists()
  best.saved(20)  # another step's checkpoint: not this evaluation's
  assert not (tmp_path / "eval").exists()
  best.saved(10)
  assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["step"] == 10
  assert (tmp_path / "eval" / "predictions.jsonl").is_file()
  assert best.offer(30, result(0.7)) == {"f1": 0.7}  # a new best whose save then fails: eval/ stays at step 10
  assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["step"] == 10
