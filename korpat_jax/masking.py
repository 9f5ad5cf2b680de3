"""How pretraining chooses the positions the generator predicts: a masking strategy, chosen by
`config.objective.masking` and built once by the pretraining task, which hands it to its step.

    token     ELECTRA's dynamic masking of single WordPiece tokens (objective.mask_tokens)
    morpheme  whole Mecab-ko morphemes: all the WordPiece pieces of a morpheme or none (whole-word masking, BERT;
              Cui et al. 2019 for Chinese)
    eojeol    whole eojeols (space-separated words: the word of Korean whole-word masking)
    span      SpanBERT's spans (Joshi et al. 2020): lengths ~ geometric(0.2) on 1..10 tokens, mean 3.8

Every strategy spends about `mask_prob` of each sequence's tokens (objective.num_to_predict, at most
`max_predictions`); unit_masking.py has how morpheme, eojeol and span choose. The chosen tokens become [MASK] 85%
of the time and keep their id otherwise, decided per token as ELECTRA and BERT's whole-word masking do.

A new scheme is a frozen dataclass with `max_predictions`, `needs_boundaries` and `mask(rng, batch) ->
objective.Masked`, and a `from_config` classmethod, registered in STRATEGIES under its config name; what it needs
beyond input_ids and attention_mask comes from the batch (morpheme and eojeol read `boundaries`, the records' flags:
korpat_jax.boundaries). Its `mask` is traced inside the jitted step: pure, no host syncs, fixed shapes
([B, max_predictions] predictions per batch).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping, Protocol

import jax

from korpat_jax import boundaries, objective, unit_masking
from korpat_jax.errors import ConfigError
from korpat_jax.special_tokens import SpecialIds


class MaskingStrategy(Protocol):
  """Chooses the predicted positions of a batch and masks them."""

  max_predictions: int  # N: prediction slots per sequence (the generator's MLM head runs on N positions)
  needs_boundaries: bool  # whether `mask` reads the batch's `boundaries` (records of schema 3)

  def mask(self, rng: jax.Array, batch: Mapping[str, jax.Array]) -> objective.Masked:
    """The masked input ids, the chosen positions [B, N], their weights and original ids."""


@dataclasses.dataclass(frozen=True)
class _AtRate:
  """What every strategy here is built from: the special ids, the share of tokens to predict, the slots."""

  special: SpecialIds
  mask_prob: float
  max_predictions: int

  @classmethod
  def from_config(cls, obj: Mapping[str, Any], special: SpecialIds, max_predictions: int) -> "_AtRate":
    return cls(special, float(obj["mask_prob"]), max_predictions)


@dataclasses.dataclass(frozen=True)
class TokenMasking(_AtRate):
  """ELECTRA's masking of single tokens (google-research/electra): see objective.mask_tokens."""

  needs_boundaries: ClassVar[bool] = False

  def mask(self, rng: jax.Array, batch: Mapping[str, jax.Array]) -> objective.Masked:
    return objective.mask_tokens(rng, batch["input_ids"], batch["attention_mask"], self.special,
                                 mask_prob=self.mask_prob, max_predictions=self.max_predictions)


@dataclasses.dataclass(frozen=True)
class WholeUnitMasking(_AtRate):
  """Whole units, a unit starting at a token whose boundary flag has one of `UNIT_BITS` (unit_masking)."""

  needs_boundaries: ClassVar[bool] = True
  UNIT_BITS: ClassVar[int] = boundaries.UNIT

  def mask(self, rng: jax.Array, batch: Mapping[str, jax.Array]) -> objective.Masked:
    choose_rng, replace_rng = jax.random.split(rng)
    ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    candidates = objective.candidates(ids, attention_mask, self.special)
    starts = unit_masking.unit_starts(candidates, batch[boundaries.FIELD], self.UNIT_BITS)
    budget = objective.num_to_predict(attention_mask, self.mask_prob, self.max_predictions)
    chosen = unit_masking.choose_whole_units(choose_rng, candidates, starts, budget)
    positions, weights = unit_masking.first_positions(chosen, self.max_predictions)
    return objective.mask_positions(replace_rng, ids, positions, weights, self.special)


@dataclasses.dataclass(frozen=True)
class MorphemeMasking(WholeUnitMasking):
  """All the WordPiece pieces of a Mecab-ko morpheme, or none of them."""

  UNIT_BITS: ClassVar[int] = boundaries.MORPHEME_START | boundaries.EOJEOL_START


@dataclasses.dataclass(frozen=True)
class EojeolMasking(WholeUnitMasking):
  """All the tokens of an eojeol (a space-separated word), or none of them."""

  UNIT_BITS: ClassVar[int] = boundaries.EOJEOL_START


@dataclasses.dataclass(frozen=True)
class SpanMasking(_AtRate):
  """SpanBERT's contiguous spans, measured in tokens (unit_masking.choose_spans): needs no boundaries."""

  needs_boundaries: ClassVar[bool] = False

  def mask(self, rng: jax.Array, batch: Mapping[str, jax.Array]) -> objective.Masked:
    choose_rng, replace_rng = jax.random.split(rng)
    ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    candidates = objective.candidates(ids, attention_mask, self.special)
    budget = objective.num_to_predict(attention_mask, self.mask_prob, self.max_predictions)
    positions, weights = unit_masking.choose_spans(choose_rng, candidates, budget, self.max_predictions)
    return objective.mask_positions(replace_rng, ids, positions, weights, self.special)


# config.objective.masking -> its strategy class (from_config(objective block, special ids, max_predictions))
STRATEGIES: dict[str, Any] = {"token": TokenMasking, "morpheme": MorphemeMasking, "eojeol": EojeolMasking,
                              "span": SpanMasking}


def check_name(name: str) -> None:
  """A one-line ConfigError for a name no strategy has."""
  if name not in STRATEGIES:
    raise ConfigError(f"config.objective.masking={name!r}: expected one of {', '.join(STRATEGIES)}")


def needs_boundaries(name: str) -> bool:
  """Whether the strategy `name` reads the records' boundary flags (so the input must carry them)."""
  check_name(name)
  return STRATEGIES[name].needs_boundaries


def make_masking(obj: Mapping[str, Any], special: SpecialIds, seq_len: int) -> MaskingStrategy:
  """The strategy of a config's `objective` block; max_predictions -1 is google's for `seq_len` and mask_prob."""
  name = obj.get("masking", "token")
  check_name(name)
  max_predictions = int(obj["max_predictions"])
  if max_predictions < 0:
    max_predictions = objective.max_predictions_per_seq(seq_len, float(obj["mask_prob"]))
  return STRATEGIES[name].from_config(obj, special, max_predictions)
