"""The counter-hash dropout: its rate, its independence across elements and keys, and that sharding leaves it alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from korpat_jax.model.dropout import Dropout, hash_bits, keep_mask, lowbias32


def test_lowbias32_is_a_bijection_on_a_sample():
  x = jnp.arange(1 << 16, dtype=jnp.uint32) * jnp.uint32(65_537)
  assert len(np.unique(np.asarray(lowbias32(x)))) == x.size


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_keep_fraction_matches_the_rate(rate):
  keep = np.asarray(keep_mask(jax.random.key(0), rate, (64, 128, 256)))
  n = keep.size
  assert abs(keep.mean() - (1 - rate)) < 4 * np.sqrt(rate * (1 - rate) / n)


def test_bits_look_independent_across_elements_examples_and_keys():
  bits = np.asarray(hash_bits(jax.random.key(1), (8, 64, 512)))
  # Every bit position is fair.
  per_bit = np.stack([(bits >> k) & 1 for k in range(32)]).reshape(32, -1).mean(1)
  assert np.all(np.abs(per_bit - 0.5) < 0.01), per_bit
  keep = bits >= np.uint32(int(0.1 * 2**32))
  p = keep.mean()
  agree_expected = p * p + (1 - p) * (1 - p)
  for a, b in [(keep[:, :, 1:], keep[:, :, :-1]),      # neighbours in the last axis
               (keep[:, 1:], keep[:, :-1]),            # neighbours in the middle axis
               (keep[1:], keep[:-1])]:                 # the same position in two examples
    assert abs((a == b).mean() - agree_expected) < 0.01
  other = np.asarray(keep_mask(jax.random.key(2), 0.1, keep.shape))
  assert abs((other == keep).mean() - agree_expected) < 0.01
  assert np.array_equal(np.asarray(keep_mask(jax.random.key(1), 0.1, keep.shape)), keep)


def test_dropout_scales_what_it_keeps_and_is_identity_when_deterministic():
  x = jnp.ones((16, 32, 64))
  layer = Dropout(0.25)
  y = np.asarray(layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(3)}))
  assert np.allclose(np.unique(y), [0.0, 1 / 0.75])
  assert abs(y.mean() - 1.0) < 0.02
  assert np.array_equal(np.asarray(layer.apply({}, x, deterministic=True)), np.asarray(x))


def test_threefry_option_uses_flax_dropout():
  x = jnp.ones((32, 64, 64))
  rngs = {"dropout": jax.random.key(4)}
  threefry = np.asarray(Dropout(0.3, rng="threefry").apply({}, x, deterministic=False, rngs=rngs)) != 0
  hashed = np.asarray(Dropout(0.3).apply({}, x, deterministic=False, rngs=rngs)) != 0
  assert abs(threefry.mean() - 0.7) < 0.01 and abs(hashed.mean() - 0.7) < 0.01
  assert abs((threefry == hashed).mean() - (0.7**2 + 0.3**2)) < 0.01  # two unrelated mask sources


def test_mask_does_not_depend_on_sharding():
  devices = np.array(jax.devices()[:16]).reshape(4, 4)
  mesh = Mesh(devices, ("data", "model"))
  shape = (16, 32, 64)
  fn = jax.jit(lambda key, x: jnp.where(keep_mask(key, 0.1, x.shape), x, 0.0))
  x = jnp.ones(shape)
  whole = np.asarray(fn(jax.random.key(5), x))
  sharded_x = jax.device_put(x, NamedSharding(mesh, P("data", None, "model")))
  sharded = fn(jax.random.key(5), sharded_x)
  assert len(sharded.sharding.device_set) == 16
  assert np.array_equal(np.asarray(sharded), whole)
