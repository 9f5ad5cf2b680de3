"""The fine-tuning contract on the shared loop: a subclass reads its files into examples, turns examples into
features, computes its loss and scores predictions (tasks/token_classification.py, tasks/sequence_classification.py,
tasks/question_answering.py); its head is a HeadSpec (korpat_jax.model.heads).

What they share lives here or beside: the model from `init_from` (korpat_jax.init_run), the feature cache
(korpat_jax.finetune.features), epochs -> steps, ELECTRA's fine-tuning optimizer (layerwise learning-rate decay),
the supervised train step, and what the run directory records for export and predict.
"""

from __future__ import annotations

import abc
import logging
import math
import os
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from korpat_jax import files, init_run, workdir as workdir_lib
from korpat_jax.config import require, require_finite
from korpat_jax.datasets import source as source_lib
from korpat_jax.errors import ConfigError
from korpat_jax.export.task_info import read_task_info, write_task_info
from korpat_jax.finetune import features as features_lib
from korpat_jax.finetune.raw_input import RawDoc
from korpat_jax.finetune.report import DataReport
from korpat_jax.mfu import finetuning_flops_per_step
from korpat_jax.model.config import ElectraConfig
from korpat_jax.model.embedding_sharing import fold_flat_embedding_delta, keystr
from korpat_jax.model.heads import HeadSpec
from korpat_jax.optimizer import ENCODER_TREES, make_optimizer
from korpat_jax.tasks.base import Batch, EvalResult, Task, TaskInput
from korpat_jax.train_state import TrainState, accumulated_grads, apply_gradients, new_state

log = logging.getLogger("korpat_jax")

SPLITS = ("train", "eval", "test")
DATA_REPORT = "data_report.json"


