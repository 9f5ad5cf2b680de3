"""Pieces whose XLA:CPU lowering mattered in ELECTRA-Small's step (see BENCHMARKS.md, issues 11 and 16).

- `gelu`: the exact (erf) GELU written with erf. `nn.gelu(approximate=False)` goes through erfc, whose XLA
  lowering costs 2.5-5x erf's on CPU; the two agree to ~1e-7.
- `add_bias`: `x + bias` whose bias gradient is a matrix-vector product with ones instead of a reduce over the
  leading axes. XLA:CPU reduced the generator's [B*N, 35,000] logit gradient over its rows in ~0.4 s, the dot takes
  ~7 ms; the result is the same sum.
- `dense_dot`: the Dense layers' `dot_general`, whose weight gradient is a dot XLA:CPU hands to YNNPACK. The
  gradient x^T g contracts the token axis, the first of both operands; XLA:CPU then copies g transposed and runs the
  dot on Eigen at 35-60% of YNNPACK's rate (ELECTRA-Small's fine-tuning step: 1.2 s of its 3.5 s on one core). With
  the narrower operand transposed behind an optimization barrier (which keeps XLA from folding the transpose back
  into the dot) the dot has YNNPACK's form: 1.3-1.8x faster a layer, same values. Other backends get lax.dot_general.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

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


def dense_dot(lhs: jax.Array, rhs: jax.Array, dimension_numbers, precision=None,
              preferred_element_type=None) -> jax.Array:
  """`lax.dot_general` for `nn.Dense(dot_general=dense_dot)`: x [..., in] . kernel [in, out]."""
  plain = (((lhs.ndim - 1,), (0,)), ((), ()))
  if (jax.default_backend() != "cpu" or tuple(map(tuple, dimension_numbers[0])) != plain[0]
      or any(dimension_numbers[1]) or preferred_element_type is not None):
    return lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                           preferred_element_type=preferred_element_type)
  return _dense_matmul(lhs, rhs, precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _dense_matmul(x: jax.Array, kernel: jax.Array, precision) -> jax.Array:
  return lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())), precision=precision)


def _dense_matmul_fwd(x, kernel, precision):
  return _dense_matmul(x, kernel, precision), (x, kernel)


def _dense_matmul_bwd(precision, residuals, g):
  x, kernel = residuals
  dx = lax.dot_general(g, kernel, (((g.ndim - 1,), (1,)), ((), ())), precision=precision)
  rows_x, rows_g = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
  contract = (((1,), (0,)), ((), ()))  # [m, tokens] . [tokens, n]: YNNPACK's form
  if rows_x.shape[1] <= rows_g.shape[1]:  # transpose the narrower of the two
    dkernel = lax.dot_general(lax.optimization_barrier(rows_x.T), rows_g, contract, precision=precision)
  else:
    dkernel_t = lax.dot_general(lax.optimization_barrier(rows_g.T), rows_x, contract, precision=precision)
    dkernel = lax.optimization_barrier(dkernel_t).T  # [out, in] -> [in, out], a copy of the small result
  return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


_dense_matmul.defvjp(_dense_matmul_fwd, _dense_matmul_bwd)
