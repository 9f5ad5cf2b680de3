"""benchmarks/speed/tokenizer_build_scale.py end to end on two tiny patent-like corpora: every runner's output
is the one worker's, the stage times and peaks are read, and the report holds the cost model and projection."""

from __future__ import annotations

import json
import sys

from benchmarks.speed import tokenizer_build_scale as scale


def test_tiny_scale_run_writes_the_table_model_and_projection(tmp_path, monkeypatch):
  out = tmp_path / "scale.md"
  monkeypatch.setattr(sys, "argv", ["tokenizer_build_scale", "--work", str(tmp_path / "work"), "--reviews", "",
                                    "--patent", "150,300", "--runners", "w1,w2,beam", "--vocab-size", "500",
                                    "--shards", "2", "--out", str(out)])
  scale.main()
  result = json.loads(out.with_suffix(".json").read_text())
  rows = result["rows"]
  assert len(rows) == 2 * 2 * 3   # sizes x commands x runners
  assert all(r["identical"] == "yes" for r in rows)
  for r in rows:
    assert r["wall"] > 0 and r["cpu"] > 0 and r["count_s"] > 0 and r["distinct"] > 0
    assert 20 < r["peak_tree_pss_mb"] < 4000 and 20 < r["peak_process_rss_mb"] < 4000
  models = {m["command"]: m for m in result["models"]}
  assert set(models) == {"userdic", "train"}
  assert all(m["count_cpu_s_per_mb"] > 0 and 0 < m["heaps_beta"] < 1.5 for m in models.values())
  text = out.read_text()
  assert "## Cost model" in text and "## Projection to 130 GB" in text and "| patent-like" in text

  # --report-only rewrites the same report from the kept rows
  out.unlink()
  monkeypatch.setattr(sys, "argv", ["tokenizer_build_scale", "--work", str(tmp_path / "work"), "--report-only",
                                    "--project-gb", "1", "--out", str(out)])
  scale.main()
  assert "## Projection to 1 GB" in out.read_text()


def test_process_tree_memory_counts_children(tmp_path):
  log = tmp_path / "child.log"
  code = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
          "'b = bytearray(200 * 2**20); import time; time.sleep(1.0)'])")
  measured = scale.run_measured([sys.executable, "-c", code], log, interval=0.05)
  assert measured.peak_tree_pss_mb > 200 and measured.peak_process_rss_mb > 200
  assert measured.wall >= 1.0
