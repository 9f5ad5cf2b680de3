"""benchmarks/transfer (`python -m benchmarks.transfer`): its pure parts directly, and the whole path end to end with
--smoke (data slices, tokenizer, records, both frameworks' pretraining, import-hf, every fine-tuning set), so the
proof-of-value benchmark cannot rot."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from helpers import REPO

if str(REPO) not in sys.path:  # `benchmarks` is a package at the repository root
  sys.path.insert(0, str(REPO))

from benchmarks.transfer import data, pretrain, report  # noqa: E402

SETS = ("nsmc", "klue_ner", "klue_nli", "cpc")


def test_movies_split_by_a_stable_hash_80_10_10():
  parts = [data.movie_part(str(movie)) for movie in range(10000, 14000)]
  assert parts == [data.movie_part(str(movie)) for movie in range(10000, 14000)]
  share = {p: parts.count(p) / len(parts) for p in ("pretrain", "train", "eval")}
  assert share["pretrain"] == pytest.approx(0.8, abs=0.03)
  assert share["train"] == pytest.approx(0.1, abs=0.02) and share["eval"] == pytest.approx(0.1, abs=0.02)


def test_sentiment_follows_nsmc_and_samples_are_balanced():
  import random
  assert [data.sentiment(r) for r in (1, 4, 5, 8, 9, 10)] == ["neg", "neg", None, None, "pos", "pos"]
  rows = [(f"r{i}", "pos" if i % 3 else "neg") for i in range(300)]
  sample = data.balanced_sample(rows, 100, random.Random(0), "test")
  assert sum(label == "pos" for _, label in sample) == 50 and len(set(sample)) == 100


def test_nli_is_split_by_premise_so_no_premise_is_on_both_sides(tmp_path):
  examples = [{"premise": f"p{i}", "hypothesis": f"h{i}{label}", "gold_label": label}
              for i in range(50) for label in ("entailment", "neutral", "contradiction")]
  source = tmp_path / "nli.json"
  source.write_text(json.dumps(examples))
  counts = data.build_klue_nli(source, tmp_path, data.Sizes())
  assert counts == {"klue_nli_train": 120, "klue_nli_eval": 30}
  read = lambda name: [line.split("\t") for line in (tmp_path / name).read_text().splitlines()[1:]]
  train, evaluation = read("klue_nli_train.tsv"), read("klue_nli_eval.tsv")
  assert not {row[0] for row in train} & {row[0] for row in evaluation}
  assert sorted(row[1] for row in train + evaluation) == sorted(ex["hypothesis"] for ex in examples)


def test_budgets_become_step_counts():
  assert pretrain.budget_steps(15, 0.5, 0) == 1800
  assert pretrain.budget_steps(0.001, 10.0, 0) == 1
  assert pretrain.budget_steps(3, None, 5) == 15
  with pytest.raises(SystemExit, match="no measured step time"):
    pretrain.budget_steps(15, None, 0)


def test_overrides_are_checked_and_hashed_into_run_names():
  assert pretrain.parse_overrides(["objective.temperature=3.0"], "--set") == (("objective.temperature", "3.0"),)
  with pytest.raises(SystemExit, match="expected KEY=VALUE"):
    pretrain.parse_overrides(["objective.temperature"], "--set")
  with pytest.raises(SystemExit, match="set by the benchmark"):
    pretrain.parse_overrides(["train.num_steps=5"], "--set", pretrain.FROZEN_KEYS)
  a = pretrain.Recipe((("objective.temperature", "3.0"),), 2000, ())
  b = pretrain.Recipe((("objective.temperature", "1.0"),), 2000, ())
  assert pretrain.Recipe((), 2000, ()).suffix == "" and a.suffix != b.suffix
  with pytest.raises(SystemExit, match="unknown key"):
    pretrain.load_recipe((("objective.temprature", "3.0"),))


def test_table_shows_mean_and_seed_range():
  results = {"sets": ["nsmc"], "budget_unit": "minutes", "rows": [("random", 0.0), ("korpat", 15.0)],
             "pretraining": [{"framework": "korpat", "budget": 15.0, "steps": 900, "step_time": 1.0,
                              "gen_loss": 6.0, "disc_loss": 0.3, "disc_precision": 0.6, "disc_recall": 0.4,
                              "base_rate_loss": 0.42}],
             "summary": report.summarize([
                 {"framework": "korpat", "budget": 15.0, "set": "nsmc", "metric": "accuracy", "score": s}
                 for s in (0.7, 0.8, 0.9)] + [
                 {"framework": "random", "budget": 0.0, "set": "nsmc", "metric": "accuracy", "score": None}])}
  text = report.table(results)
  assert "| korpat-jax | 15 | 900 | 1000 | 6.000 | 0.3000 | 0.600 | 0.400 | 0.4200 | 0.800 [0.700, 0.900] |" in text
  assert text.splitlines()[2].endswith("| n/a |")


def test_a_missing_seed_leaves_the_finished_ones_in_the_table():
  rows = [{"framework": "korpat", "budget": 15.0, "set": "nsmc", "metric": "accuracy", "score": 0.8},
          {"framework": "korpat", "budget": 15.0, "set": "nsmc", "score": None, "failed": True}]
  for order in (rows, rows[::-1]):
    (summary,) = report.summarize(order)
    assert (summary["metric"], summary["n"], summary["mean"]) == ("accuracy", 1, 0.8)


def test_smoke_run_writes_the_table_results_and_plot(tmp_path, shared_data):
  for module in ("torch", "transformers", "matplotlib"):
    if importlib.util.find_spec(module) is None:
      pytest.skip(f"{module} is not installed")
  needed = (data.NSMC, data.KLUE_NER, data.KLUE_NLI)
  if any(not (shared_data / name).is_file() for name in needed):
    pytest.skip(f"{shared_data} lacks one of {', '.join(needed)}")
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([sys.executable, "-m", "benchmarks.transfer", "--out", str(tmp_path), "--smoke",
                           "--data", str(shared_data)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert "| random init | 0 |" in result.stdout and "| PyTorch (HF) peer | 1 |" in result.stdout, result.stdout[-2000:]

  results = json.loads((tmp_path / "results.json").read_text())
  assert results["sets"] == list(SETS) and results["seeds"] == [0] and not results["failed"]
  assert sorted((r["framework"], r["budget"]) for r in results["pretraining"]) == [
      ("korpat", 1.0), ("random", 0.0), ("torch", 1.0)]
  for row in results["pretraining"]:
    if row["framework"] != "random":
      assert row["steps"] == 5
      for key in ("gen_loss", "disc_loss", "disc_precision", "disc_recall", "base_rate_loss", "step_time"):
        assert math.isfinite(row[key]), (row["framework"], key, row[key])
  runs = {(r["framework"], r["set"], r["seed"]): r for r in results["finetuning"]}
  assert set(runs) == {(f, s, 0) for f in ("random", "korpat", "torch") for s in SETS}
  for key, run in runs.items():
    assert run["score"] is not None and math.isfinite(run["score"]), key
    assert run["metric"] == ("f1" if key[1] == "klue_ner" else "accuracy")

  table = (tmp_path / "transfer.md").read_text()
  assert all(f"| {name} |" in table for name in ("random init", "korpat-jax", "PyTorch (HF) peer"))
  header = next(line for line in table.splitlines() if line.startswith("| init |"))
  assert all(f"| {s} " in header for s in SETS)
  assert (tmp_path / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

  # The HF peer was fine-tuned through korpat-jax with the benchmark's tokenizer.
  torch_label = next(r["label"] for r in results["pretraining"] if r["framework"] == "torch")
  model = json.loads((tmp_path / "finetune" / torch_label / "cpc" / "seed0" / "model.json").read_text())
  assert model["tokenizer_dir"] == str(tmp_path / "tok")


def test_results_files_are_named_by_the_users_recipe_not_the_smoke_settings(tmp_path):
  from benchmarks.transfer.__main__ import Benchmark, parse_args
  frameworks = ["--frameworks", "korpat"]
  assert Benchmark(parse_args(["--out", str(tmp_path), "--smoke", *frameworks])).results_suffix == ""
  assert Benchmark(parse_args(["--out", str(tmp_path), *frameworks])).results_suffix == ""
  other = Benchmark(parse_args(["--out", str(tmp_path), "--set", "objective.temperature=3.0", *frameworks]))
  assert other.results_suffix == other.recipe.suffix != ""
