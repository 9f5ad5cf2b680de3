"""The fast GELU, bias add and Dense dot compute what flax's, a plain `x + b` and lax.dot_general compute, values and
gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from korpat_jax.model.ops import add_bias, dense_dot, gelu


def test_gelu_is_the_exact_gelu():
  x = jnp.linspace(-8.0, 8.0, 10_001)
  # erf form: absolute error ~|x| * eps (1 + erf cancels for x << 0), as in HF's and PyTorch's GELU.
  np.testing.assert_allclose(gelu(x), nn.gelu(x, approximate=False), rtol=2e-6, atol=2e-6)
  np.testing.assert_allclose(jax.vmap(jax.grad(gelu))(x), jax.vmap(jax.grad(lambda v: nn.gelu(v, False)))(x),
                             atol=2e-6)
  assert gelu(jnp.ones(3, jnp.bfloat16)).dtype == jnp.bfloat16


def test_add_bias_matches_plain_addition_and_its_gradient():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(3, 5, 7)), jnp.float32)
  b = jnp.asarray(rng.normal(size=(7,)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 5, 7)), jnp.float32)
  np.testing.assert_array_equal(add_bias(x, b), x + b)
  ours = jax.grad(lambda x, b: (jnp.sin(add_bias(x, b)) * w).sum(), argnums=(0, 1))(x, b)
  plain = jax.grad(lambda x, b: (jnp.sin(x + b) * w).sum(), argnums=(0, 1))(x, b)
  for a, e in zip(ours, plain):
    np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape_in,features", [((3, 5, 8), 24), ((3, 5, 24), 8), ((15, 16), 16)])
def test_dense_dot_matches_dot_general_and_its_gradient(shape_in, features):
  """Both backward branches (the input or the output side transposed) and 2-D / 3-D inputs, inside nn.Dense."""
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=shape_in), jnp.float32)
  w = jnp.asarray(rng.normal(size=(*shape_in[:-1], features)), jnp.float32)
  ours, plain = nn.Dense(features, dot_general=dense_dot), nn.Dense(features)
  params = plain.init(jax.random.PRNGKey(0), x)
  np.testing.assert_allclose(ours.apply(params, x), plain.apply(params, x), rtol=1e-6, atol=1e-6)
  loss = lambda module: jax.jit(jax.grad(lambda p, x: (jnp.tanh(module.apply(p, x)) * w).sum(), argnums=(0, 1)))
  for a, e in zip(jax.tree.leaves(loss(ours)(params, x)), jax.tree.leaves(loss(plain)(params, x))):
    np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


def test_dense_dot_leaves_other_contractions_to_dot_general():
  x, y = jnp.ones((2, 3, 4)), jnp.ones((2, 4, 5))
  batched = (((2,), (1,)), ((0,), (0,)))
  np.testing.assert_array_equal(dense_dot(x, y, batched), lax.dot_general(x, y, batched))
  assert dense_dot(x, y[0], (((2,), (0,)), ((), ())), preferred_element_type=jnp.float32).shape == (2, 3, 5)
