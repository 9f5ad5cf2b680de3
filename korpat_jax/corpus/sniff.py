"""Is a corpus file text at all, and in which encoding?

Binary files: the first `SAMPLE_BYTES` of the (decompressed) content are looked at, before any line is read. A file
is binary when over `MAX_NUL_SHARE` of those bytes are NUL, or over `MAX_CONTROL_SHARE` are C0 control bytes other
than tab, line feed, vertical tab, form feed, carriage return and escape (ANSI colours), or DEL. The rule does not
depend on `--encoding`: text in UTF-8, cp949/EUC-KR or any other ASCII-compatible encoding has next to no control
bytes, while executables (ELF: NUL-padded headers), images, archives and random bytes have many (random bytes: about
10% controls, PNG/ZIP: NUL-filled headers). UTF-16/32 text is NUL-heavy and so reads as binary too: the line reader
splits at byte 0x0A and cannot read it; convert such files to UTF-8. A stray NUL or control character in a text file
does not make it binary: cleaning removes it.

Wrong encoding: when most lines of a file do not decode (`mostly_undecodable`), `guess_encoding` tries UTF-8 and
cp949 (a superset of EUC-KR) on the lines that failed, so that the summary can say which `--encoding` to pass.
"""

from __future__ import annotations

import codecs
from typing import Iterable, Sequence

SAMPLE_BYTES = 8192
MAX_NUL_SHARE = 0.01
MAX_CONTROL_SHARE = 0.05
_TEXT_CONTROLS = frozenset(b"\t\n\x0b\x0c\r\x1b")
_CONTROL_BYTES = bytes(b for b in [*range(32), 127] if b not in _TEXT_CONTROLS)
_CANDIDATES = (("utf-8", "utf-8"), ("cp949", "cp949/euc-kr"))


def head_sample(chunks: Iterable[bytes], size: int = SAMPLE_BYTES) -> bytes:
  """The first `size` bytes of a stream of chunks (fewer when it is shorter)."""
  sample = b""
  for chunk in chunks:
    sample += chunk[:size - len(sample)]
    if len(sample) >= size:
      break
  return sample


def binary_reason(sample: bytes) -> str | None:
  """Why `sample` (the head of a file) is not text, or None when it looks like text."""
  if not sample:
    return None
  nul = sample.count(0)
  if nul > MAX_NUL_SHARE * len(sample):
    return f"{nul} NUL bytes in the first {len(sample)}"
  control = sum(sample.count(b) for b in _CONTROL_BYTES)
  if control > MAX_CONTROL_SHARE * len(sample):
    return f"{control} control bytes in the first {len(sample)}"
  return None


def mostly_undecodable(decoded_lines: int, undecodable_lines: int) -> bool:
  """More lines failed to decode than decoded (blank lines aside): the file is probably in another encoding."""
  return undecodable_lines > decoded_lines


def _same_codec(a: str, b: str) -> bool:
  try:
    return codecs.lookup(a).name == codecs.lookup(b).name
  except LookupError:
    return False


def guess_encoding(failed_lines: Sequence[bytes], configured: str) -> str | None:
  """The first candidate (UTF-8, cp949) other than `configured` that decodes every one of `failed_lines`."""
  if not failed_lines:
    return None
  for encoding, label in _CANDIDATES:
    if _same_codec(encoding, configured):
      continue
    try:
      for line in failed_lines:  # a line may have been cut mid-character: final=False tolerates that
        codecs.getincrementaldecoder(encoding)().decode(line, final=False)
    except UnicodeDecodeError:
      continue
    return label
  return None


def encoding_hint(path: str, decoded: int, undecodable: int, configured: str, failed_lines: Sequence[bytes]) -> str:
  """One line for the summary and the log: the file, how much failed, and what to try."""
  guess = guess_encoding(failed_lines, configured)
  if guess:
    advice = f"looks like {guess}: try --encoding {guess.split('/')[0]}"
  else:
    tried = "/".join(label for encoding, label in _CANDIDATES if not _same_codec(encoding, configured))
    advice = f"not {tried} either: damaged, or pass its --encoding"
  return f"{path}: {undecodable} of {decoded + undecodable} lines do not decode as {configured}; {advice}"
