"""benchmarks/transfer/domain_adaptation (`python -m benchmarks.transfer.domain_adaptation`): the domain corpus it
builds (the CPC evaluation documents never in it), its table, and the whole path end to end with --smoke (slow)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from helpers import REPO

if str(REPO) not in sys.path:  # `benchmarks` is a package at the repository root
  sys.path.insert(0, str(REPO))

from benchmarks.transfer import domain_adaptation as da  # noqa: E402


def test_domain_corpus_is_generated_text_and_cpc_training_documents_never_evaluation_ones(tmp_path):
  counts = da.write_corpus(tmp_path / "a.jsonl", 12, 3)
  docs = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
  train, evaluation = da.cpc_rows("cpc_train.tsv"), da.cpc_rows("cpc_eval.tsv")
  assert counts["generated"] == 12 and counts["cpc_train"] == len(train) and len(docs) == 12 + len(train)
  abstracts = {d["abstract"] for d in docs}
  assert {r["abstract"] for r in train} <= abstracts
  assert not abstracts & {r["abstract"] for r in evaluation}
  assert counts["characters"] == sum(len(d["title"]) + len(d["abstract"]) for d in docs)
  da.write_corpus(tmp_path / "b.jsonl", 12, 3)
  assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_table_has_a_row_per_arm_with_the_seed_range():
  arm = dict(vocab=16000, tokens_per_document=170.0, unk_share=0.0025, truncated_at_128=0.9)
  results = {"machine": "test", "general": "RUN", "corpus": {"generated": 10, "cpc_train": 160, "characters": 999},
             "settings": {"add": 2000, "steps": 1159, "seeds": "0,1,2", "smoke": False},
             "arms": [{"arm": "general", **arm, "cpc_accuracy": [0.3, 0.4, 0.5], "cpc_mean": 0.4},
                      {"arm": "continued", **arm, "gen_loss": 5.0, "disc_loss": 0.3, "disc_precision": 0.6,
                       "disc_recall": 0.2, "cpc_accuracy": [], "cpc_mean": None}]}
  text = da.markdown(results)
  assert "| general | 16,000 | 170.0 | 0.25% | 90% | – | – | – | – | 0.400 [0.300, 0.500] |" in text
  assert "| continued | 16,000 | 170.0 | 0.25% | 90% | 5.000 | 0.3000 | 0.600 | 0.200 | – |" in text
  assert "cpc_cpu" in text


def test_a_general_run_without_a_tokenizer_is_refused_in_one_line(tmp_path):
  with pytest.raises(SystemExit, match="model.json not found"):
    da.DomainAdaptation(da.parse_args(["--general", str(tmp_path), "--out", str(tmp_path / "o")]))
  (tmp_path / "model.json").write_text("{}")
  with pytest.raises(SystemExit, match="--tok: no vocab.txt"):
    da.DomainAdaptation(da.parse_args(["--general", str(tmp_path), "--out", str(tmp_path / "o")]))


@pytest.mark.slow  # ~3 min: export, extend, 2 imports, 2 prepares, 2 short pretrainings, 4 fine-tunings
def test_smoke_run_takes_every_arm_to_a_cpc_score(tmp_path, pretrained):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([sys.executable, "-m", "benchmarks.transfer.domain_adaptation", "--general", str(pretrained),
                           "--out", str(tmp_path / "da"), "--smoke"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1200)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  results = json.loads((tmp_path / "da" / "results.json").read_text())
  arms = {r["arm"]: r for r in results["arms"]}
  assert list(arms) == list(da.ARMS)
  assert arms["general+ext"]["vocab"] == arms["general"]["vocab"] + da.SMOKE["add"]
  assert arms["general+ext"]["tokens_per_document"] < arms["general"]["tokens_per_document"]
  for name in ("continued", "continued+ext"):
    assert arms[name]["steps"] == da.SMOKE["steps"]
    assert all(math.isfinite(arms[name][k]) for k in ("gen_loss", "disc_loss")), arms[name]
  for name, arm in arms.items():
    assert len(arm["cpc_accuracy"]) == 1 and 0.0 <= arm["cpc_accuracy"][0] <= 1.0, (name, arm)
  model = json.loads((tmp_path / "da" / "finetune" / "continued+ext" / "seed0" / "model.json").read_text())
  assert model["model"]["vocab_size"] == arms["general+ext"]["vocab"]
