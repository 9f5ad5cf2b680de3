"""The multi-host path on one machine: two `korpat-jax pretrain` processes of 4 CPU devices each form one 8-device
mesh (localhost coordinator, gloo collectives) and must end where one process on 8 devices ends.

Equal params after a few steps show that each process fed its own rows of the global batch (the synthetic stream
and the Grain pipeline both slice by `jax.process_index()`) and that gradients were all-reduced across processes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np
import pytest

from helpers import COLLECTIVE_TIMEOUTS, REPO
from korpat_jax import workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.model import ElectraConfig, ElectraPretrainer
from korpat_jax.optimizer import make_optimizer
from korpat_jax.pretraining_step import create_train_state

NUM_STEPS = 6
ATOL = 1e-5
TIMEOUT_S = 480  # per scenario (three processes); generous for a loaded 2-core machine
# O0 LLVM codegen: a third less compile time for every process; all runs of a comparison use the same flags.
XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_force_host_platform_device_count={} " + COLLECTIVE_TIMEOUTS


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@dataclasses.dataclass
class _Process:
  name: str
  log: pathlib.Path
  popen: subprocess.Popen

  def tail(self, lines: int = 30) -> str:
    text = self.log.read_text(errors="replace").splitlines()
    return f"--- {self.name} (rc {self.popen.returncode}), {self.log}:\n" + "\n".join(text[-lines:])


def _start(name: str, logdir: pathlib.Path, devices: int, args: list[str]) -> _Process:
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=XLA_FLAGS.format(devices))
  log = logdir / f"{name}.log"
  with open(log, "w") as out:  # a file, not a pipe: a full pipe would stall a process inside a collective
    popen = subprocess.Popen([sys.executable, "-m", "korpat_jax", "pretrain", *args], cwd=REPO, env=env,
                             stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
  return _Process(name, log, popen)


def _wait_all(processes: list[_Process], timeout_s: float) -> None:
  """Waits for every process to exit 0; on timeout or a failure kills the rest (by process group) and fails."""
  deadline = time.monotonic() + timeout_s
  failed = timed_out = False
  try:
    while any(p.popen.poll() is None for p in processes):
      # A failed rank leaves the others waiting in a collective until the coordinator gives up: stop at once.
      failed = any(p.popen.returncode not in (None, 0) for p in processes)
      timed_out = time.monotonic() > deadline
      if failed or timed_out:
        break
      time.sleep(0.5)
  finally:
    for p in processes:
      if p.popen.poll() is None:
        os.killpg(p.popen.pid, signal.SIGKILL)
        p.popen.wait()
  if timed_out or failed or any(p.popen.returncode != 0 for p in processes):
    reason = f"timed out after {timeout_s:.0f}s" if timed_out else "a process failed"
    pytest.fail(f"{reason}\n" + "\n".join(p.tail() for p in processes))


def _two_processes_and_reference(root: pathlib.Path, args: list[str]) -> tuple[pathlib.Path, pathlib.Path]:
  """Runs `args` as 2 processes x 4 devices and, at the same time, as 1 process x 8 devices; their workdirs."""
  multi, single = root / "two_processes", root / "one_process"
  common = ["--config", "configs/pretrain.py:tiny", f"--config.train.num_steps={NUM_STEPS}", *args]
  coordinator = f"127.0.0.1:{_free_port()}"
  processes = [
      _start(f"process{i}", root, 4, [*common, "--workdir", str(multi), "--config.distributed.mode=explicit",
                                      f"--config.distributed.coordinator_address={coordinator}",
                                      "--config.distributed.num_processes=2", f"--config.distributed.process_id={i}"])
      for i in range(2)]
  processes.append(_start("reference", root, 8, [*common, "--workdir", str(single), "--config.distributed.mode=off"]))
  _wait_all(processes, TIMEOUT_S)
  return multi, single


def _run_config(workdir: pathlib.Path) -> ml_collections.ConfigDict:
  with open(workdir / workdir_lib.CONFIG_JSON) as f:
    return ml_collections.ConfigDict(json.load(f))


def _initial_params(workdir: pathlib.Path) -> dict:
  """The params a run starts from, rebuilt from its config.json."""
  config = _run_config(workdir)
  model = ElectraPretrainer(ElectraConfig.from_config(config.model))
  tx, _ = make_optimizer(config.optimizer, config.train.num_steps)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  state = jax.jit(lambda: create_train_state(model, tx, config.seed, config.train.seq_len), out_shardings=device)()
  return jax.tree.map(np.asarray, state.params)


def _params(workdir: pathlib.Path) -> dict:
  ckpt = Checkpointer(workdir_lib.checkpoint_dir(str(workdir)), interval=1, keep=1, read_only=True)
  assert ckpt.all_steps() == [NUM_STEPS]
  return ckpt.restore_params_on_host(NUM_STEPS)[1]


def _train_steps(workdir: pathlib.Path) -> list[int]:
  with open(workdir / "metrics.jsonl") as f:
    return [r["step"] for r in map(json.loads, f) if r["split"] == "train"]


def _assert_same_training(multi: pathlib.Path, single: pathlib.Path) -> None:
  assert _train_steps(multi) == _train_steps(single) == [5, 6]  # one metrics writer (process 0), not two
  got, want = _params(multi), _params(single)  # on one host device, whatever devices saved them
  initial = _initial_params(single)
  moved = max(float(np.abs(w - i).max()) for w, i in zip(jax.tree.leaves(want), jax.tree.leaves(initial)))
  assert moved > 100 * ATOL, f"training barely moved the params ({moved}): the comparison would prove nothing"
  want_by_path = dict(jax.tree_util.tree_leaves_with_path(want))
  for path, x in jax.tree_util.tree_leaves_with_path(got):
    np.testing.assert_allclose(x, want_by_path[path], rtol=0, atol=ATOL, err_msg=jax.tree_util.keystr(path))


@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory):
  return _two_processes_and_reference(tmp_path_factory.mktemp("multihost_synthetic"), [])


@pytest.fixture(scope="module")
def records_runs(tmp_path_factory):
  """Real records: the demo corpus through the MWP tokenizer and the corpus preparation."""
  from korpat_jax.corpus.demo import build_demo_data
  data = tmp_path_factory.mktemp("multihost_data")
  build_demo_data(str(data / "records"), str(data / "tokenizer"), vocab_size=800, seq_len=64)
  return _two_processes_and_reference(tmp_path_factory.mktemp("multihost_records"), [
      "--config.data.source=records", f"--config.data.records_dir={data / 'records'}",
      "--config.model.vocab_size=-1"])


def test_two_processes_train_like_one_on_the_synthetic_stream(synthetic_runs):
  _assert_same_training(*synthetic_runs)


@pytest.mark.slow  # ~60-70 s more; the Grain split by process is also unit-tested in tests/test_input_pipeline.py
def test_two_processes_train_like_one_on_grain_records(records_runs):
  multi, single = records_runs
  _assert_same_training(multi, single)
  data_state = workdir_lib.checkpoint_dir(str(multi)) + f"/{NUM_STEPS}/data"
  assert sorted(os.listdir(data_state)) == ["commit_success.txt", "process_0-of-2.json", "process_1-of-2.json"]


def _two_processes(root: pathlib.Path, workdir: pathlib.Path, args: list[str], name: str = "p") -> list[_Process]:
  coordinator = f"127.0.0.1:{_free_port()}"
  return [_start(f"{name}{i}", root, 4, ["--config", "configs/pretrain.py:tiny", "--workdir", str(workdir), *args,
                                         "--config.distributed.mode=explicit",
                                         f"--config.distributed.coordinator_address={coordinator}",
                                         "--config.distributed.num_processes=2",
                                         f"--config.distributed.process_id={i}"])
          for i in range(2)]


def _wait_for_log(process: _Process, text: str, timeout_s: float) -> None:
  deadline = time.monotonic() + timeout_s
  while text not in process.log.read_text(errors="replace"):
    if process.popen.poll() is not None or time.monotonic() > deadline:
      pytest.fail(f"no {text!r}:\n{process.tail()}")
    time.sleep(0.2)


def _exit_codes(processes: list[_Process], timeout_s: float) -> list[int]:
  deadline = time.monotonic() + timeout_s
  while any(p.popen.poll() is None for p in processes) and time.monotonic() < deadline:
    time.sleep(0.2)
  for p in processes:
    if p.popen.poll() is None:
      os.killpg(p.popen.pid, signal.SIGKILL)
      p.popen.wait()
  return [p.popen.returncode for p in processes]


def test_sigterm_to_one_process_stops_both_after_one_agreed_checkpoint(tmp_path):
  from korpat_jax.preemption import PREEMPTED
  workdir = tmp_path / "run"
  processes = _two_processes(tmp_path, workdir, ["--config.train.num_steps=100000", "--config.train.log_every=1",
                                                 "--config.train.checkpoint_every=100000"])
  try:
    _wait_for_log(processes[0], "train step 5/", TIMEOUT_S)
    processes[1].popen.send_signal(signal.SIGTERM)  # the signal reaches one process only (a spot VM, one node)
    codes = _exit_codes(processes, 120)
  finally:
    for p in processes:
      if p.popen.poll() is None:
        os.killpg(p.popen.pid, signal.SIGKILL)
  assert codes == [PREEMPTED, PREEMPTED], "\n".join(p.tail() for p in processes)
  steps = Checkpointer(workdir_lib.checkpoint_dir(str(workdir)), interval=1, keep=1, read_only=True).all_steps()
  assert len(steps) == 1 and 5 <= steps[0] < 100000
  for p in processes:
    assert f"after step {steps[0]}" in p.log.read_text()


def test_a_dead_peer_makes_the_survivor_exit_within_the_bound(tmp_path):
  workdir = tmp_path / "run"
  processes = _two_processes(tmp_path, workdir, ["--config.train.num_steps=100000", "--config.train.log_every=1",
                                                 "--config.distributed.heartbeat_timeout_s=10"])
  try:
    _wait_for_log(processes[0], "train step 5/", TIMEOUT_S)
    os.killpg(processes[1].popen.pid, signal.SIGKILL)
    start = time.monotonic()
    codes = _exit_codes(processes[:1], 90)
    elapsed = time.monotonic() - start
  finally:
    for p in processes:
      if p.popen.poll() is None:
        os.killpg(p.popen.pid, signal.SIGKILL)
  assert codes[0] not in (0, None) and elapsed < 60, (codes, elapsed, processes[0].tail())
