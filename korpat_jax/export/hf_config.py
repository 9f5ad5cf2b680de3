"""Which HF class each exported model is, its config.json, and the Flax parameter shapes a config implies.

Model kinds: "discriminator" (ElectraForPreTraining) and "generator" (ElectraForMaskedLM), both read from an
ElectraPretrainer tree, and the task types of korpat_jax.model.heads (their HeadSpec), read from a fine-tuned tree.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp

from korpat_jax.errors import KorpatError
from korpat_jax.export import hf_names
from korpat_jax.model.config import ElectraConfig, EncoderConfig
from korpat_jax.model.electra import ElectraPretrainer
from korpat_jax.model.heads import HEADS, head, task_model

PRETRAINING_KINDS = ("discriminator", "generator")
ARCHITECTURES = {"discriminator": "ElectraForPreTraining", "generator": "ElectraForMaskedLM",
                 **{kind: spec.hf_class for kind, spec in HEADS.items()}}
KIND_OF_ARCHITECTURE = {arch: kind for kind, arch in ARCHITECTURES.items()} | {"ElectraModel": "discriminator"}
LAYOUTS = {"discriminator": hf_names.DISCRIMINATOR_LAYOUT, "generator": hf_names.GENERATOR_LAYOUT}


def layout(kind: str) -> hf_names.Layout:
  """Top-level Flax module -> HF prefix of the `kind` model: a pretraining layout, or the encoder + a head's
  prefixes (named the same in HF)."""
  if kind in LAYOUTS:
    return LAYOUTS[kind]
  return {**hf_names.ENCODER_LAYOUT, **{prefix: prefix for prefix in head(kind).prefixes}}


def encoder_config(cfg: ElectraConfig, kind: str) -> EncoderConfig:
  return cfg.generator if kind == "generator" else cfg.discriminator


def hf_config(cfg: ElectraConfig, kind: str, pad_token_id: int,
              id2label: Optional[Mapping[int, str]] = None, problem_type: Optional[str] = None) -> dict[str, Any]:
  """config.json of the exported model (transformers' ElectraConfig fields)."""
  enc = encoder_config(cfg, kind)
  config: dict[str, Any] = {
      "architectures": [ARCHITECTURES[kind]],
      "model_type": "electra",
      "vocab_size": cfg.vocab_size,
      "embedding_size": cfg.embedding_size,
      "hidden_size": enc.hidden_size,
      "num_hidden_layers": enc.num_layers,
      "num_attention_heads": enc.num_heads,
      "intermediate_size": enc.intermediate_size,
      "hidden_act": "gelu",
      "hidden_dropout_prob": cfg.dropout_rate,
      "attention_probs_dropout_prob": cfg.attention_dropout_rate,
      "max_position_embeddings": cfg.max_position_embeddings,
      "type_vocab_size": cfg.type_vocab_size,
      "initializer_range": cfg.initializer_range,
      "layer_norm_eps": cfg.layer_norm_eps,
      "position_embedding_type": "absolute",
      "pad_token_id": int(pad_token_id),
      "tie_word_embeddings": True,
  }
  spec = HEADS.get(kind)
  if id2label is not None and (spec is None or spec.fixed_labels is None):
    config["id2label"] = {str(i): label for i, label in sorted(id2label.items())}
    config["label2id"] = {label: i for i, label in sorted(id2label.items())}
  if spec is not None and spec.problem_types:
    config["problem_type"] = problem_type or spec.problem_types[0]
  return config


def encoder_from_hf(hf: Mapping[str, Any], source: str) -> EncoderConfig:
  return EncoderConfig(int(_get(hf, "hidden_size", source)), int(_get(hf, "num_hidden_layers", source)),
                       int(_get(hf, "num_attention_heads", source)), int(_get(hf, "intermediate_size", source)))


def electra_config_from_hf(hf: Mapping[str, Any], source: str, discriminator: EncoderConfig,
                           generator: EncoderConfig) -> ElectraConfig:
  """ElectraConfig with the HF config's shared sizes; this project computes exactly what HF's "gelu" computes."""
  if hf.get("model_type", "electra") != "electra":
    raise KorpatError(f"{source}: model_type is {hf.get('model_type')!r}, not 'electra'")
  if hf.get("hidden_act", "gelu") != "gelu":
    raise KorpatError(f"{source}: hidden_act is {hf.get('hidden_act')!r}; this project's ELECTRA uses exact 'gelu'")
  if hf.get("position_embedding_type", "absolute") != "absolute":
    raise KorpatError(f"{source}: position_embedding_type {hf.get('position_embedding_type')!r} is not 'absolute'")
  return ElectraConfig(
      vocab_size=int(_get(hf, "vocab_size", source)),
      embedding_size=int(hf.get("embedding_size", hf.get("hidden_size"))),
      discriminator=discriminator,
      generator=generator,
      **{ours: type(default)(hf.get(theirs, default)) for ours, theirs, default in _HF_OPTIONS},
  )


def expected_shapes(cfg: ElectraConfig, kind: str, num_labels: int = 2) -> dict[hf_names.Path, tuple[int, ...]]:
  """Flax path -> shape of every parameter the `kind` model of `cfg` has (no computation, only shapes)."""
  return dict(_expected_shapes(cfg, kind, num_labels))


@functools.lru_cache(maxsize=16)
def _expected_shapes(cfg: ElectraConfig, kind: str, num_labels: int) -> tuple[tuple[hf_names.Path, tuple], ...]:
  model = ElectraPretrainer(cfg) if kind in PRETRAINING_KINDS else task_model(kind, cfg, num_labels)
  ids = jnp.zeros((1, 4), jnp.int32)
  abstract = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), ids, ids, ids))["params"]
  flat = hf_names.flatten(abstract)
  if kind in PRETRAINING_KINDS:
    flat = hf_names.in_layout(flat, LAYOUTS[kind])
  return tuple((path, tuple(leaf.shape)) for path, leaf in flat.items())


# Our option -> HF config.json key; a missing key takes our default (ElectraConfig's, which are also HF's).
_HF_OPTIONS = [(ours, theirs, ElectraConfig.option_defaults()[ours]) for ours, theirs in (
    ("max_position_embeddings", "max_position_embeddings"), ("type_vocab_size", "type_vocab_size"),
    ("dropout_rate", "hidden_dropout_prob"), ("attention_dropout_rate", "attention_probs_dropout_prob"),
    ("layer_norm_eps", "layer_norm_eps"), ("initializer_range", "initializer_range"))]


def _get(hf: Mapping[str, Any], key: str, source: str) -> Any:
  if key not in hf:
    raise KorpatError(f"{source}: config.json has no {key!r}")
  return hf[key]
