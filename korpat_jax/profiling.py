"""A `jax.profiler` trace over a window of steps, and optional XLA HLO dumps of the train step.

Traces land in WORKDIR/profile/ and open in TensorBoard's profile plugin (XProf) or Perfetto.
"""

from __future__ import annotations

import logging
import os

import jax

log = logging.getLogger("korpat_jax")


def hlo_dump_flags(dump_dir: str, module_regex: str = ".*train_step.*") -> str:
  """XLA_FLAGS that dump the train step's HLO (before and after optimisation) as text.

  XLA reads XLA_FLAGS when the backend starts, so the trainer sets them before touching any device.
  """
  return f"--xla_dump_to={dump_dir} --xla_dump_hlo_module_re={module_regex} --xla_dump_hlo_as_text"


def enable_hlo_dump(dump_dir: str) -> None:
  os.makedirs(dump_dir, exist_ok=True)
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + hlo_dump_flags(dump_dir)).strip()


class ProfileWindow:
  """Starts a trace before step `start` and stops it after `num_steps` steps (process 0 only by default)."""

  def __init__(self, logdir: str, start: int, num_steps: int, all_processes: bool = False):
    self.logdir, self.start, self.stop = logdir, start, start + num_steps
    self.enabled = start >= 0 and num_steps > 0 and (all_processes or jax.process_index() == 0)
    self.active = False

  def before_step(self, step: int) -> None:
    if self.enabled and not self.active and self.start <= step < self.stop:
      os.makedirs(self.logdir, exist_ok=True)
      jax.profiler.start_trace(self.logdir)
      self.active = True
      log.info("profiling steps %d..%d into %s", step, self.stop - 1, self.logdir)

  def after_step(self, step: int, result: object) -> None:
    """`step` is the step just run; blocks on `result` so the trace holds whole steps."""
    if self.active and step + 1 >= self.stop:
      jax.block_until_ready(result)
      jax.profiler.stop_trace()
      self.active = False
      log.info("profile written to %s (open with TensorBoard's profile plugin or Perfetto)", self.logdir)

  def close(self) -> None:
    if self.active:
      jax.profiler.stop_trace()
      self.active = False
