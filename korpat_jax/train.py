"""The training loop every task shares (pretraining, fine-tuning), top to bottom, and its compiled steps.

    korpat-jax pretrain --config configs/pretrain.py:tiny --workdir /tmp/tiny [--config.train.num_steps=50]
    korpat-jax finetune --config configs/finetune.py:ner --workdir W --config.init_from=RUN ...

workdir writable? -> mesh -> input (the task's) -> model and sharded state (init, init_from or restore) ->
compiled steps -> loop (log, eval, hooks, profile, checkpoint) -> final checkpoint -> test evaluation of the best
checkpoint -> the hooks' end. Rerunning the same command resumes from the latest checkpoint; a finished run says so
and stops, on a read-only workdir too (an unfinished one stops there in one line). Each async checkpoint save is
waited for at the next step (which computes meanwhile): a failed save stops the run there in one line. The workdir may
be a local path or a URL that etils.epath supports (gs://...; see korpat_jax.files): profiles and HLO dumps of a
remote workdir are written locally and uploaded when the run ends.

Around it: korpat_jax.evaluation (the eval driver, the best checkpoint's bookkeeping), korpat_jax.restore (resume,
init_from), korpat_jax.hooks (every-N-steps callbacks), korpat_jax.train_cli (the pretrain and finetune commands).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable, Optional, Sequence

import jax
import ml_collections

from korpat_jax import (distributed, files, host_memory, input_pipeline, profiling, run_lock, sharding,
                        workdir as workdir_lib)
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.evaluation import BestEval, Evaluator
from korpat_jax.hooks import Hooks, StepInfo
from korpat_jax.metrics import MetricWriter, load_sinks
from korpat_jax.mfu import mfu, peak_flops_per_device
from korpat_jax.nonfinite import NonFiniteGuard
from korpat_jax.preemption import Preempted, StopRequests
from korpat_jax.restore import computed_init, init_from, restore_newest
from korpat_jax.tasks import make_task
from korpat_jax.tasks.base import Task
from korpat_jax.train_state import TrainState

log = logging.getLogger("korpat_jax")


def train(config: ml_collections.ConfigDict, workdir: str, task: Optional[Task] = None,
          hooks: Optional[Hooks] = None) -> dict[str, float]:
  """Runs (or resumes) the config's task (or `task`), with `hooks` (korpat_jax.hooks) every N steps and at the
  end; returns the last logged train metrics."""
  workdir = files.resolve(workdir)
  if finished_read_only(config, workdir):
    return {}
  hlo_dir = files.Mirror(files.join(workdir, "hlo")) if config.profile.dump_hlo else None
  if hlo_dir is not None:
    profiling.enable_hlo_dump(hlo_dir.local)
  distributed.initialize(config.distributed)
  with run_lock.hold(workdir, _command(config), enabled=jax.process_index() == 0):  # one run per workdir
    return _train(config, workdir, task, hooks if hooks is not None else Hooks(), hlo_dir)


def finished_read_only(config: ml_collections.ConfigDict, workdir: str) -> bool:
  """Before anything else: a workdir that cannot be written stops the run in one line (ReadOnlyWorkdir), unless
  its run is finished: then this says so and returns True (nothing to do, nothing written). False when writable."""
  workdir = files.resolve(workdir)
  reason = workdir_lib.unwritable(workdir)
  if reason is None:
    return False
  finished = workdir_lib.finished_step(workdir, config.train.num_steps)
  if finished is None:
    elsewhere = ("copy it to a writable --workdir and rerun there to resume"
                 if Checkpointer.latest_in(workdir_lib.checkpoint_dir(workdir)) is not None
                 else "use a writable --workdir")
    raise workdir_lib.ReadOnlyWorkdir(f"{workdir}: the run directory cannot be written ({reason}); make it writable "
                                      f"(remount it read-write, fix its permissions), or {elsewhere}")
  log.info("already trained to step %d (%d steps): nothing to do (%s cannot be written: %s)", *finished, workdir,
           reason)
  return True


def _command(config: ml_collections.ConfigDict) -> str:
  return "pretrain" if "objective" in config else "finetune"


def _train(config: ml_collections.ConfigDict, workdir: str, task: Optional[Task], hooks: Hooks,
           hlo_dir: Optional[files.Mirror]) -> dict[str, float]:
  task = task or make_task(config, workdir)
  task.validate(jax.device_count())

  # Mesh.
  mesh = sharding.make_mesh(config.mesh)
  log.info("mesh %s over %d devices (%s), %d process(es); freed host memory %s", dict(mesh.shape),
           jax.device_count(), jax.devices()[0].device_kind, jax.process_count(), host_memory.state())

  # Input: the task reads its data and fixes the schedule.
  ckpt_dir = workdir_lib.checkpoint_dir(workdir)
  start_step = Checkpointer.latest_in(ckpt_dir) or 0
  data = task.make_input(start_step)
  num_steps = data.num_steps
  ckpt = Checkpointer(ckpt_dir, interval=data.checkpoint_every, keep=config.train.keep_checkpoints,
                      async_save=config.train.async_checkpoints, best_metric=task.main_metric,
                      error_log=workdir_lib.errors_log(workdir))

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
    state, start_step, data = restore_newest(task, ckpt, steps.abstract_target(), data, start_step)
  else:
    state = steps.init()
    if config.init_from:
      state = init_from(task, state, config.init_from, steps.state_sharding)
    state = computed_init(task, state, steps.state_sharding)  # e.g. word vectors from the corpus
  log.info("%s", task.describe(sum(x.size for x in jax.tree.leaves(steps.abstract_state.params))))
  flops = task.flops_per_step()
  device_kind = jax.devices()[0].device_kind
  if flops and peak_flops_per_device(device_kind) is None:
    log.info("MFU is not defined on %r: no peak FLOP/s known for it", device_kind)

  # Loop.
  writer = MetricWriter(workdir, resume_step=start_step, console_keys=task.console_keys,
                        extra_sinks=load_sinks(config.train.loggers, workdir, config) if jax.process_index() == 0
                        else ())
  evaluator = Evaluator(task, steps.eval_step, steps.batch_sharding, config.seed,
                        BestEval(workdir, task.main_metric, start_step), writer)
  ckpt.when_complete(evaluator.best.saved)  # a best evaluation's files once its checkpoint is complete

  def info(step: int, final: bool = False) -> StepInfo:  # what the hooks see of the run, as it is now
    return StepInfo(step, num_steps, state, last, final, config, workdir, task)

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
        if ckpt.saving:  # the previous save completes while this step computes; a failed one stops the run here
          ckpt.wait()
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
          kept = evaluator.evaluate(done, state.params)
          tick = time.perf_counter()  # evaluation time is not train step time
        stopping = stop.should_stop(done)
        force = done == num_steps or kept is not None or stopping
        if force or ckpt.should_save(done):
          guard.check(last_saved)  # a non-finite state is never saved
          if ckpt.save(done, state, data.checkpointable, force=force, metrics=kept):
            last_saved = done
        if done < num_steps and hooks.due(done):  # the last step's are the run's end (below)
          hooks.run(info(done))
          tick = time.perf_counter()  # hook time is not train step time either
        if stopping:
          profile.close()
          ckpt.close()
          writer.close()
          _close_all(uploads)
          raise Preempted(done, stop.received, ckpt.directory)
    profile.close()
    _close_all(uploads)
    ckpt.wait()

    # The test split, scored with the best checkpoint (the last one when the task keeps no best); the hooks' end.
    evaluator.test(num_steps, state.params, lambda step: ckpt.restore(step, steps.abstract_target()).params)
    hooks.run(info(max(start_step, num_steps), final=True))
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
