"""Configs as code: `path/to/config.py:variant` -> `get_config(variant)`, command-line overrides, validation.

    korpat-jax pretrain --config configs/pretrain.py:tiny --workdir W --config.train.batch_size=64

A wrong key or value stops with one line naming it (`korpat_jax.errors.ConfigError`).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import math
import os
import re
from typing import Any, Mapping, Sequence

import ml_collections

from korpat_jax.errors import ConfigError

PREFIX = "--config."


def load(spec: str) -> ml_collections.ConfigDict:
  """`FILE.py[:ARG]` -> the ConfigDict that FILE's `get_config(ARG)` returns."""
  path, _, arg = spec.partition(".py:")
  path = path if path.endswith(".py") else path + ".py"
  if not os.path.isfile(path):
    raise ConfigError(f"--config {spec}: no such config file {path!r}")
  module_spec = importlib.util.spec_from_file_location(f"korpat_config_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"--config {spec}: {path} has no get_config()")
  try:
    config = module.get_config(arg) if arg else module.get_config()
  except (ValueError, KeyError, TypeError) as e:
    raise ConfigError(f"--config {spec}: {e}") from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"--config {spec}: get_config() returned {type(config).__name__}, not a ConfigDict")
  return config


_COMMENTED = re.compile(r"(?:c\.)?(?:\w+\.)*(\w+)\s*=[^#\n]*#\s*(.+)$")


def key_help(spec: str) -> dict[str, str]:
  """Help text of config keys, from the trailing comments of the config file (`key=value,  # help`)."""
  path = spec.partition(".py:")[0]
  path = path if path.endswith(".py") else path + ".py"
  found: dict[str, str] = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      for match in _COMMENTED.finditer(line.strip()):
        found.setdefault(match.group(1), match.group(2).strip())
  return found


def describe(config: ml_collections.ConfigDict, spec: str) -> str:
  """Every key of the resolved config, `key = value`, with the variant's default where an override changed it,
  and the help from the config file's comments."""
  defaults = _flat(load(spec))
  helps = key_help(spec)
  lines = []
  for key, value in _flat(config).items():
    line = f"{key} = {value!r}"
    if key in defaults and defaults[key] != value:
      line += f"   (default {defaults[key]!r})"
    hint = helps.get(key.split(".")[-1])
    lines.append(f"{line:<60}  # {hint}" if hint else line)
  return "\n".join(lines)


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
  out: dict[str, Any] = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
  """Separates `--config.a.b=v` / `--config.a.b v` from the other arguments."""
  rest, overrides, i = [], [], 0
  argv = list(argv)
  while i < len(argv):
    arg = argv[i]
    if arg.startswith(PREFIX):
      key, eq, value = arg[len(PREFIX):].partition("=")
      if not eq:
        if i + 1 >= len(argv):
          raise ConfigError(f"{arg}: missing value")
        value, i = argv[i + 1], i + 1
      overrides.append((key, value))
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


def _parse_like(key: str, text: str, current: Any) -> Any:
  if isinstance(current, bool):
    if text.lower() in ("true", "1", "yes"):
      return True
    if text.lower() in ("false", "0", "no"):
      return False
    raise ConfigError(f"config.{key}={text!r}: expected true or false")
  if isinstance(current, str):
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    raise ConfigError(f"config.{key}={text!r}: expected type {type(current).__name__}") from None
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if current is not None and not isinstance(value, type(current)):
    raise ConfigError(f"config.{key}={text!r}: expected type {type(current).__name__}, "
                      f"got {type(value).__name__}")
  return value


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[tuple[str, str]]) -> None:
  for key, text in overrides:
    node, parts = config, key.split(".")
    for depth, part in enumerate(parts):
      keys = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      if part not in keys:
        where = ".".join(parts[:depth]) or "config"
        hint = difflib.get_close_matches(part, keys, n=1)
        raise ConfigError(f"config.{key}: unknown key {part!r} in {where}"
                          + (f" (did you mean {'.'.join(parts[:depth] + hint)!s}?)" if hint else ""))
      if depth < len(parts) - 1:
        node = node[part]
    node[parts[-1]] = _parse_like(key, text, node[parts[-1]])


