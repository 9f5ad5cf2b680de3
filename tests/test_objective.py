import jax
import jax.numpy as jnp
import numpy as np
import pytest

from korpat_jax import objective
from korpat_jax.model import ElectraConfig, ElectraPretrainer
from korpat_jax.objective import SpecialIds

SPECIAL = SpecialIds()


def _batch(rng, batch=64, seq=128, vocab=300):
  ids = rng.integers(5, vocab, size=(batch, seq))
  lengths = rng.integers(8, seq + 1, size=batch)
  valid = np.arange(seq)[None, :] < lengths[:, None]
  ids = np.where(valid, ids, SPECIAL.pad)
  ids[:, 0] = SPECIAL.cls
  ids[np.arange(batch), lengths - 1] = SPECIAL.sep
  ids[np.arange(batch), lengths // 2] = SPECIAL.sep
  return jnp.asarray(ids, jnp.int32), jnp.asarray(valid, jnp.int32)


def test_max_predictions_matches_google():
  assert objective.max_predictions_per_seq(128, 0.15) == 19
  assert objective.max_predictions_per_seq(512, 0.15) == 79


def test_mask_counts_candidates_and_no_random_tokens():
  ids, mask = _batch(np.random.default_rng(0))
  n = objective.max_predictions_per_seq(ids.shape[1], 0.15)
  m = objective.mask_tokens(jax.random.key(1), ids, mask, SPECIAL, mask_prob=0.15, max_predictions=n)
  ids, mask = np.asarray(ids), np.asarray(mask)
  weights, positions = np.asarray(m.weights) > 0, np.asarray(m.positions)
  masked_ids = np.asarray(m.input_ids)
  for b in range(ids.shape[0]):
    expected = max(1, min(n, round(0.15 * mask[b].sum())))
    assert weights[b].sum() == expected
    chosen = positions[b][weights[b]]
    assert len(set(chosen.tolist())) == len(chosen)  # without replacement
    assert not np.isin(ids[b, chosen], [SPECIAL.pad, SPECIAL.cls, SPECIAL.sep, SPECIAL.mask]).any()
    assert (np.asarray(m.labels)[b][weights[b]] == ids[b, chosen]).all()
    untouched = np.ones(ids.shape[1], bool)
    untouched[chosen] = False
    assert (masked_ids[b, untouched] == ids[b, untouched]).all()
  # Chosen positions become [MASK] or keep their token: never a random token.
  chosen_new = np.take_along_axis(masked_ids, positions, 1)[weights]
  chosen_old = np.take_along_axis(ids, positions, 1)[weights]
  assert ((chosen_new == SPECIAL.mask) | (chosen_new == chosen_old)).all()
  mask_fraction = (chosen_new == SPECIAL.mask).mean()
  assert 0.80 < mask_fraction < 0.90, mask_fraction


def test_replace_tokens_labels_sample_equal_to_original_as_real():
  ids, mask = _batch(np.random.default_rng(2), batch=8, seq=32)
  m = objective.mask_tokens(jax.random.key(3), ids, mask, SPECIAL, mask_prob=0.15, max_predictions=5)
  sampled = np.asarray(m.labels).copy()
  sampled[:, ::2] = 7  # half the slots take a fixed token, the others sample the original back
  fake_ids, is_fake = objective.replace_tokens(ids, m, jnp.asarray(sampled))
  fake_ids, is_fake, ids = np.asarray(fake_ids), np.asarray(is_fake), np.asarray(ids)
  assert (is_fake == (fake_ids != ids)).all()
  rows = np.arange(ids.shape[0])[:, None]
  chosen = np.asarray(m.weights) > 0
  at_positions = fake_ids[rows, np.asarray(m.positions)]
  assert (at_positions[chosen] == sampled[chosen]).all()
  same = chosen & (sampled == np.asarray(m.labels))
  assert same.any() and not is_fake[rows, np.asarray(m.positions)][same].any()
  assert is_fake.sum() == (chosen & (sampled != np.asarray(m.labels))).sum()


def test_sample_tokens_follows_the_softmax():
  logits = jnp.log(jnp.array([[[0.7, 0.2, 0.1]]]))
  draws = jax.vmap(lambda k: objective.sample_tokens(k, logits))(jax.random.split(jax.random.key(0), 4000))
  freq = np.bincount(np.asarray(draws).ravel(), minlength=3) / 4000
  np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.03)


