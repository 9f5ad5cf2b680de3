"""The per-token boundary flags that records (schema 3) carry for whole-unit masking, in one place for the tokenizer,
the records, the input pipeline and the masking strategies.

One uint8 per token: bit 0 says the token starts a Mecab-ko morpheme (its first WordPiece), bit 1 that it starts an
eojeol (a space-separated word; every eojeol start is also a morpheme start). [CLS] and [SEP] start both: each is a
unit of its own. Padding is 0.
"""

from __future__ import annotations

import numpy as np

MORPHEME_START = 1
EOJEOL_START = 2
UNIT = MORPHEME_START | EOJEOL_START  # a token that is a whole unit on its own ([CLS], [SEP], a one-piece word)
FIELD = "boundaries"  # the records' feature and the batches' key
DTYPE = np.dtype("uint8")
