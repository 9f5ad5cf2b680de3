import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import pretrain_config
from korpat_jax.model import ElectraConfig, ElectraPretrainer

SMALL = dict(vocab_size=100, embedding_size=16, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
             generator_hidden_fraction=0.5)


def _count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


def _abstract_params(cfg):
  ids = jnp.zeros((1, 8), jnp.int32)
  return jax.eval_shape(lambda: ElectraPretrainer(cfg).init(jax.random.key(0), ids, ids, ids + 1))["params"]


def test_base_discriminator_has_the_published_size():
  cfg = ElectraConfig.from_config(pretrain_config("base").model)
  params = _abstract_params(cfg)
  discriminator = _count(params["embeddings"]) + _count(params["discriminator"]) \
      + _count(params["discriminator_predictions"])
  assert discriminator == pytest.approx(110e6, rel=0.05)  # ELECTRA-Base: 110M with a 30k vocab; 35k here
  assert cfg.generator.hidden_size == 256 and cfg.generator.num_heads == 4 and cfg.generator.intermediate_size == 1024
  assert "embeddings_project" in params["generator"] and "embeddings_project" not in params["discriminator"]


def test_generator_is_tied_to_the_shared_word_embeddings():
  cfg = ElectraConfig.from_config(SMALL)
  model = ElectraPretrainer(cfg)
  ids = jnp.array([[2, 7, 9, 3]])
  params = model.init(jax.random.key(0), ids, jnp.zeros_like(ids), jnp.ones_like(ids))["params"]
  assert set(params["generator_lm_head"]) == {"bias"}
  changed = jax.tree.map(lambda x: x, params)
  changed["embeddings"]["word_embeddings"]["embedding"] = params["embeddings"]["word_embeddings"][
      "embedding"].at[42].add(jax.random.normal(jax.random.key(1), (cfg.embedding_size,)))
  before = model.apply({"params": params}, ids, jnp.zeros_like(ids), jnp.ones_like(ids),
                       method=ElectraPretrainer.generator_logits)
  after = model.apply({"params": changed}, ids, jnp.zeros_like(ids), jnp.ones_like(ids),
                      method=ElectraPretrainer.generator_logits)
  assert not np.allclose(before[..., 42], after[..., 42])


def test_positions_gather_equals_full_logits_and_padding_is_ignored():
  cfg = ElectraConfig.from_config(SMALL)
  model = ElectraPretrainer(cfg)
  ids = jnp.array([[2, 7, 9, 11, 3, 0, 0]])
  mask = (ids != 0).astype(jnp.int32)
  params = model.init(jax.random.key(0), ids, jnp.zeros_like(ids), mask)["params"]
  full = model.apply({"params": params}, ids, jnp.zeros_like(ids), mask, method=ElectraPretrainer.generator_logits)
  some = model.apply({"params": params}, ids, jnp.zeros_like(ids), mask, jnp.array([[3, 1]]),
                     method=ElectraPretrainer.generator_logits)
  np.testing.assert_allclose(some[0], full[0, jnp.array([3, 1])], atol=1e-5)
  other_padding = ids.at[0, 5:].set(57)  # different ids under the padding mask change nothing
  d1 = model.apply({"params": params}, ids, jnp.zeros_like(ids), mask, method=ElectraPretrainer.discriminator_logits)
  d2 = model.apply({"params": params}, other_padding, jnp.zeros_like(ids), mask,
                   method=ElectraPretrainer.discriminator_logits)
  np.testing.assert_allclose(d1[:, :5], d2[:, :5], atol=1e-5)


def test_remat_and_bfloat16_compute():
  ids = jnp.array([[2, 7, 9, 11, 3, 0]])
  mask = (ids != 0).astype(jnp.int32)
  plain = ElectraPretrainer(ElectraConfig.from_config(SMALL))
  params = plain.init(jax.random.key(0), ids, jnp.zeros_like(ids), mask)["params"]
  remat = ElectraPretrainer(ElectraConfig.from_config(dict(SMALL, remat=True)))
  loss = lambda m: lambda p: m.apply({"params": p}, ids, jnp.zeros_like(ids), mask,
                                     method=ElectraPretrainer.discriminator_logits).sum()
  g1, g2 = jax.grad(loss(plain))(params), jax.grad(loss(remat))(params)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, atol=1e-5)
  bf16 = ElectraPretrainer(ElectraConfig.from_config(dict(SMALL, dtype="bfloat16")))
  bf16_params = bf16.init(jax.random.key(0), ids, jnp.zeros_like(ids), mask)["params"]
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(bf16_params))
  out = bf16.apply({"params": params}, ids, jnp.zeros_like(ids), mask, method=ElectraPretrainer.discriminator_logits)
  ref = plain.apply({"params": params}, ids, jnp.zeros_like(ids), mask, method=ElectraPretrainer.discriminator_logits)
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, ref, atol=0.1)


def test_attention_dropout_path_matches_fused_path_without_dropout():
  ids = jnp.array([[2, 7, 9, 11, 3, 0]])
  mask = (ids != 0).astype(jnp.int32)
  model = ElectraPretrainer(ElectraConfig.from_config(dict(SMALL, dropout_rate=0.0, attention_dropout_rate=0.0)))
  params = model.init(jax.random.key(0), ids, jnp.zeros_like(ids), mask)["params"]
  fused = model.apply({"params": params}, ids, jnp.zeros_like(ids), mask, deterministic=False,
                      method=ElectraPretrainer.discriminator_logits, rngs={"dropout": jax.random.key(1)})
  tiny_dropout = ElectraPretrainer(ElectraConfig.from_config(dict(SMALL, dropout_rate=0.0,
                                                                  attention_dropout_rate=1e-9)))
  explicit = tiny_dropout.apply({"params": params}, ids, jnp.zeros_like(ids), mask, deterministic=False,
                                method=ElectraPretrainer.discriminator_logits, rngs={"dropout": jax.random.key(1)})
  np.testing.assert_allclose(fused[:, :5], explicit[:, :5], atol=1e-5)
