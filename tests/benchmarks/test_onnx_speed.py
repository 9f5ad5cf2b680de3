"""benchmarks/serving/onnx_speed.py --quick runs end to end on CPU (so the script cannot rot): the report has the
onnxruntime, PyTorch and JAX rows with finite speeds and differences from JAX."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

from helpers import REPO


def test_quick_run_writes_the_three_rows(tmp_path):
  for name in ("torch", "transformers", "onnx", "onnxscript", "onnxruntime"):
    pytest.importorskip(name, reason=f"{name} is not installed (pip install 'korpat-jax[onnx]')")
  out = tmp_path / "onnx_speed.md"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([sys.executable, "-m", "benchmarks.serving.onnx_speed", "--quick", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  report = out.read_text(encoding="utf-8")
  assert "CPU flags:" in report and "Threads:" in report
  rows = {cells[1]: cells[2:] for cells in ([c.strip() for c in line.strip().strip("|").split("|")]
                                            for line in report.splitlines() if line.startswith("| tiny |"))}
  assert {"onnxruntime", "PyTorch", "JAX"} <= set(rows), report
  for name in ("onnxruntime", "PyTorch", "JAX"):
    speeds = [float(cell.replace(",", "")) for cell in rows[name][:2]]
    assert all(math.isfinite(s) and s > 0 for s in speeds), (name, rows[name])
    assert all(re.fullmatch(r"\d+\.\d\dx", cell) for cell in rows[name][2:4]), (name, rows[name])
  assert float(rows["onnxruntime"][-1]) <= 1e-4 and float(rows["PyTorch"][-1]) <= 1e-4
