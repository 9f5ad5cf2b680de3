"""Where training numbers go: one console line per log step, TensorBoard scalars and `metrics.jsonl` (one JSON
object per logged step, for scripts) in the workdir.

On a remote workdir (gs://...) both files grow in a local mirror (korpat_jax.files.Mirror: object stores cannot
append) that is uploaded every `sync_every_s` seconds and when the writer closes (tensorboardX's own gs:// writer
would need google-cloud-storage and re-uploads its whole buffer on every flush)."""

from __future__ import annotations

import json
import logging
import os
import importlib
from typing import Any, Mapping, Optional, Protocol, Sequence

import jax

from korpat_jax import files
from korpat_jax.errors import ConfigError, KorpatError

log = logging.getLogger("korpat_jax")


class ScalarSink(Protocol):
  """Where logged scalars go. TensorBoard and metrics.jsonl are the defaults; `train.loggers` adds your own
  (`module:factory`, called as `factory(workdir, config)`), e.g. a Weights & Biases sink:

      class WandbSink:
        def __init__(self, workdir, config): wandb.init(dir=workdir, config=config.to_dict())
        def write(self, step, scalars, prefix): wandb.log({f"{prefix}/{k}": v for k, v in scalars.items()}, step=step)
        def close(self): wandb.finish()
  """

  def write(self, step: int, scalars: Mapping[str, float], prefix: str) -> None: ...

  def close(self) -> None: ...


REMOTE_SYNC_S = 30.0  # how often the metrics of a remote workdir are uploaded


class TensorBoardSink:
  def __init__(self, workdir: str, resume_step: int, sync_every_s: float = REMOTE_SYNC_S):
    from tensorboardX import SummaryWriter
    self._mirror = files.Mirror(files.join(workdir, "tensorboard"), sync_every_s)
    os.makedirs(self._mirror.local, exist_ok=True)
    self.path = self._mirror.target
    # Each run's events go to a new file named by the second it started: a remote one also gets the step it
    # resumes from, or a rerun within the same second would replace the previous run's upload.
    self._writer = SummaryWriter(self._mirror.local, purge_step=resume_step + 1 if resume_step else None,
                                 filename_suffix=f".from{resume_step}" if self._mirror.remote else "")

  def write(self, step: int, scalars: Mapping[str, float], prefix: str) -> None:
    for name, value in scalars.items():
      self._writer.add_scalar(f"{prefix}/{name}", float(value), step)
    self._writer.flush()
    self._mirror.sync()

  def close(self) -> None:
    self._writer.close()
    self._mirror.close()


class JsonlSink:
  """metrics.jsonl: one JSON object per logged step and split, for scripts."""

  NAME = "metrics.jsonl"

  def __init__(self, workdir: str, resume_step: int, sync_every_s: float = REMOTE_SYNC_S):
    self._mirror = files.Mirror(workdir, sync_every_s)
    self.path = self._mirror.target_path(self.NAME)
    self._mirror.pull(self.NAME)
    _truncate_jsonl(self._mirror.path(self.NAME), resume_step, shown_as=self.path)
    self._mirror.sync(force=True)
    self._file = open(self._mirror.path(self.NAME), "a", encoding="utf-8")

  def write(self, step: int, scalars: Mapping[str, float], prefix: str) -> None:
    self._file.write(json.dumps({"split": prefix, "step": step, **{k: float(v) for k, v in scalars.items()}}) + "\n")
    self._file.flush()
    self._mirror.sync()

  def close(self) -> None:
    self._file.close()
    self._mirror.close()


def load_sinks(specs: str, workdir: str, config: Any) -> list[ScalarSink]:
  """`train.loggers`: comma-separated `module:factory` names of extra sinks."""
  sinks = []
  for spec in filter(None, (s.strip() for s in specs.split(","))):
    module, _, name = spec.partition(":")
    try:
      factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
      raise ConfigError(f"config.train.loggers={spec!r}: cannot load it ({type(e).__name__}: {e})") from None
    sinks.append(factory(workdir, config))
  return sinks


class MetricWriter:
  """Writes from process 0 only; other processes keep quiet."""

  def __init__(self, workdir: str, resume_step: int = 0, console_keys: Sequence[str] = ("loss", "learning_rate"),
               extra_sinks: Sequence[ScalarSink] = (), sync_every_s: float = REMOTE_SYNC_S):
    """A resumed run first drops what the interrupted one logged after its last checkpoint (`resume_step`), so
    every step appears once. `console_keys` are the train scalars shown on the console line; `sync_every_s` is
    how often the files of a remote workdir are uploaded."""
    self.console_keys = tuple(console_keys)
    self._sinks: list[ScalarSink] = []
    if jax.process_index() == 0:
      self._sinks = [TensorBoardSink(workdir, resume_step, sync_every_s),
                     JsonlSink(workdir, resume_step, sync_every_s), *extra_sinks]

  def write(self, step: int, scalars: Mapping[str, float], prefix: str = "train") -> None:
    """A write that fails (a full disk) stops the run with one line naming the file and the free space."""
    for sink in self._sinks:
      try:
        sink.write(step, scalars, prefix)
      except OSError as e:
        where = getattr(sink, "path", type(sink).__name__)
        raise KorpatError(f"{where}: writing metrics failed ({e.strerror or e}; {files.free_space(str(where))})") from None

  def console(self, step: int, scalars: Mapping[str, float], prefix: str = "train", *, total: int = 0,
              keys: Optional[Sequence[str]] = None) -> None:
    """One line: `train step 20/300 (eta 1m05s): loss=... tokens/s=...`."""
    if jax.process_index() != 0:
      return
    shown = [f"{k}={scalars[k]:.4g}" for k in (self.console_keys if keys is None else keys) if k in scalars]
    if "tokens_per_sec" in scalars:
      shown.append(f"tokens/s={scalars['tokens_per_sec']:,.0f}")
    if "step_time" in scalars:
      shown.append(f"step_time={scalars['step_time'] * 1e3:.1f}ms")
    if "mfu" in scalars:
      shown.append(f"mfu={scalars['mfu']:.1%}")
    where = f"{step}/{total}" if total else f"{step}"
    if total and "step_time" in scalars and step < total:
      where += f" (eta {format_duration((total - step) * scalars['step_time'])})"
    log.info("%s step %s: %s", prefix, where, " ".join(shown))

  def close(self) -> None:
    """Closes every sink once (a second close does nothing)."""
    sinks, self._sinks = self._sinks, []
    for sink in sinks:
      sink.close()


def format_duration(seconds: float) -> str:
  """'1m05s' or '2h03m': the ETA of log lines."""
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _truncate_jsonl(path: str, last_step: int, shown_as: Optional[str] = None) -> None:
  """Keeps the lines of steps <= last_step (all lines are dropped when last_step is 0: a fresh run). A line that
  is not JSON (the partial last line of a killed run) is dropped with a warning. `path` is local; messages name
  `shown_as` (the remote file it mirrors)."""
  if not os.path.exists(path):
    return
  shown_as = shown_as or path
  kept = []
  with open(path, encoding="utf-8", errors="replace") as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        step = json.loads(line).get("step", 0)
      except (json.JSONDecodeError, AttributeError):
        log.warning("%s:%d: not a JSON object (a partial line of an interrupted run?): dropped", shown_as, number)
        continue
      if last_step and step <= last_step:
        kept.append(line if line.endswith("\n") else line + "\n")
  try:
    with files.atomic_open(path) as f:
      f.writelines(kept)
  except OSError as e:
    raise KorpatError(f"{shown_as}: rewriting the metrics log failed ({e.strerror or e})") from None
