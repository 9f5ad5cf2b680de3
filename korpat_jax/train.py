"""The training loop every task shares (pretraining, fine-tuning), top to bottom.

    korpat-jax pretrain --config configs/pretrain.py:tiny --workdir /tmp/tiny [--config.train.num_steps=50]
    korpat-jax finetune --config configs/finetune.py:ner --workdir W --config.init_from=RUN ...

mesh -> input (the task's) -> model and sharded state (init, init_from or restore) -> compiled steps -> loop (log,
eval, profile, checkpoint) -> final checkpoint -> test evaluation of the best checkpoint. Rerunning the same command
resumes from the latest checkpoint; a finished run says so and stops. The workdir may be a local path or a URL
that etils.epath supports (gs://...; see korpat_jax.files): profiles and HLO dumps of a remote workdir are written
locally and uploaded when the run ends.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from korpat_jax import config as config_lib
from korpat_jax import distributed, files, input_pipeline, profiling, sharding, workdir as workdir_lib
from korpat_jax.checkpoint import BROKEN, Checkpointer, error_line
from korpat_jax.errors import ConfigError, KorpatError
from korpat_jax.metrics import MetricWriter, load_sinks
from korpat_jax.mfu import mfu, peak_flops_per_device
from korpat_jax.nonfinite import NonFiniteGuard
from korpat_jax.preemption import Preempted, StopRequests
from korpat_jax.tasks import make_task
from korpat_jax.tasks.base import EvalResult, Task, TaskInput
from korpat_jax.train_state import TrainState

log = logging.getLogger("korpat_jax")


def train(config: ml_collections.ConfigDict, workdir: str, task: Optional[Task] = None) -> dict[str, float]:
  """Runs (or resumes) the config's task; returns the last logged train metrics."""
  workdir = files.resolve(workdir)
  hlo_dir = files.Mirror(files.join(workdir, "hlo")) if config.profile.dump_hlo else None
  if hlo_dir is not None:
    profiling.enable_hlo_dump(hlo_dir.local)
  distributed.initialize(config.distributed)
  task = task or make_task(config, workdir)
  task.validate(jax.device_count())

  # Mesh.
  mesh = sharding.make_mesh(config.mesh)
  log.info("mesh %s over %d devices (%s), %d process(es)", dict(mesh.shape), jax.device_count(),
           jax.devices()[0].device_kind, jax.process_count())

  # Input: the task reads its data and fixes the schedule.
  ckpt_dir = workdir_lib.checkpoint_dir(workdir)
  start_step = Checkpointer.latest_in(ckpt_dir) or 0
  data = task.make_input(start_step)
  num_steps = data.num_steps
  ckpt = Checkpointer(ckpt_dir, interval=data.checkpoint_every, keep=config.train.keep_checkpoints,
                      async_save=config.train.async_checkpoints, best_metric=task.main_metric)

  # Model, sharded state and compiled steps: restore the latest checkpoint that restores (broken ones are moved
  # aside), or initialise (optionally from another run's params).
  if jax.process_index() == 0:
    identity = task.identity()
    workdir_lib.check_identity(workdir, identity, config.train.allow_schedule_change, resuming=bool(start_step))
    task.prepare_run_dir(resuming=bool(start_step))
    workdir_lib.record_identity(workdir, identity)
    workdir_lib.write_run_config(workdir, config.to_dict())
  steps = compile_steps(task, mesh)
  if start_step:
    state, start_step, data = _restore(task, ckpt, steps, data, start_step)
  else:
    state = steps.init()
    if config.init_from:
      state = _start_from(task, state, config.init_from, steps.state_sharding)
  log.info("%s", task.describe(sum(x.size for x in jax.tree.leaves(steps.abstract_state.params))))
  evaluate = lambda params, split: evaluate_split(task, steps.eval_step, params, split, steps.batch_sharding,
                                                  config.seed)
  flops = task.flops_per_step()
  device_kind = jax.devices()[0].device_kind
  if flops and peak_flops_per_device(device_kind) is None:
    log.info("MFU is not defined on %r: no peak FLOP/s known for it", device_kind)

  # Loop.
  writer = MetricWriter(workdir, resume_step=start_step, console_keys=task.console_keys,
                        extra_sinks=load_sinks(config.train.loggers, workdir, config) if jax.process_index() == 0
                        else ())
  best = _BestEval(workdir, task.main_metric, start_step)
  guard = NonFiniteGuard(config.train.on_nonfinite, config.train.max_nonfinite_in_a_row)
  profile_dir = files.Mirror(files.join(workdir, "profile"))
  profile = profiling.ProfileWindow(profile_dir.local, config.profile.start_step, config.profile.num_steps)
  uploads = [m for m in (profile_dir, hlo_dir) if m is not None and jax.process_index() == 0]
  if start_step >= num_steps:
    log.info("already trained to step %d (%d steps): nothing to do", start_step, num_steps)
  last: dict[str, float] = {}
  last_saved = start_step or None
  tick, tick_step = time.perf_counter(), start_step
  try:
    with StopRequests() as stop:
      for step in range(start_step, num_steps):
        profile.before_step(step)
        with jax.profiler.StepTraceAnnotation("train", step_num=step):
          batch = input_pipeline.to_global(next(data.train), steps.batch_sharding)
          state, metrics = steps.train_step(state, batch)
        profile.after_step(step, state)
        done = step + 1
        guard.observe(done, metrics)
        if step == start_step:  # keep compilation out of the step time
          jax.block_until_ready(state)
          log.info("first step (compilation included) took %.1fs", time.perf_counter() - tick)
          tick, tick_step = time.perf_counter(), done
        if done % config.train.log_every == 0 or done == num_steps:
          last = {k: float(v) for k, v in jax.device_get(metrics).items()}  # the only host sync in the loop
          now = time.perf_counter()
          if done > tick_step:  # not when the only step since the last log was the (compiling) first one
            step_time = (now - tick) / (done - tick_step)
            last.update(step_time=step_time, tokens_per_sec=config.train.batch_size * config.train.seq_len / step_time)
            utilisation = flops and mfu(flops, step_time, jax.device_count(), device_kind)
            if utilisation:
              last["mfu"] = utilisation
          tick, tick_step = now, done
          last["nonfinite_steps"] = guard.check(last_saved)
          writer.write(done, last)
          writer.console(done, last, total=num_steps)
        kept = None
        if data.eval_every and (done % data.eval_every == 0 or done == num_steps):
          result = evaluate(state.params, "eval")
          if result is not None:
            writer.write(done, result.scalars(), prefix="eval")
            writer.console(done, result.scalars(), prefix="eval", keys=_eval_console_keys(task, result))
            kept = best.offer(done, result)
          tick = time.perf_counter()  # evaluation time is not train step time
        stopping = stop.should_stop(done)
        force = done == num_steps or kept is not None or stopping
        if force or ckpt.should_save(done):
          guard.check(last_saved)  # a non-finite state is never saved
          if ckpt.save(done, state, data.checkpointable, force=force, metrics=kept):
            last_saved = done
        if stopping:
          profile.close()
          ckpt.close()
          writer.close()
          _close_all(uploads)
          raise Preempted(done, stop.received, ckpt.directory)
    profile.close()
    _close_all(uploads)
    ckpt.wait()

    # The test split, scored with the best checkpoint (the last one when the task keeps no best).
    if num_steps and task.eval_batches("test") is not None and not best.has_scores("test"):
      params = state.params
      if best.step and best.step != num_steps:
        params = ckpt.restore(best.step, steps.abstract_target()).params
      result = evaluate(params, "test")
      if result is not None:
        best.write("test", best.step or num_steps, result)
        writer.console(best.step or num_steps, result.scalars(), prefix="test",
                       keys=_eval_console_keys(task, result))
    ckpt.close()
    writer.close()
    log.info("done: checkpoints in %s, TensorBoard logs in %s", ckpt.directory, files.join(workdir, "tensorboard"))
    return last
  except BaseException:
    _close_quietly([writer, *uploads, ckpt])  # a failed run still uploads what it logged (remote workdirs)
    raise


