"""Tasks of the shared training loop: `make_task(config, workdir)` picks one by `config.task`."""

from __future__ import annotations

import importlib

import ml_collections

from korpat_jax.errors import ConfigError
from korpat_jax.model.heads import HEADS
from korpat_jax.tasks.base import EvalResult, Task, TaskInput

# config.task -> "module:class": pretraining, and each head's task (its HeadSpec); imported on use so that
# pretraining never imports the fine-tuning readers.
TASKS = {
    "pretraining": "korpat_jax.tasks.pretraining:PretrainingTask",
    **{task_type: spec.task for task_type, spec in HEADS.items()},
}


def make_task(config: ml_collections.ConfigDict, workdir: str) -> Task:
  name = config.get("task", "pretraining")
  if name not in TASKS:
    raise ConfigError(f"config.task={name!r}: expected one of {', '.join(TASKS)}")
  module, cls = TASKS[name].split(":")
  return getattr(importlib.import_module(module), cls)(config, workdir)


__all__ = ["make_task", "Task", "TaskInput", "EvalResult", "TASKS"]
