"""benchmarks/parity/demo_recipe.py: both sides (the trainer and the PyTorch ELECTRA) train on the demo records and
the table reads them against the base rate."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

from helpers import REPO

if str(REPO) not in sys.path:  # `benchmarks` is a package at the repository root
  sys.path.insert(0, str(REPO))

from benchmarks.parity.demo_recipe import base_rate_loss, table  # noqa: E402


def test_base_rate_loss_is_the_binary_entropy():
  assert base_rate_loss(0.5) == pytest.approx(math.log(2))
  assert base_rate_loss(0.15) == pytest.approx(-(0.15 * math.log(0.15) + 0.85 * math.log(0.85)))
  assert base_rate_loss(0.0) < 1e-9


def test_table_reads_each_side_against_its_base_rate():
  row = dict(step=10, gen_loss=7.0, disc_loss=0.3, disc_precision=0.5, disc_recall=0.25, replaced_fraction=1.0)
  text = table({"a": [row], "b": [dict(row, masked_fraction=0.25)]}, masked_share=0.15)
  assert f"{base_rate_loss(0.15):.4f}" in text and f"{base_rate_loss(0.25):.4f}" in text


def test_both_sides_train_on_the_demo_records(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  sizes = ["model.hidden_size=32", "model.intermediate_size=64", "model.embedding_size=16", "train.batch_size=8"]
  result = subprocess.run([sys.executable, "-m", "benchmarks.parity.demo_recipe", "--steps", "4", "--log-every",
                           "2", "--data", str(tmp_path / "data"), *(f"--set={s}" for s in sizes)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  rows = re.findall(r"^\| (korpat-jax|PyTorch \(HF modules\)) \| (\d+) \| ([\d.]+) \| ([\d.]+) \|", result.stdout, re.M)
  assert [(side, step) for side, step, *_ in rows] == [("korpat-jax", "2"), ("korpat-jax", "4"),
                                                        ("PyTorch (HF modules)", "2"), ("PyTorch (HF modules)", "4")]
  assert all(math.isfinite(float(g)) and math.isfinite(float(d)) for *_, g, d in rows)