def test_losses_match_direct_formulas():
  rng = np.random.default_rng(4)
  logits = jnp.asarray(rng.normal(size=(2, 3, 11)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 11, size=(2, 3)))
  weights = jnp.asarray([[1, 1, 0], [1, 0, 0]], jnp.float32)
  loss_sum, _ = objective.mlm_loss_sum(logits, labels, weights)
  p = jax.nn.softmax(logits)
  expected = -sum(np.log(p[b, n, labels[b, n]]) for b, n in [(0, 0), (0, 1), (1, 0)])
  np.testing.assert_allclose(loss_sum, expected, rtol=1e-5)
  d_logits = jnp.asarray([[2.0, -1.0, 0.5]])
  fake = jnp.asarray([[True, False, True]])
  attn = jnp.asarray([[1, 1, 0]])
  sig = 1 / (1 + np.exp(-np.asarray(d_logits)))
  expected = -(np.log(sig[0, 0]) + np.log(1 - sig[0, 1]))
  np.testing.assert_allclose(objective.discriminator_loss_sum(d_logits, fake, attn), expected, rtol=1e-5)


def _generator_leaves(tree):
  return {k: v for k, v in tree.items() if k.startswith("generator")}


def test_discriminator_loss_has_zero_gradient_wrt_generator():
  cfg = ElectraConfig.from_config(dict(vocab_size=50, embedding_size=16, hidden_size=32, num_layers=1,
                                       num_heads=2, intermediate_size=64, generator_hidden_fraction=0.5))
  model = ElectraPretrainer(cfg)
  ids, mask = _batch(np.random.default_rng(5), batch=4, seq=16, vocab=50)
  params = model.init(jax.random.key(0), ids, jnp.zeros_like(ids), mask)["params"]
  masked = objective.mask_tokens(jax.random.key(1), ids, mask, SPECIAL, mask_prob=0.15, max_predictions=3)

  def disc_loss(p):
    gen_logits = model.apply({"params": p}, masked.input_ids, jnp.zeros_like(ids), mask, masked.positions,
                             method=ElectraPretrainer.generator_logits)
    sampled = objective.sample_tokens(jax.random.key(2), gen_logits)
    fake_ids, is_fake = objective.replace_tokens(ids, masked, sampled)
    d = model.apply({"params": p}, fake_ids, jnp.zeros_like(ids), mask,
                    method=ElectraPretrainer.discriminator_logits)
    return objective.discriminator_loss_sum(d, is_fake, mask)

  grads = jax.grad(disc_loss)(params)
  gen = _generator_leaves(grads)
  assert set(gen) == {"generator", "generator_predictions", "generator_lm_head"}
  for leaf in jax.tree.leaves(gen):
    assert not np.any(np.asarray(leaf)), "the discriminator loss reached the generator"
  assert np.any(np.asarray(grads["embeddings"]["word_embeddings"]["embedding"]))
  assert np.any(np.asarray(grads["discriminator"]["layer_0"]["output"]["dense"]["kernel"]))


def test_finalize_metrics_ratios():
  sums = dict(gen_loss_sum=jnp.float32(6.0), gen_correct=jnp.float32(1.0), disc_loss_sum=jnp.float32(2.0),
              num_masked=jnp.float32(3.0), num_tokens=jnp.float32(20.0), disc_correct=jnp.float32(18.0),
              disc_true_positive=jnp.float32(1.0), disc_predicted_positive=jnp.float32(2.0),
              disc_actual_positive=jnp.float32(2.0))
  m = objective.finalize_metrics(sums, 50.0)
  assert float(m["loss"]) == pytest.approx(2.0 + 50 * 0.1)
  assert float(m["disc_precision"]) == pytest.approx(0.5)
  assert float(m["replaced_fraction"]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("vocab", [1, 2, 7, 50, 1000])
def test_sample_tokens_is_exact_over_block_boundaries(vocab):
  """The two-stage draw gives softmax(logits / T) whatever the vocab size (padded last block included)."""
  rng = np.random.default_rng(vocab)
  logits = jnp.asarray(rng.normal(size=(vocab,)) * 2.0, jnp.float32)
  n = 20_000
  draws = np.asarray(jax.jit(jax.vmap(lambda k: objective.sample_tokens(k, logits, 2.0)))(
      jax.random.split(jax.random.key(7), n)))
  assert draws.min() >= 0 and draws.max() < vocab
  expected = np.asarray(jax.nn.softmax(logits / 2.0))
  freq = np.bincount(draws, minlength=vocab) / n
  # Total variation distance against its sampling noise (~sqrt(V / n) / 2 for near-uniform probabilities).
  assert 0.5 * np.abs(freq - expected).sum() < 0.5 * np.sqrt(vocab / n) + 0.01
  if vocab == 7:
    assert np.allclose(freq, expected, atol=4 * np.sqrt(expected * (1 - expected) / n) + 1e-3)


def test_mlm_accuracy_counts_the_label_at_the_maximum():
  logits = jnp.asarray([[[3.0, 1.0, 0.0], [0.0, 2.0, 2.0], [0.0, 1.0, 5.0]]])
  labels = jnp.asarray([[0, 2, 1]])
  _, correct = objective.mlm_loss_sum(logits, labels, jnp.ones((1, 3)))
  assert float(correct) == 2.0  # the first (top), the second (a tie counts), not the third
