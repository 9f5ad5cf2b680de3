"""The train state every task shares, and the gradient step around a task's loss: micro-batch accumulation and the
optimizer update. Pure functions, traced inside a task's jitted train step."""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array     # int32 scalar
  params: Any         # fp32 parameter tree
  opt_state: Any
  rng: jax.Array      # uint32[2] raw PRNG key; folded with the step, so a resumed run draws the same numbers


def new_state(params: Any, tx: optax.GradientTransformation, rng: jax.Array) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=rng)


def split_micro(tree: Any, accum: int) -> Any:
  """[B, ...] -> [accum, B/accum, ...], micro-batch i = rows i, i+accum, ... so each spans every device's rows."""
  def split(x):
    return x.reshape(x.shape[0] // accum, accum, *x.shape[1:]).swapaxes(0, 1)
  return jax.tree.map(split, tree)


def accumulated_grads(grad_fn: Callable[..., tuple[Any, Any]], params: Any, inputs: Any, rng: jax.Array,
                      accum: int) -> tuple[Any, Any]:
  """Sum of `grad_fn(params, inputs_i, rng_i) -> (grads, aux sums)` over `accum` micro-batches of `inputs`.

  The loss inside `grad_fn` must be normalised by full-batch denominators (computed before the split), so the sum
  is the full batch's gradient; `accum == 1` calls it once on the whole batch.
  """
  if accum == 1:
    return grad_fn(params, inputs, rng)
  micro = split_micro(inputs, accum)
  rngs = jax.random.split(rng, accum)

  def add(carry, xs):
    return jax.tree.map(jnp.add, carry, grad_fn(params, *xs)), None

  first = jax.tree.map(lambda x: x[0], micro)
  zeros = jax.tree.map(jnp.zeros_like, jax.eval_shape(lambda: grad_fn(params, first, rngs[0])))
  (grads, sums), _ = jax.lax.scan(add, zeros, (micro, rngs))
  return grads, sums


def apply_gradients(state: TrainState, grads: Any, tx: optax.GradientTransformation, loss: jax.Array,
                    skip_nonfinite: bool = False) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer update; returns the new state and {grad_norm, nonfinite (1.0 when the loss or the gradient norm
  is not finite)}. With `skip_nonfinite` such an update is not applied: params and optimizer state stay."""
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  if skip_nonfinite:
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    params, opt_state = keep(params, state.params), keep(opt_state, state.opt_state)
  new = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
  return new, {"grad_norm": grad_norm, "nonfinite": (~finite).astype(jnp.float32)}
