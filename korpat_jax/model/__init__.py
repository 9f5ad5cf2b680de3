"""Flax ELECTRA: shared embeddings, generator and discriminator encoders, their heads."""

from korpat_jax.model.config import EncoderConfig, ElectraConfig
from korpat_jax.model.electra import ElectraPretrainer, Embeddings, Encoder
from korpat_jax.model.embedding_sharing import fold_embedding_delta
from korpat_jax.model.heads import (ElectraForQuestionAnswering, ElectraForSequenceClassification,
                                    ElectraForTokenClassification)

__all__ = ["EncoderConfig", "ElectraConfig", "ElectraPretrainer", "Embeddings", "Encoder",
           "ElectraForTokenClassification", "ElectraForSequenceClassification", "ElectraForQuestionAnswering",
           "fold_embedding_delta"]
