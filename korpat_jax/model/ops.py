"""Two elementwise pieces whose XLA:CPU lowering mattered in ELECTRA-Small's step (see BENCHMARKS.md, issue 11).

- `gelu`: the exact (erf) GELU written with erf. `nn.gelu(approximate=False)` goes through erfc, whose XLA
  lowering costs 2.5-5x erf's on CPU; the two agree to ~1e-7.
- `add_bias`: `x + bias` whose bias gradient is a matrix-vector product with ones instead of a reduce over the
  leading axes. XLA:CPU reduced the generator's [B*N, 35,000] logit gradient over its rows in ~0.4 s, the dot takes
  ~7 ms; the result is the same sum.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def gelu(x: jax.Array) -> jax.Array:
  """0.5 x (1 + erf(x / sqrt 2)): HF's and google's "gelu"."""
  return 0.5 * x * (1.0 + jax.lax.erf(x * jnp.asarray(_INV_SQRT2, x.dtype)))


@jax.custom_vjp
def add_bias(x: jax.Array, bias: jax.Array) -> jax.Array:
  """x [..., F] + bias [F]."""
  return x + bias


def _add_bias_fwd(x, bias):
  return x + bias, None


def _add_bias_bwd(_, g):
  rows = g.reshape(-1, g.shape[-1])
  return g, jnp.ones((rows.shape[0],), g.dtype) @ rows


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)
