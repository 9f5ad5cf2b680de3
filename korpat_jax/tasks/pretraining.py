"""ELECTRA pretraining as a task of the shared loop: generator + discriminator on prepared records (or the
synthetic stream), replaced token detection, the pretraining metrics.

    korpat-jax pretrain --config configs/pretrain.py:tiny --workdir /tmp/tiny
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable, Mapping, Optional

import jax
import ml_collections
import numpy as np

from korpat_jax import config as config_lib, masking, objective, word_vectors, workdir as workdir_lib
from korpat_jax.config import require
from korpat_jax.errors import ConfigError
from korpat_jax.mfu import training_flops_per_step
from korpat_jax.model import ElectraConfig, ElectraPretrainer
from korpat_jax.model.config import check_embedding_sharing
from korpat_jax.model.embedding_sharing import WORD_EMBEDDINGS_PATH, fold_flat_embedding_delta, keystr
from korpat_jax.optimizer import make_optimizer
from korpat_jax.pretraining_input import TrainInput, make_input
from korpat_jax.pretraining_step import create_train_state, make_eval_step, make_train_step
from korpat_jax.tasks.base import Batch, EvalResult, Task, TaskInput, validate_shared
from korpat_jax.train_state import TrainState

log = logging.getLogger("korpat_jax")


def validate(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Checks a pretraining config's values that would otherwise fail deep inside JAX: what every task shares (the
  loop's train.* and profile.*, the model block), then what only pretraining reads; `num_devices` is the global
  device count."""
  validate_shared(config, num_devices)
  m, t, o, obj = config.model, config.train, config.optimizer, config.objective
  config_lib.require_finite(config, ("model", "objective", "optimizer"))
  for key in ("embedding_size", "hidden_size", "num_layers", "num_heads", "intermediate_size"):
    require(m[key] > 0, f"config.model.{key}={m[key]}: must be > 0")
  require(m.vocab_size > 0 or (m.vocab_size == -1 and config.data.source == "records"),
           f"config.model.vocab_size={m.vocab_size}: must be > 0 (or -1: from the records' manifest)")
  require(0.0 < m.generator_hidden_fraction <= 1.0,
           f"config.model.generator_hidden_fraction={m.generator_hidden_fraction}: must be in (0, 1]")
  for key in ("dropout_rate", "attention_dropout_rate"):
    require(0.0 <= m[key] < 1.0, f"config.model.{key}={m[key]}: must be in [0, 1)")
  require(t.seq_len <= m.max_position_embeddings,
           f"config.train.seq_len={t.seq_len}: exceeds model.max_position_embeddings={m.max_position_embeddings}")
  masking.check_name(obj.get("masking", "token"))
  check_embedding_sharing(obj.get("embedding_sharing", "tied"))
  require(0.0 < obj.mask_prob < 1.0, f"config.objective.mask_prob={obj.mask_prob}: must be in (0, 1)")
  require(obj.temperature > 0, f"config.objective.temperature={obj.temperature}: must be > 0")
  require(o.learning_rate > 0, f"config.optimizer.learning_rate={o.learning_rate}: must be > 0")
  for key in ("weight_decay", "grad_clip_norm", "eps"):
    require(o[key] >= 0, f"config.optimizer.{key}={o[key]}: must be >= 0")
  require(0 <= o.b1 < 1 and 0 <= o.b2 < 1, f"config.optimizer.b1/b2: must be in [0, 1) (are {o.b1}, {o.b2})")
  require(o.warmup_steps >= 0, f"config.optimizer.warmup_steps={o.warmup_steps}: must be >= 0")
  scale = o.get("word_embedding_lr_scale", 1.0)
  require(scale >= 0, f"config.optimizer.word_embedding_lr_scale={scale}: must be >= 0")
  validate_word_vectors(config)
  require(config.data.source in ("synthetic", "records"),
           f"config.data.source={config.data.source!r}: expected records or synthetic")
  if config.data.source == "records":
    require(bool(config.data.records_dir), "config.data.records_dir: required when data.source='records'")
  require(config.data.get("on_bad_record", "fail") in ("fail", "skip"),
          f"config.data.on_bad_record={config.data.get('on_bad_record')!r}: expected fail or skip")


def validate_word_vectors(config: ml_collections.ConfigDict) -> None:
  wv = config.get("word_vectors")
  if wv is None:
    return
  require(wv.source in word_vectors.SOURCES,
          f"config.word_vectors.source={wv.source!r}: expected one of {', '.join(word_vectors.SOURCES)}")
  if wv.source == "none":
    return
  require(config.data.source == "records",
          f"config.word_vectors.source={wv.source!r}: needs records to count (config.data.source='records')")
  require(not config.init_from, f"config.word_vectors.source={wv.source!r} with config.init_from: the word vectors "
          "would replace the init's embeddings; set --config.word_vectors.source=none to keep them")
  require(wv.window >= 1, f"config.word_vectors.window={wv.window}: must be >= 1")
  require(wv.max_tokens >= 1, f"config.word_vectors.max_tokens={wv.max_tokens}: must be >= 1")
  require(0 < wv.context_smoothing <= 1,
          f"config.word_vectors.context_smoothing={wv.context_smoothing}: must be in (0, 1]")


def check_same_sharing(workdir: str, model: ElectraConfig) -> None:
  """A resumed run keeps its embedding sharing: gdes has a parameter that tied lacks, so its checkpoints would not
  restore (and be moved aside as broken)."""
  saved = workdir_lib.read_model_info(workdir)[0].embedding_sharing
  if saved != model.embedding_sharing:
    raise ConfigError(f"config.objective.embedding_sharing={model.embedding_sharing!r}: the run in {workdir} was "
                      f"trained with {saved!r}; resume with that, or use a new --workdir (init_from it to switch)")


