"""benchmarks/gpu.sh --cpu-smoke: every row of the GPU benchmark runs on CPU at tiny sizes, so the script cannot rot."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

from helpers import REPO


def _driver():
  spec = importlib.util.spec_from_file_location("gpu_bench", REPO / "benchmarks" / "gpu_bench.py")
  module = importlib.util.module_from_spec(spec)
  sys.modules.setdefault("gpu_bench", module)  # dataclasses look their module up while the file executes
  spec.loader.exec_module(module)
  return module


def test_cpu_smoke_has_every_row_with_finite_numbers(tmp_path, request):
  gpu_bench = _driver()
  out = tmp_path / "out"
  # XLA's compilation cache in pytest's cache folder: a rerun compiles only what changed (a first run takes longer).
  cache = request.config.cache.mkdir("gpu_bench_xla_cache")
  env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu"}
  done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), "--cpu-smoke", "--cache-dir", str(cache)],
                        env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

  table = (out / "gpu.md").read_text()
  report = json.loads((out / "gpu.json").read_text())
  for name in gpu_bench.table_order(gpu_bench.SMOKE):
    assert f"| {name} |" in table
    row = report["rows"][name]
    assert row["status"] == "ok", (name, row["status"])
    for key in ("median_s", "sequences_per_s", "tokens_per_s", "need_bytes", "loss_first", "loss_last"):
      assert math.isfinite(row[key]) and (key.startswith("loss") or row[key] > 0), (name, key, row[key])
  assert report["rows"]["pretrain cudnn vocab-all b4"]["vocab_logits"] == "all 32"   # the switch took effect
  assert report["rows"]["pretrain cudnn b4"]["vocab_logits"].startswith("masked")
  for title in gpu_bench.SEARCHES:
    assert f"| {title} |" in table
    found = report["searches"][title]
    assert found["status"] == "ok" and found["largest_fit"] >= max(gpu_bench.SMOKE.batches), found
    assert found["probes"] and all(not p.get("error") for p in found["probes"]), found["probes"]
  assert (out / "best_step.hlo.txt.gz").stat().st_size > 0
  assert (out / "trace_best.tar.gz").stat().st_size > 0
  assert (out / "gpu_bench.log").is_file()
