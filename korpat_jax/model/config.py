"""Model hyper-parameters as frozen dataclasses, built from the `model` block of a run config."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
  """One BERT encoder stack (the generator's or the discriminator's)."""

  hidden_size: int
  num_layers: int
  num_heads: int
  intermediate_size: int

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_heads


@dataclasses.dataclass(frozen=True)
class ElectraConfig:
  """Everything that fixes the parameter shapes and the forward computation."""

  vocab_size: int
  embedding_size: int
  discriminator: EncoderConfig
  generator: EncoderConfig
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  dropout_rate: float = 0.1
  attention_dropout_rate: float = 0.1
  layer_norm_eps: float = 1e-12
  initializer_range: float = 0.02
  dtype: str = "float32"  # compute dtype; parameters are always float32
  attention_impl: str = "auto"  # auto | xla | cudnn
  dropout_rng: str = "hash"  # hash (a counter hash, fast) | threefry (flax nn.Dropout): see model/dropout.py
  remat: bool = False  # rematerialise each encoder layer in the backward pass

  @classmethod
  def option_defaults(cls) -> dict[str, Any]:
    """The fields with a default (everything but the sizes): the one place the model's defaults live."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

  @property
  def compute_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)

  @classmethod
  def from_config(cls, model: Mapping[str, Any]) -> "ElectraConfig":
    """From a `config.model` block: sizes of the discriminator plus ELECTRA's generator fractions.

    Generator: hidden = round(H * generator_hidden_fraction), layers = round(L * generator_layers_fraction),
    FFN = 4 * hidden, heads = max(1, hidden // 64), as google-research/electra sizes it.
    """
    hidden, layers = int(model["hidden_size"]), int(model["num_layers"])
    gen_hidden = max(1, round(hidden * float(model["generator_hidden_fraction"])))
    gen_layers = max(1, round(layers * float(model.get("generator_layers_fraction", 1.0))))
    options = {name: type(default)(model.get(name, default)) for name, default in cls.option_defaults().items()}
    return cls(
        vocab_size=int(model["vocab_size"]),
        embedding_size=int(model["embedding_size"]),
        discriminator=EncoderConfig(hidden, layers, int(model["num_heads"]), int(model["intermediate_size"])),
        generator=EncoderConfig(gen_hidden, gen_layers, max(1, gen_hidden // 64), 4 * gen_hidden),
        **options,
    )

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "ElectraConfig":
    d = dict(d)
    d["discriminator"] = EncoderConfig(**d["discriminator"])
    d["generator"] = EncoderConfig(**d["generator"])
    return cls(**d)
