"""Where a run's state comes from when it is not a fresh init: the newest checkpoint of its own run directory that
restores (resume), or the parameters of another run (`config.init_from`)."""

from __future__ import annotations

import logging
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from korpat_jax import files, vocab_extension, workdir as workdir_lib
from korpat_jax.checkpoint import BROKEN, Checkpointer, error_line
from korpat_jax.errors import ConfigError, KorpatError
from korpat_jax.tasks.base import Task, TaskInput
from korpat_jax.train_state import TrainState

log = logging.getLogger("korpat_jax")


def restore_newest(task: Task, ckpt: Checkpointer, target: Any, data: TaskInput, start_step: int
                   ) -> tuple[TrainState, int, TaskInput]:
  """The newest checkpoint up to `start_step` that restores onto `target` (CompiledSteps.abstract_target()), with
  the input positioned at its step. One that cannot (missing items, changed bytes, unreadable, non-finite values)
  is reported in one line and moved to checkpoints/_broken/, and the one before it is tried."""
  broken = []
  for step in sorted((s for s in ckpt.all_steps() if s <= start_step), reverse=True):
    reason = ckpt.verify(step, needs_data=data.checkpointable is not None)
    if reason is None:
      if step != start_step:  # the input was made for the newest step: position it at this one
        data = task.make_input(step)
      try:
        state = ckpt.restore(step, target, data.checkpointable)
      except Exception as e:  # noqa: BLE001 - Orbax and tensorstore raise many types for damaged files
        reason = f"unreadable: {error_line(e)}"
      else:
        finite = jax.tree.reduce(lambda a, b: a & b, jax.tree.map(lambda x: jnp.isfinite(x).all(), state.params))
        if bool(finite):
          log.info("resumed from %s at step %d", ckpt.directory, step)
          return state, step, data
        reason = "its parameters hold non-finite values"
    broken.append(f"{step} ({reason})")
    ckpt.move_aside(step, reason)
  raise KorpatError(f"{ckpt.directory}: no checkpoint restores (moved to {BROKEN}/: {'; '.join(broken)}); "
                    "use a new --workdir to start over")


def init_from(task: Task, state: TrainState, source: str, state_sharding: Any) -> TrainState:
  """Replaces the initial params by those of another run (or an import-hf directory) that the task takes; absent
  subtrees stay freshly initialised (e.g. a task head, or the generator when starting from an HF discriminator).
  A run whose tokenizer extends the init model's (`korpat-jax tokenizer extend`) grows the vocabulary-sized arrays
  (korpat_jax.vocab_extension)."""
  source = files.resolve(source)
  step, loaded = Checkpointer(workdir_lib.checkpoint_dir(source), interval=1, keep=1,
                              read_only=True).restore_params_on_host()
  fresh = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(state.params)}
  given = task.init_params({jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(loaded)},
                           fresh, source)
  state = _replace_params(state, given, fresh, f"config.init_from={source}", state_sharding,
                          tokenizer_dir=run_tokenizer_dir(task), base_vocab=_source_vocab(source))
  log.info("initialised %d of %d parameter arrays from %s (step %d)", len(given), len(fresh), source, step)
  return state


def computed_init(task: Task, state: TrainState, state_sharding: Any) -> TrainState:
  """A fresh state with the parameters the task computes from its data (Task.computed_params; e.g. pretraining's
  word vectors) in place of their random init."""
  fresh = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(state.params)}
  given = task.computed_params(fresh)
  return _replace_params(state, given, fresh, f"{task.name}'s computed parameters", state_sharding) if given else state


def run_tokenizer_dir(task: Task) -> Optional[str]:
  """The tokenizer directory of a run (valid after make_input): fine-tuning tasks keep it as `tokenizer_dir`,
  pretraining in its input (`_data.tokenizer_dir`, the records' tokenizer); None without one (synthetic data)."""
  for holder in (task, getattr(task, "_data", None)):
    found = getattr(holder, "tokenizer_dir", None)
    if found:
      return str(found)
  return None


def _source_vocab(source: str) -> Optional[str]:
  """The init run's vocab.txt, when its model.json records a tokenizer."""
  try:
    tokenizer_dir = workdir_lib.read_model_info(source)[1]
  except KorpatError:
    return None
  return files.join(tokenizer_dir, "vocab.txt") if tokenizer_dir else None


def _replace_params(state: TrainState, given: dict[str, Any], fresh: dict[str, Any], origin: str,
                    state_sharding: Any, tokenizer_dir: Optional[str] = None,
                    base_vocab: Optional[str] = None) -> TrainState:
  """`state` with `given`'s arrays in place of its params; vocabulary-sized arrays of fewer rows grow onto the
  extended vocabulary of `tokenizer_dir` (its extension.json), anything else must match in name and shape."""
  grown = vocab_extension.grow_params(given, fresh, origin, tokenizer_dir, base_vocab)
  changed = sorted(k for k in grown if np.shape(grown[k]) != np.shape(given[k]))
  if changed:
    log.info("%s: grew %s from %d to %d rows (%s)", origin, ", ".join(changed), np.shape(given[changed[0]])[0],
             np.shape(grown[changed[0]])[0], files.join(tokenizer_dir, vocab_extension.EXTENSION_JSON))
  given = grown
  for key, value in given.items():
    if key not in fresh:
      raise ConfigError(f"{origin}: parameter {key} does not exist in this model")
    if tuple(value.shape) != tuple(fresh[key].shape):
      raise ConfigError(f"{origin}: parameter {key} has shape {tuple(value.shape)}, "
                        f"this model wants {tuple(fresh[key].shape)}")
  params = jax.tree_util.tree_map_with_path(
      lambda p, x, s: jax.device_put(np.asarray(given.get(jax.tree_util.keystr(p), x)), s),
      state.params, state_sharding.params)
  return state.replace(params=params)
