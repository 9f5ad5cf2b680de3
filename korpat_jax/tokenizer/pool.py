"""Worker processes for the tokenizer package: each worker builds its heavy state once (a tagger, a tokenizer).

  pool = WorkerPool(4, MorphAnalyzer, user_dic)    # MorphAnalyzer(user_dic) in each worker
  pool.imap(segment_block, blocks)                # segment_block(analyzer, block) runs in the workers
  pool.close()

With one worker nothing is started (unless `in_process=False`: one worker process that works while the caller does
something else): the state is built here and the tasks run in this process, so callers have one code path. Task functions must be module-level (they are pickled by name).

Not `multiprocessing.Pool`: its three helper threads (tasks, results, worker upkeep) take CPU from the workers in
turns of the GIL; on a machine with as many cores as workers that cost batch_encode about a tenth of its
throughput. Here the calling thread itself sends each idle worker its next task over a pipe and waits on the
pipes: one task in flight per worker (so neither side can block the other on a full pipe), results yielded in
order, and a worker that dies is reported instead of waited on forever.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import sys
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class WorkerError(RuntimeError):
  """A worker process died, or could not build its state."""


def process_context():
  """fork where it is safe (Linux, no JAX threads yet): fast, and scripts need no __main__ guard; else spawn."""
  method = "fork" if sys.platform.startswith("linux") and "jax" not in sys.modules else "spawn"
  return multiprocessing.get_context(method)


def usable_cpus() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def _send_result(conn, ok: bool, value: Any) -> None:
  try:
    conn.send((ok, value))
  except Exception as e:   # an unpicklable result or exception: send what it was
    conn.send((False, WorkerError(f"worker could not send back {type(value).__name__}: {e}")))


def _worker_main(conn, build: Callable[..., Any], args: tuple, parent: int) -> None:
  """Build the state, then run `(fn, item)` tasks until told to stop (None) or the parent goes away (checked
  every second while idle: other workers forked later hold copies of this pipe, so its EOF may never come)."""
  os.environ["TOKENIZERS_PARALLELISM"] = "false"
  try:
    state = build(*args)
  except BaseException as e:   # reported with the first task
    state, failure = None, WorkerError(f"worker could not start: {type(e).__name__}: {e}")
  else:
    failure = None
  gc.freeze()   # the state lives as long as the worker: keep it out of every garbage-collector pass
  while True:
    try:
      if not conn.poll(1.0):
        if os.getppid() != parent:
          return
        continue
      task = conn.recv()
    except (EOFError, OSError):
      return
    if task is None:
      return
    if failure is not None:
      _send_result(conn, False, failure)
      continue
    fn, item = task
    try:
      result = fn(state, item)
    except BaseException as e:
      _send_result(conn, False, e)
    else:
      _send_result(conn, True, result)


class WorkerPool:
  """`workers` processes, each holding `build(*args)`; tasks are `fn(state, item)`. One imap at a time."""

  def __init__(self, workers: int, build: Callable[..., Any], *args: Any, in_process: bool | None = None):
    """`in_process`: run the tasks in this process (default: when `workers` is 1)."""
    self.workers = max(1, workers)
    self._local = None
    self._conns: list = []
    self._procs: list = []
    if in_process if in_process is not None else self.workers == 1:
      self._local = build(*args)
      return
    ctx = process_context()
    for _ in range(self.workers):
      parent_end, child_end = ctx.Pipe()
      proc = ctx.Process(target=_worker_main, args=(child_end, build, args, os.getpid()), daemon=True)
      proc.start()
      child_end.close()
      self._conns.append(parent_end)
      self._procs.append(proc)
    atexit.register(self.close)

  @property
  def pids(self) -> list[int]:
    """The worker processes' ids (none when the tasks run in this process)."""
    return [p.pid for p in self._procs]

  def imap(self, fn: Callable[[Any, T], R], items: Iterable[T]) -> Iterator[R]:
    """Results in the order of `items`, as they come; a task's exception is raised here."""
    if not self._conns:
      return (fn(self._local, item) for item in items)
    return self._imap(fn, iter(items))

  def _imap(self, fn, items: Iterator) -> Iterator:
    idle = list(self._conns)
    busy: dict[Any, int] = {}   # connection -> sequence number of its task
    done: dict[int, tuple[bool, Any]] = {}
    sentinels = {p.sentinel: conn for p, conn in zip(self._procs, self._conns)}
    sent = next_out = 0
    exhausted = False
    try:
      while True:
        while idle and not exhausted:
          item = next(items, _END)
          if item is _END:
            exhausted = True
            break
          conn = idle.pop()
          try:
            conn.send((fn, item))
          except (BrokenPipeError, ConnectionResetError):
            raise WorkerError(f"a tokenizer worker process died (exit code {self._exit_code(conn)})") from None
          busy[conn] = sent
          sent += 1
        while next_out in done:
          ok, value = done.pop(next_out)
          next_out += 1
          if not ok:
            raise value
          yield value
        if not busy:
          return
        for ready in wait([*busy, *(s for s, c in sentinels.items() if c in busy)]):
          conn = sentinels.get(ready, ready)
          if conn not in busy:
            continue
          seq = busy.pop(conn)
          try:
            done[seq] = conn.recv()   # a worker that died leaves its pipe readable at EOF
          except (EOFError, OSError):
            raise WorkerError(f"a tokenizer worker process died (exit code {self._exit_code(conn)}) during a "
                              f"task") from None
          idle.append(conn)
    finally:
      self._drain(busy)

  def _exit_code(self, conn) -> int | None:
    return self._procs[self._conns.index(conn)].exitcode

  def _drain(self, busy: dict) -> None:
    """Read and drop the results of tasks still in flight (an imap left early), so the next imap starts clean."""
    for conn in list(busy):
      try:
        conn.recv()
      except (EOFError, OSError):
        pass

  def map(self, fn: Callable[[Any, T], R], items: Iterable[T]) -> list[R]:
    return list(self.imap(fn, items))

  def close(self) -> None:
    if not self._procs:
      return
    for conn in self._conns:
      try:
        conn.send(None)
      except (OSError, ValueError):
        pass
    for proc in self._procs:
      proc.join(timeout=5)
      if proc.is_alive():
        proc.terminate()
        proc.join()
    for conn in self._conns:
      conn.close()
    self._conns, self._procs = [], []
    atexit.unregister(self.close)

  def __enter__(self) -> "WorkerPool":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


_END = object()
