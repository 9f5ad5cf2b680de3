"""benchmarks/parity/torch_electra_step.py --quick: both pretraining steps (korpat-jax and the PyTorch peer) run and
the ratio is printed, so the CPU comparison of issue 11 cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import REPO


def test_quick_comparison_prints_a_ratio():
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([sys.executable, "-m", "benchmarks.parity.torch_electra_step", "--quick"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert re.search(r"korpat-jax / PyTorch .* \*\*\d+\.\d+x\*\*", result.stdout), result.stdout[-2000:]
