"""AdamW as ELECTRA trains it: clip 1.0 -> Adam (optionally without bias correction) -> decoupled weight decay
(not on LayerNorm or biases) -> linear warmup and linear decay to zero."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax


class NoBiasCorrectionAdamState(NamedTuple):
  mu: Any
  nu: Any


def scale_by_adam_no_bias_correction(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6
                                     ) -> optax.GradientTransformation:
  """m / (sqrt(v) + eps) with raw (uncorrected) moments, as google's AdamWeightDecayOptimizer does."""

  def init(params):
    zeros = lambda p: jnp.zeros_like(p, dtype=jnp.float32)
    return NoBiasCorrectionAdamState(jax.tree.map(zeros, params), jax.tree.map(zeros, params))

  def update(updates, state, params=None):
    del params
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), state.nu, updates)
    updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu, nu)
    return updates, NoBiasCorrectionAdamState(mu, nu)

  return optax.GradientTransformation(init, update)


def learning_rate_schedule(peak: float, warmup_steps: int, total_steps: int) -> optax.Schedule:
  """lr * min(1, t / warmup) * (1 - t / total), floored at 0."""
  def schedule(step):
    t = jnp.asarray(step, jnp.float32)
    warmup = jnp.minimum(1.0, t / max(1, warmup_steps))
    decay = jnp.maximum(0.0, 1.0 - t / max(1, total_steps))
    return peak * warmup * decay
  return schedule


def decay_mask(params: Any) -> Any:
  """True for parameters that take weight decay: everything but LayerNorm parameters and biases."""
  def decays(path, _):
    names = [getattr(k, "key", getattr(k, "name", "")) for k in path]
    return not (names[-1] == "bias" or any(str(n).startswith("LayerNorm") for n in names))
  return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(opt: Mapping[str, Any], total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """From a config's `optimizer` block: (transformation, learning-rate schedule)."""
  schedule = learning_rate_schedule(opt["learning_rate"], opt["warmup_steps"], total_steps)
  if opt["bias_correction"]:
    adam = optax.scale_by_adam(b1=opt["b1"], b2=opt["b2"], eps=opt["eps"])
  else:
    adam = scale_by_adam_no_bias_correction(b1=opt["b1"], b2=opt["b2"], eps=opt["eps"])
  tx = optax.chain(
      optax.clip_by_global_norm(opt["grad_clip_norm"]),
      adam,
      optax.add_decayed_weights(opt["weight_decay"], mask=decay_mask),
      optax.scale_by_learning_rate(schedule),
  )
  return tx, schedule
