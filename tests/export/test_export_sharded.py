"""A checkpoint saved sharded over 16 devices exports on a machine with one CPU device."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hf_export_testlib as lib  # noqa: E402
from helpers import xla_flags  # noqa: E402
from korpat_jax.export import hf_names  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESTS = os.path.dirname(os.path.abspath(__file__))

# Runs with 16 fake CPU devices: shards every parameter it can over a 4 x 4 mesh and saves the train state.
SAVE_SHARDED = """
import sys
import jax, numpy as np
sys.path.insert(0, {tests!r})
import hf_export_testlib as lib
from korpat_jax import workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.export import hf_names
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

assert jax.device_count() == 16, jax.devices()
mesh = Mesh(np.array(jax.devices()).reshape(4, 4), ("data", "model"))
def place(x):
  spec = [None] * x.ndim
  for axis, name in zip(range(x.ndim), ("data", "model")):
    if x.shape[axis] % 4 == 0:
      spec[axis] = name
  return jax.device_put(x, NamedSharding(mesh, P(*spec)))
with np.load({npz!r}) as f:
  flat = {{tuple(k.split("/")): f[k] for k in f.files}}
params = jax.tree_util.tree_map(place, hf_names.unflatten(flat))
spread = [len(x.sharding.device_set) for x in jax.tree_util.tree_leaves(params)]
assert max(spread) == 16, spread
cfg = lib.tiny_config()
workdir_lib.write_model_info({workdir!r}, cfg, None, lib.SPECIAL_IDS)
state = {{"params": params, "step": 11}}
checkpointer = Checkpointer(workdir_lib.checkpoint_dir({workdir!r}), interval=1, keep=1, async_save=False)
checkpointer.save(11, state, force=True)
checkpointer.close()
"""

# Runs with one CPU device (XLA_FLAGS unset): the user's export command.
EXPORT_ON_ONE_DEVICE = """
import sys
import jax
assert jax.device_count() == 1, jax.devices()
from korpat_jax.cli import main
sys.exit(main(["export", "--workdir", {workdir!r}, "--out", {out!r}, "--part", "both"]))
"""


def _run(code: str, xla_flags: str | None) -> None:
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  if xla_flags:
    env["XLA_FLAGS"] = xla_flags
  result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]


def test_sharded_checkpoint_exports_on_one_device(tmp_path):
  cfg = lib.tiny_config()
  params = lib.pretrainer_params(cfg, seed=21)
  npz, workdir, out = str(tmp_path / "params.npz"), str(tmp_path / "run"), str(tmp_path / "hf")
  np.savez(npz, **{"/".join(k): v for k, v in hf_names.flatten(params).items()})
  _run(SAVE_SHARDED.format(tests=TESTS, npz=npz, workdir=workdir),
       xla_flags(16))
  _run(EXPORT_ON_ONE_DEVICE.format(workdir=workdir, out=out), None)

  batch = lib.random_batch(cfg, seed=2)
  flax = lib.flax_pretrainer_outputs(cfg, params, batch)
  disc = transformers.ElectraForPreTraining.from_pretrained(os.path.join(out, "discriminator")).eval()
  gen = transformers.ElectraForMaskedLM.from_pretrained(os.path.join(out, "generator")).eval()
  diffs = (lib.max_abs_diff(flax["discriminator_logits"], lib.torch_outputs(disc, batch).logits),
           lib.max_abs_diff(flax["generator_logits"], lib.torch_outputs(gen, batch).logits))
  print(f"sharded export max abs diffs (discriminator, generator): {diffs}")
  assert max(diffs) <= 1e-4
