"""benchmarks/parity/finetune_speed.py --quick runs end to end on CPU (so the script cannot rot): both sides of every
head train, their losses are finite, and the table has a ratio per head."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import REPO


def test_quick_run_prints_a_ratio_per_head(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([sys.executable, "-m", "benchmarks.parity.finetune_speed", "--quick", "--workdir",
                           str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  rows = [line for line in result.stdout.splitlines() if re.match(r"\| (token|sequence|qa) \|", line)]
  assert {row.split("|")[1].strip() for row in rows} >= {"token", "sequence", "qa"}, result.stdout[-2000:]
  speed_rows = [row.split("|")[1:-1] for row in rows if "x |" in row]
  assert len(speed_rows) == 3
  for cells in speed_rows:   # ... | korpat/HF speed | korpat CPU (ms) | HF CPU (ms) | korpat/HF CPU |
    assert re.fullmatch(r"\d+\.\d+x", cells[7].strip()), cells
    assert float(cells[8]) > 0 and float(cells[9]) > 0 and float(cells[10]) > 0, cells
