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

Each head has one `HeadSpec` below its module: the task registry (korpat_jax.tasks), export, import and the model
card read what a task type is from there. Adding a head: its module and spec here (and in HEADS), its task
(korpat_jax/tasks/), its config variant (configs/finetune.py).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from korpat_jax.errors import KorpatError
from korpat_jax.model.config import ElectraConfig
from korpat_jax.model import ops
from korpat_jax.model.dropout import Dropout
from korpat_jax.model.electra import Embeddings, Encoder, dense


@dataclasses.dataclass(frozen=True)
class HeadSpec:
  """What makes a head a task type, in one place.

  The HF weights of a head are named as its Flax parameters (korpat_jax.export.hf_names), so `output_kernel` also
  says how an HF checkpoint whose config.json names no known class is recognised: it holds that kernel's weight.
  """

  task_type: str                   # config.task, model.json's task.type, the export kind
  model: type                      # the Flax module: (cfg, classifier_dropout[, num_labels])
  task: str                        # "module:Class" of its task on the loop, imported on use
  hf_class: str                    # transformers class: config.json "architectures"; import recognises it by it
  prefixes: tuple[str, ...]        # the head's top-level Flax modules; HF names them the same at the model root
  output_kernel: tuple[str, ...]   # Flax path of the output layer's kernel [hidden, outputs]
  pipeline_tag: str                # HF pipeline task (model card)
  card: str                        # "This is {card}, exported by ..." (model card)
  fixed_labels: Optional[tuple[str, ...]] = None  # outputs that are not labels (QA: start, end): no id2label
  problem_types: tuple[str, ...] = ()  # HF problem_type values it records; the first is the default

  def build(self, cfg: ElectraConfig, num_labels: int, classifier_dropout: Optional[float] = None) -> nn.Module:
    """The Flax model; a head with fixed outputs ignores `num_labels`."""
    if self.fixed_labels is not None:
      return self.model(cfg, classifier_dropout=classifier_dropout)
    return self.model(cfg, num_labels=num_labels, classifier_dropout=classifier_dropout)


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
    self.classifier = dense(self.num_labels, self.cfg, "classifier")

  def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array, attention_mask: jax.Array,
               deterministic: bool = True) -> jax.Array:
    hidden = self.hidden_states(input_ids, token_type_ids, attention_mask, deterministic)
    return self.classifier(self.dropout(hidden, deterministic=deterministic)).astype(jnp.float32)


TOKEN_CLASSIFICATION = HeadSpec(
    task_type="token_classification", model=ElectraForTokenClassification,
    task="korpat_jax.tasks.token_classification:TokenClassificationTask", hf_class="ElectraForTokenClassification",
    prefixes=("classifier",), output_kernel=("classifier", "kernel"), pipeline_tag="token-classification",
    card="a fine-tuned token classification model")


class ClassificationHead(nn.Module):
  """HF's ElectraClassificationHead: CLS -> dropout -> dense -> GELU -> dropout -> out_proj."""

  cfg: ElectraConfig
  num_labels: int
  dropout_rate: float

  @nn.compact
  def __call__(self, hidden: jax.Array, deterministic: bool) -> jax.Array:
    x = Dropout(self.dropout_rate, self.cfg.dropout_rng)(hidden[:, 0], deterministic=deterministic)
    x = ops.gelu(dense(self.cfg.discriminator.hidden_size, self.cfg, "dense")(x))
    x = Dropout(self.dropout_rate, self.cfg.dropout_rng)(x, deterministic=deterministic)
    return dense(self.num_labels, self.cfg, "out_proj")(x)


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


SEQUENCE_CLASSIFICATION = HeadSpec(
    task_type="sequence_classification", model=ElectraForSequenceClassification,
    task="korpat_jax.tasks.sequence_classification:SequenceClassificationTask",
    hf_class="ElectraForSequenceClassification", prefixes=("classifier",),
    output_kernel=("classifier", "out_proj", "kernel"), pipeline_tag="text-classification",
    card="a fine-tuned sequence classification model",
    problem_types=("single_label_classification", "multi_label_classification"))


class ElectraForQuestionAnswering(_EncoderOutput):
  """Span logits: (start [B, S], end [B, S]) from one Linear(H, 2)."""

  classifier_dropout: Optional[float] = None  # unused (HF's QA head has no dropout); kept for a uniform signature

  def setup(self):
    super().setup()
    self.qa_outputs = dense(2, self.cfg, "qa_outputs")

  def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array, attention_mask: jax.Array,
               deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
    hidden = self.hidden_states(input_ids, token_type_ids, attention_mask, deterministic)
    logits = self.qa_outputs(hidden).astype(jnp.float32)
    return logits[..., 0], logits[..., 1]


QUESTION_ANSWERING = HeadSpec(
    task_type="question_answering", model=ElectraForQuestionAnswering,
    task="korpat_jax.tasks.question_answering:QuestionAnsweringTask", hf_class="ElectraForQuestionAnswering",
    prefixes=("qa_outputs",), output_kernel=("qa_outputs", "kernel"), pipeline_tag="question-answering",
    card="a fine-tuned question answering model", fixed_labels=("start", "end"))

HEADS: dict[str, HeadSpec] = {spec.task_type: spec for spec in (
    TOKEN_CLASSIFICATION, SEQUENCE_CLASSIFICATION, QUESTION_ANSWERING)}


def head(task_type: str) -> HeadSpec:
  """The spec of a task type; a one-line KorpatError naming the known ones otherwise."""
  if task_type not in HEADS:
    raise KorpatError(f"task type {task_type!r} is not one of {', '.join(HEADS)}")
  return HEADS[task_type]


def task_model(task_type: str, cfg: ElectraConfig, num_labels: int) -> nn.Module:
  """The Flax model of a task type; a head with fixed outputs (QA: start, end) ignores `num_labels`."""
  return head(task_type).build(cfg, num_labels)
