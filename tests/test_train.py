"""The trainer end to end on the synthetic stream: loss falls, checkpoints resume exactly, profiles, errors."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from helpers import REPO, pretrain_config, xla_flags
from korpat_jax import sharding, workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.errors import ConfigError
from korpat_jax.train import train


def _losses(workdir):
  with open(workdir / "metrics.jsonl") as f:
    return [r["loss"] for r in map(json.loads, f) if r["split"] == "train"]


def _params(workdir, step):
  ckpt = Checkpointer(workdir_lib.checkpoint_dir(str(workdir)), interval=1, keep=1, read_only=True)
  return ckpt.restore_params_on_host(step)[1]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
  """40 uninterrupted steps with a profile window; the reference for the resume test."""
  workdir = tmp_path_factory.mktemp("full")
  config = pretrain_config("tiny", **{"train.num_steps": 40, "train.log_every": 4, "train.checkpoint_every": 20,
                                      "profile.start_step": 5, "profile.num_steps": 2})
  train(config, str(workdir))
  return workdir


def test_loss_falls_and_outputs_exist(full_run):
  losses = _losses(full_run)
  assert len(losses) == 10
  assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:2]), losses
  assert list((full_run / "tensorboard").glob("events.out.tfevents.*"))
  assert list((full_run / "profile").rglob("*.xplane.pb")), "no profiler trace written"
  assert Checkpointer(str(full_run / "checkpoints"), interval=1, keep=1, read_only=True).all_steps() == [20, 40]
  model_cfg, _, special = workdir_lib.read_model_info(str(full_run))
  assert model_cfg.vocab_size == 128 and special["mask"] == 4


def test_stop_and_rerun_resumes_exactly(full_run, tmp_path):
  # A run "killed" after its step-20 checkpoint: the full run's directory without the step-40 checkpoint.
  workdir = tmp_path / "run"
  shutil.copytree(full_run, workdir)
  shutil.rmtree(workdir / "checkpoints" / "40")
  config = pretrain_config("tiny", **{"train.num_steps": 40, "train.log_every": 4, "train.checkpoint_every": 20})
  train(config, str(workdir))  # the same command again
  with open(workdir / "metrics.jsonl") as f:
    steps = [r["step"] for r in map(json.loads, f) if r["split"] == "train"]
  assert steps == list(range(4, 41, 4)), steps  # resumed at 20; what the "killed" run logged after 20 is gone
  resumed, reference = _params(workdir, 40), _params(full_run, 40)
  for path, x in jax.tree_util.tree_leaves_with_path(reference):
    np.testing.assert_array_equal(x, dict(jax.tree_util.tree_leaves_with_path(resumed))[path])


def test_checkpoint_from_16_devices_restores_onto_4(full_run):
  config = pretrain_config("tiny")
  from korpat_jax.model import ElectraConfig, ElectraPretrainer
  from korpat_jax.optimizer import make_optimizer
  from korpat_jax.pretraining_step import create_train_state
  model = ElectraPretrainer(ElectraConfig.from_config(config.model))
  tx, _ = make_optimizer(config.optimizer, 40)
  abstract = jax.eval_shape(lambda: create_train_state(model, tx, 0, 64))
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2}, jax.devices()[:4])
  shardings = sharding.state_shardings(abstract, mesh, min_size=256)
  target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
  ckpt = Checkpointer(str(full_run / "checkpoints"), interval=1, keep=1, read_only=True)
  state = ckpt.restore(40, target)
  embedding = state.params["embeddings"]["word_embeddings"]["embedding"]
  assert embedding.sharding.mesh.devices.size == 4 and embedding.sharding.spec != ()
  assert int(state.step) == 40
  np.testing.assert_array_equal(np.asarray(embedding),
                                _params(full_run, 40)["embeddings"]["word_embeddings"]["embedding"])


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "korpat_jax", "pretrain", *args], cwd=REPO, capture_output=True,
                        text=True, timeout=300)


@pytest.mark.parametrize("override, expected", [
    ("--config.train.batchsize=8", "config.train.batchsize: unknown key 'batchsize' in train (did you mean "
                                   "train.batch_size?)"),
    ("--config.train.batch_size=7", "config.train.batch_size=7: must divide by devices"),
    ("--config.train.num_steps=many", "config.train.num_steps='many': expected type int"),
    ("--config.model.num_heads=3", "config.model.num_heads=3: must divide model.hidden_size=32"),
])
def test_bad_config_values_give_one_line_errors(tmp_path, override, expected):
  result = _cli("--config", "configs/pretrain.py:tiny", "--workdir", str(tmp_path), override)
  assert result.returncode == 2, result.stderr
  lines = [l for l in result.stderr.splitlines() if "error" in l]
  assert len(lines) == 1 and expected in lines[0], result.stderr


@pytest.fixture(scope="module")
def demo_records(tmp_path_factory):
  from korpat_jax.corpus.demo import build_demo_data
  root = tmp_path_factory.mktemp("demo_data")
  build_demo_data(str(root / "records"), str(root / "tokenizer"), vocab_size=800, seq_len=64)
  return root


def _records_config(root, steps):
  return pretrain_config("tiny", **{
      "data.source": "records", "data.records_dir": str(root / "records"), "model.vocab_size": -1,
      "train.seq_len": 64, "train.num_steps": steps, "train.log_every": 2, "train.checkpoint_every": 4,
      "train.eval_every": 4, "train.eval_steps": 2})


def test_records_run_resumes_with_the_same_batches(demo_records, tmp_path):
  """The Grain iterator's position is in the checkpoint: a resumed run trains on exactly the same batches."""
  full = tmp_path / "full"
  train(_records_config(demo_records, 8), str(full))
  assert (full / "checkpoints" / "4" / "data").is_dir(), "the iterator state is not in the checkpoint"
  with open(full / "metrics.jsonl") as f:
    rows = [json.loads(line) for line in f]
  assert {r["split"] for r in rows} == {"train", "eval"}
  _, tokenizer_dir, _ = workdir_lib.read_model_info(str(full))
  assert tokenizer_dir == str(demo_records / "tokenizer")  # recorded from the manifest, for export

  from korpat_jax.pretraining_input import _check_vocab
  with pytest.raises(ConfigError, match="its vocab.txt is not the one that made the records"):
    _check_vocab(str(demo_records / "tokenizer"), "0" * 64, str(demo_records / "records"))

  resumed = tmp_path / "resumed"
  shutil.copytree(full, resumed)
  shutil.rmtree(resumed / "checkpoints" / "8")
  train(_records_config(demo_records, 8), str(resumed))
  reference, again = _params(full, 8), _params(resumed, 8)
  for path, x in jax.tree_util.tree_leaves_with_path(reference):
    np.testing.assert_array_equal(x, dict(jax.tree_util.tree_leaves_with_path(again))[path])


