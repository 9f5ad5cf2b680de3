"""`train.on_nonfinite`: what a run does when its loss or gradient norm is not finite.

  stop (default): the run stops with one line naming the step and the metric; nothing non-finite is saved, so the
                  latest checkpoint is the last finite one.
  skip:           the update is skipped on device (train_state.apply_gradients) and counted (`nonfinite` in the
                  metrics); the run stops after `train.max_nonfinite_in_a_row` skipped steps in a row.

The guard folds each step's metrics into a few device scalars (no host sync); they are read at log steps and
before every checkpoint, where the loop syncs anyway.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp

from korpat_jax.errors import KorpatError

MODES = ("stop", "skip")


class NonFiniteError(KorpatError):
  """A non-finite loss or gradient norm under on_nonfinite=stop, or too many skipped steps in a row."""


@jax.jit
def _fold(guard: dict[str, jax.Array], step: jax.Array, loss: jax.Array, grad_norm: jax.Array
          ) -> dict[str, jax.Array]:
  bad_loss, bad_norm = ~jnp.isfinite(loss), ~jnp.isfinite(grad_norm)
  bad = bad_loss | bad_norm
  first = (guard["first_step"] < 0) & bad
  run = jnp.where(bad, guard["run"] + 1, 0)
  return {
      "first_step": jnp.where(first, step, guard["first_step"]),
      "first_metric": jnp.where(first, jnp.where(bad_loss, 1, 2), guard["first_metric"]),
      "total": guard["total"] + bad.astype(jnp.int32),
      "run": run,
      "max_run": jnp.maximum(guard["max_run"], run),
  }


class NonFiniteGuard:
  def __init__(self, mode: str, max_in_a_row: int):
    self.mode, self.max_in_a_row = mode, max_in_a_row
    self._state = {"first_step": jnp.int32(-1), "first_metric": jnp.int32(0), "total": jnp.int32(0),
                   "run": jnp.int32(0), "max_run": jnp.int32(0)}

  def observe(self, step: int, metrics: Mapping[str, jax.Array]) -> None:
    """Folds in the metrics of step `step` (1-based); asynchronous."""
    self._state = _fold(self._state, jnp.int32(step), metrics["loss"], metrics["grad_norm"])

  def check(self, last_saved: int | None) -> int:
    """Raises NonFiniteError when the run must stop; returns the number of non-finite steps so far."""
    state = {k: int(v) for k, v in jax.device_get(self._state).items()}
    if not state["total"]:
      return 0
    metric = {1: "loss", 2: "grad_norm"}[state["first_metric"]]
    kept = f"the last finite checkpoint is step {last_saved}" if last_saved else "no checkpoint was saved"
    if self.mode == "stop":
      raise NonFiniteError(f"step {state['first_step']}: {metric} is not finite (train.on_nonfinite=stop); {kept}. "
                           "Lower optimizer.learning_rate, or set train.on_nonfinite=skip to skip such steps")
    if state["max_run"] >= self.max_in_a_row:
      raise NonFiniteError(f"{state['max_run']} steps in a row with a non-finite loss or gradient norm (first at "
                           f"step {state['first_step']}: {metric}; train.max_nonfinite_in_a_row="
                           f"{self.max_in_a_row}); {kept}")
    return state["total"]
