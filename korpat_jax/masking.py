"""How pretraining chooses the positions the generator predicts: a masking strategy, chosen by
`config.objective.masking` and built once by the pretraining task, which hands it to its step.

    token    ELECTRA's dynamic masking of single WordPiece tokens (objective.mask_tokens)

A new scheme (whole-morpheme, whole-eojeol, span) is a frozen dataclass with `max_predictions` and
`mask(rng, batch) -> objective.Masked`, registered in STRATEGIES under its config name; what it needs beyond
input_ids and attention_mask (word starts, say) comes from the batch. Its `mask` is traced inside the jitted step:
pure, no host syncs, fixed shapes ([B, max_predictions] predictions per batch).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Protocol

import jax

from korpat_jax import objective
from korpat_jax.errors import ConfigError
from korpat_jax.special_tokens import SpecialIds


class MaskingStrategy(Protocol):
  """Chooses the predicted positions of a batch and masks them."""

  max_predictions: int  # N: prediction slots per sequence (the generator's MLM head runs on N positions)

  def mask(self, rng: jax.Array, batch: Mapping[str, jax.Array]) -> objective.Masked:
    """The masked input ids, the chosen positions [B, N], their weights and original ids."""


@dataclasses.dataclass(frozen=True)
class TokenMasking:
  """ELECTRA's masking of single tokens (google-research/electra): see objective.mask_tokens."""

  special: SpecialIds
  mask_prob: float
  max_predictions: int

  def mask(self, rng: jax.Array, batch: Mapping[str, jax.Array]) -> objective.Masked:
    return objective.mask_tokens(rng, batch["input_ids"], batch["attention_mask"], self.special,
                                 mask_prob=self.mask_prob, max_predictions=self.max_predictions)


def _token(obj: Mapping[str, Any], special: SpecialIds, max_predictions: int) -> TokenMasking:
  return TokenMasking(special, float(obj["mask_prob"]), max_predictions)


# config.objective.masking -> builder(objective block, special ids, max_predictions)
STRATEGIES: dict[str, Callable[[Mapping[str, Any], SpecialIds, int], MaskingStrategy]] = {"token": _token}


def check_name(name: str) -> None:
  """A one-line ConfigError for a name no strategy has."""
  if name not in STRATEGIES:
    raise ConfigError(f"config.objective.masking={name!r}: expected one of {', '.join(STRATEGIES)}")


def make_masking(obj: Mapping[str, Any], special: SpecialIds, seq_len: int) -> MaskingStrategy:
  """The strategy of a config's `objective` block; max_predictions -1 is google's for `seq_len` and mask_prob."""
  name = obj.get("masking", "token")
  check_name(name)
  max_predictions = int(obj["max_predictions"])
  if max_predictions < 0:
    max_predictions = objective.max_predictions_per_seq(seq_len, float(obj["mask_prob"]))
  return STRATEGIES[name](obj, special, max_predictions)
