"""What a task plugs into the shared training loop (korpat_jax.train).

The loop owns the mesh, the sharded state (init, restore, init_from), the compiled steps with their shardings and
donation, the log / eval / checkpoint / profile schedule, timing and MFU, resume and the final checkpoint. A task
owns its data, its model and parameter init, its loss and train step, its evaluation (a device-side step and the
host-side metrics), its analytic FLOPs, and what its run directory records.

`workdir` is an absolute local path or a URL (gs://...): a task reads and writes its files there through
korpat_jax.files, never open()/os.path, and keeps what only local readers take (ArrayRecord caches) in
`files.local_cache_dir`.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import jax
import ml_collections
import numpy as np

from korpat_jax.config import validate_loop
from korpat_jax.model.config import ElectraConfig, check_model_block
from korpat_jax.train_state import TrainState

Batch = Mapping[str, np.ndarray]


def validate_shared(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """The checks of every task's config: the loop's settings (config.validate_loop) and the model block's
  (model.config.check_model_block)."""
  validate_loop(config, num_devices)
  check_model_block(config.model)


@dataclasses.dataclass
class TaskInput:
  """The training stream and the schedule that follows from the data."""

  train: Iterator[Batch]      # this process's rows of each global batch
  checkpointable: Any         # saved with each checkpoint (None for a stateless stream)
  num_steps: int
  eval_every: int             # 0: no evaluation during training
  checkpoint_every: int


@dataclasses.dataclass
class EvalResult:
  """Scores of one evaluation (fractions; nested dicts such as per-type scores are allowed) and, optionally, a
  writer of its prediction files into a directory (called when the loop keeps this evaluation)."""

  scores: dict[str, Any]
  write: Optional[Callable[[str], None]] = None

  def scalars(self) -> dict[str, float]:
    return {k: float(v) for k, v in self.scores.items() if isinstance(v, (int, float, np.floating, np.integer))}


class Task(abc.ABC):
  """One experiment: pretraining, NER, classification, QA. Subclasses set `name` and, for a best checkpoint,
  `main_metric` (an eval score, higher is better)."""

  name: str = ""
  main_metric: Optional[str] = None
  console_keys: tuple[str, ...] = ("loss", "learning_rate")

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    self.config = config
    self.workdir = workdir

  # -- before the loop ----------------------------------------------------------------------------------

  def validate(self, num_devices: int) -> None:
    """Checks the config before anything is read (one-line ConfigError): here what every task shares, the loop's
    `train.*` and `profile.*` and the `model` block; a task adds the blocks it reads, after `super().validate`."""
    validate_shared(self.config, num_devices)

  @abc.abstractmethod
  def make_input(self, start_step: int) -> TaskInput:
    """Reads (or builds) the data, fixes the model config and the schedule, and returns the training stream
    positioned at `start_step`."""

  @property
  @abc.abstractmethod
  def model_config(self) -> ElectraConfig:
    """Valid after make_input."""

  @abc.abstractmethod
  def create_state(self) -> TrainState:
    """A fresh train state (pure: the loop runs it under eval_shape and jit)."""

  def init_params(self, loaded: Mapping[str, Any], fresh: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The parameters of another run that initialise this task's model (flat `path string -> array`; `fresh`: this
    model's, same keys); the loop checks names and shapes. Pretraining takes them all."""
    return dict(loaded)

  def computed_params(self, fresh: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters the task computes from its data for a fresh run (flat `path string -> array`, a subset of `fresh`:
    this model's random init), e.g. pretraining's word vectors; after init_from. None by default."""
    return {}

  @abc.abstractmethod
  def prepare_run_dir(self, resuming: bool) -> None:
    """Checks that a resumed run directory holds this model, and records what export and predict need
    (model.json and friends). Runs on process 0."""

  def identity(self) -> dict[str, Any]:
    """What a resumed run must still read (tokenizer vocab hash, records or training file) and its schedule
    (`schedule`: num_steps, warmup, learning rate), recorded in model.json; valid after make_input."""
    return {}

  def describe(self, num_params: int) -> str:
    return f"{self.name}: {num_params / 1e6:.2f}M parameters"

  # -- on device ----------------------------------------------------------------------------------------

  @abc.abstractmethod
  def train_step(self, state: TrainState, batch: Mapping[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
    """Pure: jitted by the loop with the state donated."""

  def eval_step(self, params: Any, batch: Mapping[str, jax.Array], rng: jax.Array) -> Any:
    """Pure: per-batch outputs (sums or per-row predictions), gathered onto every host by the loop."""
    raise NotImplementedError

  def flops_per_step(self) -> Optional[float]:
    """Analytic training FLOPs of one step (for MFU), or None."""
    return None

  # -- evaluation on the host ---------------------------------------------------------------------------

  def eval_batches(self, split: str) -> Optional[Iterable[Batch]]:
    """GLOBAL batches of `split` ("eval", "test"), the same on every process, in a fixed order; None when the
    task has no such split."""
    return None

  def evaluate(self, split: str, outputs: Iterable[tuple[Batch, Any]]) -> Optional[EvalResult]:
    """Scores from (global batch, eval_step outputs as numpy) pairs in batch order."""
    return None
