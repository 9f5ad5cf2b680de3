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


def test_an_unknown_strategy_is_one_line_naming_the_key_and_the_choices():
  config = pretrain_config("tiny", **{"objective.masking": "whole_word"})
  with pytest.raises(ConfigError) as e:
    masking.make_masking(config.objective, SPECIAL, seq_len=64)
  assert str(e.value) == "config.objective.masking='whole_word': expected one of token, morpheme, eojeol, span"


def _batch_with_flags(seed: int = 0, batch: int = 32, seq: int = 64) -> dict[str, jnp.ndarray]:
  from korpat_jax.synthetic_data import SyntheticTokenStream
  stream = SyntheticTokenStream(300, seq, batch, seed, SPECIAL, with_boundaries=True)
  return {k: jnp.asarray(v) for k, v in stream.global_batch(0).items()}


def test_every_name_builds_its_strategy_and_says_what_it_reads():
  built = {name: masking.make_masking(pretrain_config("tiny", **{"objective.masking": name}).objective, SPECIAL,
                                      seq_len=64) for name in ("token", "morpheme", "eojeol", "span")}
  assert {n: type(s).__name__ for n, s in built.items()} == {
      "token": "TokenMasking", "morpheme": "MorphemeMasking", "eojeol": "EojeolMasking", "span": "SpanMasking"}
  assert {n: masking.needs_boundaries(n) for n in built} == {"token": False, "morpheme": True, "eojeol": True,
                                                             "span": False}
  assert all(s.max_predictions == 9 and s.mask_prob == 0.15 for s in built.values())


@pytest.mark.parametrize("name", ["morpheme", "eojeol", "span"])
def test_strategies_are_jittable_with_fixed_shapes_and_mask_85_percent_per_token(name):
  strategy = masking.make_masking({"masking": name, "mask_prob": 0.15, "max_predictions": -1}, SPECIAL, 64)
  batch = _batch_with_flags()
  m = jax.jit(strategy.mask)(jax.random.key(0), batch)  # traced: no host syncs, shapes fixed by N
  assert m.positions.shape == m.weights.shape == m.labels.shape == (32, 9) and m.input_ids.shape == (32, 64)
  ids, masked_ids = np.asarray(batch["input_ids"]), np.asarray(m.input_ids)
  chosen = np.asarray(m.weights) > 0
  new = np.take_along_axis(masked_ids, np.asarray(m.positions), 1)[chosen]
  old = np.take_along_axis(ids, np.asarray(m.positions), 1)[chosen]
  assert ((new == SPECIAL.mask) | (new == old)).all() and (np.asarray(m.labels)[chosen] == old).all()
  assert 0.75 < (new == SPECIAL.mask).mean() < 0.95  # per token, not per unit
  untouched = np.ones(ids.shape, bool)
  untouched[np.nonzero(chosen)[0], np.asarray(m.positions)[chosen]] = False
  assert (masked_ids[untouched] == ids[untouched]).all()


def test_synthetic_stream_with_boundaries_keeps_its_other_columns():
  from korpat_jax.synthetic_data import SyntheticTokenStream
  plain = SyntheticTokenStream(300, 64, 8, 3, SPECIAL).global_batch(5)
  flagged = SyntheticTokenStream(300, 64, 8, 3, SPECIAL, with_boundaries=True).global_batch(5)
  assert set(flagged) == set(plain) | {"boundaries"}
  for key, value in plain.items():
    np.testing.assert_array_equal(flagged[key], value)
  flags, valid = flagged["boundaries"], plain["attention_mask"] == 1
  assert (flags[~valid] == 0).all() and (flags[:, 0] == 3).all() and flags.dtype == np.uint8
