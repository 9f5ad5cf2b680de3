"""The tokenizer's worker pool: order, errors from tasks and from dead workers, an imap left early."""

from __future__ import annotations

import os

import pytest

from korpat_jax.tokenizer.pool import WorkerError, WorkerPool


class _State:
  def __init__(self, offset: int, fail: bool = False):
    if fail:
      raise ValueError("no state today")
    self.offset = offset
    self.pid = os.getpid()


def _add(state: _State, item: int) -> tuple[int, int]:
  return item + state.offset, state.pid


def _fail_on_three(state: _State, item: int) -> int:
  if item == 3:
    raise KeyError(f"item {item}")
  return item


def _die(state: _State, item: int) -> int:
  if item == 2:
    os._exit(7)
  return item


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_in_order_from_every_worker(workers):
  with WorkerPool(workers, _State, 100) as pool:
    results = pool.map(_add, range(50))
    assert [r for r, _ in results] == list(range(100, 150))
    pids = {pid for _, pid in results}
    if workers == 1:
      assert pids == {os.getpid()} and pool.pids == []
    else:
      assert pids <= set(pool.pids) and len(pool.pids) == workers and os.getpid() not in pids
    assert pool.map(_add, []) == []


def test_task_error_is_raised_with_its_type_and_the_pool_stays_usable():
  with WorkerPool(2, _State, 0) as pool:
    with pytest.raises(KeyError, match="item 3"):
      pool.map(_fail_on_three, range(10))
    assert [r for r, _ in pool.map(_add, range(5))] == list(range(5))


def test_an_imap_left_early_does_not_leak_into_the_next():
  with WorkerPool(2, _State, 0) as pool:
    it = pool.imap(_add, range(100))
    assert next(it)[0] == 0
    it.close()
    assert [r for r, _ in pool.map(_add, range(20, 30))] == list(range(20, 30))


def test_a_dead_worker_is_reported_not_waited_on():
  with WorkerPool(2, _State, 0) as pool:
    with pytest.raises(WorkerError, match="died"):
      pool.map(_die, range(6))


def test_a_worker_that_cannot_build_its_state_says_why():
  with WorkerPool(2, _State, 0, True) as pool:
    with pytest.raises(WorkerError, match="could not start: ValueError: no state today"):
      pool.map(_add, range(3))


def _alive(pid: int) -> bool:
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except FileNotFoundError:
    return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_workers_leave_when_the_parent_is_gone(tmp_path):
  """The parent dies without cleanup while a process it forked later (holding copies of the pool's pipes, so
  the workers see no EOF) lives on: the workers still leave within seconds."""
  import subprocess
  import sys
  import time
  script = tmp_path / "parent.py"
  script.write_text(
      "import multiprocessing, os, sys, time\n"
      "sys.path.insert(0, sys.argv[2])\n"
      "from korpat_jax.tokenizer.pool import WorkerPool, process_context\n"
      "from test_tokenizer_pool import _State, _add\n"
      "pool = WorkerPool(2, _State, 0)\n"
      "pool.map(_add, range(4))\n"
      "holder = process_context().Process(target=time.sleep, args=(30,))\n"
      "holder.start()\n"
      "open(sys.argv[1], 'w').write(' '.join(map(str, pool.pids + [holder.pid])))\n"
      "os._exit(0)\n", encoding="utf-8")
  pids_file = tmp_path / "pids"
  subprocess.run([sys.executable, str(script), str(pids_file), os.path.dirname(__file__)], check=True, timeout=60)
  *workers, holder = [int(p) for p in pids_file.read_text().split()]
  try:
    deadline = time.time() + 10
    while time.time() < deadline and any(map(_alive, workers)):
      time.sleep(0.2)
    assert not any(map(_alive, workers))
    assert _alive(holder)   # the pipes' other copies were still open: EOF alone would not have ended them
  finally:
    if _alive(holder):
      os.kill(holder, 9)
