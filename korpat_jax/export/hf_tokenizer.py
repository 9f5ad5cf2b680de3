"""The tokenizer files of an exported HF directory: vocab.txt and a BertTokenizer config that never lowercases.

The MWP tokenizer is Mecab-ko morphemes joined by spaces, then BERT WordPiece; HF's BertTokenizer reproduces the
second half exactly when do_lower_case and strip_accents are off (lowercasing NFD-decomposes Hangul into jamo).
The tokenizer directory and `out` may be URLs (korpat_jax.files): the MWP tokenizer loads from a local copy and
saves into a local directory that is then uploaded.
"""

from __future__ import annotations

import io
import tempfile
from typing import Mapping, Optional

from korpat_jax import files, special_tokens
from korpat_jax.errors import KorpatError
from korpat_jax.workdir import write_json

VOCAB_TXT = "vocab.txt"
SPECIAL_TOKENS = special_tokens.TOKEN_OF


def read_vocab(path: str) -> list[str]:
  with io.TextIOWrapper(io.BytesIO(files.read_bytes(path)), encoding="utf-8") as f:  # as open(path) reads it
    return [line.rstrip("\n") for line in f]


def special_id(special_ids: Mapping[str, int], name: str) -> Optional[int]:
  """The id of a special token ("pad", "cls", ...), whichever spelling of the key the run recorded."""
  for key in (name, f"[{name.upper()}]", f"{name}_id", f"{name}_token_id"):
    if key in special_ids:
      return int(special_ids[key])
  return None


def special_ids_from_vocab(vocab: list[str]) -> dict[str, int]:
  index = {token: i for i, token in enumerate(vocab)}
  return {name: index[token] for name, token in SPECIAL_TOKENS.items() if token in index}


def write_tokenizer_files(tokenizer_dir: Optional[str], out: str, special_ids: Mapping[str, int],
                          model_max_length: int) -> Optional[str]:
  """Writes the tokenizer files into `out`; returns a one-line warning instead when there is no tokenizer."""
  if not tokenizer_dir or not files.isdir(tokenizer_dir):
    return (f"no tokenizer directory ({tokenizer_dir or 'none recorded in model.json'}); "
            f"wrote weights and config without tokenizer files")
  if _save_with_mwp_tokenizer(tokenizer_dir, out):
    _set_model_max_length(out, model_max_length)
    return None
  vocab_path = files.join(tokenizer_dir, VOCAB_TXT)
  if not files.isfile(vocab_path):
    return f"{vocab_path}: missing; wrote weights and config without tokenizer files"
  vocab = read_vocab(vocab_path)
  files.copy_file(vocab_path, files.join(out, VOCAB_TXT))
  tokens = {}
  for name, default in SPECIAL_TOKENS.items():
    i = special_id(special_ids, name)
    if i is not None and not 0 <= i < len(vocab):
      raise KorpatError(f"{vocab_path}: special id {name}={i} is outside the vocab of {len(vocab)}")
    tokens[f"{name}_token"] = vocab[i] if i is not None else default
  config = {
      "tokenizer_class": "BertTokenizer",
      "do_lower_case": False,
      "strip_accents": False,
      "do_basic_tokenize": True,
      "tokenize_chinese_chars": True,
      "model_max_length": int(model_max_length),
      "clean_up_tokenization_spaces": False,
      **tokens,
  }
  write_json(files.join(out, "tokenizer_config.json"), config)
  write_json(files.join(out, "special_tokens_map.json"), tokens)
  return None


def _save_with_mwp_tokenizer(tokenizer_dir: str, out: str) -> bool:
  """Lets korpat_jax.tokenizer write its own HF files when that package offers it and the directory is one of its
  own (a directory written by `import-hf` holds only vocab.txt, which the fallback handles)."""
  try:
    from korpat_jax.tokenizer import MWPTokenizer  # pylint: disable=import-outside-toplevel
  except ImportError:
    return False
  if not hasattr(MWPTokenizer, "save_hf"):
    return False
  try:
    tokenizer = MWPTokenizer.load(files.local_copy(tokenizer_dir, "tokenizer directory"))
  except (KorpatError, OSError):
    return False
  if not files.is_remote(out):
    tokenizer.save_hf(out)
    return True
  with tempfile.TemporaryDirectory(prefix="korpat-hf-tokenizer-") as scratch:
    tokenizer.save_hf(scratch)
    files.upload_tree(scratch, out)
  return True


def _set_model_max_length(out: str, model_max_length: int) -> None:
  """The tokenizer must not truncate to more positions than this model has (a demo model has 128, not 512)."""
  path = files.join(out, "tokenizer_config.json")
  if not files.isfile(path):
    return
  config = files.read_json(path)
  config["model_max_length"] = int(model_max_length)
  write_json(path, config)
