"""`export --format onnx`: for the discriminator, the generator and every task head, onnxruntime computes what the JAX
model computes (1e-4), on padded batches of several sizes and lengths (dynamic axes), and the directory runs as it
is: the tokenizer's output feeds the session."""

from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np
import pytest

import hf_export_testlib as lib
from cloud_fs import fake_gs  # noqa: F401 - the fixture
from korpat_jax import cli, files
from korpat_jax.export import cli as export_cli
from korpat_jax.model.heads import task_model

TOL = 1e-4
SKIP = "onnxruntime is not installed (pip install 'korpat-jax[onnx]')"
TASKS = [("token_classification", {0: "O", 1: "B-PS", 2: "I-PS", 3: "B-LC", 4: "I-LC"}),
         ("sequence_classification", {0: "entailment", 1: "neutral", 2: "contradiction"}),
         ("question_answering", None)]


def _onnxruntime():
  for name in ("torch", "transformers", "onnx", "onnxscript"):
    pytest.importorskip(name, reason=f"{name} is not installed (pip install 'korpat-jax[onnx]')")
  return pytest.importorskip("onnxruntime", reason=SKIP)


def _batches(cfg) -> list[dict[str, np.ndarray]]:
  """Padded batches of other sizes and lengths than the traced one (2 x 16), and one row at the full length."""
  full = lib.random_batch(cfg, seed=3, batch=2, length=cfg.max_position_embeddings)
  return [lib.random_batch(cfg, seed=1, batch=3, length=12), lib.random_batch(cfg, seed=2, batch=5, length=37),
          {k: v[:1] for k, v in full.items()}]


def _session(directory: str):
  return _onnxruntime().InferenceSession(os.path.join(directory, "model.onnx"), providers=["CPUExecutionProvider"])


def _run(session, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
  return session.run(None, {k: v.astype(np.int64) for k, v in batch.items()})


def _diff(a, b) -> float:
  return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


@pytest.fixture(scope="module")
def onnx_pretrained(tmp_path_factory):
  """A pretraining run (with tokenizer) exported as ONNX with --part both."""
  _onnxruntime()
  root = tmp_path_factory.mktemp("onnx_pretrained")
  cfg = lib.tiny_config(16, 32)
  params = lib.pretrainer_params(cfg, seed=11)
  workdir = lib.make_workdir(str(root / "run"), cfg, params, step=7,
                             tokenizer_dir=lib.write_vocab(str(root / "tokenizer")))
  out = str(root / "onnx")
  assert export_cli.main(["--workdir", workdir, "--out", out, "--part", "both", "--format", "onnx"]) == 0
  return cfg, params, out


def test_discriminator_and_generator_match_jax(onnx_pretrained):
  cfg, params, out = onnx_pretrained
  sessions = {part: _session(os.path.join(out, part)) for part in ("discriminator", "generator")}
  diffs = {part: 0.0 for part in sessions}
  for batch in _batches(cfg):
    flax = lib.flax_pretrainer_outputs(cfg, params, batch)
    for part, session in sessions.items():
      (logits,) = _run(session, batch)
      assert logits.shape == flax[f"{part}_logits"].shape
      diffs[part] = max(diffs[part], _diff(logits, flax[f"{part}_logits"]))
  print(f"max abs diff onnxruntime vs JAX: {diffs}")
  assert all(d <= TOL for d in diffs.values()), diffs


@pytest.mark.parametrize("task,id2label", TASKS, ids=[t for t, _ in TASKS])
def test_task_heads_match_jax(task, id2label, tmp_path):
  _onnxruntime()
  cfg = lib.tiny_config(16, 32)
  num_labels = len(id2label) if id2label else 2
  params = lib.task_params(cfg, task, num_labels, seed=5)
  workdir = lib.make_workdir(str(tmp_path / "run"), cfg, params, step=3, task=task, id2label=id2label)
  out = str(tmp_path / "onnx")
  assert export_cli.main(["--workdir", workdir, "--out", out, "--format", "onnx"]) == 0

  session = _session(out)
  names = [o.name for o in session.get_outputs()]
  assert names == (["start_logits", "end_logits"] if task == "question_answering" else ["logits"])
  apply = jax.jit(task_model(task, cfg, num_labels).apply)
  worst = 0.0
  for batch in _batches(cfg):
    flax = apply({"params": params}, batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    flax = list(flax) if task == "question_answering" else [flax]
    got = _run(session, batch)
    assert [g.shape for g in got] == [np.shape(f) for f in flax]
    worst = max(worst, *(_diff(g, f) for g, f in zip(got, flax)))
  print(f"max abs diff onnxruntime vs JAX, {task}: {worst}")
  assert worst <= TOL


def test_directory_runs_from_the_tokenizer(onnx_pretrained):
  """The HF files sit beside model.onnx; the tokenizer's dict feeds the session as it is; the axes are symbolic."""
  transformers = pytest.importorskip("transformers")
  cfg, _, out = onnx_pretrained
  directory = os.path.join(out, "discriminator")
  assert {"model.onnx", "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
          "README.md"} <= set(os.listdir(directory))
  with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
    assert json.load(f)["architectures"] == ["ElectraForPreTraining"]
  with open(os.path.join(directory, "README.md"), encoding="utf-8") as f:
    card = f.read()
  assert "## ONNX" in card and "session.run" in card
  session = _session(directory)
  inputs = {i.name: i for i in session.get_inputs()}
  assert sorted(inputs) == ["attention_mask", "input_ids", "token_type_ids"]
  assert all(isinstance(d, str) for i in inputs.values() for d in i.shape), [i.shape for i in inputs.values()]
  tokenizer = transformers.AutoTokenizer.from_pretrained(directory, trust_remote_code=True)
  feeds = dict(tokenizer(["합성세제액 을 사용 한다 .", "특허 청구 항"], padding=True, return_tensors="np"))
  (logits,) = session.run(None, feeds)
  assert logits.shape == feeds["input_ids"].shape and np.isfinite(logits).all()


def test_missing_onnxruntime_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
  cfg = lib.tiny_config()
  workdir = lib.make_workdir(str(tmp_path / "run"), cfg, lib.pretrainer_params(cfg, seed=3), step=7)
  monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
  out = tmp_path / "onnx"
  capsys.readouterr()
  assert cli.main(["export", "--workdir", workdir, "--out", str(out), "--format", "onnx"]) == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and "onnxruntime" in lines[0] and "pip install 'korpat-jax[onnx]'" in lines[0], lines
  assert not out.exists()


def test_export_to_a_bucket(fake_gs, tmp_path, monkeypatch):
  """gs:// --out: model.onnx and the README's ONNX section are uploaded, and the uploaded graph runs."""
  ort = _onnxruntime()
  from korpat_jax.export.onnx_export import export_onnx
  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "cache"))
  cfg = lib.tiny_config()
  params = lib.pretrainer_params(cfg, seed=2)
  workdir = lib.make_workdir(str(tmp_path / "run"), cfg, params, step=7)
  (done,) = export_onnx(workdir, f"{fake_gs}/exports/onnx")
  assert done.path == f"{fake_gs}/exports/onnx/model.onnx" and done.outputs == ("logits",)
  assert {"model.onnx", "model.safetensors", "config.json"} <= set(files.listdir(f"{fake_gs}/exports/onnx"))
  assert "## ONNX" in files.read_text(f"{fake_gs}/exports/onnx/README.md")
  session = ort.InferenceSession(files.read_bytes(done.path), providers=["CPUExecutionProvider"])
  batch = lib.random_batch(cfg, seed=4)
  (logits,) = _run(session, batch)
  assert _diff(logits, lib.flax_pretrainer_outputs(cfg, params, batch)["discriminator_logits"]) <= TOL


