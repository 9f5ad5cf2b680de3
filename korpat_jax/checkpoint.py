"""Orbax checkpoints of the train state and the input iterator.

One `Checkpointer` per run directory (`WORKDIR/checkpoints`). A checkpoint is a Composite of
  state: the train state pytree (params, optimizer state, step, rng), saved sharded, restorable onto any mesh;
  data:  the Grain iterator state (one JSON per process), present when the run reads records.
Saves are async: the next train step runs while the previous save is written.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint import checkpoint_managers as policies

from korpat_jax.errors import KorpatError

STATE, DATA = "state", "data"


def _data_args(iterator: Any, save: bool) -> Any:
  import grain  # only runs that read records pay for grain here
  return grain.checkpoint.CheckpointSave(iterator) if save else grain.checkpoint.CheckpointRestore(iterator)


class Checkpointer:
  """CheckpointManager with the project's policies: every `interval` steps, on preemption, keep the latest `keep`;
  with `best_metric`, also the checkpoint whose saved metrics hold the highest value of it (fine-tuning)."""

  def __init__(self, directory: str, *, interval: int, keep: int, async_save: bool = True,
               read_only: bool = False, best_metric: Optional[str] = None):
    self.directory = os.path.abspath(directory)
    save_policy = policies.AnySavePolicy([policies.FixedIntervalPolicy(max(1, interval)),
                                          policies.PreemptionCheckpointingPolicy()])
    keep_policy = policies.LatestN(max(1, keep))
    best_fn = None
    if best_metric:
      best_fn = lambda metrics: metrics[best_metric]  # noqa: E731 - also makes Orbax write and re-read metrics
      keep_policy = policies.AnyPreservationPolicy([keep_policy, policies.BestN(
          get_metric_fn=best_fn, n=1, keep_checkpoints_without_metrics=False)])
    absl_logger = logging.getLogger("absl")  # Orbax warns that a read-only manager is read-only
    level = absl_logger.level
    if read_only:
      absl_logger.setLevel(logging.ERROR)
    try:
      options = ocp.CheckpointManagerOptions(
          save_decision_policy=save_policy,
          preservation_policy=keep_policy,
          best_fn=best_fn,
          enable_async_checkpointing=async_save,
          read_only=read_only,
          create=not read_only,
      )
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    finally:
      absl_logger.setLevel(level)

  @staticmethod
  def latest_in(directory: str) -> Optional[int]:
    """The latest finalised step in `directory` (None when there is none), read from the directory names alone:
    no CheckpointManager, whose creation every process would have to enter in the same order."""
    if not os.path.isdir(directory):
      return None
    steps = [int(name) for name in os.listdir(directory)
             if name.isdigit() and os.path.isdir(os.path.join(directory, name))]
    return max(steps, default=None)

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, data_iterator: Any = None, *, force: bool = False,
           metrics: Optional[dict[str, float]] = None) -> bool:
    """Saves when the policy says so (or `force`); returns whether a save started. `metrics` rank it for
    `best_metric`."""
    items = {STATE: ocp.args.StandardSave(state)}
    if data_iterator is not None:
      items[DATA] = _data_args(data_iterator, save=True)
    return self._manager.save(step, args=ocp.args.Composite(**items), force=force, metrics=metrics)

  def restore(self, step: int, abstract_state: Any, data_iterator: Any = None) -> Any:
    """Restores `state` laid out as `abstract_state` (ShapeDtypeStructs carrying the target shardings).

    The iterator, when given and saved, is restored in place.
    """
    self._check_step(step)
    items = {STATE: ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None and DATA in self._saved_items(step):
      items[DATA] = _data_args(data_iterator, save=False)
    return self._manager.restore(step, args=ocp.args.Composite(**items))[STATE]

  def restore_params_on_host(self, step: Optional[int] = None) -> tuple[int, Any]:
    """(step, params) as numpy arrays on one host CPU device, whatever mesh saved them. For export and init_from.

    The abstract tree comes from the item's own metadata: the saved shardings name devices that this machine may
    not have. Unreadable checkpoints (partial, foreign) become one-line KorpatErrors.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise KorpatError(f"{self.directory}: no checkpoint found")
    self._check_step(step)
    item = os.path.join(self.directory, str(step), STATE)
    try:
      metadata = ocp.StandardCheckpointHandler().metadata(epath.Path(item))
      device = jax.local_devices(backend="cpu")[0]
      sharding = jax.sharding.SingleDeviceSharding(device)
      abstract = jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding),
                                        metadata)
      state = self._manager.restore(step, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore(abstract)}))
    except Exception as e:  # Orbax raises many types for a truncated or foreign directory
      first_line = (str(e).strip().splitlines() or [""])[0][:300]
      raise KorpatError(f"{item}: cannot read the checkpoint (partial, or not a korpat-jax train state?): "
                        f"{type(e).__name__}: {first_line}") from None
    state = state[STATE]
    if "params" not in state:
      raise KorpatError(f"{item}: the train state has no 'params' (keys: {sorted(state)})")
    return step, jax.tree_util.tree_map(np.asarray, state["params"])

  def _saved_items(self, step: int) -> set[str]:
    return set(os.listdir(os.path.join(self.directory, str(step))))

  def _check_step(self, step: int) -> None:
    steps = self.all_steps()
    if step not in steps:
      raise KorpatError(f"{self.directory}: no checkpoint at step {step} (saved steps: {steps or 'none'})")

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