def with_values(config: ml_collections.ConfigDict, values: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """Sets dotted keys to Python values (`{"train.num_steps": 4}`), in place; returns the config. For code that
  builds configs (tests, benchmarks); the command line's string overrides go through `apply_overrides`."""
  for key, value in values.items():
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
      node = node[part]
    node[leaf] = value
  return config


def mesh_block() -> dict[str, int]:
  """(data, fsdp) axes, -1 = all remaining devices; dcn_data: nodes or slices along `data` (hybrid mesh)."""
  return dict(data=-1, fsdp=1, dcn_data=1)


def distributed_block() -> dict[str, Any]:
  """jax.distributed: auto (SLURM, TPU pod, MPI or K8s job detected) | explicit (coordinator below) | off."""
  return dict(mode="auto", coordinator_address="", num_processes=0, process_id=-1, local_device_ids="",
              heartbeat_timeout_s=60)  # a lost process makes the others exit after this many seconds


def profile_block() -> dict[str, Any]:
  """A jax.profiler trace of `num_steps` steps from `start_step` (-1: none); dump_hlo: the train step's HLO."""
  return dict(start_step=-1, num_steps=0, dump_hlo=False)


def train_extras() -> dict[str, Any]:
  """Keys every task's `train` block has: on faults (korpat_jax.nonfinite, the run-directory identity check) and
  extra metric sinks."""
  return dict(
      loggers="",                    # extra metric sinks, "module:factory,..." (korpat_jax.metrics.ScalarSink)
      on_nonfinite="stop",           # stop | skip: a non-finite loss or gradient norm stops the run, or skips it
      max_nonfinite_in_a_row=10,     # skip: stop after this many skipped steps in a row
      allow_schedule_change=False,   # resume although num_steps / warmup / learning rate differ from the run's
  )


def validate_loop(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """The settings the training loop reads, `train.*` and `profile.*`, checked once for every task; `num_devices`
  is the global device count.

  A `train` block with `num_epochs` is scheduled by epochs (fine-tuning): num_steps -1 takes the steps from the
  epochs and checkpoint_every 0 checkpoints at every evaluation. Without it, num_steps and checkpoint_every are
  counts of steps (pretraining). A block with `eval_batch_size` evaluates in batches of that many rows.
  """
  t = config.train
  require_finite(config, ("train",))
  for key in ("batch_size", "seq_len", "grad_accum_steps", "log_every", "keep_checkpoints"):
    require(t[key] > 0, f"config.train.{key}={t[key]}: must be > 0")
  require(t.seq_len >= 8, f"config.train.seq_len={t.seq_len}: must be >= 8")
  if "num_epochs" in t:
    require(t.num_epochs > 0 or t.num_steps > 0, "config.train.num_epochs or train.num_steps: one must be > 0")
    require(t.checkpoint_every >= 0, f"config.train.checkpoint_every={t.checkpoint_every}: must be >= 0 (0: at "
            "every evaluation)")
    require(t.get("min_steps", 0) >= 0, f"config.train.min_steps={t.get('min_steps')}: must be >= 0 (0: no minimum)")
  else:
    for key in ("num_steps", "checkpoint_every"):
      require(t[key] > 0, f"config.train.{key}={t[key]}: must be > 0")
  require(t.eval_every >= 0, f"config.train.eval_every={t.eval_every}: must be >= 0")
  validate_fault_handling(t)
  require(t.batch_size % (num_devices * t.grad_accum_steps) == 0,
          f"config.train.batch_size={t.batch_size}: must divide by devices ({num_devices}) x "
          f"train.grad_accum_steps ({t.grad_accum_steps})")
  if "eval_batch_size" in t:
    require(t.eval_batch_size > 0, f"config.train.eval_batch_size={t.eval_batch_size}: must be > 0")
    require(t.eval_batch_size % num_devices == 0,
            f"config.train.eval_batch_size={t.eval_batch_size}: must divide by devices ({num_devices})")
  require(config.profile.num_steps >= 0, f"config.profile.num_steps={config.profile.num_steps}: must be >= 0")


def validate_fault_handling(train: Any) -> None:
  require(train.on_nonfinite in ("stop", "skip"),
          f"config.train.on_nonfinite={train.on_nonfinite!r}: expected stop or skip")
  require(train.max_nonfinite_in_a_row > 0,
          f"config.train.max_nonfinite_in_a_row={train.max_nonfinite_in_a_row}: must be > 0")


def require_finite(config: ml_collections.ConfigDict, blocks: Sequence[str]) -> None:
  """Every float of these blocks is a finite number (no inf, no nan from `1e999` or `nan` on the command line)."""
  for block in blocks:
    for key, value in config[block].items():
      if isinstance(value, float):
        require(math.isfinite(value), f"config.{block}.{key}={value}: must be a finite number")


def require(ok: bool, message: str) -> None:
  """Raises ConfigError(message) unless `ok`: for the tasks' own validation."""
  if not ok:
    raise ConfigError(message)