def _close_all(mirrors: Sequence[files.Mirror]) -> None:
  """Uploads what was written locally for a remote workdir (profiles, HLO dumps)."""
  for mirror in mirrors:
    mirror.close()


def _close_quietly(closables: Sequence[Any]) -> None:
  """Closes what a failing run leaves open; the run's own error is the one to report."""
  for closable in closables:
    try:
      closable.close()
    except Exception:  # noqa: BLE001
      log.debug("closing %s after the error failed too", type(closable).__name__, exc_info=True)


@dataclasses.dataclass
class CompiledSteps:
  """A task's state layout on the mesh and its jitted steps (the state donated to the train step)."""

  abstract_state: TrainState
  state_sharding: Any
  batch_sharding: Any
  init: Callable[[], TrainState]
  train_step: Callable[[TrainState, Any], tuple[TrainState, dict]]
  eval_step: Callable[[Any, Any, jax.Array], Any]

  def abstract_target(self) -> Any:
    """ShapeDtypeStructs with the target shardings: what Orbax restores onto this mesh."""
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), self.abstract_state,
                        self.state_sharding)


def compile_steps(task: Task, mesh: jax.sharding.Mesh) -> CompiledSteps:
  """Shardings of the task's state (fsdp where the mesh has it) and its jitted init, train and eval steps."""
  batch_sharding, replicated = sharding.batch_sharding(mesh), sharding.replicated(mesh)
  abstract_state = jax.eval_shape(task.create_state)
  state_sharding = sharding.state_shardings(abstract_state, mesh)
  return CompiledSteps(
      abstract_state, state_sharding, batch_sharding,
      init=jax.jit(task.create_state, out_shardings=state_sharding),
      train_step=jax.jit(task.train_step, in_shardings=(state_sharding, batch_sharding),
                         out_shardings=(state_sharding, replicated), donate_argnums=0),
      eval_step=jax.jit(task.eval_step, in_shardings=(state_sharding.params, batch_sharding, replicated),
                        out_shardings=replicated))