def test_int8_model_is_written_beside_and_close_to_the_exact_one(tmp_path, capsys):
  """--quantize int8: model.int8.onnx runs on the same feeds (dynamic axes), moves the outputs a little (another
  model: never equal), and the export and the card say by how much."""
  task, id2label = TASKS[0]  # per-token decisions: the agreement reads the unpadded tokens
  _onnxruntime()
  cfg = lib.tiny_config(16, 32)
  params = lib.task_params(cfg, task, len(id2label), seed=5)
  workdir = lib.make_workdir(str(tmp_path / "run"), cfg, params, step=3, task=task, id2label=id2label)
  out = str(tmp_path / "onnx")
  capsys.readouterr()
  assert export_cli.main(["--workdir", workdir, "--out", out, "--format", "onnx", "--quantize", "int8"]) == 0
  printed = capsys.readouterr().out
  assert "model.int8.onnx" in printed and "of decisions agree" in printed, printed
  exact = _session(out)
  int8 = _onnxruntime().InferenceSession(os.path.join(out, "model.int8.onnx"), providers=["CPUExecutionProvider"])
  assert os.path.getsize(os.path.join(out, "model.int8.onnx")) < os.path.getsize(os.path.join(out, "model.onnx"))
  for batch in _batches(cfg):
    (want,), (got,) = _run(exact, batch), _run(int8, batch)
    assert got.shape == want.shape and np.isfinite(got).all()
    assert 0 < _diff(got, want) <= 0.1 * max(1.0, float(np.abs(want).max()))
  with open(os.path.join(out, "README.md"), encoding="utf-8") as f:
    assert "model.int8.onnx" in f.read()


def test_quantize_needs_the_onnx_format(tmp_path, capsys):
  cfg = lib.tiny_config()
  workdir = lib.make_workdir(str(tmp_path / "run"), cfg, lib.pretrainer_params(cfg, seed=3), step=7)
  capsys.readouterr()
  assert cli.main(["export", "--workdir", workdir, "--out", str(tmp_path / "hf"), "--quantize", "int8"]) == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and "--format onnx" in lines[0], lines
  assert not (tmp_path / "hf").exists()
