"""benchmarks/speed/xla_cpu_flags.py runs a flag set in a fresh process and writes its table (slow: three
compilations of the pretraining step)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import REPO


@pytest.mark.slow
def test_quick_sweep_times_the_baseline_twice_and_the_set(tmp_path):
  out = tmp_path / "xla.md"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  result = subprocess.run([sys.executable, "-m", "benchmarks.speed.xla_cpu_flags", "--quick", "--steps", "1",
                           "--warmup", "1", "--sets", "onednn_dot", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  rows = [line for line in out.read_text(encoding="utf-8").splitlines() if line.startswith("| baseline")
          or line.startswith("| onednn_dot")]
  assert [r.split("|")[1].strip() for r in rows] == ["baseline", "onednn_dot", "baseline"]
  assert all(r.rstrip(" |").endswith("yes") for r in rows), rows
