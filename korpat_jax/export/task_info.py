"""The fine-tuning task of a run directory: `"task": {"type": ..., "id2label": {...}}` in WORKDIR/model.json.

Kept beside (not inside) korpat_jax.workdir: it adds one key to model.json and leaves the rest as written there.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Mapping, Optional

from korpat_jax import files
from korpat_jax.errors import KorpatError
from korpat_jax.model.heads import HEADS, head
from korpat_jax.workdir import MODEL_JSON, write_json

TASK_TYPES = tuple(HEADS)


@dataclasses.dataclass(frozen=True)
class TaskInfo:
  type: str
  id2label: dict[int, str]
  problem_type: Optional[str] = None

  @property
  def num_labels(self) -> int:
    fixed = head(self.type).fixed_labels
    return len(fixed) if fixed is not None else len(self.id2label)


def write_task_info(workdir: str, task_type: str, id2label: Mapping[int, str],
                    problem_type: Optional[str] = None) -> None:
  """Adds (or replaces) the task entry of an existing WORKDIR/model.json."""
  problem_types = head(task_type).problem_types
  if problem_type is not None and problem_type not in problem_types:
    raise KorpatError(f"problem type {problem_type!r} of a {task_type} task is not one of "
                      f"{', '.join(problem_types) or '(none: it records no problem type)'}")
  path = files.join(workdir, MODEL_JSON)
  info = _read(path)
  info["task"] = {"type": task_type, "id2label": {str(int(i)): str(label) for i, label in id2label.items()}}
  if problem_type:
    info["task"]["problem_type"] = problem_type
  write_json(path, info)


def read_task_info(workdir: str) -> Optional[TaskInfo]:
  """The task of a fine-tuning run directory, or None for a pretraining one."""
  path = files.join(workdir, MODEL_JSON)
  task = _read(path).get("task")
  if task is None:
    return None
  try:
    task_type = str(task["type"])
    id2label = {int(i): str(label) for i, label in dict(task.get("id2label") or {}).items()}
    problem_type = task.get("problem_type")
  except (KeyError, TypeError, ValueError) as e:
    raise KorpatError(f"{path}: unreadable \"task\" entry ({e})") from None
  if task_type not in TASK_TYPES:
    raise KorpatError(f"{path}: task type {task_type!r} is not one of {', '.join(TASK_TYPES)}")
  if head(task_type).fixed_labels is None and sorted(id2label) != list(range(len(id2label))):
    raise KorpatError(f"{path}: task id2label ids must be 0..N-1, got {sorted(id2label)}")
  return TaskInfo(task_type, id2label, problem_type)


def _read(path: str) -> dict:
  if not files.exists(path):
    raise KorpatError(f"{path}: missing; is {os.path.dirname(path)!r} a korpat-jax run directory?")
  try:
    return files.read_json(path)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise KorpatError(f"{path}: not valid JSON ({e})") from None
