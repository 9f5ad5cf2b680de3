"""The pure-Python side of NER fine-tuning (no JAX): file readers, tag normal form and label sets, unit <-> token
alignment through the tokenizer's character offsets, and entity / KLUE character metrics. (The sliding windows over
long sentences are korpat_jax.finetune.windows, shared with sequence classification.)

  report = DataReport("train")
  examples = read_ner("klue-ner-v1.1_train.tsv", "char_bio", report)
  labels = label_set(examples)
  enc = tok.encode(ex.text, add_special_tokens=False)
  alignment = token_tags(ex, enc.offsets, labels)        # .tags, and what they cannot represent
  char_tags = char_tags_from_tokens(ex.text, enc.offsets, predicted_token_tags)
  entities = predicted_entities(ex, char_tags)                # what the metric scores (strict, whole units)
"""

from __future__ import annotations

from korpat_jax.ner.align import (Alignment, char_tags_from_tokens, decode_entities, entities_from_tags,
                                  predicted_entities, token_tags, unit_char_tags, unit_tags_from_chars)
from korpat_jax.ner.metrics import char_macro_f1, entity_scores, extract_entities, ner_scores
from korpat_jax.ner.readers import FORMATS, NerExample, detect_format, read_ner
from korpat_jax.ner.tags import check_labels, entity_type, label_set, model_tags, normalize_tag

__all__ = [
    "NerExample", "read_ner", "detect_format", "FORMATS",
    "normalize_tag", "entity_type", "label_set", "check_labels", "model_tags",
    "Alignment", "token_tags", "unit_char_tags", "entities_from_tags", "decode_entities", "char_tags_from_tokens",
    "unit_tags_from_chars", "predicted_entities",
    "extract_entities", "entity_scores", "char_macro_f1", "ner_scores",
]
