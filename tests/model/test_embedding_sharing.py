"""objective.embedding_sharing: tied (google's) and gdes (DeBERTa-v3's gradient-disentangled embedding sharing)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import pretrain_config
from korpat_jax import objective, workdir as workdir_lib
from korpat_jax.errors import ConfigError
from korpat_jax.model import ElectraConfig, ElectraPretrainer
from korpat_jax.model.embedding_sharing import (EMBEDDING_DELTA_PATH, WORD_EMBEDDINGS_PATH, fold_embedding_delta,
                                                fold_flat_embedding_delta, keystr)
from korpat_jax.pretraining_step import electra_sums
from korpat_jax.tasks.pretraining import PretrainingTask, check_same_sharing, validate as validate_pretraining

SMALL = dict(vocab_size=60, embedding_size=16, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
             generator_hidden_fraction=0.5)
SPECIAL = objective.SpecialIds()
IDS = jnp.array([[2, 7, 9, 11, 13, 17, 19, 23, 3, 0], [2, 29, 31, 37, 41, 43, 47, 3, 0, 0]], jnp.int32)
BATCH = {"input_ids": IDS, "token_type_ids": jnp.zeros_like(IDS), "attention_mask": (IDS != 0).astype(jnp.int32)}


def _config(sharing):
  return dataclasses.replace(ElectraConfig.from_config(SMALL), embedding_sharing=sharing)


def _params(sharing, seed=0):
  ids = BATCH["input_ids"]
  return ElectraPretrainer(_config(sharing)).init(jax.random.key(seed), ids, ids * 0, ids * 0 + 1)["params"]


def _get(tree, path):
  for name in path:
    tree = tree[name]
  return tree


def _loss_grads(sharing, params):
  """(grads of the generator's MLM loss, grads of the discriminator's loss) of one batch, dropout off."""
  model = ElectraPretrainer(_config(sharing))
  masked = objective.mask_tokens(jax.random.key(1), BATCH["input_ids"], BATCH["attention_mask"], SPECIAL,
                                 mask_prob=0.3, max_predictions=3)
  keys = jax.random.split(jax.random.key(2), IDS.shape[0])

  def loss(name):
    return lambda p: electra_sums(model, p, BATCH, masked, keys, jax.random.key(3), temperature=1.0,
                                  deterministic=True)[name]
  return jax.grad(loss("gen_loss_sum"))(params), jax.grad(loss("disc_loss_sum"))(params)


def _nonzero(x):
  return bool(np.any(np.asarray(x) != 0))


def test_gdes_discriminator_loss_sends_no_gradient_into_the_shared_word_table():
  params = _params("gdes")
  gen_grads, disc_grads = _loss_grads("gdes", params)
  assert not _nonzero(_get(disc_grads, WORD_EMBEDDINGS_PATH))  # exactly zero
  assert _nonzero(_get(disc_grads, EMBEDDING_DELTA_PATH))
  assert _nonzero(_get(gen_grads, WORD_EMBEDDINGS_PATH))  # the MLM loss (and its tied output projection) trains E_G
  assert not _nonzero(_get(gen_grads, EMBEDDING_DELTA_PATH))
  # Only the token table is disentangled: positions and the embedding LayerNorm still learn from both losses.
  for grads in (gen_grads, disc_grads):
    assert _nonzero(grads["embeddings"]["position_embeddings"]["embedding"])
    assert _nonzero(grads["embeddings"]["LayerNorm"]["scale"])


def test_tied_discriminator_loss_trains_the_shared_word_table():
  params = _params("tied")
  assert EMBEDDING_DELTA_PATH[0] not in params
  _, disc_grads = _loss_grads("tied", params)
  assert _nonzero(_get(disc_grads, WORD_EMBEDDINGS_PATH))


def test_tied_param_tree_is_unchanged_and_the_default():
  assert ElectraConfig.from_config(SMALL).embedding_sharing == "tied"
  assert set(_params("tied")) == {"embeddings", "generator", "generator_predictions", "generator_lm_head",
                                  "discriminator", "discriminator_predictions"}
  assert "embedding_sharing" not in ElectraConfig.option_defaults()  # a config.objective key, not config.model
  assert "embedding_sharing" not in pretrain_config("tiny").model


def _disc_logits(sharing, params):
  return ElectraPretrainer(_config(sharing)).apply({"params": params}, *BATCH.values(),
                                                   method=ElectraPretrainer.discriminator_logits)


def test_gdes_delta_starts_at_zero_so_the_discriminator_starts_as_a_tied_one():
  gdes = _params("gdes")
  delta = _get(gdes, EMBEDDING_DELTA_PATH)
  assert delta.shape == (SMALL["vocab_size"], SMALL["embedding_size"]) and not _nonzero(delta)
  tied = {k: v for k, v in gdes.items() if k != EMBEDDING_DELTA_PATH[0]}
  assert jax.tree.structure(tied) == jax.tree.structure(_params("tied"))
  np.testing.assert_array_equal(_disc_logits("gdes", gdes), _disc_logits("tied", tied))


def _with_random_delta(params, seed=5):
  delta = jax.random.normal(jax.random.key(seed), _get(params, EMBEDDING_DELTA_PATH).shape)
  return {**params, EMBEDDING_DELTA_PATH[0]: {"word_embeddings": {"embedding": delta}}}


def test_folded_params_are_a_tied_model_with_the_discriminators_logits():
  gdes = _with_random_delta(_params("gdes"))
  folded = fold_embedding_delta(gdes)
  assert EMBEDDING_DELTA_PATH[0] not in folded and EMBEDDING_DELTA_PATH[0] in gdes  # pure: the input is kept
  np.testing.assert_array_equal(_get(folded, WORD_EMBEDDINGS_PATH),
                                _get(gdes, WORD_EMBEDDINGS_PATH) + _get(gdes, EMBEDDING_DELTA_PATH))
  np.testing.assert_allclose(_disc_logits("tied", folded), _disc_logits("gdes", gdes), atol=1e-6)
  assert not np.allclose(_disc_logits("tied", {k: v for k, v in gdes.items() if k != EMBEDDING_DELTA_PATH[0]}),
                         _disc_logits("gdes", gdes), atol=1e-3)  # the delta matters, so the check above can fail
  tied = _params("tied")
  assert fold_embedding_delta(tied) == tied  # nothing to fold


def test_flat_fold_agrees_with_the_nested_one():
  gdes = _with_random_delta(_params("gdes"))
  flat = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(gdes)}
  folded = fold_flat_embedding_delta(flat, keystr)
  expected = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(fold_embedding_delta(gdes))}
  assert set(folded) == set(expected)
  np.testing.assert_array_equal(folded[keystr(WORD_EMBEDDINGS_PATH)], expected[keystr(WORD_EMBEDDINGS_PATH)])


@pytest.mark.parametrize("sharing, keeps_delta", [("gdes", True), ("tied", False)])
def test_continued_pretraining_keeps_both_tables_or_folds(sharing, keeps_delta, tmp_path):
  loaded = {jax.tree_util.keystr(p): x for p, x in
            jax.tree_util.tree_leaves_with_path(_with_random_delta(_params("gdes")))}
  task = PretrainingTask(pretrain_config("tiny", **{"objective.embedding_sharing": sharing}), str(tmp_path))
  task._model_cfg = _config(sharing)  # what make_input sets from the config
  given = task.init_params(loaded, {}, "gdes-run")
  word, delta = keystr(WORD_EMBEDDINGS_PATH), keystr(EMBEDDING_DELTA_PATH)
  assert (delta in given) == keeps_delta
  np.testing.assert_array_equal(given[word], loaded[word] if keeps_delta else loaded[word] + loaded[delta])


def test_unknown_embedding_sharing_is_a_one_line_config_error():
  message = "config.objective.embedding_sharing='shared': expected one of tied, gdes"
  with pytest.raises(ConfigError) as e:
    validate_pretraining(pretrain_config("tiny", **{"objective.embedding_sharing": "shared"}), 16)
  assert str(e.value) == message
  with pytest.raises(ConfigError) as e:
    _config("shared")
  assert str(e.value) == message
  validate_pretraining(pretrain_config("tiny", **{"objective.embedding_sharing": "gdes"}), 16)


def test_resuming_with_another_embedding_sharing_is_one_line(tmp_path):
  workdir_lib.write_model_info(str(tmp_path), _config("gdes"), None, {})
  check_same_sharing(str(tmp_path), _config("gdes"))
  with pytest.raises(ConfigError, match=r"^config.objective.embedding_sharing='tied': the run in .* was trained "
                                        r"with 'gdes'") as e:
    check_same_sharing(str(tmp_path), _config("tied"))
  assert "\n" not in str(e.value)
