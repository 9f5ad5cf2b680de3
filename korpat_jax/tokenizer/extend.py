"""`korpat-jax tokenizer extend`: a tokenizer's vocabulary grown for a new domain (e.g. general Korean -> patents),
every existing id kept, for continued pretraining of a model of the base vocabulary.

    korpat-jax tokenizer extend --tokenizer BASE --corpus patents/*.jsonl.zst --add 2000 --out DIR

The selection rule (deterministic: the same BASE, corpus and options give the same DIR):
1. The corpus is segmented with BASE's Mecab-ko (and user dictionary) and a WordPiece vocabulary is trained on its
   morphemes exactly as `tokenizer train` does (its size: --candidate-vocab-size, default BASE's). Each corpus word
   is encoded with that vocabulary: f(t) = how often token t is used. The candidates are its tokens absent from
   BASE (with --userdic-nouns also the nouns of BASE's user dictionary that occur as words of the corpus, f = their
   count).
2. First the characters BASE lacks (`c` at the start of a word, `##c` inside one) that at least --min-frequency
   corpus words hold, most held first: without one, BASE turns every word holding it into [UNK].
3. Then the other candidates by the tokens they save, f(t) x (k(t) - 1), k(t) = the pieces that BASE (with the
   characters of step 2) needs for t; used fewer than --min-frequency times or saving nothing: left out.
4. Ties: the token's string. The first N (--add) are appended to BASE's vocab.txt in that order.
DIR is a complete tokenizer directory (vocab.txt, of which BASE's is a prefix byte for byte; mwp_tokenizer.json;
BASE's user dictionary, copied when BASE holds it; the transformers files when BASE has them) plus extension.json:
the base vocabulary's size and hash and, for each new token, the BASE pieces (ids) that BASE encodes it with, from
which a model of the base vocabulary grows its new rows (korpat_jax.vocab_extension).
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import Callable, Collection, Iterable, Mapping, Optional, Sequence

from korpat_jax import files
from korpat_jax.corpus.readers import ReaderConfig
from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer.hf import write_hf_files
from korpat_jax.tokenizer.mwp import MWPTokenizer
from korpat_jax.tokenizer.sources import ReadStats, expand_corpus
from korpat_jax.tokenizer.vocab import DEFAULT_LIMIT_ALPHABET, DEFAULT_MIN_FREQUENCY, count_morphemes
from korpat_jax.tokenizer.word_counts import PREFIX, pretoken_counts, train_vocab
from korpat_jax.tokenizer.wordpiece import MAX_INPUT_CHARS_PER_WORD, VOCAB_NAME
from korpat_jax.vocab_extension import EXTENSION_JSON, FORMAT, FORMAT_VERSION

RULE = ("characters BASE lacks (c, ##c) by the corpus words holding them (>= min_frequency), then the tokens of a "
        "WordPiece vocabulary trained on the corpus (and user-dictionary nouns) BASE lacks by tokens saved = uses x "
        "(BASE pieces - 1); ties by token")


@dataclasses.dataclass(frozen=True)
class Candidate:
  """A token BASE lacks: its uses in the corpus, the pieces BASE (+ the new characters) needs for it, its source."""
  token: str
  frequency: int
  pieces: tuple[str, ...]
  source: str  # character | wordpiece | userdic

  @property
  def saved(self) -> int:
    return self.frequency * max(len(self.pieces) - 1, 0)


def greedy_pieces(token: str, vocab: Collection[str], longest: int) -> Optional[list[str]]:
  """BERT's WordPiece on one pre-token: longest match first, `##` after the first piece (a `##token` is a word's
  continuation: all its pieces are `##`); None when a part matches nothing (the word is [UNK])."""
  cont = token.startswith(PREFIX) and len(token) > len(PREFIX)
  word = token[len(PREFIX):] if cont else token
  if len(word) > MAX_INPUT_CHARS_PER_WORD:
    return None
  out, start, n = [], 0, len(word)
  while start < n:
    prefix = PREFIX if (start or cont) else ""
    for end in range(min(n, start + longest), start, -1):
      if prefix + word[start:end] in vocab:
        out.append(prefix + word[start:end])
        break
    else:
      return None
    start = end
  return out


def token_usage(words: Mapping[str, int], vocab: Sequence[str]) -> Counter:
  """How often each token of `vocab` is used when the corpus words (pre-token counts) are encoded with it."""
  index, longest = set(vocab), max(map(len, vocab))
  usage: Counter[str] = Counter()
  for word, n in words.items():
    for piece in greedy_pieces(word, index, longest) or ("[UNK]",):
      usage[piece] += n
  return usage


def missing_characters(words: Mapping[str, int], vocab: Collection[str]) -> Counter:
  """The characters `vocab` lacks, as `c` (a word's first) or `##c` (inside a word), with how many words hold them."""
  held: Counter[str] = Counter()
  for word, n in words.items():
    for form in ({word[0]} | {PREFIX + c for c in word[1:]}).difference(vocab):
      held[form] += n
  return held


def choose(base_vocab: Sequence[str], words: Mapping[str, int], usage: Mapping[str, int], add: int,
           min_frequency: int, nouns: Mapping[str, int] | None = None) -> list[Candidate]:
  """The `add` new tokens by the rule of this module's docstring, in the order they are appended: `words` the corpus
  words (pre-token counts), `usage` the uses of the corpus vocabulary's tokens, `nouns` user-dictionary nouns."""
  base = set(base_vocab)
  held = missing_characters(words, base)
  chars = sorted((t for t, f in held.items() if f >= min_frequency), key=lambda t: (-held[t], t))
  chosen = [Candidate(t, held[t], ("[UNK]",), "character") for t in chars[:add]]
  known = base | {c.token for c in chosen}
  longest = max(map(len, known))
  pool = {t: (f, "wordpiece") for t, f in usage.items()}
  for noun, f in (nouns or {}).items():
    pool[noun] = (max(f, pool.get(noun, (0, ""))[0]), "userdic")
  scored = []
  for token, (f, source) in pool.items():
    if token in known or f < min_frequency:
      continue
    pieces = greedy_pieces(token, known, longest)
    if pieces is not None and len(pieces) > 1:
      scored.append(Candidate(token, f, tuple(pieces), source))
  scored.sort(key=lambda c: (-c.saved, c.token))
  return chosen + scored[:add - len(chosen)]


def userdic_csv(user_dic: Optional[str]) -> Path:
  """The CSV of a tokenizer's user dictionary (user.csv beside user.dic, as `tokenizer userdic` writes them)."""
  if not user_dic:
    raise KorpatError("--userdic-nouns: the --tokenizer has no user dictionary (train it with --user-dic)")
  csv_path = Path(user_dic).with_name("user.csv")
  if not csv_path.is_file():
    raise KorpatError(f"--userdic-nouns: {csv_path} not found (the CSV that `korpat-jax tokenizer userdic` writes "
                      f"beside user.dic); copy it there or drop the option")
  return csv_path


def userdic_nouns(csv_path: Path, words: Mapping[str, int]) -> dict[str, int]:
  """The nouns of a user dictionary's CSV that are words of the corpus, with their counts."""
  found: dict[str, int] = {}
  with open(csv_path, encoding="utf-8") as f:
    for line in f:
      fields = line.rstrip("\n").split(",")
      if len(fields) > 4 and fields[4].startswith("NN") and fields[0] in words:
        found[fields[0]] = words[fields[0]]
  return found


@dataclasses.dataclass(frozen=True)
class Extended:
  tokenizer: MWPTokenizer
  added: list[Candidate]
  stats: ReadStats


def extend_tokenizer(base_dir: str, corpus: str | Sequence[str], add: int, out_dir: str, *,
                     userdic: bool = False, candidate_vocab_size: Optional[int] = None,
                     limit_alphabet: int = DEFAULT_LIMIT_ALPHABET, min_frequency: int = DEFAULT_MIN_FREQUENCY,
                     workers: int = 1, reader: Optional[ReaderConfig] = None, show_progress: bool = True,
                     log: Callable[[str], None] = print) -> Extended:
  """BASE's vocabulary + the `add` most useful new tokens for `corpus`, written to `out_dir` (see the module)."""
  if add < 1:
    raise KorpatError(f"--add {add}: give the number of tokens to append (>= 1)")
  if os.path.abspath(out_dir) == os.path.abspath(base_dir):
    raise KorpatError(f"--out {out_dir}: is the --tokenizer directory; write the extension elsewhere")
  base = MWPTokenizer.load(base_dir)
  csv_path = userdic_csv(base.user_dic) if userdic else None
  corpus_files = expand_corpus(corpus)
  stats = ReadStats()
  counts = count_morphemes(corpus_files, base.user_dic, workers, stats, show_progress=show_progress, reader=reader)
  if stats.lines == 0:
    raise KorpatError(f"{corpus_files[0]}: the corpus has no text ({stats.summary()})")
  words = pretoken_counts(counts)
  size = candidate_vocab_size or base.vocab_size
  usage = token_usage(words, train_vocab(words, size, limit_alphabet, min_frequency, show_progress))
  nouns = userdic_nouns(csv_path, words) if csv_path else None
  added = choose(base.vocab, words, usage, add, min_frequency, nouns)
  log(f"corpus: {stats.summary()}; {len(words)} distinct words")
  if len(added) < add:
    log(f"note: the corpus supports only {len(added)} of the {add} requested tokens (--min-frequency "
        f"{min_frequency}, candidates of a {size}-token WordPiece vocabulary)")
  options = {"add": add, "userdic_nouns": userdic, "candidate_vocab_size": size, "limit_alphabet": limit_alphabet,
             "min_frequency": min_frequency}
  tok = write_extension(base, base_dir, added, out_dir, options, corpus_files, stats, len(words))
  sources = ", ".join(f"{n} {s}" for s, n in sorted(Counter(c.source for c in added).items()))
  log(f"extended {base.vocab_size} -> {tok.vocab_size} tokens ({sources}; {sum(c.saved for c in added)} tokens "
      f"saved on the corpus by the rule) -> {Path(out_dir) / VOCAB_NAME}, {Path(out_dir) / EXTENSION_JSON}")
  return Extended(tok, added, stats)


def write_extension(base: MWPTokenizer, base_dir: str, added: Sequence[Candidate], out_dir: str, options: dict,
                    corpus_files: Iterable[str], stats: ReadStats, distinct_words: int) -> MWPTokenizer:
  """DIR: BASE's files with the vocabulary extended, and extension.json."""
  out = Path(out_dir)
  vocab = list(base.vocab) + [c.token for c in added]
  config = {k: v for k, v in base.config.items() if k != "extension"}
  config["extension"] = {"base_vocab_size": base.vocab_size, "base_vocab_sha256": base.vocab_hash,
                         "added": len(added), "record": EXTENSION_JSON}
  tok = MWPTokenizer(vocab, base.user_dic, config)
  base_user_dic = (base.config.get("user_dic") or {}).get("path", "")
  tok.save(out, copy_user_dic=bool(base_user_dic) and not os.path.isabs(base_user_dic))
  if (Path(base_dir) / "tokenizer.json").is_file():
    write_hf_files(tok.wordpiece, out)
  _check_prefix(Path(base_dir) / VOCAB_NAME, out / VOCAB_NAME)
  index, longest = set(base.vocab), max(map(len, base.vocab))
  record = {
      "format": FORMAT, "format_version": FORMAT_VERSION, "base_tokenizer": os.path.abspath(base_dir),
      "base_vocab_size": base.vocab_size, "base_vocab_sha256": base.vocab_hash,
      "vocab_size": tok.vocab_size, "vocab_sha256": tok.vocab_hash, "rule": RULE, "options": options,
      "corpus": {**stats.to_json(), "paths": [os.path.abspath(f) for f in corpus_files],
                 "distinct_words": distinct_words},
      "added": [_entry(base, c, index, longest, base.vocab_size + i) for i, c in enumerate(added)],
  }
  files.write_json(out / EXTENSION_JSON, record)
  return tok


def _entry(base: MWPTokenizer, c: Candidate, index: set[str], longest: int, token_id: int) -> dict:
  """extension.json's line for one new token: the BASE pieces (ids) BASE encodes it with ([UNK] when it cannot)."""
  pieces = greedy_pieces(c.token, index, longest) or ["[UNK]"]
  return {"id": token_id, "token": c.token, "source": c.source, "frequency": c.frequency, "saved": c.saved,
          "pieces": [base.token_to_id(p) for p in pieces], "piece_tokens": pieces}


def _check_prefix(base_vocab: Path, new_vocab: Path) -> None:
  if not new_vocab.read_bytes().startswith(base_vocab.read_bytes()):
    raise KorpatError(f"{base_vocab}: not in the canonical form (one token a line, '\\n' endings) that `tokenizer "
                      f"train` writes, so {new_vocab} cannot keep it as a prefix byte for byte; rewrite it with "
                      f"`MWPTokenizer.load(dir).save(dir)` first")
