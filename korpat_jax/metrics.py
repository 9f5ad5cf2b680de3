"""Where training numbers go: one console line per log step, TensorBoard scalars and `metrics.jsonl` (one JSON
object per logged step, for scripts) in the workdir."""

from __future__ import annotations

import json
import logging
import os
from typing import Mapping

import jax

log = logging.getLogger("korpat_jax")

_CONSOLE = ("loss", "gen_loss", "disc_loss", "gen_accuracy", "disc_accuracy", "learning_rate")


class MetricWriter:
  """Writes from process 0 only; other processes keep quiet."""

  def __init__(self, workdir: str, resume_step: int = 0):
    """A resumed run first drops what the interrupted one logged after its last checkpoint (`resume_step`), so
    every step appears once."""
    self._writer = self._jsonl = None
    if jax.process_index() == 0:
      from tensorboardX import SummaryWriter
      logdir = os.path.join(workdir, "tensorboard")
      os.makedirs(logdir, exist_ok=True)
      self._writer = SummaryWriter(logdir, purge_step=resume_step + 1 if resume_step else None)
      path = os.path.join(workdir, "metrics.jsonl")
      _truncate_jsonl(path, resume_step)
      self._jsonl = open(path, "a", encoding="utf-8")

  def write(self, step: int, scalars: Mapping[str, float], prefix: str = "train") -> None:
    if self._writer is None:
      return
    for name, value in scalars.items():
      self._writer.add_scalar(f"{prefix}/{name}", float(value), step)
    self._writer.flush()
    self._jsonl.write(json.dumps({"split": prefix, "step": step, **{k: float(v) for k, v in scalars.items()}}) + "\n")
    self._jsonl.flush()

  def console(self, step: int, scalars: Mapping[str, float], prefix: str = "train") -> None:
    if jax.process_index() != 0:
      return
    shown = [f"{k}={scalars[k]:.4g}" for k in _CONSOLE if k in scalars]
    if "tokens_per_sec" in scalars:
      shown.append(f"tokens/s={scalars['tokens_per_sec']:,.0f}")
    if "step_time" in scalars:
      shown.append(f"step_time={scalars['step_time'] * 1e3:.1f}ms")
    if "mfu" in scalars:
      shown.append(f"mfu={scalars['mfu']:.1%}")
    log.info("%s step %d: %s", prefix, step, " ".join(shown))

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._jsonl.close()


def _truncate_jsonl(path: str, last_step: int) -> None:
  """Keeps the lines of steps <= last_step (all lines are dropped when last_step is 0: a fresh run)."""
  if not os.path.exists(path):
    return
  with open(path, encoding="utf-8") as f:
    kept = [line for line in f if line.strip() and last_step and json.loads(line).get("step", 0) <= last_step]
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    f.writelines(kept)
  os.replace(path + ".tmp", path)
