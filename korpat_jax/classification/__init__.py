"""Text classification (e.g. CPC codes of patents, single- or multi-label) and sentence-pair (NLI) fine-tuning:
data readers, CPC code parsing and cutting, and scores. Pure Python + numpy; the models live elsewhere."""

from __future__ import annotations

from korpat_jax.classification.cpc import CUT_LEVELS, LEVELS, CpcCode, cpc_label_parser, cut_cpc, parse_cpc
from korpat_jax.classification.metrics import multi_hot, multi_label_scores, pair_scores, single_label_scores
from korpat_jax.classification.readers import (TextExample, check_labels, file_format, label_ids, label_set,
                                               read_examples)

__all__ = [
    "CUT_LEVELS", "LEVELS", "CpcCode", "TextExample", "check_labels", "cpc_label_parser", "cut_cpc", "file_format",
    "label_ids", "label_set", "multi_hot", "multi_label_scores", "pair_scores", "parse_cpc", "read_examples",
    "single_label_scores",
]
