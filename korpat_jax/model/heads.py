"""Fine-tuning models: the discriminator encoder with a task head, laid out as HF transformers' ELECTRA task classes.

Parameter tree (HF name in brackets). The encoder is named `discriminator` as in ElectraPretrainer (electra.py), so
the embeddings and discriminator of a pretraining run initialise a task model as they are:
  embeddings/...                        [electra.embeddings.*]
  discriminator/{embeddings_project,layer_i}  [electra.embeddings_project.*, electra.encoder.layer.{i}.*]
  ElectraForTokenClassification:    classifier/{kernel,bias}                   [classifier.*]
  ElectraForSequenceClassification: classifier/{dense,out_proj}/{kernel,bias}  [classifier.{dense,out_proj}.*]
  ElectraForQuestionAnswering:      qa_outputs/{kernel,bias}                   [qa_outputs.*]
The sequence head is HF's (CLS -> dropout -> dense -> GELU -> dropout -> out_proj), not google-research/electra's
single dense, so that a fine-tuned model exports without loss.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from korpat_jax.model.config import ElectraConfig
from korpat_jax.model import ops
from korpat_jax.model.dropout import Dropout
from korpat_jax.model.electra import Embeddings, Encoder


def _dense(features: int, cfg: ElectraConfig, name: str) -> nn.Dense:
  return nn.Dense(features, dtype=cfg.compute_dtype, param_dtype=jnp.float32,
                  kernel_init=nn.initializers.normal(cfg.initializer_range), name=name)


class _EncoderOutput(nn.Module):
  """Shared embeddings + the discriminator encoder: [B, S] ids -> [B, S, H] hidden states."""

  cfg: ElectraConfig

  def setup(self):
    self.embeddings = Embeddings(self.cfg)
    self.discriminator = Encoder(self.cfg, self.cfg.discriminator)

  def hidden_states(self, input_ids: jax.Array, token_type_ids: jax.Array, attention_mask: jax.Array,
                    deterministic: bool) -> jax.Array:
    return self.discriminator(self.embeddings(input_ids, token_type_ids, deterministic), attention_mask, deterministic)


class ElectraForTokenClassification(_EncoderOutput):
  """Per-token logits [B, S, num_labels]: dropout -> classifier."""

  num_labels: int = 2
  classifier_dropout: Optional[float] = None

  def setup(self):
    super().setup()
    rate = self.cfg.dropout_rate if self.classifier_dropout is None else self.classifier_dropout
    self.dropout = Dropout(rate, self.cfg.dropout_rng)
    self.classifier = _dense(self.num_labels, self.cfg, "classifier")

  def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array, attention_mask: jax.Array,
               deterministic: bool = True) -> jax.Array:
    hidden = self.hidden_states(input_ids, token_type_ids, attention_mask, deterministic)
    return self.classifier(self.dropout(hidden, deterministic=deterministic)).astype(jnp.float32)


class ClassificationHead(nn.Module):
  """HF's ElectraClassificationHead: CLS -> dropout -> dense -> GELU -> dropout -> out_proj."""

  cfg: ElectraConfig
  num_labels: int
  dropout_rate: float

  @nn.compact
  def __call__(self, hidden: jax.Array, deterministic: bool) -> jax.Array:
    x = Dropout(self.dropout_rate, self.cfg.dropout_rng)(hidden[:, 0], deterministic=deterministic)
    x = ops.gelu(_dense(self.cfg.discriminator.hidden_size, self.cfg, "dense")(x))
    x = Dropout(self.dropout_rate, self.cfg.dropout_rng)(x, deterministic=deterministic)
    return _dense(self.num_labels, self.cfg, "out_proj")(x)


class ElectraForSequenceClassification(_EncoderOutput):
  """Per-sequence logits [B, num_labels] from the first ([CLS]) position."""

  num_labels: int = 2
  classifier_dropout: Optional[float] = None

  def setup(self):
    super().setup()
    rate = self.cfg.dropout_rate if self.classifier_dropout is None else self.classifier_dropout
    self.classifier = ClassificationHead(self.cfg, self.num_labels, rate)

  def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array, attention_mask: jax.Array,
               deterministic: bool = True) -> jax.Array:
    hidden = self.hidden_states(input_ids, token_type_ids, attention_mask, deterministic)
    return self.classifier(hidden, deterministic).astype(jnp.float32)


class ElectraForQuestionAnswering(_EncoderOutput):
  """Span logits: (start [B, S], end [B, S]) from one Linear(H, 2)."""

  classifier_dropout: Optional[float] = None  # unused (HF's QA head has no dropout); kept for a uniform signature

  def setup(self):
    super().setup()
    self.qa_outputs = _dense(2, self.cfg, "qa_outputs")

  def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array, attention_mask: jax.Array,
               deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
    hidden = self.hidden_states(input_ids, token_type_ids, attention_mask, deterministic)
    logits = self.qa_outputs(hidden).astype(jnp.float32)
    return logits[..., 0], logits[..., 1]


TASK_MODELS = {
    "token_classification": ElectraForTokenClassification,
    "sequence_classification": ElectraForSequenceClassification,
    "question_answering": ElectraForQuestionAnswering,
}


def task_model(task_type: str, cfg: ElectraConfig, num_labels: int) -> nn.Module:
  """The Flax model of a task type; question answering always has 2 outputs (start, end)."""
  if task_type == "question_answering":
    return ElectraForQuestionAnswering(cfg)
  return TASK_MODELS[task_type](cfg, num_labels=num_labels)
