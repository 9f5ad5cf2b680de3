"""`korpat-jax pretrain --config.objective.embedding_sharing=gdes` end to end on the tiny synthetic config, and
fine-tuning from such a run (its discriminator's folded word table)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from helpers import REPO, finetune_config, xla_flags
from korpat_jax import workdir as workdir_lib
from korpat_jax.export.to_hf import restore_params
from korpat_jax.model.embedding_sharing import EMBEDDING_DELTA_PATH, WORD_EMBEDDINGS_PATH, keystr
from korpat_jax.model.heads import task_model
from korpat_jax.tasks import make_task

STEPS = 3


def _pretrain(workdir, *overrides):
  env = {**os.environ, "XLA_FLAGS": xla_flags(2)}  # two data-parallel devices: enough, and quick on a busy CPU
  return subprocess.run([sys.executable, "-m", "korpat_jax", "pretrain", "--config", "configs/pretrain.py:tiny",
                         "--workdir", str(workdir), *overrides], cwd=REPO, capture_output=True, text=True,
                        timeout=600, env=env)


def _flat(params):
  return {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(params)}


def _get(tree, path):
  for name in path:
    tree = tree[name]
  return tree


@pytest.fixture(scope="module")
def gdes_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("gdes_run")
  result = _pretrain(workdir, "--config.objective.embedding_sharing=gdes", f"--config.train.num_steps={STEPS}",
                     "--config.train.log_every=1")
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_gdes_pretraining_runs_and_trains_the_delta(gdes_run):
  with open(gdes_run / "metrics.jsonl") as f:
    train_rows = [r for r in map(json.loads, f) if r["split"] == "train"]
  assert [r["step"] for r in train_rows] == list(range(1, STEPS + 1))
  assert all(np.isfinite(r["loss"]) and np.isfinite(r["disc_loss"]) for r in train_rows)
  assert workdir_lib.read_model_info(str(gdes_run))[0].embedding_sharing == "gdes"
  step, params = restore_params(str(gdes_run), None)
  assert step == STEPS and np.any(_get(params, EMBEDDING_DELTA_PATH) != 0)


def test_finetuning_from_a_gdes_run_loads_the_folded_word_table(gdes_run, tmp_path):
  _, params = restore_params(str(gdes_run), None)
  loaded = _flat(params)
  task = make_task(finetune_config("ner_tiny", init_from=str(gdes_run)), str(tmp_path))
  cfg = workdir_lib.read_model_info(str(gdes_run))[0]
  ids = np.zeros((1, 8), np.int32)
  fresh = _flat(jax.eval_shape(lambda: task_model("token_classification", cfg, 3).init(
      jax.random.key(0), ids, ids, ids + 1))["params"])
  given = task.init_params(loaded, fresh, str(gdes_run))
  word = keystr(WORD_EMBEDDINGS_PATH)
  np.testing.assert_array_equal(given[word], loaded[word] + loaded[keystr(EMBEDDING_DELTA_PATH)])
  assert not np.array_equal(given[word], loaded[word])
  assert all(k in fresh and np.shape(given[k]) == fresh[k].shape for k in given), sorted(set(given) - set(fresh))


def test_unknown_embedding_sharing_is_one_line_on_the_command_line(tmp_path):
  result = _pretrain(tmp_path, "--config.objective.embedding_sharing=shared")
  assert result.returncode == 2, result.stderr
  lines = [line for line in result.stderr.splitlines() if "error" in line]
  assert len(lines) == 1 and "config.objective.embedding_sharing='shared': expected one of tied, gdes" in lines[0], \
      result.stderr
