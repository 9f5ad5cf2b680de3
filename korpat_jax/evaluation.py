"""Evaluation on the shared loop: the driver that feeds a split through the compiled eval step, the best evaluation
by the task's main metric (W/eval/metrics.json, its prediction files, the metrics its checkpoint is kept by), and
the test split scored once with the best checkpoint.

    evaluator = Evaluator(task, steps.eval_step, steps.batch_sharding, seed, BestEval(workdir, metric, start), writer)
    kept = evaluator.evaluate(step, state.params)     # None, or the metrics to save with this step's checkpoint
    evaluator.test(num_steps, state.params, restore)  # after training
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import jax
import numpy as np

from korpat_jax import files, input_pipeline, workdir as workdir_lib
from korpat_jax.errors import ConfigError, KorpatError
from korpat_jax.tasks.base import Batch, EvalResult, Task

if TYPE_CHECKING:
  from korpat_jax.metrics import MetricWriter

log = logging.getLogger("korpat_jax")

EvalFn = Callable[[Any, Any, jax.Array], Any]  # (params, global batch, rng) -> outputs: the jitted eval step


def evaluate_split(task: Task, eval_fn: EvalFn, params: Any, split: str, batch_sharding: jax.sharding.Sharding,
                   seed: int) -> Optional[EvalResult]:
  """Feeds the task's global eval batches through the compiled eval step (each process its rows) and hands the
  gathered outputs back to the task for scoring; None when the task has no such split."""
  batches = task.eval_batches(split)
  if batches is None:
    return None
  rng = jax.random.PRNGKey(seed + 1)

  def outputs() -> Iterator[tuple[Batch, Any]]:
    for i, batch in enumerate(batches):
      rows = len(next(iter(batch.values()))) // jax.process_count()
      lo = jax.process_index() * rows
      local = {k: np.asarray(v)[lo:lo + rows] for k, v in batch.items()}
      out = eval_fn(params, input_pipeline.to_global(local, batch_sharding), jax.random.fold_in(rng, i))
      yield batch, jax.device_get(out)

  return task.evaluate(split, outputs())


def console_keys(task: Task, result: EvalResult) -> tuple[str, ...]:
  """The scalar scores to print, the task's main metric first and the loss left out."""
  keys = [k for k in result.scalars() if k not in ("loss",)]
  if task.main_metric in keys:
    keys.remove(task.main_metric)
    keys.insert(0, task.main_metric)
  return tuple(keys)


class BestEval:
  """The best evaluation so far by the task's main metric: W/eval/metrics.json and its prediction files, written
  only once the checkpoint of its step is complete (`saved`), so that eval/ never names a step without one.

  Without a main metric every evaluation is kept as the latest, at once. On resume, a best recorded after the
  checkpoint being resumed from, or whose checkpoint is gone, is forgotten."""

  def __init__(self, workdir: str, main_metric: Optional[str], start_step: int):
    self.workdir, self.main = workdir, main_metric
    self.step, self.value = 0, -np.inf
    self._unsaved: Optional[tuple[int, EvalResult]] = None  # the best whose checkpoint is being written
    saved = workdir_lib.read_json_if_exists(files.join(workdir, "eval", "metrics.json"))
    if main_metric and saved and 0 < int(saved.get("step", 0)) <= start_step and main_metric in saved and \
        files.isdir(files.join(workdir_lib.checkpoint_dir(workdir), str(saved["step"]))):
      self.step, self.value = int(saved["step"]), float(saved[main_metric])

  def offer(self, step: int, result: EvalResult) -> Optional[dict[str, float]]:
    """Records `result` when it is the best so far; returns the metrics to save with its checkpoint then (None
    otherwise). Only new bests carry metrics, so they rise strictly and Orbax's BestN(1) keeps exactly this one."""
    if self.main is None:
      self.write("eval", step, result)
      return None
    if self.main not in result.scores:
      raise ConfigError(f"the task's main metric {self.main!r} is not among its eval scores {sorted(result.scores)}")
    value = float(result.scores[self.main])
    if self.step and not value > self.value:
      return None
    self.step, self.value = step, value
    self._unsaved = (step, result)
    log.info("eval step %d: best %s so far (%.4f)", step, self.main, value)
    return {self.main: value}

  def saved(self, step: int) -> None:
    """The checkpoint of `step` is complete: writes the best evaluation's files when they are that step's."""
    if self._unsaved is not None and self._unsaved[0] == step:
      self.write("eval", *self._unsaved)
      self._unsaved = None

  def write(self, split: str, step: int, result: EvalResult) -> None:
    """W/SPLIT/metrics.json and the result's prediction files (process 0); a write that fails (a full disk) stops
    the run in one line."""
    if jax.process_index() != 0:
      return
    directory = files.join(self.workdir, split)
    try:
      files.makedirs(directory)
      if result.write is not None:
        result.write(directory)
      main = {"main": self.main} if self.main else {}
      workdir_lib.write_json(files.join(directory, "metrics.json"), {"step": step, **main, **result.scores})
    except OSError as e:
      raise KorpatError(f"{directory}: writing the {split} results failed ({e.strerror or e}; {files.free_space(directory)})"
                        "; free space and rerun (the checkpoints are intact)") from None

  def has_scores(self, split: str) -> bool:
    """Whether `split` was already scored with the best checkpoint (a rerun of a finished run scores it once)."""
    saved = workdir_lib.read_json_if_exists(files.join(self.workdir, split, "metrics.json"))
    return bool(saved) and (not self.step or int(saved.get("step", -1)) == self.step)


class Evaluator:
  """The loop's evaluations: the eval split during training (logged, the best kept), the test split after it."""

  def __init__(self, task: Task, eval_fn: EvalFn, batch_sharding: jax.sharding.Sharding, seed: int, best: BestEval,
               writer: MetricWriter):
    self.task, self.eval_fn, self.batch_sharding, self.seed = task, eval_fn, batch_sharding, seed
    self.best, self.writer = best, writer

  def _run(self, params: Any, split: str) -> Optional[EvalResult]:
    return evaluate_split(self.task, self.eval_fn, params, split, self.batch_sharding, self.seed)

  def evaluate(self, step: int, params: Any) -> Optional[dict[str, float]]:
    """Scores the eval split at `step` and logs it; returns the metrics to save with this step's checkpoint when it
    is the best so far (BestEval.offer), else None."""
    result = self._run(params, "eval")
    if result is None:
      return None
    self.writer.write(step, result.scalars(), prefix="eval")
    self.writer.console(step, result.scalars(), prefix="eval", keys=console_keys(self.task, result))
    return self.best.offer(step, result)

  def test(self, last_step: int, params: Any, restore_params: Callable[[int], Any]) -> None:
    """The test split, scored once with the best checkpoint (`restore_params(step)`; the last step's `params` when
    the task keeps no best or the last step is the best)."""
    if not last_step or self.task.eval_batches("test") is None or self.best.has_scores("test"):
      return
    if self.best.step and self.best.step != last_step:
      params = restore_params(self.best.step)
    result = self._run(params, "test")
    if result is not None:
      step = self.best.step or last_step
      self.best.write("test", step, result)
      self.writer.console(step, result.scalars(), prefix="test", keys=console_keys(self.task, result))