def test_hlo_dump_of_the_train_step(tmp_path):
  env = dict(os.environ, XLA_FLAGS=xla_flags(2))
  result = subprocess.run([sys.executable, "-m", "korpat_jax", "pretrain", "--config", "configs/pretrain.py:tiny",
                           "--workdir", str(tmp_path), "--config.train.num_steps=1", "--config.profile.dump_hlo=true"],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
  assert result.returncode == 0, result.stderr[-2000:]
  dumped = [p.name for p in (tmp_path / "hlo").iterdir()]
  assert any("train_step" in name and name.endswith(".txt") for name in dumped), dumped[:20]


def test_hooks_run_every_n_steps_and_when_the_run_ends(tmp_path):
  from korpat_jax.hooks import Hooks
  calls, logged = [], {}

  def record(name):
    def hook(info):
      assert int(info.state.step) == info.step  # the live state, read during the call
      calls.append((name, info.step, info.final))
      logged[info.step] = dict(info.metrics)
    return hook

  hooks = Hooks().add(record("every3"), every=3).add(record("end"), every=0)
  config = pretrain_config("tiny", **{"train.num_steps": 7, "train.log_every": 2, "train.checkpoint_every": 4})
  train(config, str(tmp_path), hooks=hooks)
  assert calls == [("every3", 3, False), ("every3", 6, False), ("every3", 7, True), ("end", 7, True)]
  with open(tmp_path / "metrics.jsonl") as f:
    losses = {r["step"]: r["loss"] for r in map(json.loads, f) if r["split"] == "train"}
  assert logged[3]["loss"] == losses[2] and logged[7]["loss"] == losses[7]  # the last logged train metrics
  calls.clear()
  train(config, str(tmp_path), hooks=hooks)  # a finished run: nothing to train, but it ends again
  assert calls == [("every3", 7, True), ("end", 7, True)]
  with pytest.raises(ValueError, match="every=-1"):
    Hooks().add(print, every=-1)
