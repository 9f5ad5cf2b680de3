"""The GPU benchmark (benchmarks/gpu/: run.sh, `python -m benchmarks.gpu`): its pure parts directly, and
every row end to end on CPU at tiny sizes (--cpu-smoke), so the script cannot rot before its one GPU run."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
import types

import pytest

from helpers import REPO, pretrain_config

if str(REPO) not in sys.path:  # `benchmarks` is a package at the repository root
  sys.path.insert(0, str(REPO))
from benchmarks.gpu import build, cli, grid, measure, report, search, worker  # noqa: E402


def _smoke_env(out) -> dict:
  return {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu"}


# -- grid --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prof", [grid.GPU, grid.SMOKE], ids=["gpu", "smoke"])
def test_every_case_has_one_table_row(prof):
  names = [c.name for c in grid.cases(prof)]
  assert len(set(names)) == len(names)
  assert sorted(names) == sorted(grid.table_order(prof))


# -- measure -----------------------------------------------------------------------------------------------------

def test_vocab_all_row_counts_its_projection_at_every_position():
  from korpat_jax.mfu import training_flops_per_step
  from korpat_jax.model import ElectraConfig
  cfg = ElectraConfig.from_config(pretrain_config("base").model)
  b, s, n = 64, 512, 77
  task = types.SimpleNamespace(model_config=cfg, flops_per_step=lambda: training_flops_per_step(cfg, b, s, n))
  masked = grid.Case("masked", "pretrain", b)
  assert measure.step_flops(task, masked, s) == task.flops_per_step()
  every = measure.step_flops(task, dataclasses.replace(masked, vocab_all=True), s)
  e, g = cfg.embedding_size, cfg.generator.hidden_size
  assert every - task.flops_per_step() == pytest.approx(3 * 2 * b * (s - n) * (g * e + e * cfg.vocab_size))


def test_memory_analysis_subtracts_donated_buffers():
  stats = types.SimpleNamespace(argument_size_in_bytes=100, output_size_in_bytes=90, alias_size_in_bytes=80,
                                temp_size_in_bytes=30)
  got = measure.memory_analysis(types.SimpleNamespace(memory_analysis=lambda: stats))
  assert got == {"need_bytes": 140.0, "state_bytes": 110.0, "temp_bytes": 30.0}
  assert measure.memory_analysis(types.SimpleNamespace(memory_analysis=lambda: None))["need_bytes"] is None


# -- build -------------------------------------------------------------------------------------------------------

def test_squad_from_abstracts_answers_point_into_their_context():
  rows = (grid.DEMO / "cpc_train.tsv").read_text(encoding="utf-8").splitlines()[1:9]
  data = build.squad_from_abstracts(rows)
  paragraphs = data["data"][0]["paragraphs"]
  assert len(paragraphs) == len(rows)
  for p in paragraphs:
    answer = p["qas"][0]["answers"][0]
    assert p["context"][answer["answer_start"]:].startswith(answer["text"]) and answer["text"]
  with pytest.raises(ValueError, match="CPC demo row 2"):
    build.squad_from_abstracts([rows[0], "only-an-id"])


# -- search ------------------------------------------------------------------------------------------------------

def _fits_below(threshold: int, calls: list):
  def run_probe(case, deadline):
    calls.append(case.batch)
    return {"batch": case.batch, "fits": case.batch <= threshold}
  return run_probe


def test_prediction_is_the_line_through_the_timed_points():
  points = [(32, 10e9 + 32 * 1e9, 10e9), (64, 10e9 + 64 * 1e9, 10e9), (128, 10e9 + 128 * 1e9, 10e9)]
  assert search.predict(points, 100e9, 128, 8) == 80            # (97 - 10) / 1 = 87, down to a multiple of 8
  assert search.predict(points[:1], 100e9, 32, 8) == 80         # state + batch x per-sequence temporaries
  assert search.predict([], 100e9, 40, 8) == 80                 # no points: twice the largest known fit
  flat = [(32, 50e9, 10e9), (64, 50e9, 10e9)]
  assert search.predict(flat, 100e9, 64, 8) == 128              # no growth measured: no division by zero


def test_search_brackets_the_largest_fit_within_its_probes():
  prof = dataclasses.replace(grid.GPU, probes=6, batch_step=8)
  points = [(32, 10e9 + 32 * 1e9, 10e9), (64, 10e9 + 64 * 1e9, 10e9)]
  calls, seen = [], []
  template = grid.Case("largest", "pretrain", 0)
  found = search.search(template, points, 100e9, prof, time.time() + 60, _fits_below(100, calls),
                        progress=seen.append)
  assert found["status"] == "ok" and found["largest_fit"] == 96 and found["smallest_fail"] == 104
  assert calls[0] == 80 and len(calls) <= prof.probes and len(seen) == len(calls)
  assert seen[-1]["probes"] == found["probes"] and found["best_probe"]["batch"] == 96


def test_search_without_time_runs_no_probe_and_keeps_the_known_fit():
  calls = []
  found = search.search(grid.Case("largest", "pretrain", 0, remat=True), [], 100e9, grid.GPU, time.time() + 5,
                        _fits_below(1000, calls), known_fit=96, min_probe_s=30)
  assert calls == [] and found["largest_fit"] == 96 and found["largest_fit_from"] == "the remat-off search"
  assert found["status"].startswith("not run: time budget")


def test_probe_result_reads_the_tagged_line_or_says_why_not():
  line = search.RESULT_TAG + json.dumps({"batch": 8, "fits": True})
  assert search.probe_result(f"noise\n{line}\n", "", 0, 8) == {"batch": 8, "fits": True}
  oom = search.probe_result("", "a\nb\nXlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory", -6, 8)
  assert not oom["fits"] and not oom["error"] and "exited -6" in oom["why"]
  crash = search.probe_result("", "Traceback\nImportError: no module x", 1, 8)
  assert crash["error"] and "ImportError" in crash["why"]


# -- worker ------------------------------------------------------------------------------------------------------

def test_fine_tuning_data_that_cannot_be_made_fails_its_rows_once(monkeypatch):
  made = []

  def no_data(work, prof):
    made.append(1)
    raise RuntimeError("mecab-ko is missing")

  monkeypatch.setattr(worker, "finetune_data", no_data)
  monkeypatch.setattr(worker, "build", lambda case, *a: {"case": case, "setup_s": 0.0})
  monkeypatch.setattr(worker, "compile_run", lambda run, deadline: None)
  rows = {}
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    runs, futures = worker.build_all(grid.SMOKE, True, "unused", time.time() + 60, pool, rows)
  assert made == [1]
  assert sorted(runs) == sorted(futures) == sorted(c.name for c in grid.cases(grid.SMOKE) if c.task == "pretrain")
  assert {rows[c.name]["status"] for c in grid.cases(grid.SMOKE) if c.task != "pretrain"} == {
      "failed: RuntimeError: mecab-ko is missing"}


def test_a_step_that_fails_while_timed_drops_only_its_row(monkeypatch):
  def step(run):
    if run["case"].batch == 8:
      raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory")
    return 0.01

  monkeypatch.setattr(worker, "step", step)
  monkeypatch.setattr(worker, "row_of", lambda run, kind, rounds: {"rounds": rounds, "n": len(run["times"])})
  runs = {f"b{b}": {"case": grid.Case(f"b{b}", "pretrain", b), "times": []} for b in (2, 8, 4)}
  rows, notes, saved = {}, [], []
  worker.time_rounds(runs, grid.SMOKE, time.time() + 60, "cpu", rows, notes, saved.append)
  assert sorted(runs) == ["b2", "b4"] and rows["b8"]["status"].startswith("failed: RuntimeError: RESOURCE")
  assert rows["b2"] == rows["b4"] == {"rounds": 2, "n": 2 * grid.SMOKE.steps}
  assert len(saved) == 2 * 2 and notes == []  # published after every timed case


def test_compiles_past_their_deadline_are_dropped_not_waited_for():
  slow = concurrent.futures.Future()  # never finishes
  done = concurrent.futures.Future()
  done.set_result(None)
  runs = {n: {"case": grid.Case(n, "pretrain", 2)} for n in ("slow", "done")}
  rows, notes = {}, []
  t0 = time.time()
  assert worker.await_compiles(runs, {"slow": slow, "done": done}, time.time() + 0.2, rows, notes)
  assert time.time() - t0 < 5 and list(runs) == ["done"] and "still compiling" in rows["slow"]["status"]
  assert notes


# -- report and cli ------------------------------------------------------------------------------------------------

def test_a_partial_report_renders_and_publishes_whole_files(tmp_path):
  prof = grid.SMOKE
  first = grid.cases(prof)[0]
  partial = {"device_kind": "cpu", "platform": "cpu", "jax": "x", "commit": "abc", "started": time.time() - 3,
             "budget_s": 900, "stage": "worker: timing round 1 of 2", "files": {}, "notes": ["n1"],
             "rows": {first.name: {**dataclasses.asdict(first), "status": "ok", "seq": 32, "median_s": 0.01,
                                   "sequences_per_s": 400.0, "tokens_per_s": 12800.0, "mfu": None,
                                   "need_bytes": 2.0 ** 20, "compile_s": 1.0, "loss_first": 2.0, "loss_last": 1.5,
                                   "vocab_logits": "masked 4"}}}
  markdown = report.publish(partial, tmp_path, prof, True)
  assert (tmp_path / "gpu.md").read_text() == markdown
  assert json.loads((tmp_path / "gpu.json").read_text())["wall_s"] >= 3
  assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu.json", "gpu.md"]  # no .tmp left behind
  assert "worker: timing round 1 of 2" in markdown and "| 10.0 | 400.0 | 12,800 | n/a (CPU) |" in markdown
  for name in set(grid.table_order(prof)) - {first.name}:
    assert f"| {name} | | | | | not run |" in markdown
  for title in grid.SEARCHES:
    assert f"| {title} | | | not run (yet) |" in markdown
  assert "/ n/a TFLOP/s" in markdown  # no peak in the report: no number made up
  assert cli.failures(partial, cpu_smoke=False) == []
  partial["rows"]["x"] = {"status": "failed: OOM"}
  assert cli.failures(partial, cpu_smoke=False) == ["x"]


def test_commit_needs_no_git(monkeypatch):
  monkeypatch.setenv("PATH", "/nonexistent")
  assert report.commit() == "unknown"


# The orchestrator as run.sh runs it, reporting at its exit whether it ever imported jax: it must not, since a
# backend started there would hold the GPU's memory while the worker and the probes need it.
ORCHESTRATOR = """
import runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
try:
  runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as e:
  print("orchestrator imported jax:", "jax" in sys.modules)
  raise
