"""Faults in the shared loop: SIGTERM / SIGINT, non-finite numbers, damaged checkpoints, full disks,
run-directory identity (bad records: test_bad_records.py). Each scenario fails if its behaviour breaks."""

from __future__ import annotations

import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import REPO, pretrain_config, run_params, train_losses, xla_flags
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.errors import ConfigError, KorpatError
from korpat_jax.nonfinite import NonFiniteError, NonFiniteGuard
from korpat_jax.tasks.pretraining import validate as validate_pretraining
from korpat_jax.preemption import PREEMPTED
from korpat_jax.train import train


def _cli(workdir, *args, env_devices=1):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(env_devices))
  return [sys.executable, "-m", "korpat_jax", "pretrain", "--config", "configs/pretrain.py:tiny", "--workdir",
          str(workdir), *args], env


def _wait_for_step(log: pathlib.Path, popen, step: int, timeout: float = 240) -> None:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    text = log.read_text(errors="replace") if log.exists() else ""
    if f"train step {step}/" in text:
      return
    if popen.poll() is not None:
      pytest.fail(f"exited early ({popen.returncode}):\n{text[-2000:]}")
    time.sleep(0.1)
  popen.kill()
  pytest.fail(f"no step {step} within {timeout}s")


# -- preemption ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_the_current_step_and_the_rerun_continues_bit_for_bit(tmp_path, signum):
  steps = ["--config.train.num_steps=400", "--config.train.log_every=1", "--config.train.checkpoint_every=1000"]
  reference = tmp_path / "reference"
  subprocess.run(_cli(reference, *steps)[0], cwd=REPO, env=_cli(reference)[1], check=True, capture_output=True)
  workdir, log = tmp_path / "run", tmp_path / "run.log"
  command, env = _cli(workdir, *steps)
  with open(log, "w") as out:
    popen = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
  _wait_for_step(log, popen, random.Random(signum).randint(20, 120))
  popen.send_signal(signum)
  assert popen.wait(timeout=120) == PREEMPTED, log.read_text()[-2000:]
  text = log.read_text()
  assert "Traceback" not in text and f"exit code {PREEMPTED}" in text
  saved = Checkpointer.latest_in(str(workdir / "checkpoints"))
  assert saved is not None and 20 <= saved < 400
  logged = max(train_losses(workdir))
  assert logged == saved  # stopped right after the step it saved
  subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
  resumed, full = train_losses(workdir), train_losses(reference)
  assert sorted(resumed) == list(range(1, 401))
  assert all(resumed[s] == full[s] for s in range(1, 401)), "the resumed run's losses differ from the reference"
  for (path, x), (_, y) in zip(jax.tree_util.tree_leaves_with_path(run_params(reference)[1]),
                               jax.tree_util.tree_leaves_with_path(run_params(workdir)[1])):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


def test_sigterm_with_grain_workers_leaves_no_process_behind(tmp_path):
  psutil = pytest.importorskip("psutil")
  workdir, log = tmp_path / "run", tmp_path / "run.log"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  command = [sys.executable, "-m", "korpat_jax", "pretrain", "--config", "configs/pretrain.py:demo", "--workdir",
             str(workdir), "--config.data.worker_count=2", "--config.train.num_steps=2000",
             "--config.train.log_every=1", "--config.train.eval_every=0"]
  with open(log, "w") as out:
    popen = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
  _wait_for_step(log, popen, 3, timeout=300)
  children = psutil.Process(popen.pid).children(recursive=True)
  assert len(children) >= 2, "expected Grain worker processes"
  popen.send_signal(signal.SIGTERM)
  assert popen.wait(timeout=120) == PREEMPTED, log.read_text()[-2000:]
  _, alive = psutil.wait_procs(children, timeout=15)
  assert not alive, f"left behind: {[p.cmdline()[:3] for p in alive]}"
  assert (workdir / "checkpoints").exists() and any((workdir / "checkpoints").glob("*/data"))


# -- numerics ---------------------------------------------------------------------------------------------------