def _eval_console_keys(task: Task, result: EvalResult) -> tuple[str, ...]:
  keys = [k for k in result.scalars() if k not in ("loss",)]
  if task.main_metric in keys:
    keys.remove(task.main_metric)
    keys.insert(0, task.main_metric)
  return tuple(keys)


def evaluate_split(task: Task, eval_fn, params, split: str, batch_sharding, seed: int) -> Optional[EvalResult]:
  """Feeds the task's global eval batches through the compiled eval step (each process its rows) and hands the
  gathered outputs back to the task for scoring."""
  batches = task.eval_batches(split)
  if batches is None:
    return None
  rng = jax.random.PRNGKey(seed + 1)

  def outputs():
    for i, batch in enumerate(batches):
      rows = len(next(iter(batch.values()))) // jax.process_count()
      lo = jax.process_index() * rows
      local = {k: np.asarray(v)[lo:lo + rows] for k, v in batch.items()}
      out = eval_fn(params, input_pipeline.to_global(local, batch_sharding), jax.random.fold_in(rng, i))
      yield batch, jax.device_get(out)

  return task.evaluate(split, outputs())


class _BestEval:
  """The best evaluation so far by the task's main metric: W/eval/metrics.json and its prediction files.

  Without a main metric every evaluation is kept as the latest. On resume, a best recorded after the checkpoint
  being resumed from is forgotten (its checkpoint may not exist)."""

  def __init__(self, workdir: str, main_metric: Optional[str], start_step: int):
    self.workdir, self.main = workdir, main_metric
    self.step, self.value = 0, -np.inf
    saved = workdir_lib.read_json_if_exists(files.join(workdir, "eval", "metrics.json"))
    if main_metric and saved and 0 < int(saved.get("step", 0)) <= start_step and main_metric in saved:
      self.step, self.value = int(saved["step"]), float(saved[main_metric])

  def offer(self, step: int, result: EvalResult) -> Optional[dict[str, float]]:
    """Records `result` when it is the best so far; returns the metrics to save with its checkpoint then (None
    otherwise). Only new bests carry metrics, so they rise strictly and Orbax's BestN(1) keeps exactly this one."""
    if self.main is None:
      self.write("eval", step, result)
      return None
    if self.main not in result.scores:
      raise ConfigError(f"the task's main metric {self.main!r} is not among its eval scores {sorted(result.scores)}")
    value = float(result.scores[self.main])
    if self.step and not value > self.value:
      return None
    self.step, self.value = step, value
    self.write("eval", step, result)
    log.info("eval step %d: best %s so far (%.4f)", step, self.main, value)
    return {self.main: value}

  def write(self, split: str, step: int, result: EvalResult) -> None:
    if jax.process_index() != 0:
      return
    directory = files.join(self.workdir, split)
    files.makedirs(directory)
    if result.write is not None:
      result.write(directory)
    main = {"main": self.main} if self.main else {}
    workdir_lib.write_json(files.join(directory, "metrics.json"), {"step": step, **main, **result.scores})

  def has_scores(self, split: str) -> bool:
    saved = workdir_lib.read_json_if_exists(files.join(self.workdir, split, "metrics.json"))
    return bool(saved) and (not self.step or int(saved.get("step", -1)) == self.step)


def _restore(task: Task, ckpt: Checkpointer, steps: CompiledSteps, data: TaskInput, start_step: int
             ) -> tuple[TrainState, int, TaskInput]:
  """The newest checkpoint that restores: one that cannot (missing items, changed bytes, unreadable, non-finite
  values) is reported in one line and moved to checkpoints/_broken/, and the one before it is tried."""
  broken = []
  for step in sorted((s for s in ckpt.all_steps() if s <= start_step), reverse=True):
    reason = ckpt.verify(step, needs_data=data.checkpointable is not None)
    if reason is None:
      if step != start_step:  # the input was made for the newest step: position it at this one
        data = task.make_input(step)
      try:
        state = ckpt.restore(step, steps.abstract_target(), data.checkpointable)
      except Exception as e:  # noqa: BLE001 - Orbax and tensorstore raise many types for damaged files
        reason = f"unreadable: {error_line(e)}"
      else:
        finite = jax.tree.reduce(lambda a, b: a & b, jax.tree.map(lambda x: jnp.isfinite(x).all(), state.params))
        if bool(finite):
          log.info("resumed from %s at step %d", ckpt.directory, step)
          return state, step, data
        reason = "its parameters hold non-finite values"
    broken.append(f"{step} ({reason})")
    ckpt.move_aside(step, reason)
  raise KorpatError(f"{ckpt.directory}: no checkpoint restores (moved to {BROKEN}/: {'; '.join(broken)}); "
                    "use a new --workdir to start over")


