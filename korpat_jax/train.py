"""`korpat-jax pretrain`: ELECTRA pretraining that reads top to bottom.

    korpat-jax pretrain --config configs/pretrain.py:tiny --workdir /tmp/tiny [--config.train.num_steps=50]

mesh -> input -> model and optimizer -> sharded state (init or restore) -> compiled step -> loop (log, eval,
profile, checkpoint) -> final checkpoint. Rerunning the same command resumes from the latest checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from korpat_jax import config as config_lib
from korpat_jax import distributed, input_pipeline, objective, profiling, sharding, workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.data_source import TrainInput, make_input
from korpat_jax.errors import ConfigError
from korpat_jax.metrics import MetricWriter
from korpat_jax.mfu import mfu, peak_flops_per_device, training_flops_per_step
from korpat_jax.model import ElectraConfig, ElectraPretrainer
from korpat_jax.optimizer import make_optimizer
from korpat_jax.train_step import TrainState, create_train_state, make_eval_step, make_train_step

log = logging.getLogger("korpat_jax")


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Runs (or resumes) pretraining; returns the last logged metrics."""
  workdir = os.path.abspath(workdir)
  if config.profile.dump_hlo:
    profiling.enable_hlo_dump(os.path.join(workdir, "hlo"))
  distributed.initialize(config.distributed)
  config_lib.validate(config, jax.device_count())

  # Mesh.
  mesh = sharding.make_mesh(config.mesh)
  batch_sharding, replicated = sharding.batch_sharding(mesh), sharding.replicated(mesh)
  log.info("mesh %s over %d devices (%s), %d process(es)", dict(mesh.shape), jax.device_count(),
           jax.devices()[0].device_kind, jax.process_count())

  # Input.
  ckpt = Checkpointer(workdir_lib.checkpoint_dir(workdir), interval=config.train.checkpoint_every,
                      keep=config.train.keep_checkpoints, async_save=config.train.async_checkpoints)
  start_step = ckpt.latest_step() or 0
  data: TrainInput = make_input(config, workdir, start_step)
  if config.model.vocab_size == -1:
    config.model.vocab_size = data.vocab_size
  elif config.model.vocab_size < data.vocab_size:
    raise ConfigError(f"config.model.vocab_size={config.model.vocab_size}: smaller than the data's vocab "
                      f"({data.vocab_size})")
  seq_len, num_steps = config.train.seq_len, config.train.num_steps
  obj = dict(config.objective)
  if obj["max_predictions"] < 0:
    obj["max_predictions"] = objective.max_predictions_per_seq(seq_len, obj["mask_prob"])

  # Model and optimizer.
  model_cfg = ElectraConfig.from_config(config.model)
  model = ElectraPretrainer(model_cfg)
  tx, schedule = make_optimizer(config.optimizer, num_steps)
  if start_step:
    workdir_lib.check_same_model(workdir, model_cfg)
  if jax.process_index() == 0:
    workdir_lib.write_run_config(workdir, config.to_dict())
    workdir_lib.write_model_info(workdir, model_cfg, data.tokenizer_dir, data.special_ids)

  # Sharded state: restore the latest checkpoint, or initialise (optionally from another run's params).
  create = lambda: create_train_state(model, tx, config.seed, seq_len)
  abstract_state = jax.eval_shape(create)
  state_sharding = sharding.state_shardings(abstract_state, mesh)
  if start_step:
    target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract_state, state_sharding)
    state = ckpt.restore(start_step, target, data.checkpointable)
    log.info("resumed from %s at step %d", ckpt.directory, start_step)
  else:
    state = jax.jit(create, out_shardings=state_sharding)()
    if config.init_from:
      state = _start_from(state, config.init_from, state_sharding)
  num_params = sum(x.size for x in jax.tree.leaves(abstract_state.params))
  log.info("ELECTRA %s: %.2fM parameters (generator + discriminator, shared embeddings)",
           _size_name(model_cfg), num_params / 1e6)

  # Compiled steps.
  step_fn = jax.jit(make_train_step(model, tx, schedule, data.special, obj, config.train.grad_accum_steps),
                    in_shardings=(state_sharding, batch_sharding), out_shardings=(state_sharding, replicated),
                    donate_argnums=0)
  eval_fn = jax.jit(make_eval_step(model, data.special, obj),
                    in_shardings=(state_sharding.params, batch_sharding, replicated), out_shardings=replicated)
  flops = training_flops_per_step(model_cfg, config.train.batch_size, seq_len, obj["max_predictions"])
  device_kind = jax.devices()[0].device_kind
  if peak_flops_per_device(device_kind) is None:
    log.info("MFU is not defined on %r: no peak FLOP/s known for it", device_kind)

  # Loop.
  writer = MetricWriter(workdir, resume_step=start_step)
  profile = profiling.ProfileWindow(os.path.join(workdir, "profile"), config.profile.start_step,
                                    config.profile.num_steps)
  if start_step >= num_steps:
    log.info("already trained to step %d (train.num_steps=%d): nothing to do", start_step, num_steps)
  last: dict[str, float] = {}
  tick, tick_step = time.perf_counter(), start_step
  for step in range(start_step, num_steps):
    profile.before_step(step)
    with jax.profiler.StepTraceAnnotation("train", step_num=step):
      batch = input_pipeline.to_global(next(data.train), batch_sharding)
      state, metrics = step_fn(state, batch)
    profile.after_step(step, state)
    done = step + 1
    if step == start_step:  # keep compilation out of the step time
      jax.block_until_ready(state)
      log.info("first step (compilation included) took %.1fs", time.perf_counter() - tick)
      tick, tick_step = time.perf_counter(), done
    if done % config.train.log_every == 0 or done == num_steps:
      last = {k: float(v) for k, v in jax.device_get(metrics).items()}  # the only host sync in the loop
      now = time.perf_counter()
      if done > tick_step:  # not when the only step since the last log was the (compiling) first one
        step_time = (now - tick) / (done - tick_step)
        last.update(step_time=step_time, tokens_per_sec=config.train.batch_size * seq_len / step_time)
        utilisation = mfu(flops, step_time, jax.device_count(), device_kind)
        if utilisation is not None:
          last["mfu"] = utilisation
      tick, tick_step = now, done
      writer.write(done, last)
      writer.console(done, last)
    if config.train.eval_every and (done % config.train.eval_every == 0 or done == num_steps):
      scores = _evaluate(eval_fn, state.params, data, config, batch_sharding)
      if scores:
        writer.write(done, scores, prefix="eval")
        writer.console(done, scores, prefix="eval")
        tick = time.perf_counter()  # evaluation time is not train step time
    ckpt.save(done, state, data.checkpointable, force=(done == num_steps))
  profile.close()
  if start_step < num_steps and ckpt.latest_step() != num_steps:
    ckpt.save(num_steps, state, data.checkpointable, force=True)
  ckpt.close()
  writer.close()
  log.info("done: checkpoints in %s, TensorBoard logs in %s", ckpt.directory, os.path.join(workdir, "tensorboard"))
  return last


