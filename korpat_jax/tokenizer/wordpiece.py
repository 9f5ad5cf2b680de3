"""The WordPiece half of the MWP tokenizer: the vocabulary file, and cased BERT WordPiece over morphemes.

`BertWordPiece` owns the Rust `tokenizers` WordPiece (BERT's normalizer and pre-tokenizer, as transformers'
`BertTokenizer(do_lower_case=False)`) and caches of each morpheme's ids and pieces. BERT's normalizer and
pre-tokenizer act on characters and split at whitespace, so tokenizing the morphemes joined by spaces equals
tokenizing each morpheme on its own: the pieces of a morpheme never depend on its neighbours, which is what makes
the caches exact.

A morpheme not yet cached that is only Hangul syllables and ASCII letters and digits (most unseen patent
compounds and numbers) passes BERT's normalizer and pre-tokenizer unchanged, so its ids come from the greedy
longest-match-first loop below (a few dict lookups, 3-6x cheaper than a call into Rust); anything else goes
through Rust. Tokens and offsets come from Rust, on first access only.
"""

from __future__ import annotations

import hashlib
import os
import re
from itertools import chain
from typing import Callable, NamedTuple, Sequence

from tokenizers import Tokenizer, decoders
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

from korpat_jax import special_tokens
from korpat_jax.errors import KorpatError

SPECIAL_TOKENS = special_tokens.TOKENS
VOCAB_NAME = "vocab.txt"
MAX_INPUT_CHARS_PER_WORD = 100   # BERT's WordPiece: longer words become [UNK]
PIECE_CACHE_SIZE = 500_000       # distinct morphemes whose ids (and pieces) are kept

# Morphemes that BERT's normalizer and pre-tokenizer leave whole and unchanged (one word, no accents, no CJK).
_PLAIN_WORD = re.compile(f"[\uac00-\ud7a3A-Za-z0-9]{{1,{MAX_INPUT_CHARS_PER_WORD}}}").fullmatch


class Pieces(NamedTuple):
  """The WordPiece tokens of one morpheme; offsets are (start, end) within the morpheme."""
  ids: tuple[int, ...]
  tokens: tuple[str, ...]
  offsets: tuple[tuple[int, int], ...]


def read_vocab(path: str | os.PathLike) -> list[str]:
  with open(path, encoding="utf-8") as f:
    vocab = [line.rstrip("\r\n") for line in f]
  while vocab and vocab[-1] == "":
    vocab.pop()
  if list(vocab[:5]) != list(SPECIAL_TOKENS):
    raise KorpatError(f"{path}: the first five tokens must be {', '.join(SPECIAL_TOKENS)} (ids 0-4)")
  if len(set(vocab)) != len(vocab):
    raise KorpatError(f"{path}: duplicate tokens in the vocabulary")
  return vocab


def vocab_sha256(vocab: Sequence[str]) -> str:
  """The vocabulary's identity (vocab.txt's lines), recorded in tokenizer configs and record manifests."""
  return hashlib.sha256("".join(t + "\n" for t in vocab).encode("utf-8")).hexdigest()


def write_vocab(vocab: Sequence[str], path: str | os.PathLike) -> None:
  with open(path, "w", encoding="utf-8", newline="\n") as f:
    f.write("".join(token + "\n" for token in vocab))


def bert_wordpiece(vocab: Sequence[str]) -> Tokenizer:
  """The Rust tokenizer of transformers' BertTokenizer(do_lower_case=False): cased, no accent stripping."""
  tok = Tokenizer(WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]",
                            max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
  tok.normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
  tok.pre_tokenizer = BertPreTokenizer()
  tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
  tok.add_special_tokens(list(SPECIAL_TOKENS))   # already in the vocab: marks them special (decode skips them)
  return tok


class _IdsCache(dict):
  """morpheme -> its ids. A missing morpheme is computed by `compute` and stored by `__missing__`, which `[]`
  calls from C, so a lookup loop over a text's morphemes never leaves C for the ones already cached. Cleared when
  it reaches PIECE_CACHE_SIZE entries."""

  __slots__ = ("compute",)

  def __init__(self, compute: Callable[[str], tuple[int, ...]], items: dict | None = None):
    super().__init__(items or ())
    self.compute = compute

  def __missing__(self, morph: str) -> tuple[int, ...]:
    ids = self.compute(morph)
    if len(self) >= PIECE_CACHE_SIZE:
      self.clear()
    self[morph] = ids
    return ids


