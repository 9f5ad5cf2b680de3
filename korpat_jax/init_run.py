"""The model a fine-tuning run starts from: sizes, tokenizer and special ids of `config.init_from` (a run directory:
korpat_jax.workdir) with the config's overrides, or the config's own sizes and `data.tokenizer_dir` without one.

A size set in the config must agree with the init run's (-1 takes the init run's); dtype, attention kernel, remat
and dropout are the config's to choose. A `data.tokenizer_dir` that extends the init run's tokenizer (its
extension.json, from `korpat-jax tokenizer extend`) makes the model's vocab_size the extended one; the init's
vocabulary-sized arrays grow onto it when the run starts (korpat_jax.restore, korpat_jax.vocab_extension).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import ml_collections

from korpat_jax import files, workdir as workdir_lib
from korpat_jax.vocab_extension import EXTENSION_JSON, read_extension
from korpat_jax.config import require
from korpat_jax.errors import ConfigError
from korpat_jax.model.config import ElectraConfig, EncoderConfig

if TYPE_CHECKING:
  from korpat_jax.tokenizer import MWPTokenizer

SIZE_KEYS = ("vocab_size", "embedding_size", "max_position_embeddings")  # config.model.* of ElectraConfig
ENCODER_KEYS = ("hidden_size", "num_layers", "num_heads", "intermediate_size")  # config.model.* of the encoder

log = logging.getLogger("korpat_jax")


def validate(config: ml_collections.ConfigDict) -> None:
  """Without init_from the config must give every size and a tokenizer; with it the run directory must exist."""
  c = config
  if not c.init_from:
    missing = [k for k in (*SIZE_KEYS, *ENCODER_KEYS) if c.model[k] <= 0]
    require(not missing, f"config.init_from: empty, so config.model.{missing[0] if missing else ''} must be set "
            "(> 0): without a model to start from the sizes come from the config")
    require(bool(c.data.tokenizer_dir), "config.init_from: empty, so config.data.tokenizer_dir must be set")
  elif not files.isdir(files.resolve(c.init_from)):
    raise ConfigError(f"config.init_from={c.init_from}: no such run directory")


def resolve_model(config: ml_collections.ConfigDict) -> tuple[ElectraConfig, str, dict[str, int]]:
  """(model config, tokenizer directory, special ids) from init_from, with the config's overrides."""
  c, m = config, config.model
  if c.init_from:
    source = files.resolve(c.init_from)
    cfg, tokenizer_dir, special = workdir_lib.read_model_info(source)
    cfg = vocab_for_tokenizer(cfg, files.resolve(c.data.tokenizer_dir), source)
    wanted = {**{k: getattr(cfg, k) for k in SIZE_KEYS}, **{k: getattr(cfg.discriminator, k) for k in ENCODER_KEYS}}
    for key, value in wanted.items():
      if m[key] > 0 and m[key] != value:
        raise ConfigError(f"config.model.{key}={m[key]}: the init model {source} has {key} {value}; leave it at -1 "
                          "(take the init model's) or fine-tune without init_from")
  else:
    tokenizer_dir, special = "", {}
    enc = EncoderConfig(m.hidden_size, m.num_layers, m.num_heads, m.intermediate_size)
    cfg = ElectraConfig(vocab_size=m.vocab_size, embedding_size=m.embedding_size, discriminator=enc, generator=enc,
                        max_position_embeddings=m.max_position_embeddings)
  # A fine-tuned model is always tied: init_params folds a gdes run's delta into the word table.
  overrides: dict[str, Any] = {"dtype": m.dtype, "attention_impl": m.attention_impl, "remat": bool(m.remat),
                               "embedding_sharing": "tied"}
  for key in ("dropout_rate", "attention_dropout_rate"):
    if m[key] >= 0:
      overrides[key] = float(m[key])
  cfg = dataclasses.replace(cfg, **overrides)
  tokenizer_dir = files.resolve(c.data.tokenizer_dir) or tokenizer_dir
  if not tokenizer_dir or not files.isfile(files.join(tokenizer_dir, "vocab.txt")):
    raise ConfigError(f"config.data.tokenizer_dir: no tokenizer (vocab.txt) at {tokenizer_dir or '(none)'}; the "
                      f"init run records none: set --config.data.tokenizer_dir")
  if c.train.seq_len > cfg.max_position_embeddings:
    raise ConfigError(f"config.train.seq_len={c.train.seq_len}: the model has max_position_embeddings "
                      f"{cfg.max_position_embeddings}")
  return cfg, tokenizer_dir, special


def vocab_for_tokenizer(cfg: ElectraConfig, tokenizer_dir: str, source: str) -> ElectraConfig:
  """The init model's config, its vocab_size grown to `tokenizer_dir`'s when that tokenizer extends the init's
  vocabulary (extension.json); a larger vocabulary that no extension.json explains is refused in one line."""
  if not tokenizer_dir:
    return cfg
  ext = read_extension(tokenizer_dir)
  if ext is not None and ext.base_vocab_size == cfg.vocab_size:
    log.info("config.data.tokenizer_dir=%s extends the init model's vocabulary: vocab_size %d -> %d (new rows from "
             "their pieces' rows)", tokenizer_dir, cfg.vocab_size, ext.vocab_size)
    return dataclasses.replace(cfg, vocab_size=ext.vocab_size)
  vocab_path = files.join(tokenizer_dir, "vocab.txt")
  size = len(files.read_text(vocab_path).rstrip("\r\n").splitlines()) if files.isfile(vocab_path) else 0
  if size > cfg.vocab_size:
    why = (f"its {EXTENSION_JSON} extends a vocabulary of {ext.base_vocab_size} tokens" if ext is not None else
           f"it has no {EXTENSION_JSON} saying how the vocabulary grew (build it with `korpat-jax tokenizer extend "
           f"--tokenizer <the init run's tokenizer>`)")
    raise ConfigError(f"config.init_from={source}: the model's vocab_size is {cfg.vocab_size}, "
                      f"config.data.tokenizer_dir={tokenizer_dir} has {size} tokens and {why}")
  return cfg


def load_tokenizer(tokenizer_dir: str, model: ElectraConfig) -> MWPTokenizer:
  """The MWP tokenizer of a run (a local copy when it lies at a URL); its vocabulary must fit the model's."""
  from korpat_jax.tokenizer import MWPTokenizer  # Mecab-ko: imported only where text is tokenized
  tok = MWPTokenizer.load(files.local_copy(tokenizer_dir, "tokenizer directory"))
  if tok.vocab_size > model.vocab_size:
    raise ConfigError(f"config.data.tokenizer_dir={tokenizer_dir}: its vocabulary has {tok.vocab_size} "
                      f"tokens, the model's vocab_size is {model.vocab_size}")
  return tok