def test_apply_gradients_skips_a_non_finite_update():
  import optax
  from korpat_jax.train_state import apply_gradients, new_state
  tx = optax.sgd(0.1)
  state = new_state({"w": jnp.ones(3)}, tx, jax.random.PRNGKey(0))
  bad = {"w": jnp.array([1.0, jnp.nan, 0.0])}
  skipped, metrics = apply_gradients(state, bad, tx, jnp.float32(1.0), skip_nonfinite=True)
  np.testing.assert_array_equal(skipped.params["w"], state.params["w"])
  assert int(skipped.step) == 1 and float(metrics["nonfinite"]) == 1.0
  applied, _ = apply_gradients(state, bad, tx, jnp.float32(1.0), skip_nonfinite=False)
  assert np.isnan(np.asarray(applied.params["w"])).any()
  _, fine = apply_gradients(state, {"w": jnp.ones(3)}, tx, jnp.float32(jnp.inf), skip_nonfinite=True)
  assert float(fine["nonfinite"]) == 1.0  # a non-finite loss counts too


def test_guard_names_the_first_bad_step_and_counts_runs():
  guard = NonFiniteGuard("skip", max_in_a_row=3)
  for step, loss in enumerate([1.0, np.nan, 2.0, np.inf, np.nan], start=1):
    guard.observe(step, {"loss": jnp.float32(loss), "grad_norm": jnp.float32(1.0)})
  assert guard.check(last_saved=None) == 3  # three bad steps, at most two in a row
  guard.observe(6, {"loss": jnp.float32(1.0), "grad_norm": jnp.float32(np.nan)})
  with pytest.raises(NonFiniteError, match=r"3 steps in a row .*\(first at step 2: loss"):
    guard.check(last_saved=None)
  stop = NonFiniteGuard("stop", max_in_a_row=3)
  stop.observe(7, {"loss": jnp.float32(1.0), "grad_norm": jnp.float32(np.inf)})
  with pytest.raises(NonFiniteError, match=r"step 7: grad_norm is not finite .* last finite checkpoint is step 5"):
    stop.check(last_saved=5)


def test_nan_stops_the_run_and_nothing_non_finite_is_saved(tmp_path):
  config = pretrain_config("tiny", **{"train.num_steps": 40, "train.checkpoint_every": 1, "train.log_every": 100,
                                      "optimizer.learning_rate": 1e30, "optimizer.grad_clip_norm": 1e30})
  with pytest.raises(NonFiniteError, match=r"step \d+: (loss|grad_norm) is not finite \(train.on_nonfinite=stop\)"):
    train(config, str(tmp_path))
  ckpt = Checkpointer(str(tmp_path / "checkpoints"), interval=1, keep=3, read_only=True)
  for step in ckpt.all_steps():
    params = ckpt.restore_params_on_host(step)[1]
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params)), step


def test_skip_mode_counts_and_stops_after_n_in_a_row(tmp_path):
  config = pretrain_config("tiny", **{"train.num_steps": 40, "train.log_every": 2, "train.on_nonfinite": "skip",
                                      "train.max_nonfinite_in_a_row": 4, "optimizer.learning_rate": 1e30,
                                      "optimizer.grad_clip_norm": 1e30})
  with pytest.raises(NonFiniteError, match=r"steps in a row with a non-finite loss"):
    train(config, str(tmp_path))


def test_bad_numbers_in_the_config_are_refused(tmp_path):
  from korpat_jax import config as config_lib
  for key, value in (("optimizer.learning_rate", float("inf")), ("optimizer.weight_decay", -1.0),
                     ("objective.disc_weight", float("nan"))):
    config = pretrain_config("tiny", **{key: value})
    with pytest.raises(ConfigError, match=f"config.{key}="):
      validate_pretraining(config, 16)
  rest, overrides = config_lib.split_overrides(["--config.optimizer.learning_rate=1e999"])
  config = pretrain_config("tiny")
  config_lib.apply_overrides(config, overrides)
  with pytest.raises(ConfigError, match="config.optimizer.learning_rate=inf: must be a finite number"):
    validate_pretraining(config, 16)


# -- damaged checkpoints ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("ckpts")
  train(pretrain_config("tiny", **{"train.num_steps": 20, "train.checkpoint_every": 10, "train.keep_checkpoints": 3}),
        str(workdir))
  return workdir