class PretrainingTask(Task):
  name = "pretraining"
  console_keys = ("loss", "gen_loss", "disc_loss", "gen_accuracy", "disc_accuracy", "disc_precision", "disc_recall",
                  "learning_rate")

  def validate(self, num_devices: int) -> None:
    validate(self.config, num_devices)  # the shared checks included

  def make_input(self, start_step: int) -> TaskInput:
    config, t = self.config, self.config.train
    self._data: TrainInput = make_input(config, self.workdir, start_step)
    if config.model.vocab_size == -1:
      config.model.vocab_size = self._data.vocab_size
    elif config.model.vocab_size != self._data.vocab_size:
      raise ConfigError(f"config.model.vocab_size={config.model.vocab_size}: the records' tokenizer has "
                        f"{self._data.vocab_size} tokens (the model's embeddings and the exported vocab.txt must "
                        "agree); set --config.model.vocab_size=-1 to take the vocab size from the data")
    obj = config.objective
    self.masking = masking.make_masking(obj, self._data.special, t.seq_len)  # built once, used by both steps
    self._model_cfg = dataclasses.replace(ElectraConfig.from_config(config.model),
                                          embedding_sharing=obj.get("embedding_sharing", "tied"))
    self._model = ElectraPretrainer(self._model_cfg)
    self._tx, schedule = make_optimizer(config.optimizer, t.num_steps)
    self._train_step = make_train_step(self._model, self._tx, schedule, self.masking,
                                       temperature=float(obj.temperature), disc_weight=float(obj.disc_weight),
                                       grad_accum_steps=t.grad_accum_steps, skip_nonfinite=t.on_nonfinite == "skip")
    self._eval_step = make_eval_step(self._model, self.masking, temperature=float(obj.temperature))
    return TaskInput(self._data.train, self._data.checkpointable, t.num_steps, t.eval_every, t.checkpoint_every)

  def identity(self) -> dict[str, Any]:
    o = self.config.optimizer
    return {**self._data.identity, "schedule": {"num_steps": self.config.train.num_steps,
                                                 "warmup_steps": o.warmup_steps, "learning_rate": o.learning_rate}}

  @property
  def model_config(self) -> ElectraConfig:
    return self._model_cfg

  def create_state(self) -> TrainState:
    return create_train_state(self._model, self._tx, self.config.seed, self.config.train.seq_len)

  def init_params(self, loaded: Mapping[str, Any], fresh: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Continued pretraining takes every parameter. A gdes run from a gdes run keeps both word tables (from a tied
    run or an HF import its delta starts at zero); a tied run from a gdes run folds them into one (E_G + delta, the
    discriminator's table; the generator then continues on a table it was not trained with)."""
    if self._model_cfg.embedding_sharing == "gdes":
      return dict(loaded)
    return fold_flat_embedding_delta(loaded, keystr)

  def computed_params(self, fresh: Mapping[str, Any]) -> dict[str, Any]:
    """The shared word-embedding table from the records' co-occurrences when config.word_vectors.source=ppmi."""
    wv = self.config.get("word_vectors")
    if wv is None or wv.source == "none":
      return {}
    key = keystr(WORD_EMBEDDINGS_PATH)
    cfg = self._model_cfg
    settings = word_vectors.Settings.from_config(wv)
    table, stats = word_vectors.from_records(self._data.records_dir, self._data.special_ids.values(), cfg.vocab_size,
                                             cfg.embedding_size, cfg.initializer_range, settings, self.config.seed)
    log.info("word vectors (PPMI + SVD, window %d) from %d tokens of %d examples: %d of %d tokens seen, %.1fs",
             settings.window, stats.tokens, stats.examples, stats.seen, cfg.vocab_size, stats.seconds)
    return {key: table.astype(np.asarray(fresh[key]).dtype)}

  def prepare_run_dir(self, resuming: bool) -> None:
    if resuming:
      workdir_lib.check_same_model(self.workdir, self._model_cfg)
      check_same_sharing(self.workdir, self._model_cfg)
    workdir_lib.write_model_info(self.workdir, self._model_cfg, self._data.tokenizer_dir, self._data.special_ids)

  def describe(self, num_params: int) -> str:
    d = self._model_cfg.discriminator
    sharing = {"tied": "shared embeddings", "gdes": "gradient-disentangled word embeddings"}
    return (f"ELECTRA L{d.num_layers}/H{d.hidden_size}/E{self._model_cfg.embedding_size}/gen "
            f"H{self._model_cfg.generator.hidden_size}: {num_params / 1e6:.2f}M parameters (generator + "
            f"discriminator, {sharing[self._model_cfg.embedding_sharing]})")

  def train_step(self, state, batch):
    return self._train_step(state, batch)

  def eval_step(self, params, batch, rng):
    return self._eval_step(params, batch, rng)

  def flops_per_step(self) -> Optional[float]:
    t = self.config.train
    return training_flops_per_step(self._model_cfg, t.batch_size, t.seq_len, self.masking.max_predictions)

  def eval_batches(self, split: str) -> Optional[Iterable[Batch]]:
    return self._data.eval_batches(self.config.train.eval_steps) if split == "eval" else None

  def evaluate(self, split: str, outputs: Iterable[tuple[Batch, Any]]) -> Optional[EvalResult]:
    totals = None
    for _, sums in outputs:
      totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
    if totals is None:
      return None
    scores = objective.finalize_metrics(totals, float(self.config.objective.disc_weight))
    return EvalResult({k: float(v) for k, v in jax.device_get(scores).items()})

  def __repr__(self) -> str:
    return f"PretrainingTask(workdir={self.workdir!r})"
