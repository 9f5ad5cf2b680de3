"""The MWP tokenizer: Mecab-ko morphemes (+ patent user dictionary) joined by spaces, then cased WordPiece.

  from korpat_jax.tokenizer import MWPTokenizer, train_tokenizer, demo_corpus_files
  tok = train_tokenizer(demo_corpus_files(), "tok", vocab_size=8000)
  enc = tok.encode("기판 상에 질화갈륨을 형성한다.")
  enc.ids, enc.tokens, enc.offsets   # offsets: (start, end) spans of the original text
"""

from __future__ import annotations

from korpat_jax.tokenizer.mwp import SPECIAL_TOKENS, Encoding, MWPTokenizer, presegment
from korpat_jax.tokenizer.sources import demo_corpus_files
from korpat_jax.tokenizer.vocab import train_tokenizer

__all__ = ["MWPTokenizer", "Encoding", "SPECIAL_TOKENS", "train_tokenizer", "demo_corpus_files",
           "build_user_dictionary", "presegment"]


def __getattr__(name: str):
  if name == "build_user_dictionary":
    from korpat_jax.tokenizer.userdic import build_user_dictionary
    return build_user_dictionary
  raise AttributeError(name)
