"""The special tokens and the token-type rule, in one place for the tokenizer, the records, the input pipeline, the
objective and the export.

Every MWP vocabulary starts with [PAD] [UNK] [CLS] [SEP] [MASK] at ids 0-4 (BERT's and KorPatELECTRA's order).
Token types are 0 up to and including the first [SEP] and 1 after it: the records do not store them.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import numpy as np

NAMES = ("pad", "unk", "cls", "sep", "mask")
TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TOKEN_OF = dict(zip(NAMES, TOKENS))


@dataclasses.dataclass(frozen=True)
class SpecialIds:
  pad: int = 0
  unk: int = 1
  cls: int = 2
  sep: int = 3
  mask: int = 4

  @classmethod
  def from_mapping(cls, ids: Mapping[str, int]) -> "SpecialIds":
    """From a manifest's or model.json's `special_ids` ({"pad": 0, ...}; other keys are ignored)."""
    return cls(**{name: int(ids[name]) for name in NAMES if name in ids})


def token_type_ids(ids: np.ndarray, sep_id: int, valid: Optional[np.ndarray] = None) -> np.ndarray:
  """0 up to and including the first [SEP] of each row (the last axis), 1 after it; 0 where `valid` is false."""
  ids = np.asarray(ids)
  is_sep = ids == sep_id
  types = (np.cumsum(is_sep, axis=-1) - is_sep) > 0
  if valid is not None:
    types &= np.asarray(valid).astype(bool)
  return types.astype(np.int32)
