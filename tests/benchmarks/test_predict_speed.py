"""benchmarks/serving/predict_speed.py --quick runs end to end on CPU (so the script cannot rot): predict and the
pipeline on the same documents, with finite speeds, equal labels and the memory table."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

from helpers import REPO


def test_quick_run_compares_predict_with_the_pipeline(tmp_path):
  for name in ("torch", "transformers"):
    pytest.importorskip(name, reason=f"{name} is not installed (pip install 'korpat-jax[export]')")
  out = tmp_path / "predict_speed.md"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([sys.executable, "-m", "benchmarks.serving.predict_speed", "--quick", "--docs", "40",
                           "--pipeline-batch", "8", "--memory", "50,120", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  report = out.read_text(encoding="utf-8")
  assert "CPU flags:" in report and "commit" in report
  rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip().strip("|").split("|")]
                                            for line in report.splitlines() if line.startswith("| `korpat-jax")
                                            or line.startswith("| pipeline"))}
  assert len(rows) == 4, report
  for name, cells in rows.items():
    assert math.isfinite(float(cells[0].replace(",", ""))) and float(cells[0].replace(",", "")) > 0, (name, cells)
    assert all(re.fullmatch(r"\d+\.\d\dx", cell) for cell in cells[2:4]), (name, cells)
  assert "(batch 1): 40 of 40." in report and "(batch 8): 40 of 40." in report
  memory = [line for line in report.splitlines() if re.match(r"\| (50|120) \| \d+ \|", line)]
  assert len(memory) == 2, report
