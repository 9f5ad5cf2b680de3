"""Callbacks the training loop runs every N steps, so that a feature (the demo's probe, a periodic export, your own
metric sink) plugs in without editing the loop; in the spirit of Levanter's `trainer.add_hook(fn, every=N)`.

    hooks = Hooks().add(lambda info: print(info.step, info.metrics.get("loss")), every=100)
    train(config, workdir, hooks=hooks)

A hook with `every=N` runs after steps N, 2N, ... (after that step's logging, evaluation and checkpoint save), and
every hook runs once more when the run ends: after its last step, its final checkpoint written and its test split
scored (`info.final`; also when a rerun finds the run finished). A preempted run does not end: its hooks do not
run then. Hooks run on every process, in the order added; one that writes files should do so on process 0 only.
Their time is not counted as step time.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

if TYPE_CHECKING:
  import ml_collections

  from korpat_jax.tasks.base import Task
  from korpat_jax.train_state import TrainState


@dataclasses.dataclass(frozen=True)
class StepInfo:
  """What a hook is called with."""

  step: int                       # steps done
  num_steps: int                  # the run's schedule
  state: TrainState               # on device; read it during the call only (the next step donates its buffers)
  metrics: Mapping[str, float]    # the last logged train metrics ({} before the first log)
  final: bool                     # the call when the run ends
  config: ml_collections.ConfigDict
  workdir: str
  task: Task


@dataclasses.dataclass(frozen=True)
class Hook:
  fn: Callable[[StepInfo], Any]
  every: int  # > 0: after every `every`-th step; 0: only when the run ends


class Hooks:
  """The loop's hook list."""

  def __init__(self, hooks: Iterable[Hook] = ()):
    self._hooks: list[Hook] = []
    for hook in hooks:
      self.add(hook.fn, every=hook.every)

  def add(self, fn: Callable[[StepInfo], Any], every: int = 1) -> "Hooks":
    """Runs `fn(info)` after every `every`-th step and when the run ends (every=0: only then); returns self."""
    if not isinstance(every, int) or every < 0:
      raise ValueError(f"Hooks.add(every={every!r}): expected an int >= 0 (0: only when the run ends)")
    self._hooks.append(Hook(fn, every))
    return self

  def due(self, step: int) -> list[Hook]:
    """The hooks that run after `step` (the run's end aside)."""
    return [h for h in self._hooks if h.every and step % h.every == 0]

  def run(self, info: StepInfo) -> bool:
    """Runs the hooks due at `info.step` (all of them when `info.final`); whether any ran."""
    hooks = list(self._hooks) if info.final else self.due(info.step)
    for hook in hooks:
      hook.fn(info)
    return bool(hooks)

  def __iter__(self) -> Iterator[Hook]:
    return iter(self._hooks)

  def __len__(self) -> int:
    return len(self._hooks)
