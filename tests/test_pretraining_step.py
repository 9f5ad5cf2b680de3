"""The jitted ELECTRA update (korpat_jax.pretraining_step): sharding- and accumulation-invariance."""

import jax
import numpy as np
import pytest

from helpers import pretrain_config
from korpat_jax import masking, objective, sharding
from korpat_jax.model import ElectraConfig, ElectraPretrainer
from korpat_jax.optimizer import make_optimizer
from korpat_jax.pretraining_step import create_train_state, make_train_step
from korpat_jax.synthetic_data import SyntheticTokenStream


def _run_steps(mesh_cfg, devices, grad_accum=1, dropout=0.1, steps=2):
  config = pretrain_config("tiny")
  config.model.dropout_rate = config.model.attention_dropout_rate = dropout
  model_cfg = ElectraConfig.from_config(config.model)
  model = ElectraPretrainer(model_cfg)
  tx, schedule = make_optimizer(config.optimizer, 100)
  strategy = masking.make_masking(config.objective, objective.SpecialIds(), 64)
  mesh = sharding.make_mesh(mesh_cfg, devices)
  create = lambda: create_train_state(model, tx, 0, 64)
  state_sharding = sharding.state_shardings(jax.eval_shape(create), mesh, min_size=256)
  state = jax.jit(create, out_shardings=state_sharding)()
  step = jax.jit(make_train_step(model, tx, schedule, strategy, temperature=config.objective.temperature,
                                 disc_weight=config.objective.disc_weight, grad_accum_steps=grad_accum),
                 in_shardings=(state_sharding, sharding.batch_sharding(mesh)),
                 out_shardings=(state_sharding, sharding.replicated(mesh)))
  stream = SyntheticTokenStream(128, 64, 32, seed=0, special=objective.SpecialIds())
  for _ in range(steps):
    batch = {k: jax.device_put(v, sharding.batch_sharding(mesh)) for k, v in next(stream).items()}
    state, metrics = step(state, batch)
  return jax.device_get(state.params), jax.device_get(metrics)


@pytest.fixture(scope="module")
def one_device():
  return _run_steps({"data": 1, "fsdp": 1}, jax.devices()[:1])


def _assert_same(a, b, atol=1e-5):
  params_a, metrics_a = a
  params_b, metrics_b = b
  np.testing.assert_allclose(metrics_a["loss"], metrics_b["loss"], rtol=1e-5)
  flat_a = jax.tree_util.tree_leaves_with_path(params_a)
  flat_b = dict(jax.tree_util.tree_leaves_with_path(params_b))
  for path, x in flat_a:
    np.testing.assert_allclose(x, flat_b[path], atol=atol, err_msg=jax.tree_util.keystr(path))


def test_16_devices_data_parallel_equals_one_device(one_device):
  assert len(jax.devices()) == 16
  _assert_same(one_device, _run_steps({"data": -1, "fsdp": 1}, jax.devices()))


def test_fsdp_mesh_equals_one_device(one_device):
  _assert_same(one_device, _run_steps({"data": 4, "fsdp": 4}, jax.devices()))


def test_gradient_accumulation_equals_full_batch():
  mesh = {"data": 1, "fsdp": 1}
  full = _run_steps(mesh, jax.devices()[:1], grad_accum=1, dropout=0.0, steps=1)
  accumulated = _run_steps(mesh, jax.devices()[:1], grad_accum=4, dropout=0.0, steps=1)
  _assert_same(full, accumulated)
