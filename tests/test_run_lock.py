"""korpat_jax.run_lock: one pretrain / finetune / prepare per directory, stale locks taken over."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from helpers import REPO, pretrain_config
from korpat_jax import run_lock
from korpat_jax.corpus import cli as prepare_cli
from korpat_jax.run_lock import LOCK_NAME, RunLock, RunLocked


def _write_lock(directory, **fields):
  record = {"command": "pretrain", "host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
            "heartbeat": time.time(), "token": "other", **fields}
  (directory / LOCK_NAME).write_text(json.dumps(record))


def _dead_pid() -> int:
  done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
  return int(done.stdout)


def test_the_lock_names_its_holder_and_goes_with_the_run(tmp_path):
  with run_lock.hold(str(tmp_path), "pretrain") as lock:
    held = json.loads((tmp_path / LOCK_NAME).read_text())
    assert held["pid"] == os.getpid() and held["host"] == socket.gethostname() and held["command"] == "pretrain"
    assert held["token"] == lock.token
  assert not (tmp_path / LOCK_NAME).exists()


def test_a_second_run_is_refused_in_one_line_naming_the_holder(tmp_path):
  with run_lock.hold(str(tmp_path), "finetune"):
    with pytest.raises(RunLocked) as refused:
      RunLock(str(tmp_path), "finetune").acquire()
  message = str(refused.value)
  assert "\n" not in message and f"pid {os.getpid()} on {socket.gethostname()}" in message
  assert "`finetune`" in message and "one run per directory" in message and LOCK_NAME in message


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path, caplog):
  _write_lock(tmp_path, pid=_dead_pid())
  with caplog.at_level(logging.WARNING, logger="korpat_jax"):
    with run_lock.hold(str(tmp_path), "pretrain") as lock:
      assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == lock.token
  assert any("taking over" in r.message and "has ended" in r.message for r in caplog.records)
  assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left aside


def test_another_hosts_lock_is_stale_only_without_heartbeat(tmp_path):
  _write_lock(tmp_path, host="node-7", pid=1, heartbeat=time.time() - 5)
  with pytest.raises(RunLocked, match="node-7"):
    RunLock(str(tmp_path), "pretrain", stale_after_s=60).acquire()
  _write_lock(tmp_path, host="node-7", pid=1, heartbeat=time.time() - 120)
  with run_lock.hold(str(tmp_path), "pretrain", stale_after_s=60) as lock:
    assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == lock.token


def test_the_heartbeat_is_renewed_while_the_run_lives(tmp_path):
  with run_lock.hold(str(tmp_path), "pretrain", heartbeat_s=0.05):
    first = json.loads((tmp_path / LOCK_NAME).read_text())["heartbeat"]
    deadline = time.time() + 10
    while json.loads((tmp_path / LOCK_NAME).read_text())["heartbeat"] == first and time.time() < deadline:
      time.sleep(0.05)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["heartbeat"] > first


HOLD = """
import sys, time
from korpat_jax.run_lock import RunLock, RunLocked
lock = RunLock(sys.argv[1], "pretrain")
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # both start at the same moment
try:
  lock.acquire()
except RunLocked:
  print("refused"); sys.exit(0)
print("acquired", flush=True); time.sleep(3); lock.release()
"""


def test_of_two_runs_started_together_exactly_one_gets_the_directory(tmp_path):
  start = time.time() + 3
  runs = [subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), str(start)], stdout=subprocess.PIPE,
                           text=True, cwd=REPO) for _ in range(2)]
  outcomes = sorted(p.communicate(timeout=120)[0].strip() for p in runs)
  assert outcomes == ["acquired", "refused"]


def test_train_refuses_a_workdir_in_use(tmp_path):
  from korpat_jax.train import train
  workdir = tmp_path / "run"
  with run_lock.hold(str(workdir), "pretrain"):
    with pytest.raises(RunLocked, match="is in use by `pretrain`"):
      train(pretrain_config("tiny", **{"train.num_steps": 2}), str(workdir))
    assert not (workdir / "checkpoints").exists() and not (workdir / "config.json").exists()


def test_prepare_refuses_an_out_in_use_and_the_cli_says_it_in_one_line(tmp_path):
  corpus, out = tmp_path / "corpus.txt", tmp_path / "records"
  corpus.write_text("한 문장.\n", encoding="utf-8")
  args = ["--corpus", str(corpus), "--tokenizer", str(tmp_path), "--out", str(out), "--seq-len", "48"]
  with run_lock.hold(str(out), "prepare"):
    with pytest.raises(RunLocked, match="is in use by `prepare`"):
      prepare_cli.main(args)
    done = subprocess.run([sys.executable, "-m", "korpat_jax", "prepare", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
  assert done.returncode != 0
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("korpat-jax prepare: error:") and "in use by" in lines[0]