"""


def test_a_budget_too_short_for_any_row_still_writes_the_tables(tmp_path):
  out = tmp_path / "out"
  done = subprocess.run([sys.executable, "-c", ORCHESTRATOR, str(grid.ENTRY), "--cpu-smoke", "--out", str(out),
                         "--budget-s", "0.01", "--cache-dir", str(tmp_path / "cache")], env=_smoke_env(out),
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]  # the smoke run wants every row
  assert "orchestrator imported jax: False" in done.stdout
  table = (out / "gpu.md").read_text()
  for name in grid.table_order(grid.SMOKE):
    assert f"| {name} | | | | | not run: time budget (build phase) |" in table
  for title in grid.SEARCHES:
    assert "not run: no timed pretraining row" in table
  assert json.loads((out / "gpu.json").read_text())["stage"] == "done"


# -- end to end ----------------------------------------------------------------------------------------------------

def test_cpu_smoke_has_every_row_with_finite_numbers(tmp_path, request):
  out = tmp_path / "out"
  # XLA's compilation cache in pytest's cache folder: a rerun compiles only what changed (a first run takes longer).
  cache = request.config.cache.mkdir("gpu_bench_xla_cache")
  done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu" / "run.sh"), "--cpu-smoke", "--cache-dir",
                         str(cache)], env=_smoke_env(out), cwd=REPO, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

  table = (out / "gpu.md").read_text()
  result = json.loads((out / "gpu.json").read_text())
  assert result["stage"] == "done" and result["worker_exit"] == 0 and result["peak_flops"] is None  # CPU
  for name in grid.table_order(grid.SMOKE):
    assert f"| {name} |" in table
    row = result["rows"][name]
    assert row["status"] == "ok", (name, row["status"])
    assert row["rounds"] == grid.SMOKE.rounds and len(row["times_s"]) == grid.SMOKE.rounds * grid.SMOKE.steps
    for key in ("median_s", "sequences_per_s", "tokens_per_s", "need_bytes", "flops", "loss_first", "loss_last"):
      assert math.isfinite(row[key]) and (key.startswith("loss") or row[key] > 0), (name, key, row[key])
  rows = result["rows"]
  assert rows["pretrain cudnn vocab-all b4"]["vocab_logits"] == "all 32"   # the switch took effect
  assert rows["pretrain cudnn b4"]["vocab_logits"].startswith("masked")
  assert rows["pretrain cudnn vocab-all b4"]["flops"] > rows["pretrain cudnn b4"]["flops"]
  for title in grid.SEARCHES:
    assert f"| {title} |" in table
    found = result["searches"][title]
    assert found["status"] == "ok" and found["largest_fit"] >= max(grid.SMOKE.batches), found
    assert found["probes"] and all(not p.get("error") for p in found["probes"]), found["probes"]
  assert (out / "best_step.hlo.txt.gz").stat().st_size > 0
  assert (out / "trace_best.tar.gz").stat().st_size > 0
  assert (out / "gpu_bench.log").is_file()


# -- preflight -----------------------------------------------------------------------------------------------------

from benchmarks.gpu import preflight  # noqa: E402


def test_preflight_covers_every_row_kind_once():
  kinds = preflight.row_kinds(grid.PREFLIGHT)
  keys = {(c.task, c.attention, c.remat, c.vocab_all) for c in grid.cases(grid.PREFLIGHT)}
  assert len(kinds) == len(keys) and {(c.task, c.attention, c.remat, c.vocab_all) for c in kinds} == keys


@pytest.mark.parametrize("prof", [grid.PREFLIGHT, grid.PREFLIGHT_CPU, grid.GPU], ids=["gpu", "cpu", "main"])
def test_preflight_and_main_sizes_pass_the_cudnn_head_size_check(prof):
  from korpat_jax.model.config import check_model_block
  cudnn = {"attention_impl": "cudnn", "dtype": "bfloat16", "attention_dropout_rate": 0.0}
  check_model_block({**pretrain_config("base").model.to_dict(), **prof.pretrain_model, **cudnn})  # + generator
  finetune = {k: v for k, v in pretrain_config("base").model.to_dict().items() if "generator" not in k}
  check_model_block({**finetune, **prof.finetune_model, **cudnn})


def test_cudnn_rows_trace_on_cpu_with_the_version_check_stubbed(tmp_path):
  prof = grid.PREFLIGHT_CPU
  pretrain = next(c for c in preflight.row_kinds(prof) if c.task == "pretrain" and c.attention == "cudnn")
  assert "forward and backward" in preflight.trace_with_cudnn(pretrain, prof, None, str(tmp_path))
  data = build.finetune_data(str(tmp_path), prof)
  ner = next(c for c in preflight.row_kinds(prof) if c.task == "ner")
  assert "forward and backward" in preflight.trace_with_cudnn(ner, prof, data, str(tmp_path))


@pytest.mark.slow
def test_cpu_preflight_passes(tmp_path):
  out = tmp_path / "out"
  done = subprocess.run([sys.executable, "-m", grid.ENTRY, "preflight", "--cpu", "--out", str(out)],
                        env=_smoke_env(out), cwd=REPO, capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
  result = json.loads((out / "preflight.json").read_text())
  names = [c["name"] for c in result["checks"]]
  assert all(c["ok"] for c in result["checks"]) and result["status"] == "passed"
  for case in preflight.row_kinds(grid.PREFLIGHT_CPU):
    assert f"row {case.name}" in names
    assert (f"trace {case.name}" in names) == (case.attention == "cudnn")
  assert "| profiler | yes |" in (out / "preflight.md").read_text()


def test_a_probe_cut_by_the_budget_ends_the_search_without_failing():
  calls = []

  def unfinished(case, deadline):
    calls.append(case.batch)
    return {"batch": case.batch, "fits": False, "why": "not finished: time budget", "error": False,
            "unfinished": True}

  prof = dataclasses.replace(grid.GPU, probes=4)
  found = search.search(grid.Case("largest", "pretrain", 0), [(32, 40e9, 10e9), (64, 70e9, 10e9)], 100e9, prof,
                        time.time() + 60, unfinished)
  assert len(calls) == 1 and found["largest_fit"] == 64 and found["smallest_fail"] is None
  assert cli.failures({"rows": {}, "searches": {"s": found}}, cpu_smoke=False) == []


def test_timing_waits_for_a_late_compile_until_the_hard_deadline():
  late = concurrent.futures.Future()
  runs = {"late": {"case": grid.Case("late", "pretrain", 2)}}
  rows, notes = {}, []
  timer = __import__("threading").Timer(0.3, lambda: late.set_result(None))
  timer.start()
  running = worker.await_compiles(runs, {"late": late}, time.time() + 0.05, rows, notes,
                                  hard_deadline=time.time() + 10)
  assert not running and notes == [] and "still compiling" in rows["late"]["status"]
