import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from korpat_jax.optimizer import decay_mask, learning_rate_schedule, make_optimizer, \
    scale_by_adam_no_bias_correction

OPT = dict(learning_rate=1e-3, warmup_steps=10, weight_decay=0.01, b1=0.9, b2=0.999, eps=1e-6,
           bias_correction=False, grad_clip_norm=1.0)


def test_schedule_warms_up_then_decays_linearly_to_zero():
  lr = learning_rate_schedule(1e-3, warmup_steps=10, total_steps=100)
  assert float(lr(0)) == 0.0
  assert float(lr(5)) == pytest.approx(0.5e-3 * 0.95)
  assert float(lr(10)) == pytest.approx(1e-3 * 0.9)
  assert float(lr(100)) == 0.0 and float(lr(150)) == 0.0


def test_adam_without_bias_correction_is_googles_update():
  g = jnp.array([0.5, -2.0])
  tx = scale_by_adam_no_bias_correction(0.9, 0.999, 1e-6)
  state = tx.init(g)
  update, state = tx.update(g, state)
  m, v = 0.1 * g, 0.001 * g**2
  np.testing.assert_allclose(update, m / (np.sqrt(v) + 1e-6), rtol=1e-6)
  # The bias-corrected first step would be ~sign(g); uncorrected it is sqrt(1000)/10 times that.
  np.testing.assert_allclose(np.abs(update), np.sqrt(1000) / 10, rtol=1e-3)


def test_weight_decay_skips_layer_norm_and_biases():
  params = {"layer_0": {"output": {"dense": {"kernel": 1.0, "bias": 1.0}, "LayerNorm": {"scale": 1.0,
                                                                                          "bias": 1.0}}},
            "embeddings": {"word_embeddings": {"embedding": 1.0}}}
  mask = decay_mask(params)
  assert mask["layer_0"]["output"]["dense"] == {"kernel": True, "bias": False}
  assert mask["layer_0"]["output"]["LayerNorm"] == {"scale": False, "bias": False}
  assert mask["embeddings"]["word_embeddings"]["embedding"] is True


def test_full_chain_clips_and_decays():
  tx, _ = make_optimizer(OPT, total_steps=100)
  params = {"dense": {"kernel": jnp.ones(4), "bias": jnp.ones(4)}}
  state = tx.init(params)
  for _ in range(11):  # past warmup, so the learning rate is not zero
    updates, state = tx.update({"dense": {"kernel": jnp.zeros(4), "bias": jnp.zeros(4)}}, state, params)
  # Zero gradients: only weight decay moves the kernel, never the bias.
  assert np.all(np.asarray(updates["dense"]["kernel"]) < 0)
  assert np.all(np.asarray(updates["dense"]["bias"]) == 0)
  big = {"dense": {"kernel": jnp.full(4, 100.0), "bias": jnp.zeros(4)}}
  clipped, _ = optax.clip_by_global_norm(1.0).update(big, optax.clip_by_global_norm(1.0).init(big))
  assert float(optax.tree.norm(clipped)) == pytest.approx(1.0, rel=1e-5)


def _task_params():
  """A 2-layer task model's tree: embeddings, encoder (embeddings_project + layers), head."""
  leaf = lambda: {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}
  return {"embeddings": {"word_embeddings": {"embedding": jnp.ones((4, 2))}},
          "discriminator": {"embeddings_project": leaf(), "layer_0": {"attention": {"self": {"query": leaf()}}},
                            "layer_1": {"output": {"dense": leaf()}}},
          "classifier": leaf()}


def test_layerwise_depths_are_googles():
  from korpat_jax.optimizer import layer_depth, layerwise_lr_multipliers
  assert layer_depth(("embeddings", "word_embeddings", "embedding"), 2) == 0
  assert layer_depth(("discriminator", "embeddings_project", "kernel"), 2) == 0
  assert layer_depth(("discriminator", "layer_0", "attention", "self", "query", "kernel"), 2) == 1
  assert layer_depth(("discriminator", "layer_1", "output", "dense", "bias"), 2) == 2
  assert layer_depth(("classifier", "kernel"), 2) == 4
  m = layerwise_lr_multipliers(_task_params(), num_layers=2, decay=0.8)
  # lr * decay^(L + 2 - depth), L = 2: head 1, top layer 0.8^2, layer 0 0.8^3, embeddings 0.8^4
  assert m["classifier"]["kernel"] == 1.0
  assert m["discriminator"]["layer_1"]["output"]["dense"]["kernel"] == pytest.approx(0.64)
  assert m["discriminator"]["layer_0"]["attention"]["self"]["query"]["bias"] == pytest.approx(0.512)
  assert m["embeddings"]["word_embeddings"]["embedding"] == pytest.approx(0.4096)
  assert m["discriminator"]["embeddings_project"]["kernel"] == pytest.approx(0.4096)


def test_layerwise_decay_scales_each_update_by_its_multiplier():
  from korpat_jax.optimizer import layerwise_lr_multipliers
  params = _task_params()
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.01), params)
  opt = dict(OPT, warmup_steps=0, layerwise_lr_decay=1.0)
  flat, _ = make_optimizer(opt, total_steps=100, num_layers=2)
  decayed, _ = make_optimizer(dict(opt, layerwise_lr_decay=0.8), total_steps=100, num_layers=2)
  plain_update, _ = flat.update(grads, flat.init(params), params)
  decayed_update, _ = decayed.update(grads, decayed.init(params), params)
  multipliers = layerwise_lr_multipliers(params, 2, 0.8)
  for u, d, m in zip(jax.tree.leaves(plain_update), jax.tree.leaves(decayed_update), jax.tree.leaves(multipliers)):
    np.testing.assert_allclose(d, u * m, rtol=1e-6)


def test_warmup_fraction_sets_the_warmup_from_the_total():
  _, schedule = make_optimizer(dict(OPT, warmup_fraction=0.1), total_steps=200)
  assert float(schedule(10)) == pytest.approx(1e-3 * 0.5 * (1 - 10 / 200))  # warmup of 20 steps


@pytest.mark.parametrize("scale", [0.1, 0.0])
def test_word_embedding_lr_scale_slows_only_the_word_embedding_table(scale):
  params = {"embeddings": {"word_embeddings": {"embedding": jnp.ones((4, 2))},
                           "position_embeddings": {"embedding": jnp.ones((4, 2))}},
            "generator": {"layer_0": {"kernel": jnp.ones((2, 2))}}}
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.3), params)
  plain, _ = make_optimizer(OPT, total_steps=100)
  slow, _ = make_optimizer({**OPT, "word_embedding_lr_scale": scale}, total_steps=100)
  (a, sa), (b, sb) = (plain, plain.init(params)), (slow, slow.init(params))
  for _ in range(12):  # past warmup
    ua, sa = a.update(grads, sa, params)
    ub, sb = b.update(grads, sb, params)
  word = ("embeddings", "word_embeddings", "embedding")
  get = lambda tree, path: tree[path[0]][path[1]][path[2]]
  assert np.abs(np.asarray(get(ua, word))).min() > 0
  np.testing.assert_allclose(get(ub, word), scale * np.asarray(get(ua, word)), rtol=1e-6)
  np.testing.assert_array_equal(get(ub, ("embeddings", "position_embeddings", "embedding")),
                                get(ua, ("embeddings", "position_embeddings", "embedding")))
  np.testing.assert_array_equal(ub["generator"]["layer_0"]["kernel"], ua["generator"]["layer_0"]["kernel"])
