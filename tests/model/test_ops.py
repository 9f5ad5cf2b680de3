"""The fast GELU and bias add compute what flax's and a plain `x + b` compute, values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from korpat_jax.model.ops import add_bias, gelu


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