class BertWordPiece:
  """Cased BERT WordPiece over a fixed vocabulary, with the ids and pieces of each morpheme cached."""

  def __init__(self, vocab: Sequence[str]):
    self.vocab = list(vocab)
    if self.vocab[:5] != list(SPECIAL_TOKENS):
      raise KorpatError(f"vocab: the first five tokens must be {', '.join(SPECIAL_TOKENS)}")
    self._rust = bert_wordpiece(self.vocab)
    self._index = {t: i for i, t in enumerate(self.vocab)}
    self._longest = max(map(len, self.vocab))
    self._unk = (self._index["[UNK]"],)
    self._ids = _IdsCache(self._ids_of_new)
    self._cache: dict[str, Pieces] = {}
    self._hash: str | None = None

  @property
  def size(self) -> int:
    return len(self.vocab)

  @property
  def sha256(self) -> str:
    if self._hash is None:
      self._hash = vocab_sha256(self.vocab)
    return self._hash

  def ids(self, morphs: Sequence[str]) -> list[int]:
    """The ids of the morphemes' pieces, in order, in one pass in C: a dict lookup per morpheme and one flattening;
    a morpheme not cached yet is computed by the cache's `__missing__` from within that pass (texts with unseen
    morphemes used to take a second, Python-level pass: most texts of patent abstracts have one)."""
    return list(chain.from_iterable(map(self._ids.__getitem__, morphs)))

  def id_tuples(self, morphs: Sequence[str]) -> list[tuple[int, ...]]:
    """Each morpheme's ids (`ids` before flattening: the piece counts give the morpheme boundaries)."""
    return list(map(self._ids.__getitem__, morphs))

  def _ids_of_new(self, morph: str) -> tuple[int, ...]:
    """A morpheme's ids, first met: a whole vocabulary token (what greedy longest-match gives first), else the
    greedy loop for a plain morpheme, else Rust."""
    if _PLAIN_WORD(morph):
      whole = self._index.get(morph)
      return (whole,) if whole is not None else self.greedy_ids(morph)
    return self.pieces_of(morph).ids

  def greedy_ids(self, word: str) -> tuple[int, ...]:
    """BERT's WordPiece on one word that needs no normalizing or splitting: longest vocabulary match first,
    `##` after the first piece, the whole word [UNK] when some part matches nothing (as the Rust model)."""
    index, out, start, n = self._index, [], 0, len(word)
    while start < n:
      end = min(n, start + self._longest)
      prefix = "##" if start else ""
      while end > start:
        found = index.get(prefix + word[start:end])
        if found is not None:
          out.append(found)
          break
        end -= 1
      else:
        return self._unk
      start = end
    return tuple(out)

  def pieces_of(self, morph: str) -> Pieces:
    """The pieces of one morpheme (one call into Rust the first time, then from the cache)."""
    pieces = self._cache.get(morph)
    if pieces is None:
      enc = self._rust.encode(morph, add_special_tokens=False)
      pieces = Pieces(tuple(enc.ids), tuple(enc.tokens), tuple(enc.offsets))
      if len(self._cache) >= PIECE_CACHE_SIZE:
        self._cache.clear()
      self._cache[morph] = pieces
    return pieces

  def pieces(self, morphs: Sequence[str]) -> list[Pieces]:
    """`pieces_of` for each morpheme; the all-cached case costs one dict lookup each."""
    found = list(map(self._cache.get, morphs))
    if None in found:
      found = [p or self.pieces_of(m) for p, m in zip(found, morphs)]
    return found

  def cache_state(self) -> tuple[dict, dict]:
    """A copy of what is cached (benchmarks restore it to time unseen text after a warm-up)."""
    return dict(self._ids), dict(self._cache)

  def restore_cache(self, state: tuple[dict, dict]) -> None:
    self._ids, self._cache = _IdsCache(self._ids_of_new, state[0]), dict(state[1])

  def token_to_id(self, token: str) -> int | None:
    return self._rust.token_to_id(token)

  def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
    """`##` pieces rejoin their morpheme; morphemes stay space-separated."""
    return self._rust.decode(list(ids), skip_special_tokens=skip_special_tokens)

  def rust_tokenizer(self) -> Tokenizer:
    """A fresh copy of the Rust tokenizer (to add a post-processor and save it, without touching this one)."""
    return Tokenizer.from_str(self._rust.to_str())
