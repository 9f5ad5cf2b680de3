"""korpat_jax.masking: the strategy `config.objective.masking` names, built once by the pretraining task."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import pretrain_config
from korpat_jax import masking, objective
from korpat_jax.errors import ConfigError
from korpat_jax.special_tokens import SpecialIds

SPECIAL = SpecialIds()


def test_token_masking_is_objective_mask_tokens():
  config = pretrain_config("tiny")
  strategy = masking.make_masking(config.objective, SPECIAL, seq_len=64)
  assert isinstance(strategy, masking.TokenMasking) and dataclasses.is_dataclass(strategy)
  assert strategy.max_predictions == objective.max_predictions_per_seq(64, 0.15) == 9
  rng = np.random.default_rng(0)
  ids = np.concatenate([np.full((4, 1), SPECIAL.cls), rng.integers(5, 128, size=(4, 62)),
                        np.full((4, 1), SPECIAL.sep)], axis=1)
  ids = jnp.asarray(ids, jnp.int32)
  batch = {"input_ids": ids, "attention_mask": jnp.ones_like(ids), "token_type_ids": jnp.zeros_like(ids)}
  got = jax.jit(strategy.mask)(jax.random.key(3), batch)
  want = objective.mask_tokens(jax.random.key(3), ids, batch["attention_mask"], SPECIAL, mask_prob=0.15,
                               max_predictions=9)
  for a, b in zip(got, want):
    np.testing.assert_array_equal(a, b)


def test_max_predictions_from_the_config_and_frozen():
  config = pretrain_config("tiny", **{"objective.max_predictions": 5})
  strategy = masking.make_masking(config.objective, SPECIAL, seq_len=64)
  assert strategy.max_predictions == 5
  with pytest.raises(dataclasses.FrozenInstanceError):
    strategy.mask_prob = 0.5


def test_an_unknown_strategy_is_one_line_naming_the_key():
  config = pretrain_config("tiny", **{"objective.masking": "morpheme"})
  with pytest.raises(ConfigError) as e:
    masking.make_masking(config.objective, SPECIAL, seq_len=64)
  assert str(e.value) == "config.objective.masking='morpheme': expected one of token"