def _largest_array_file(step_dir: pathlib.Path) -> pathlib.Path:
  """The biggest file of the state item: array data (tensorstore / OCDBT), not metadata."""
  files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and not p.name.startswith("_")]
  return max(files, key=lambda p: p.stat().st_size)


def _truncate(step_dir):
  path = _largest_array_file(step_dir)
  path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _delete_array(step_dir):
  _largest_array_file(step_dir).unlink()


def _flip_bytes(step_dir):
  path = _largest_array_file(step_dir)
  data = bytearray(path.read_bytes())
  for i in range(len(data) // 3, len(data) // 3 + 16):
    data[i] ^= 0xFF
  path.write_bytes(bytes(data))


def _empty_metadata(step_dir):
  (step_dir / "state" / "_METADATA").write_bytes(b"")


def _missing_metadata(step_dir):
  (step_dir / "state" / "_METADATA").unlink()


def _missing_state(step_dir):
  shutil.rmtree(step_dir / "state")


def _missing_state_without_checksums(step_dir):
  """A checkpoint from before checksums (or killed before they were written): the restore itself fails."""
  (step_dir / "korpat_checksums.json").unlink()
  metadata = step_dir / "state" / "_METADATA"
  metadata.write_bytes(metadata.read_bytes()[:100])


@pytest.mark.parametrize("damage", [_truncate, _delete_array, _flip_bytes, _empty_metadata, _missing_metadata,
                                    _missing_state, _missing_state_without_checksums])
def test_a_damaged_latest_checkpoint_is_moved_aside_and_the_previous_restores(two_checkpoints, tmp_path, damage,
                                                                              caplog):
  workdir = tmp_path / "run"
  shutil.copytree(two_checkpoints, workdir)
  damage(workdir / "checkpoints" / "20")
  config = pretrain_config("tiny", **{"train.num_steps": 20, "train.checkpoint_every": 10,
                                      "train.keep_checkpoints": 3})
  with caplog.at_level("WARNING", logger="korpat_jax"):
    train(config, str(workdir))
  assert (workdir / "checkpoints" / "_broken" / "20").is_dir()
  assert "cannot be restored" in caplog.text and "moved to" in caplog.text
  # Resumed from 10 and trained again to 20: the same params as the undamaged run (exact resume).
  for (path, x), (_, y) in zip(jax.tree_util.tree_leaves_with_path(run_params(two_checkpoints, 20)[1]),
                               jax.tree_util.tree_leaves_with_path(run_params(workdir, 20)[1])):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


def test_no_checkpoint_restores_is_one_line(two_checkpoints, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(two_checkpoints, workdir)
  for step in (10, 20):
    _missing_state(workdir / "checkpoints" / str(step))
  with pytest.raises(KorpatError, match=r"no checkpoint restores \(moved to _broken/: 20 .*; 10 .*\)"):
    train(pretrain_config("tiny", **{"train.num_steps": 20, "train.checkpoint_every": 10}), str(workdir))


def test_non_finite_values_in_a_checkpoint_are_broken(two_checkpoints, tmp_path, monkeypatch):
  workdir = tmp_path / "run"
  shutil.copytree(two_checkpoints, workdir)
  (workdir / "checkpoints" / "20" / "korpat_checksums.json").unlink()
  real_restore = Checkpointer.restore

  def poisoned(self, step, abstract_state, data_iterator=None):
    state = real_restore(self, step, abstract_state, data_iterator)
    if step == 20:
      state = state.replace(params=jax.tree.map(lambda x: x * jnp.nan, state.params))
    return state

  monkeypatch.setattr(Checkpointer, "restore", poisoned)
  train(pretrain_config("tiny", **{"train.num_steps": 20, "train.checkpoint_every": 10, "train.keep_checkpoints": 3}),
        str(workdir))
  assert (workdir / "checkpoints" / "_broken" / "20").is_dir()


# -- full disks and write errors ----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
  mount = tmp_path / "disk"
  mount.mkdir()
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
  if result.returncode:
    pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.decode().strip()}")
  yield mount
  subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_run_with_one_line(small_disk):
  workdir = small_disk / "run"
  # A tiny checkpoint on 16 devices takes 3.5-6.5 MB (arrays, metadata, sharding; OCDBT writes more, smaller data
  # files when the machine is loaded): the first always fits in 16 MB, the fifth never does.
  config = pretrain_config("tiny", **{"train.num_steps": 100, "train.checkpoint_every": 5,
                                      "train.keep_checkpoints": 20})
  with pytest.raises(KorpatError, match=r"(saving the checkpoint failed|writing metrics failed).*free"):
    train(config, str(workdir))
  good = [s for s in Checkpointer(str(workdir / "checkpoints"), interval=1, keep=10, read_only=True).all_steps()]
  assert good and all(np.isfinite(x).all() for x in jax.tree.leaves(run_params(workdir, good[0])[1]))


def test_a_partial_last_line_in_metrics_jsonl_does_not_block_resume(two_checkpoints, tmp_path, caplog):
  workdir = tmp_path / "run"
  shutil.copytree(two_checkpoints, workdir)
  shutil.rmtree(workdir / "checkpoints" / "20")
  with open(workdir / "metrics.jsonl", "a") as f:
    f.write('{"split": "train", "step": 2')
  with caplog.at_level("WARNING", logger="korpat_jax"):
    train(pretrain_config("tiny", **{"train.num_steps": 20, "train.checkpoint_every": 10}), str(workdir))
  assert "not a JSON object" in caplog.text
  assert max(train_losses(workdir)) == 20


def test_metrics_write_failure_is_one_line(tmp_path, monkeypatch):
  from korpat_jax.metrics import MetricWriter
  writer = MetricWriter(str(tmp_path))

  def fail(*a, **k):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(writer._sinks[1]._file, "write", fail)
  with pytest.raises(KorpatError, match=r"metrics.jsonl: writing metrics failed \(No space left on device; .* free"):
    writer.write(1, {"loss": 1.0})


# -- identity of a run directory ----------------------------------------------------------------------------------


def test_a_changed_schedule_stops_unless_allowed(two_checkpoints, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(two_checkpoints, workdir)
  config = pretrain_config("tiny", **{"train.num_steps": 30, "train.checkpoint_every": 10})
  with pytest.raises(ConfigError, match=r"the schedule differs from the run's \(num_steps 20 -> 30\); set "
                                        r"--config.train.allow_schedule_change=true"):
    train(config, str(workdir))
  config.train.allow_schedule_change = True
  train(config, str(workdir))
  assert Checkpointer.latest_in(str(workdir / "checkpoints")) == 30


def test_resuming_on_other_records_or_tokenizer_stops(tmp_path, demo_tok_dir):
  from korpat_jax import workdir as w
  workdir = tmp_path / "w"
  workdir.mkdir()
  (workdir / "model.json").write_text(json.dumps({"identity": {"vocab_sha256": "a" * 64, "records": "r1",
                                                               "schedule": {"num_steps": 10}}}))
  with pytest.raises(ConfigError, match="this run was trained on aaaaaaaaaaaa..., this config reads another tokenizer"):
    w.check_identity(str(workdir), {"vocab_sha256": "b" * 64, "records": "r1"}, False, resuming=True)
  with pytest.raises(ConfigError, match="other records"):
    w.check_identity(str(workdir), {"vocab_sha256": "a" * 64, "records": "r2"}, False, resuming=True)
  w.check_identity(str(workdir), {"vocab_sha256": "b" * 64}, False, resuming=False)  # a fresh run: no check


def test_vocab_size_must_match_the_records_and_demo_never_builds_outside_the_workdir(tmp_path):
  from korpat_jax.corpus.demo import build_demo_if_absent
  config = pretrain_config("demo", **{"data.records_dir": str(tmp_path / "typo" / "records")})
  with pytest.raises(ConfigError, match=r"config.data.records_dir=.*typo/records: no records there .* only under "
                                        r"--workdir"):
    build_demo_if_absent(config, str(tmp_path / "w"))
  assert not (tmp_path / "typo").exists()
