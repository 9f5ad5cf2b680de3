"""WordPiece training on word counts, reproducibly: the one trainer behind `tokenizer train`, local or on Beam.

HF `tokenizers`' WordPieceTrainer (a BPE trainer) counts the pre-tokens of what it is fed, then merges. Left to
itself it is not reproducible: it gives the `##c` forms of the alphabet ids in the iteration order of a Rust hash
map (seeded at random per map), and equal-count merges are broken by those ids, so two runs on the same text
write vocab.txt in different orders (and may pick different merges at the size limit). Here the counts are
taken in Python first (exact), the alphabet (`--limit-alphabet`, ties by code point) and the `##c` forms the
trainer would add are computed from them and handed to the trainer first, as special tokens in code-point order.
Every id is then fixed before the merges start, and the vocabulary depends on the word counts only: the local
runner (any number of workers) and the Beam runner, which build the same counts, write the same vocab.txt.

The words counted are the trainer's own pre-tokens (BERT's normalizer and pre-tokenizer over each morpheme);
BERT's normalizer works per character and its pre-tokenizer splits at whitespace, so the pre-tokens of a
segmented line are those of its morphemes, and feeding a pre-token back yields itself.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Iterator, Mapping

from tokenizers import Tokenizer
from tokenizers.models import WordPiece
from tokenizers.pre_tokenizers import WhitespaceSplit
from tokenizers.trainers import WordPieceTrainer

from korpat_jax.tokenizer.morphemes import MorphAnalyzer, sanitize
from korpat_jax.tokenizer.wordpiece import MAX_INPUT_CHARS_PER_WORD, SPECIAL_TOKENS, bert_wordpiece

PREFIX = "##"
FEED_CHARS = 1 << 16   # characters per string fed to the trainer


def segment_and_count(analyzer: MorphAnalyzer, lines: list[str]) -> Counter:
  """Morpheme counts of a block of corpus lines (a worker task: only the compact table travels back)."""
  counts: Counter[str] = Counter()
  for line in lines:
    joined = analyzer.joined(sanitize(line))
    if joined:
      counts.update(joined.split(" "))
  return counts


def _trainer_tokenizer() -> Tokenizer:
  tokenizer = bert_wordpiece(list(SPECIAL_TOKENS))
  tokenizer.model = WordPiece(unk_token="[UNK]", max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD)
  return tokenizer


def _feed_tokenizer() -> Tokenizer:
  """What reads `feed`'s text into the trainer's counts: a whitespace split and nothing else. The words fed are
  pre-tokens already (BERT's normalizer and pre-tokenizer give each back unchanged), so the counts are the same as
  through `_trainer_tokenizer`, at about half the cost (the feed repeats every word its count of times: this is
  the part of `tokenizer train`'s tail that grows with the corpus)."""
  tokenizer = Tokenizer(WordPiece(unk_token="[UNK]", max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
  tokenizer.pre_tokenizer = WhitespaceSplit()
  return tokenizer


def pretoken_counts(morpheme_counts: Mapping[str, int]) -> Counter:
  """Morpheme counts -> counts of the trainer's pre-tokens (each distinct morpheme normalized once)."""
  tokenizer = _trainer_tokenizer()
  normalize, pretokenize = tokenizer.normalizer.normalize_str, tokenizer.pre_tokenizer.pre_tokenize_str
  words: Counter[str] = Counter()
  for morpheme, n in morpheme_counts.items():
    if not morpheme:
      continue
    pieces = pretokenize(normalize(morpheme))
    if len(pieces) == 1 and pieces[0][0] == morpheme:
      words[morpheme] += n
    else:
      for piece, _ in pieces:
        words[piece] += n
  return words


def alphabet(words: Mapping[str, int], limit: int) -> list[str]:
  """The trainer's alphabet: every character weighted by the counts of the words holding it, the `limit` most
  frequent kept (ties: the lower code point), in code-point order."""
  chars: Counter[str] = Counter()
  for word, n in words.items():
    for c, k in Counter(word).items():
      chars[c] += k * n
  if len(chars) > limit:
    kept = sorted(chars, key=lambda c: (-chars[c], c))[:limit]
  else:
    kept = list(chars)
  return sorted(kept)


def continuations(words: Iterable[str], kept: Iterable[str]) -> list[str]:
  """The `##c` forms the trainer adds: alphabet characters seen after the first character of a word."""
  seen: set[str] = set()
  for word in words:
    seen.update(word[1:])
  return [PREFIX + c for c in sorted(seen.intersection(kept))]


def feed(words: Mapping[str, int]) -> Iterator[str]:
  """Strings whose pre-tokens are each word `count` times: the trainer takes text, not counts (its own counts
  are a hash map, so the order fed does not matter)."""
  parts: list[str] = []
  size = 0
  for word, n in words.items():
    per = max(1, FEED_CHARS // (len(word) + 1))
    while n > 0:
      k = min(n, per)
      parts.append(" ".join([word] * k))
      size += k * (len(word) + 1)
      n -= k
      if size >= FEED_CHARS:
        yield " ".join(parts)
        parts, size = [], 0
  if parts:
    yield " ".join(parts)


def train_vocab(words: Mapping[str, int], vocab_size: int, limit_alphabet: int, min_frequency: int,
                show_progress: bool = False) -> list[str]:
  """The WordPiece vocabulary of pre-token counts `words` (see `pretoken_counts`): specials, alphabet, `##`
  forms, then the merges in order. The same counts give the same list, whatever their order."""
  kept = alphabet(words, limit_alphabet)
  fixed = list(SPECIAL_TOKENS) + [c for c in kept if c not in SPECIAL_TOKENS] + continuations(words, kept)
  trainer = WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=show_progress,
                             special_tokens=fixed, limit_alphabet=len(kept), initial_alphabet=kept,
                             continuing_subword_prefix=PREFIX)
  tokenizer = _feed_tokenizer()
  tokenizer.train_from_iterator(feed(words), trainer)
  vocab_map = tokenizer.get_vocab()
  vocab = [t for t, _ in sorted(vocab_map.items(), key=lambda kv: kv[1])]
  if vocab[:len(fixed)] != fixed[:len(vocab)] or [vocab_map[t] for t in vocab] != list(range(len(vocab))):
    raise RuntimeError("the WordPiece trainer did not keep the fixed ids first (tokenizers version?)")
  return vocab
