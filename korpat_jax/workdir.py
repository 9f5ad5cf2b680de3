"""What a run directory holds besides checkpoints, so that export and fine-tuning need only the directory.

  WORKDIR/config.json       the resolved run config (for people and for reruns)
  WORKDIR/model.json        {"model": ElectraConfig dict, "tokenizer_dir": path or null, "special_ids": {...}}
  WORKDIR/checkpoints/      Orbax checkpoints (korpat_jax.checkpoint)
  WORKDIR/tensorboard/      TensorBoard event files
  WORKDIR/profile/          jax.profiler traces
  WORKDIR/logs/errors.log   full traces of the errors reported in one line (a failed checkpoint save)

WORKDIR may be a local path or a URL that etils.epath supports (gs://...): every path goes through korpat_jax.files.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from typing import Any, Mapping, Optional

from korpat_jax import files
from korpat_jax.errors import ConfigError, KorpatError
from korpat_jax.model.config import ElectraConfig

CONFIG_JSON, MODEL_JSON = "config.json", "model.json"
log = logging.getLogger("korpat_jax")


def checkpoint_dir(workdir: str) -> str:
  return files.join(workdir, "checkpoints")


def errors_log(workdir: str) -> str:
  return files.join(workdir, "logs", "errors.log")


class ReadOnlyWorkdir(KorpatError):
  """The run directory cannot be written (a read-only mount, no permission) and its run is not finished."""


def unwritable(workdir: str) -> Optional[str]:
  """Why nothing can be written in `workdir` (made first when absent, as the run would), or None when a probe file
  can be created and removed there. A real write, not the permission bits: root passes those everywhere, and a
  read-only mount or an object store's permissions show only when writing."""
  probe = files.join(workdir, f".korpat-write-probe-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
  try:
    if files.is_remote(workdir):
      files.path(probe).write_text("")
    else:
      os.makedirs(workdir, exist_ok=True)
      os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    files.remove(probe)
  except Exception as e:  # noqa: BLE001 - OSError locally, anything from an fsspec backend
    return f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"
  return None


def finished_step(workdir: str, num_steps: int) -> Optional[tuple[int, int]]:
  """(latest checkpoint step, steps of the run) when the run in `workdir` is trained to its end, from the directory
  alone: `num_steps` when the config fixes it (> 0), else the schedule that model.json recorded (fine-tuning: from
  epochs and the training set). None when it is not finished or cannot be told so without reading its data."""
  steps = [int(name) for name in files.listdir(checkpoint_dir(workdir))
           if name.isdigit() and files.isdir(files.join(checkpoint_dir(workdir), name))]
  recorded = (((read_json_if_exists(files.join(workdir, MODEL_JSON)) or {}).get(IDENTITY) or {}).get(SCHEDULE)
              or {}).get("num_steps")
  target = num_steps if num_steps > 0 else recorded
  if not steps or not isinstance(target, int) or target <= 0 or max(steps) < target:
    return None
  return max(steps), target


def write_model_info(workdir: str, model: ElectraConfig, tokenizer_dir: Optional[str],
                     special_ids: Mapping[str, int]) -> None:
  files.makedirs(workdir)
  info = {"model": model.to_dict(), "tokenizer_dir": tokenizer_dir and files.resolve(tokenizer_dir),
          "special_ids": dict(special_ids)}
  write_json(files.join(workdir, MODEL_JSON), info)


def write_run_config(workdir: str, config: Mapping[str, Any]) -> None:
  files.makedirs(workdir)
  write_json(files.join(workdir, CONFIG_JSON), config)


def read_model_info(workdir: str) -> tuple[ElectraConfig, Optional[str], dict[str, int]]:
  """(model config, tokenizer directory or None, special ids) of a run directory."""
  path = files.join(workdir, MODEL_JSON)
  if not files.exists(path):
    raise KorpatError(f"{path}: missing; is {workdir!r} a korpat-jax run directory?")
  try:
    info = files.read_json(path)
    return ElectraConfig.from_dict(info["model"]), info.get("tokenizer_dir"), dict(info["special_ids"])
  except (json.JSONDecodeError, KeyError, TypeError) as e:
    raise KorpatError(f"{path}: unreadable model info ({e})") from None
  except (OSError, UnicodeDecodeError) as e:
    raise KorpatError(f"{path}: cannot read it ({type(e).__name__}: {e})") from None


# The fields that fix parameter shapes; compute dtype, dropout, attention kernel or remat may change on a resume.
SHAPE_FIELDS = ("vocab_size", "embedding_size", "discriminator", "generator", "max_position_embeddings",
                "type_vocab_size")


def check_same_model(workdir: str, model: ElectraConfig) -> None:
  """A run directory's checkpoints only restore into the model that wrote them: say so in one line, not deep in
  Orbax."""
  if not files.exists(files.join(workdir, MODEL_JSON)):
    return
  saved = read_model_info(workdir)[0].to_dict()
  wanted = model.to_dict()
  diffs = [f"{field}: {saved[field]} saved, {wanted[field]} now" for field in SHAPE_FIELDS
           if saved[field] != wanted[field]]
  if diffs:
    raise ConfigError(f"{files.join(workdir, MODEL_JSON)}: this run directory holds another model ("
                      + "; ".join(diffs) + "); use a new --workdir or the run's own config")


write_json = files.write_json  # the run directory's JSON files are written atomically


def read_json_if_exists(path: str) -> Optional[dict]:
  """A JSON object file, or None when it is absent or unreadable (a half-written file of a killed run)."""
  try:
    value = files.read_json(path)
  except (OSError, json.JSONDecodeError, UnicodeDecodeError):
    return None
  return value if isinstance(value, dict) else None


def best_step(workdir: str) -> Optional[int]:
  """The step of the best evaluation a fine-tuning run kept (W/eval/metrics.json), when its checkpoint exists."""
  saved = read_json_if_exists(files.join(workdir, "eval", "metrics.json"))
  if not saved or "main" not in saved or "step" not in saved:
    return None
  step = int(saved["step"])
  return step if files.isdir(files.join(checkpoint_dir(workdir), str(step))) else None


IDENTITY = "identity"
SCHEDULE = "schedule"
_WHAT = {"vocab_sha256": "another tokenizer", "records": "other records", "train_data": "another training file"}


def check_identity(workdir: str, identity: Mapping[str, Any], allow_schedule_change: bool, resuming: bool) -> None:
  """A resumed run must read what its checkpoints were trained on (tokenizer, records or training file) and keep
  its schedule; else one line saying what differs and how to proceed."""
  path = files.join(workdir, MODEL_JSON)
  saved = (read_json_if_exists(path) or {}).get(IDENTITY) if resuming else None
  if saved:
    for key, what in _WHAT.items():
      if key in saved and key in identity and saved[key] != identity[key]:
        raise ConfigError(f"{path}: this run was trained on {_short(saved[key])}, this config reads {what} "
                          f"({_short(identity[key])}); use a new --workdir")
    old, new = saved.get(SCHEDULE) or {}, identity.get(SCHEDULE) or {}
    changed = [f"{k} {old[k]} -> {new[k]}" for k in sorted(old) if k in new and old[k] != new[k]]
    if changed and not allow_schedule_change:
      raise ConfigError(f"{path}: the schedule differs from the run's ({', '.join(changed)}); set "
                        "--config.train.allow_schedule_change=true to continue on the new schedule (the learning "
                        "rate jumps to its value there), or use a new --workdir")
    if changed:
      log.warning("schedule changed on resume (%s): train.allow_schedule_change is set", ", ".join(changed))


def record_identity(workdir: str, identity: Mapping[str, Any]) -> None:
  """Adds what the run trains on and its schedule to an existing model.json (for check_identity on resume)."""
  path = files.join(workdir, MODEL_JSON)
  info = read_json_if_exists(path) or {}
  info[IDENTITY] = dict(identity)
  write_json(path, info)


def _short(value: Any) -> str:
  text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
  return text[:12] + "..." if len(text) > 40 else text
