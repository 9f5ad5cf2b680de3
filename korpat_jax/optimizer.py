"""AdamW as ELECTRA trains it: clip 1.0 -> Adam (optionally without bias correction) -> decoupled weight decay
(not on LayerNorm or biases) -> linear warmup and linear decay to zero -> for fine-tuning, layerwise learning-rate
decay (lr * decay^(L + 2 - depth): embeddings 0, encoder layer i at i + 1, the task head at L + 2) -> optionally a
slower word-embedding table (`word_embedding_lr_scale`, for pretraining that starts from word vectors)."""

from __future__ import annotations

import re
from typing import Any, Mapping, NamedTuple, Optional

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


_LAYER = re.compile(r"layer_(\d+)")
ENCODER_TREES = ("embeddings", "discriminator")  # what a task model shares with the pretrained discriminator


def layer_depth(names: tuple[str, ...], num_layers: int) -> int:
  """google-research/electra's depth of a fine-tuning parameter: embeddings (and embeddings_project) 0, encoder
  layer i at i + 1, everything outside the encoder (the task head) at num_layers + 2."""
  if names[0] not in ENCODER_TREES:
    return num_layers + 2
  for name in names[1:]:
    match = _LAYER.fullmatch(name)
    if match:
      return int(match.group(1)) + 1
  return 0


def layerwise_lr_multipliers(params: Any, num_layers: int, decay: float) -> Any:
  """decay^(L + 2 - depth) for every parameter."""
  def multiplier(path, _):
    names = tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in path)
    return decay ** (num_layers + 2 - layer_depth(names, num_layers))
  return jax.tree_util.tree_map_with_path(multiplier, params)


def word_embedding_multipliers(params: Any, scale: float) -> Any:
  """`scale` for the word-embedding table(s), 1 elsewhere."""
  def multiplier(path, _):
    return scale if any(getattr(k, "key", None) == "word_embeddings" for k in path) else 1.0
  return jax.tree_util.tree_map_with_path(multiplier, params)


def scale_by_tree(multipliers_fn) -> optax.GradientTransformation:
  """Multiplies each update by a constant of its own (a tree computed from the params at init)."""
  def init(params):
    del params
    return optax.EmptyState()

  def update(updates, state, params=None):
    del params
    factors = multipliers_fn(updates)
    return jax.tree.map(lambda u, f: u * jnp.asarray(f, u.dtype), updates, factors), state

  return optax.GradientTransformation(init, update)


def make_optimizer(opt: Mapping[str, Any], total_steps: int, num_layers: Optional[int] = None
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """From a config's `optimizer` block: (transformation, learning-rate schedule).

  `layerwise_lr_decay` < 1 in the block (fine-tuning) scales each parameter's step by its depth in a
  `num_layers`-layer encoder; `word_embedding_lr_scale` != 1 scales the word-embedding table's step (weight decay
  included); `warmup_fraction` >= 0 sets the warmup as a fraction of `total_steps`.
  """
  warmup = opt["warmup_steps"] if opt.get("warmup_fraction", -1) < 0 else round(opt["warmup_fraction"] * total_steps)
  schedule = learning_rate_schedule(opt["learning_rate"], warmup, total_steps)
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
  decay = float(opt.get("layerwise_lr_decay", 1.0))
  if decay != 1.0:
    if num_layers is None:
      raise ValueError("layerwise_lr_decay needs the encoder's num_layers")
    tx = optax.chain(tx, scale_by_tree(lambda tree: layerwise_lr_multipliers(tree, num_layers, decay)))
  word_scale = float(opt.get("word_embedding_lr_scale", 1.0))
  if word_scale != 1.0:
    tx = optax.chain(tx, scale_by_tree(lambda tree: word_embedding_multipliers(tree, word_scale)))
  return tx, schedule
