"""End to end: `korpat-jax pretrain` (tiny, 16 fake devices) then `korpat-jax export` on one device, checked in torch."""

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
from korpat_jax import workdir as workdir_lib  # noqa: E402
from korpat_jax.export.to_hf import restore_params  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _korpat_jax(args: list[str], xla_flags: str | None) -> None:
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env.update({"JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO + os.pathsep + env.get("PYTHONPATH", "")})
  if xla_flags:
    env["XLA_FLAGS"] = xla_flags
  result = subprocess.run([sys.executable, "-m", "korpat_jax", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_trained_tiny_run_exports(tmp_path):
  workdir, out = str(tmp_path / "run"), str(tmp_path / "hf")
  _korpat_jax(["pretrain", "--config", os.path.join(REPO, "configs", "pretrain.py") + ":tiny", "--workdir", workdir,
               "--config.train.num_steps=4"], xla_flags(16))
  _korpat_jax(["export", "--workdir", workdir, "--out", out, "--part", "both"], None)

  cfg, _, _ = workdir_lib.read_model_info(workdir)
  _, params = restore_params(workdir, None)
  batch = lib.random_batch(cfg, seed=4)
  flax = lib.flax_pretrainer_outputs(cfg, params, batch)
  disc = transformers.ElectraForPreTraining.from_pretrained(os.path.join(out, "discriminator")).eval()
  gen = transformers.ElectraForMaskedLM.from_pretrained(os.path.join(out, "generator")).eval()
  assert lib.max_abs_diff(flax["discriminator_logits"], lib.torch_outputs(disc, batch).logits) <= 1e-4
  assert lib.max_abs_diff(flax["generator_logits"], lib.torch_outputs(gen, batch).logits) <= 1e-4
  assert np.all(np.isfinite(flax["discriminator_logits"]))
