"""Stop requests: SIGTERM (what SLURM and spot VMs send) and SIGINT end a run at a step boundary, after a
checkpoint of that step, with exit code PREEMPTED (143, 128 + SIGTERM: SLURM's requeue convention).

One process: a Python handler records the first signal; the loop asks `should_stop(step)` after every step.
Several processes: every process must stop at the same step, so the decision is JAX's preemption sync point (the
coordination service spreads a SIGTERM received by any process to all of them; Orbax uses the same point). SIGINT
is turned into a SIGTERM to this process so that it takes the same path. Further signals while stopping are logged
and ignored, so a second Ctrl-C cannot interrupt the checkpoint being written.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Optional

import jax

from korpat_jax.errors import KorpatError

log = logging.getLogger("korpat_jax")

PREEMPTED = 143  # exit code of a run stopped by a signal after saving its checkpoint; rerun to resume


class Preempted(KorpatError):
  """The run stopped on a signal at `step`, with a checkpoint of that step."""

  exit_code = PREEMPTED

  def __init__(self, step: int, signal_name: str, directory: str):
    super().__init__(f"stopped on {signal_name} after step {step}; checkpoint {directory}/{step} saved: rerun the "
                     f"same command to resume (exit code {PREEMPTED})")
    self.step = step


class StopRequests:
  """Installs the handlers for a run (`with StopRequests() as stop:`); restores the previous ones on exit."""

  def __init__(self):
    self.multi_process = jax.process_count() > 1
    self.received: Optional[str] = None
    self._previous: dict[int, object] = {}

  def __enter__(self) -> "StopRequests":
    wanted = (signal.SIGINT,) if self.multi_process else (signal.SIGTERM, signal.SIGINT)
    for signum in wanted:
      try:
        self._previous[signum] = signal.signal(signum, self._handle)
      except ValueError:  # not the main thread (e.g. a trainer run from a worker thread): no handlers
        pass
    return self

  def __exit__(self, *exc) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def _handle(self, signum: int, frame) -> None:
    del frame
    name = signal.Signals(signum).name
    if self.received is not None:
      log.warning("%s received while stopping: ignored, the checkpoint is being written", name)
      return
    self.received = name
    log.warning("%s received: stopping after this step with a checkpoint", name)
    if self.multi_process:  # the coordination service's SIGTERM path tells every process
      os.kill(os.getpid(), signal.SIGTERM)

  def should_stop(self, step: int) -> bool:
    """Whether to stop after `step` (1-based count of steps done); the same answer on every process."""
    if self.multi_process:
      from jax.experimental import multihost_utils
      if multihost_utils.reached_preemption_sync_point(step):
        self.received = self.received or "SIGTERM"
        return True
      return False
    return self.received is not None
