"""Worker processes for the tokenizer package: each worker builds its heavy state once (a tagger, a tokenizer).

  pool = WorkerPool(4, MorphAnalyzer, user_dic)    # MorphAnalyzer(user_dic) in each worker
  pool.imap(segment_block, blocks)                # segment_block(analyzer, block) runs in the workers
  pool.close()

With one worker nothing is started: the state is built here and the tasks run in this process, so callers have one
code path. Task functions must be module-level (they are pickled by name).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_STATE: Any = None   # what this worker process built


def process_context():
  """fork where it is safe (Linux, no JAX threads yet): fast, and scripts need no __main__ guard; else spawn."""
  method = "fork" if sys.platform.startswith("linux") and "jax" not in sys.modules else "spawn"
  return multiprocessing.get_context(method)


def usable_cpus() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def _init_worker(build: Callable[..., Any], args: tuple) -> None:
  global _STATE
  os.environ["TOKENIZERS_PARALLELISM"] = "false"
  _STATE = build(*args)


def _run_task(task: tuple[Callable[[Any, T], R], T]) -> R:
  fn, item = task
  return fn(_STATE, item)


class WorkerPool:
  """`workers` processes, each holding `build(*args)`; tasks are `fn(state, item)`."""

  def __init__(self, workers: int, build: Callable[..., Any], *args: Any):
    self.workers = max(1, workers)
    self.pool = None   # the multiprocessing pool; None when the tasks run in this process
    self._local = None
    if self.workers == 1:
      self._local = build(*args)
    else:
      self.pool = process_context().Pool(self.workers, _init_worker, (build, args))
      atexit.register(self.close)

  def imap(self, fn: Callable[[Any, T], R], items: Iterable[T]) -> Iterator[R]:
    """Results in the order of `items`, as they come."""
    if self.pool is None:
      return (fn(self._local, item) for item in items)
    return self.pool.imap(_run_task, ((fn, item) for item in items))

  def map(self, fn: Callable[[Any, T], R], items: Iterable[T]) -> list[R]:
    if self.pool is None:
      return [fn(self._local, item) for item in items]
    return self.pool.map(_run_task, [(fn, item) for item in items])

  def close(self) -> None:
    if self.pool is not None:
      self.pool.terminate()
      self.pool.join()
      self.pool = None
      atexit.unregister(self.close)

  def __enter__(self) -> "WorkerPool":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