class FineTuningTask(Task):
  """Supervised fine-tuning of the discriminator with a task head."""

  head: HeadSpec                      # the task's head (korpat_jax.model.heads)
  feature_keys: tuple[str, ...] = ()  # the config.head.* keys that featurize reads (they key the feature cache)
  problem_type: Optional[str] = None  # HF's problem_type of the export, when the head records one
  predictions_file = "predictions.jsonl"
  console_keys = ("loss", "accuracy", "learning_rate")
  # How a message about the input names the setting to change, by data key; `predict` names its own options.
  setting_names: dict[str, str] = {}

  def setting(self, key: str) -> str:
    """The option a message tells to set for data key `key`: --config.data.KEY, or what `predict` takes."""
    return self.setting_names.get(key) or f"--config.data.{key}"

  def __init__(self, config, workdir):
    super().__init__(config, workdir)
    self.data_dir = files.local_cache_dir(os.path.join(workdir, "data"), "features")  # ArrayRecord: local only
    self.splits: dict[str, features_lib.FeatureSplit] = {}
    self.reports: dict[str, dict] = {}

  # -- subclass API -------------------------------------------------------------------------------------

  @property
  def task_type(self) -> str:
    return self.head.task_type

  @abc.abstractmethod
  def read(self, path: str, report: DataReport, labelled: bool) -> list[Any]:
    """The examples of one input file; bad rows are counted in `report`, never raised."""

  @abc.abstractmethod
  def label_set(self, examples: Sequence[Any]) -> list[str]:
    """The labels of a training set (in model-output order)."""

  def check_labels(self, examples: Sequence[Any], labels: Sequence[str], report: DataReport) -> None:
    """Reports eval/test labels outside the training label set `labels`."""

  @abc.abstractmethod
  def featurize(self, examples: Sequence[Any], labels: Sequence[str], report: DataReport, split: str,
                labelled: bool) -> features_lib.Features:
    """(JSON metadata, features) per example, in input order; an example may have no features. `labels`: the
    training label set; `split`: train, eval, test or predict."""

  def scoring_info(self, split: str, source: source_lib.Input, examples: Sequence[Any], labelled: bool
                   ) -> dict[str, Any]:
    """What `score` needs besides the examples' metadata (kept in the split's cache info); nothing by default."""
    return {}

  def make_model(self, cfg: ElectraConfig) -> nn.Module:
    """The Flax task model of the head, with config.model.classifier_dropout (-1: the model's dropout)."""
    rate = self.config.model.classifier_dropout
    return self.head.build(cfg, len(self.label_names()), classifier_dropout=None if rate < 0 else float(rate))

  @abc.abstractmethod
  def fields(self) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """The features' fields for the batch decoder: (sequence field -> pad, fixed field -> (length, fill))."""

  @abc.abstractmethod
  def loss_denominator(self, batch: Mapping[str, jax.Array]) -> jax.Array:
    """What the summed loss of a batch is divided by (labelled tokens, labelled examples)."""

  @abc.abstractmethod
  def loss_sums(self, logits: Any, batch: Mapping[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(summed loss, summed metric counts incl. "count", what the train metrics are divided by) of a batch."""

  @abc.abstractmethod
  def outputs(self, logits: Any, batch: Mapping[str, jax.Array]) -> Any:
    """What eval_step returns per row (predicted ids, logits)."""

  @abc.abstractmethod
  def score(self, split: str, meta: Iterator[dict], outputs: Iterable[tuple[Batch, Any]], labelled: bool
            ) -> EvalResult:
    """Scores (when `labelled`) and the predictions writer of one split."""

  @abc.abstractmethod
  def raw_example(self, doc: RawDoc) -> Any:
    """The example of a raw document (`predict` on .txt / JSONL); raises raw_input.Unusable when it has none."""

  @abc.abstractmethod
  def prediction_lines(self, meta: Iterable[dict], outputs: Iterable[tuple[Batch, Any]]) -> list[dict[str, Any]]:
    """One prediction line per example of `meta` (the lines of `score`'s file; QA: {"id", "answer", ...})."""

  def head_outputs(self) -> int:
    """Output units of the head (for FLOPs)."""
    return len(self.label_names())

  # -- validation ---------------------------------------------------------------------------------------

  def validate(self, num_devices: int) -> None:
    super().validate(num_devices)  # what every task shares: the loop's train.* and profile.*, the model block
    c, o = self.config, self.config.optimizer
    source_lib.check_keys(c)
    require(bool(c.data.train or c.data.tfds), "config.data.train: required (the training file, or config.data.tfds)")
    for split in SPLITS:
      path = c.data[split]
      require(not files.is_remote(path), f"config.data.{split}={path}: input files are read from local paths only; "
              "copy it to a local disk first")
      require(not path or os.path.isfile(files.resolve(path)), f"config.data.{split}={path}: no such file")
    require_finite(c, ("optimizer", "head"))
    skip = c.data.get("max_skipped_fraction", features_lib.DEFAULT_MAX_SKIPPED_FRACTION)
    require(isinstance(skip, (int, float)) and 0 <= skip <= 1,
            f"config.data.max_skipped_fraction={skip}: must be a fraction in [0, 1]")
    for key in ("learning_rate", "weight_decay", "layerwise_lr_decay", "warmup_fraction"):
      require(c.optimizer[key] >= 0, f"config.optimizer.{key}={c.optimizer[key]}: must be >= 0")
    require(o.learning_rate > 0, f"config.optimizer.learning_rate={o.learning_rate}: must be > 0")
    require(0 < o.layerwise_lr_decay <= 1, f"config.optimizer.layerwise_lr_decay={o.layerwise_lr_decay}: must be "
            "in (0, 1]")
    init_run.validate(c)

  # -- model --------------------------------------------------------------------------------------------

  @property
  def model_config(self) -> ElectraConfig:
    return self._model_cfg

  # -- input --------------------------------------------------------------------------------------------

  def make_input(self, start_step: int) -> TaskInput:
    c, t = self.config, self.config.train
    self._model_cfg, self.tokenizer_dir, special = init_run.resolve_model(c)
    self.tok = init_run.load_tokenizer(self.tokenizer_dir, self._model_cfg)
    self.special_ids = {"pad": self.tok.pad_id, "unk": self.tok.unk_id, "cls": self.tok.cls_id,
                        "sep": self.tok.sep_id, "mask": self.tok.mask_id, **special}
    self.labels = [s.strip() for s in c.data.labels.split(",") if s.strip()] if c.data.labels else None
    self.inputs = source_lib.inputs(c)  # files, or the splits of a TFDS dataset (the one place they are chosen)
    for split, source in self.inputs.items():
      self.splits[split] = self.build_split(split, source, labelled=True)
    if jax.process_index() == 0:
      workdir_lib.write_json(os.path.join(self.workdir, DATA_REPORT), self.reports)
    train = self.splits["train"]
    if not train.num_features:
      raise ConfigError(f"{source_lib.describe(c, 'train', self.inputs['train'])}: no usable training examples "
                        f"(see {os.path.join(self.workdir, DATA_REPORT)})")

    self.model = self.make_model(self._model_cfg)
    steps_per_epoch = math.ceil(train.num_features / t.batch_size)
    num_steps = t.num_steps if t.num_steps > 0 else max(1, math.ceil(t.num_epochs * steps_per_epoch),
                                                              t.get("min_steps", 0))
    eval_every = t.eval_every or steps_per_epoch
    self._num_steps = num_steps
    self._tx, self._schedule = make_optimizer(c.optimizer, num_steps, self._model_cfg.discriminator.num_layers)
    stream = features_lib.batches(train, self.decoder(train), global_batch_size=t.batch_size, seed=c.seed,
                                  shuffle=True, num_epochs=None, worker_count=c.data.worker_count,
                                  prefetch=c.data.prefetch, process_index=jax.process_index(),
                                  process_count=jax.process_count())
    log.info("%s: %d training features (%d examples), %d steps (%.3g epochs of %d steps), eval every %d",
             self.name, train.num_features, train.num_examples, num_steps, num_steps / steps_per_epoch,
             steps_per_epoch, eval_every)
    return TaskInput(stream, stream, num_steps, eval_every if "eval" in self.splits else 0,
                     t.checkpoint_every or eval_every)

  def identity(self) -> dict[str, Any]:
    o = self.config.optimizer
    return {"vocab_sha256": self.tok.vocab_hash,
            "train_data": {k: self.splits["train"].info["fingerprint"]["file"][k] for k in ("size", "head_sha256")},
            "schedule": {"num_steps": self._num_steps, "warmup_fraction": o.warmup_fraction,
                         "learning_rate": o.learning_rate}}

  def window_stride(self, window: int) -> int:
    """data.window_stride, at most the window (-1: half of it, so every token has context on both sides)."""
    stride = self.config.data.window_stride
    return max(1, window // 2) if stride < 0 else max(1, min(stride, window))

  def decoder(self, split: features_lib.FeatureSplit) -> features_lib.PadAndStack:
    seq_pad, fixed = self.fields()
    return features_lib.PadAndStack(split.reader, self.config.train.seq_len, seq_pad, fixed)

  def build_split(self, split: str, source: source_lib.Input, labelled: bool, directory: Optional[str] = None
                  ) -> features_lib.FeatureSplit:
    """The cached features of `source` (tokenized once; reruns and later epochs read the cache); the training
    split fixes the label set when the config gives none."""
    fingerprint = features_lib.fingerprint(source, tokenizer=self.tok, config=self.config, task=self.name,
                                           head_keys=self.feature_keys, labels=self.labels, labelled=labelled)
    built = features_lib.build_split(self, split, source, labelled=labelled, labels=self.labels,
                                     fingerprint=fingerprint, directory=directory or self.data_dir)
    self.reports[split] = built.info.get("report", {})
    if split == "train":
      self.labels = list(built.info["labels"])
    return built

  # -- state --------------------------------------------------------------------------------------------

  def create_state(self) -> TrainState:
    rng = jax.random.PRNGKey(self.config.seed)
    ids = jnp.zeros((1, self.config.train.seq_len), jnp.int32)
    params = self.model.init(jax.random.fold_in(rng, 0), ids, ids, jnp.ones_like(ids))["params"]
    return new_state(params, self._tx, jax.random.fold_in(rng, 1))

  def init_params(self, loaded: Mapping[str, Any], fresh: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The encoder (embeddings + discriminator) of any init run; its head too when the init run was fine-tuned for
    this task with the same labels (continued fine-tuning). A gdes pretraining run's discriminator reads E_G + delta:
    that folded table is the word embeddings here (model/embedding_sharing.py)."""
    if self.config.random_init:
      log.info("random_init: the weights of %s are not used (sizes and tokenizer are)", source)
      return {}
    loaded = fold_flat_embedding_delta(loaded, keystr)
    encoder = {k: v for k, v in loaded.items() if any(k.startswith(f"['{tree}']") for tree in ENCODER_TREES)}
    if not encoder:
      raise ConfigError(f"config.init_from={source}: holds no embeddings/discriminator parameters")
    task = read_task_info(source)
    head_params = {k: v for k, v in loaded.items() if k not in encoder and k in fresh
                   and tuple(np.shape(v)) == tuple(fresh[k].shape)}
    if head_params and task is not None and task.type == self.task_type and \
        [task.id2label[i] for i in sorted(task.id2label)] == list(self.label_names()):
      log.info("init_from: %s was fine-tuned for the same task and labels: its head is kept", source)
      return {**encoder, **head_params}
    return encoder

  def label_names(self) -> list[str]:
    return list(self.labels)

  def prepare_run_dir(self, resuming: bool) -> None:
    if resuming:
      workdir_lib.check_same_model(self.workdir, self._model_cfg)
      saved = read_task_info(self.workdir)
      if saved is not None and [saved.id2label[i] for i in sorted(saved.id2label)] != self.label_names():
        raise ConfigError(f"{os.path.join(self.workdir, workdir_lib.MODEL_JSON)}: this run was trained with other "
                          "labels; use a new --workdir")
    workdir_lib.write_model_info(self.workdir, self._model_cfg, self.tokenizer_dir, self.special_ids)
    write_task_info(self.workdir, self.task_type, dict(enumerate(self.label_names())), self.problem_type)

  def describe(self, num_params: int) -> str:
    d = self._model_cfg.discriminator
    return (f"{self.name} ({self.task_type}, {len(self.label_names())} labels) on ELECTRA L{d.num_layers}/"
            f"H{d.hidden_size}: {num_params / 1e6:.2f}M parameters")

  # -- on device ----------------------------------------------------------------------------------------

  def _apply(self, params: Any, batch: Mapping[str, jax.Array], rng: Optional[jax.Array]) -> Any:
    deterministic = rng is None
    return self.model.apply({"params": params}, batch["input_ids"], batch["token_type_ids"],
                            batch["attention_mask"], deterministic, rngs=None if deterministic else {"dropout": rng})

  def train_step(self, state: TrainState, batch: Mapping[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
    rng = jax.random.fold_in(state.rng, state.step)
    denominator = jnp.maximum(self.loss_denominator(batch), 1.0)  # of the whole batch, before any micro-split

    def loss_fn(params, micro, micro_rng):
      loss_sum, sums = self.loss_sums(self._apply(params, micro, micro_rng), micro)
      return loss_sum / denominator, {"loss_sum": loss_sum, **sums}

    grads, sums = accumulated_grads(jax.grad(loss_fn, has_aux=True), state.params, dict(batch), rng,
                                    self.config.train.grad_accum_steps)
    count = jnp.maximum(sums.pop("count"), 1.0)
    metrics = {"loss": sums.pop("loss_sum") / denominator, **{k: v / count for k, v in sums.items()}}
    new, update_metrics = apply_gradients(state, grads, self._tx, metrics["loss"],
                                          self.config.train.on_nonfinite == "skip")
    metrics.update(update_metrics, learning_rate=self._schedule(state.step))
    return new, metrics

  def eval_step(self, params: Any, batch: Mapping[str, jax.Array], rng: jax.Array) -> Any:
    del rng
    return self.outputs(self._apply(params, batch, None), batch)

  def flops_per_step(self) -> Optional[float]:
    return finetuning_flops_per_step(self._model_cfg, self.config.train.batch_size, self.config.train.seq_len,
                                     self.head_outputs())

  # -- evaluation ---------------------------------------------------------------------------------------

  def eval_batches(self, split: str) -> Optional[Iterable[Batch]]:
    if split not in self.splits:
      return None
    features = self.splits[split]
    return features_lib.batches(features, self.decoder(features), global_batch_size=self.config.train.eval_batch_size,
                                seed=0, shuffle=False, num_epochs=1, prefetch=self.config.data.prefetch)

  def evaluate(self, split: str, outputs: Iterable[tuple[Batch, Any]]) -> Optional[EvalResult]:
    return self.score(split, self.splits[split].examples(), outputs, labelled=split in SPLITS)

  # -- prediction ---------------------------------------------------------------------------------------

  def load_run(self) -> None:
    """For `predict`: this fine-tuned run's own model, tokenizer and labels (instead of make_input); then the
    task is ready for the loop's compile_steps (its state holds an optimizer state: any schedule has its shapes)."""
    self.load_featurizer()
    self.model = self.make_model(self._model_cfg)
    self._tx, self._schedule = make_optimizer(self.config.optimizer, 1, self._model_cfg.discriminator.num_layers)

  def load_featurizer(self) -> None:
    """This fine-tuned run's tokenizer, labels and sizes: what `featurize` needs (predict's tokenizer workers)."""
    self._model_cfg, tokenizer_dir, self.special_ids = workdir_lib.read_model_info(self.workdir)
    task = read_task_info(self.workdir)
    if task is None or task.type != self.task_type:
      raise ConfigError(f"{os.path.join(self.workdir, workdir_lib.MODEL_JSON)}: not a {self.task_type} run")
    self.labels = [task.id2label[i] for i in sorted(task.id2label)]
    self.tokenizer_dir = tokenizer_dir or ""
    self.tok = init_run.load_tokenizer(self.tokenizer_dir, self._model_cfg)

  def skipped_rows(self, split: str) -> list[dict[str, Any]]:
    """The input rows of `split` that the reader left out (DataReport.skipped_rows), in input order."""
    return self.splits[split].skipped_rows() if split in self.splits else []

  def with_skipped_rows(self, split: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The prediction lines of `split`: `rows` (one per kept example, in input order) with an error line
    {"id", "error", "where", "detail"} in the place of each input row the reader left out, so that there is one
    line per input row."""
    return interleave_skipped(rows, self.skipped_rows(split))

  def add_prediction_input(self, path: str, directory: str) -> None:
    """Features of an unlabelled file as the split "predict" (cached in `directory`)."""
    self.splits["predict"] = self.build_split("predict", path, labelled=False, directory=directory)


def error_line(row: Mapping[str, Any]) -> dict[str, Any]:
  """The prediction line of an input row the reader left out: its id (None when it has none), the reason, where."""
  return {"id": row.get("id"), "error": row["error"], "where": row["where"], "detail": row.get("detail", "")}


def interleave_skipped(rows: Sequence[dict[str, Any]], skipped: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """`rows` (kept examples in input order) with `error_line(s)` inserted before row `s["at"]` for each skipped
  row `s` (in input order; `at` past the end: after the last row)."""
  out: list[dict[str, Any]] = []
  pending = sorted(skipped, key=lambda s: int(s["at"]))  # stable: rows skipped together keep their input order
  k = 0
  for index, row in enumerate(rows):
    while k < len(pending) and int(pending[k]["at"]) <= index:
      out.append(error_line(pending[k]))
      k += 1
    out.append(row)
  out.extend(error_line(s) for s in pending[k:])
  return out
