"""A grown vocabulary's record (TOKENIZER/extension.json, written by `korpat-jax tokenizer extend`) and the growing
of a model's vocabulary-sized arrays onto it.

An extended tokenizer keeps every id of its base and appends new tokens; for each new token the record lists the
ids of the base pieces that the base tokenizer uses for it. A model of the base vocabulary grows onto the extended
one (init_from, import-hf --tokenizer) row by row:
  the word-embedding table and the generator's output bias   new row = the mean of the rows of its base pieces
  a word-embedding delta (a key naming `embeddings_delta`)    new row = 0
The old rows are untouched, so the grown model gives the same outputs on old-vocabulary input (the generator's
logits over the old columns included) until it trains. No JAX or Mecab-ko here: numpy and the record only.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from korpat_jax import files
from korpat_jax.errors import ConfigError, KorpatError

EXTENSION_JSON = "extension.json"
FORMAT = "korpat-vocab-extension"
FORMAT_VERSION = 1
# Keys (jax keystr of the flat params) of vocabulary-sized arrays: (substring, how new rows start).
MEAN_KEYS = ("['word_embeddings']", "['generator_lm_head']['bias']")
ZERO_KEYS = ("embeddings_delta",)


@dataclasses.dataclass(frozen=True)
class Extension:
  """What extension.json says: `pieces[i]` are the base ids of the token with id base_vocab_size + i."""
  path: str
  base_vocab_size: int
  base_vocab_sha256: str
  vocab_size: int
  pieces: tuple[tuple[int, ...], ...]

  def explains(self, old_rows: int, new_rows: int) -> bool:
    return old_rows == self.base_vocab_size and new_rows == self.vocab_size


def read_extension(tokenizer_dir: Optional[str]) -> Optional[Extension]:
  """The extension record of a tokenizer directory (local or URL); None when it has none."""
  if not tokenizer_dir:
    return None
  path = files.join(tokenizer_dir, EXTENSION_JSON)
  if not files.isfile(path):
    return None
  try:
    raw = files.read_json(path)
    base, size = int(raw["base_vocab_size"]), int(raw["vocab_size"])
    pieces = tuple(tuple(int(i) for i in entry["pieces"]) for entry in raw["added"])
    sha = str(raw.get("base_vocab_sha256") or "")
  except (ValueError, KeyError, TypeError) as e:
    raise KorpatError(f"{path}: unreadable extension record ({type(e).__name__}: {e}); rebuild it with "
                      "`korpat-jax tokenizer extend`") from None
  if size != base + len(pieces):
    raise KorpatError(f"{path}: vocab_size {size} is not base_vocab_size {base} + {len(pieces)} added tokens")
  bad = next((p for p in pieces if not p or min(p) < 0 or max(p) >= base), None)
  if bad is not None:
    raise KorpatError(f"{path}: pieces {list(bad)} are not ids of the base vocabulary (0..{base - 1})")
  return Extension(path, base, sha, size, pieces)


def vocab_file_sha256(vocab_path: str) -> str:
  """korpat_jax.tokenizer.wordpiece.vocab_sha256 of a vocab.txt (the same lines), without importing the tokenizer."""
  lines = files.read_text(vocab_path).splitlines()
  while lines and lines[-1] == "":
    lines.pop()
  return hashlib.sha256("".join(t + "\n" for t in lines).encode("utf-8")).hexdigest()


def grow_rows(table: np.ndarray, pieces: Sequence[Sequence[int]], zero: bool = False) -> np.ndarray:
  """`table` [V0, ...] with one row appended per entry of `pieces`: the mean of those rows (or zeros)."""
  table = np.asarray(table)
  if zero:
    new = np.zeros((len(pieces), *table.shape[1:]), table.dtype)
  else:
    new = np.stack([table[list(p)].astype(np.float64).mean(axis=0) for p in pieces]).astype(table.dtype) \
        if pieces else np.zeros((0, *table.shape[1:]), table.dtype)
  return np.concatenate([table, new], axis=0)


def vocab_key(key: str) -> Optional[str]:
  """'mean' or 'zero' for the key of a vocabulary-sized array (its rows are tokens), else None."""
  if any(k in key for k in ZERO_KEYS):
    return "zero"
  if any(k in key for k in MEAN_KEYS):
    return "mean"
  return None


def _rows_differ(value: Any, want: Any) -> bool:
  a, b = tuple(np.shape(value)), tuple(np.shape(want))
  return len(a) == len(b) and len(a) >= 1 and a[0] != b[0] and a[1:] == b[1:]


def grow_params(given: Mapping[str, Any], fresh: Mapping[str, Any], origin: str, tokenizer_dir: Optional[str],
                base_vocab: Optional[str] = None) -> dict[str, Any]:
  """`given` (flat key -> array) with its vocabulary-sized arrays grown to `fresh`'s rows by the extension record of
  `tokenizer_dir` (the run's tokenizer); nothing changes when no such array differs in rows. `base_vocab`: the init
  model's vocab.txt, checked against the record's base when given. ConfigError in one line when the rows differ and
  no record explains it."""
  grow = {k: v for k, v in given.items() if k in fresh and vocab_key(k) and _rows_differ(v, fresh[k])}
  if not grow:
    return dict(given)
  key = next(iter(sorted(grow)))
  old, new = int(np.shape(grow[key])[0]), int(np.shape(fresh[key])[0])
  ext = read_extension(tokenizer_dir)
  if ext is None:
    raise ConfigError(f"{origin}: parameter {key} has {old} rows (the init model's vocabulary), this model wants "
                      f"{new}, and the tokenizer {tokenizer_dir or '(none)'} has no {EXTENSION_JSON} to grow it by; "
                      f"extend the init model's tokenizer with `korpat-jax tokenizer extend` and use that, or use "
                      f"the init model's own tokenizer")
  if not all(ext.explains(np.shape(v)[0], np.shape(fresh[k])[0]) for k, v in grow.items()):
    raise ConfigError(f"{origin}: {ext.path} grows a vocabulary of {ext.base_vocab_size} tokens to "
                      f"{ext.vocab_size}, but the init model has {old} and this model {new} (parameter {key})")
  if base_vocab and ext.base_vocab_sha256 and files.isfile(base_vocab) and \
      vocab_file_sha256(base_vocab) != ext.base_vocab_sha256:
    raise ConfigError(f"{origin}: {ext.path} extends another vocabulary than the init model's {base_vocab} "
                      "(base_vocab_sha256 differs); extend the init model's own tokenizer")
  out = dict(given)
  for k, v in grow.items():
    out[k] = grow_rows(v, ext.pieces, zero=vocab_key(k) == "zero")
  return out