def _evaluate(eval_fn, params, data: TrainInput, config, batch_sharding) -> dict[str, float]:
  batches = data.eval_batches(config.train.eval_steps)
  if batches is None:
    return {}
  rng = jax.random.PRNGKey(config.seed + 1)
  totals = None
  for i, local in enumerate(batches):
    sums = eval_fn(params, input_pipeline.to_global(local, batch_sharding), jax.random.fold_in(rng, i))
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  if totals is None:
    return {}
  scores = objective.finalize_metrics(totals, float(config.objective.disc_weight))
  return {k: float(v) for k, v in jax.device_get(scores).items()}


def _start_from(state: TrainState, source: str, state_sharding: Any) -> TrainState:
  """Replaces the initial params by those of another run (or an import-hf directory); absent subtrees stay
  freshly initialised (e.g. the generator when starting from an HF discriminator)."""
  step, loaded = Checkpointer(workdir_lib.checkpoint_dir(source), interval=1, keep=1,
                              read_only=True).restore_params_on_host()
  fresh = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(state.params)}
  given = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(loaded)}
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


def _size_name(cfg: ElectraConfig) -> str:
  d = cfg.discriminator
  return f"L{d.num_layers}/H{d.hidden_size}/E{cfg.embedding_size}/gen H{cfg.generator.hidden_size}"


def main(argv: Optional[Sequence[str]] = None) -> int:
  rest, overrides = config_lib.split_overrides(list(argv or []))
  parser = argparse.ArgumentParser(
      prog="korpat-jax pretrain", description="Pretrain (or resume pretraining) ELECTRA from a config.",
      epilog="Any config key can be overridden: --config.train.batch_size=64 --config.model.dtype=bfloat16. "
             "Variants of configs/pretrain.py: demo, tiny, small, base, large, korpatelectra. Rerunning the same "
             "command resumes from the latest checkpoint in --workdir.")
  parser.add_argument("--config", required=True, help="FILE.py:VARIANT, e.g. configs/pretrain.py:tiny")
  parser.add_argument("--workdir", required=True, help="run directory: checkpoints, TensorBoard logs, profiles")
  args = parser.parse_args(rest)
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", force=True)
  for noisy in ("absl", "orbax", "jax._src"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  config = config_lib.load(args.config)
  config_lib.apply_overrides(config, overrides)
  train(config, args.workdir)
  return 0
