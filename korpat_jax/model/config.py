"""Model hyper-parameters as frozen dataclasses, built from the `model` block of a run config, and the checks of
that block: every task (pretraining, fine-tuning) reads a `model` block, so they live here, once.

A value a block leaves at -1 is filled in later (pretraining's vocab_size: the records'; fine-tuning's sizes and
dropout: the init model's) and checked when the ElectraConfig is built, which refuses what the model cannot run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import jax.numpy as jnp

from korpat_jax.errors import ConfigError
from korpat_jax.model.dropout import DROPOUT_RNGS

DTYPES = ("float32", "bfloat16", "float16")
ATTENTION_IMPLS = ("auto", "xla", "cudnn")
# How pretraining's discriminator shares the word embeddings: model/embedding_sharing.py.
EMBEDDING_SHARINGS = ("tied", "gdes")
OBJECTIVE_BLOCK = {"block": "objective"}  # a field's metadata: a run sets it in config.objective, not config.model
UNSET = -1  # a `model` value taken from the data or the init model


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
  # auto | xla | cudnn: the `implementation` of jax.nn.dot_product_attention. auto passes None, which JAX 0.10.2
  # runs as the XLA implementation on every backend (its docs: None "currently falls back to xla"): the same
  # numerics as xla, never cuDNN. cudnn gives cuDNN the padding as per-example lengths (electra.padding_arguments);
  # it needs bf16/fp16, attention_dropout_rate 0 and a head dim that is a multiple of 8, at most 128 (256 from
  # Hopper on). Whatever the impl, a training step with attention_dropout_rate > 0 runs the explicit softmax +
  # dropout instead (the fused kernels have no dropout); evaluation (deterministic) runs the fused call.
  attention_impl: str = "auto"
  dropout_rng: str = "hash"  # hash (a counter hash, fast) | threefry (flax nn.Dropout): see model/dropout.py
  remat: bool = False  # rematerialise each encoder layer in the backward pass
  # tied | gdes, from config.objective.embedding_sharing (pretraining only; a fine-tuned model is always tied).
  embedding_sharing: str = dataclasses.field(default="tied", metadata=OBJECTIVE_BLOCK)

  def __post_init__(self) -> None:
    """Refuses what the model cannot run, naming the config key: every task's model config is built here, after
    the values a block left at -1 are resolved."""
    for name in ("vocab_size", "embedding_size", "max_position_embeddings", "type_vocab_size"):
      _require(getattr(self, name) > 0, f"config.model.{name}={getattr(self, name)}: must be > 0")
    for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
      _require(getattr(self.discriminator, name) > 0,
               f"config.model.{name}={getattr(self.discriminator, name)}: must be > 0")
    check_model_block({**self.to_dict(), **dataclasses.asdict(self.discriminator)}, resolved=True)
    check_embedding_sharing(self.embedding_sharing)

  @classmethod
  def option_defaults(cls) -> dict[str, Any]:
    """The `config.model` fields with a default (everything but the sizes and the objective's embedding_sharing):
    the one place the model's defaults live."""
    return {f.name: f.default for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING and f.metadata.get("block") != "objective"}

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


def check_model_block(model: Mapping[str, Any], resolved: bool = False) -> None:
  """The `model` block's values that would otherwise fail deep inside JAX, whichever task reads it (one-line
  ConfigError naming the key). Keys the block lacks and, unless `resolved`, values left at -1 are checked once the
  ElectraConfig is built."""
  def given(key: str) -> bool:
    return key in model and (resolved or model[key] != UNSET)

  for key, value in model.items():
    if isinstance(value, float):
      _require(math.isfinite(value), f"config.model.{key}={value}: must be a finite number")
  dtype, impl = model.get("dtype", "float32"), model.get("attention_impl", "auto")
  _require(dtype in DTYPES, f"config.model.dtype={dtype!r}: expected float32, bfloat16 or float16")
  _require(impl in ATTENTION_IMPLS, f"config.model.attention_impl={impl!r}: expected auto, xla or cudnn")
  if "dropout_rng" in model:
    _require(model["dropout_rng"] in DROPOUT_RNGS,
             f"config.model.dropout_rng={model['dropout_rng']!r}: expected one of {', '.join(DROPOUT_RNGS)}")
  if given("hidden_size") and given("num_heads") and model["num_heads"] > 0:
    _require(model["hidden_size"] % model["num_heads"] == 0,
             f"config.model.num_heads={model['num_heads']}: must divide model.hidden_size={model['hidden_size']}")
  if impl == "cudnn":
    _require(dtype in ("bfloat16", "float16"),
             f"config.model.attention_impl='cudnn': needs model.dtype bfloat16 or float16, not {dtype!r}")
    if given("hidden_size") and given("num_heads") and model["num_heads"] > 0:
      _check_cudnn_head_sizes(model)
    if given("attention_dropout_rate"):
      _require(model["attention_dropout_rate"] == 0.0,
               f"config.model.attention_impl='cudnn': fused attention has no dropout; set "
               f"model.attention_dropout_rate=0 (is {model['attention_dropout_rate']})")
  for key in ("dropout_rate", "attention_dropout_rate"):
    if given(key):
      _require(0.0 <= model[key] < 1.0, f"config.model.{key}={model[key]}: must be in [0, 1)")


def check_embedding_sharing(value: Any) -> None:
  _require(value in EMBEDDING_SHARINGS,
           f"config.objective.embedding_sharing={value!r}: expected one of {', '.join(EMBEDDING_SHARINGS)}")


def _require(ok: bool, message: str) -> None:
  if not ok:
    raise ConfigError(message)


def _check_cudnn_head_sizes(model: Mapping[str, Any]) -> None:
  """cuDNN's fused attention takes head sizes that are multiples of 8 up to 256 (JAX's check_is_flash_attention);
  the generator's heads are sized by google's rule (hidden // 64 of them), so a small model can miss it there."""
  hidden = int(model["hidden_size"])
  heads = {"model.hidden_size / model.num_heads": hidden // int(model["num_heads"])}
  if "generator_hidden_fraction" in model:
    gen = max(1, round(hidden * float(model["generator_hidden_fraction"])))
    heads["the generator's (hidden_size x generator_hidden_fraction, one head per 64)"] = gen // max(1, gen // 64)
  for what, size in heads.items():
    _require(size % 8 == 0 and size <= 256,
             f"config.model.attention_impl='cudnn': head size {size} ({what}) must be a multiple of 8 and at most "
             f"256; use attention_impl=xla or other sizes")