def _start_from(task: Task, state: TrainState, source: str, state_sharding: Any) -> TrainState:
  """Replaces the initial params by those of another run (or an import-hf directory) that the task takes; absent
  subtrees stay freshly initialised (e.g. a task head, or the generator when starting from an HF discriminator)."""
  source = files.resolve(source)
  step, loaded = Checkpointer(workdir_lib.checkpoint_dir(source), interval=1, keep=1,
                              read_only=True).restore_params_on_host()
  fresh = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(state.params)}
  given = task.init_params({jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(loaded)},
                           fresh, source)
  for key, value in given.items():
    if key not in fresh:
      raise ConfigError(f"config.init_from={source}: parameter {key} does not exist in this model")
    if tuple(value.shape) != tuple(fresh[key].shape):
      raise ConfigError(f"config.init_from={source}: parameter {key} has shape {tuple(value.shape)}, "
                        f"this model wants {tuple(fresh[key].shape)}")
  params = jax.tree_util.tree_map_with_path(
      lambda p, x, s: jax.device_put(np.asarray(given.get(jax.tree_util.keystr(p), x)), s),
      state.params, state_sharding.params)
  log.info("initialised %d of %d parameter arrays from %s (step %d)", len(given), len(fresh), source, step)
  return state.replace(params=params)


def _not_reraised(record: logging.LogRecord) -> bool:
  """Orbax logs the error of a failed async save (with its traceback) before raising it to the loop, which turns it
  into one line: drop the log record."""
  return "raised an exception" not in record.getMessage()


def setup_logging() -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S",
                      force=True)
  for noisy in ("absl", "orbax", "jax._src"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  logging.getLogger("absl").addFilter(_not_reraised)


def run_command(argv: Optional[Sequence[str]], prog: str, description: str, variants: str,
                prepare: Optional[Callable[[ml_collections.ConfigDict, str], None]] = None,
                finish: Optional[Callable[[ml_collections.ConfigDict, str], None]] = None) -> int:
  """`PROG --config FILE.py:VARIANT --workdir W [--config.k=v ...]`: the pretrain and finetune commands.
  `prepare(config, workdir)` runs before the trainer (the demo's data), `finish` after it (the demo's probe)."""
  rest, overrides = config_lib.split_overrides(list(argv or []))
  parser = argparse.ArgumentParser(
      prog=prog, description=description,
      epilog="Any config key can be overridden: --config.train.batch_size=64 --config.model.dtype=bfloat16. "
             f"{variants} Rerunning the same command resumes from the latest checkpoint in --workdir.")
  parser.add_argument("--config", required=True, help="FILE.py:VARIANT, e.g. configs/pretrain.py:tiny")
  parser.add_argument("--workdir", help="run directory: checkpoints, TensorBoard logs, profiles (required to run)")
  parser.add_argument("--print-config", action="store_true",
                      help="print every key of the resolved config (with its default and help) and exit")
  args = parser.parse_args(rest)
  config = config_lib.load(args.config)
  config_lib.apply_overrides(config, overrides)
  if args.print_config:
    print(config_lib.describe(config, args.config))
    return 0
  if not args.workdir:
    parser.error("the following arguments are required: --workdir")
  if config.data.get("build_demo") and files.is_remote(args.workdir):
    raise ConfigError(f"--workdir {args.workdir}: the demo builds its records under the workdir and ArrayRecord "
                      "reads local files only; use a local --workdir")
  setup_logging()
  if prepare is not None:
    prepare(config, args.workdir)
  train(config, args.workdir)
  if finish is not None and jax.process_index() == 0:
    finish(config, args.workdir)
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  from korpat_jax.corpus.demo import build_demo_if_absent
  from korpat_jax.probe import print_probe
  return run_command(argv, "korpat-jax pretrain", "Pretrain (or resume pretraining) ELECTRA from a config.",
                     "Variants of configs/pretrain.py: demo, cpu, tiny, small, base, large, korpatelectra.",
                     prepare=build_demo_if_absent, finish=print_probe)
