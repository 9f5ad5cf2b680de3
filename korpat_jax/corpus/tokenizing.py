"""What preparation needs from a tokenizer, and how workers get one.

Workers (processes, Beam workers on other machines) cannot share a loaded tokenizer, so runners pass a picklable
*factory* and each worker builds its tokenizer once. `MWPTokenizerFactory` loads the project's MWP tokenizer from a
directory; anything else with the same shape works (tests use a tiny one that needs no Mecab).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Protocol, Sequence

from korpat_jax import special_tokens

SPECIAL_NAMES = special_tokens.NAMES


class CorpusTokenizer(Protocol):
  vocab_size: int
  vocab_hash: str
  special_ids: dict[str, int]  # SPECIAL_NAMES -> id

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens."""

  def encode_batch_with_boundaries(self, texts: Sequence[str]) -> list[tuple[list[int], bytes]]:
    """(token ids, one boundary flag byte per id: korpat_jax.boundaries) of each text, without special tokens:
    what `prepare` writes."""


TokenizerFactory = Callable[[], CorpusTokenizer]


class _MWPAdapter:

  def __init__(self, tokenizer):
    self._tokenizer = tokenizer
    self.vocab_size = int(tokenizer.vocab_size)
    self.vocab_hash = str(tokenizer.vocab_hash)
    self.special_ids = {name: int(getattr(tokenizer, f"{name}_id")) for name in SPECIAL_NAMES}

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    # One process per worker already: no nested parallelism inside the tokenizer.
    encodings = self._tokenizer.batch_encode(list(texts), num_workers=1, add_special_tokens=False)
    return [list(e.ids) for e in encodings]

  def encode_batch_with_boundaries(self, texts: Sequence[str]) -> list[tuple[list[int], bytes]]:
    return self._tokenizer.batch_ids_and_boundaries(texts)


@dataclasses.dataclass(frozen=True)
class MWPTokenizerFactory:
  """Loads `korpat_jax.tokenizer.MWPTokenizer` from `directory` (in each worker)."""

  directory: str

  def __call__(self) -> CorpusTokenizer:
    from korpat_jax.tokenizer import MWPTokenizer  # pylint: disable=import-outside-toplevel
    return _MWPAdapter(MWPTokenizer.load(self.directory))
