"""Bad input to export / import-hf: one clear line through the CLI, never a traceback."""

from __future__ import annotations

import json
import re
import os
import shutil

import pytest

import hf_export_testlib as lib
from korpat_jax import cli
from korpat_jax.export import hf_names


@pytest.fixture(scope="module")
def run_and_export(tmp_path_factory):
  root = tmp_path_factory.mktemp("errors")
  cfg = lib.tiny_config()
  workdir = lib.make_workdir(str(root / "run"), cfg, lib.pretrainer_params(cfg, seed=3), step=7)
  out = str(root / "hf")
  assert cli.main(["export", "--workdir", workdir, "--out", out]) == 0
  return workdir, out


def _error(capsys, argv: list[str]) -> str:
  capsys.readouterr()
  assert cli.main(argv) == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1, lines
  return lines[0]


def _copy(src: str, dst: str) -> str:
  shutil.copytree(src, dst)
  return dst


def test_export_bad_workdir_and_step(run_and_export, tmp_path, capsys):
  workdir, _ = run_and_export
  assert "model.json: missing" in _error(capsys, ["export", "--workdir", str(tmp_path), "--out", str(tmp_path / "o")])
  no_ckpt = str(tmp_path / "no_ckpt")
  os.makedirs(no_ckpt)
  shutil.copy(os.path.join(workdir, "model.json"), no_ckpt)
  assert "no checkpoints directory" in _error(capsys, ["export", "--workdir", no_ckpt, "--out", str(tmp_path / "o")])
  message = _error(capsys, ["export", "--workdir", workdir, "--step", "99", "--out", str(tmp_path / "o")])
  assert "no checkpoint at step 99" in message and "[7]" in message


def test_export_partial_checkpoint(run_and_export, tmp_path, capsys):
  workdir = _copy(run_and_export[0], str(tmp_path / "run"))
  state = os.path.join(workdir, "checkpoints", "7", "state")
  for name in os.listdir(state):  # the array data is gone, the metadata is left
    if name.startswith("ocdbt") or name == "d":
      shutil.rmtree(os.path.join(state, name))
  message = _error(capsys, ["export", "--workdir", workdir, "--out", str(tmp_path / "o")])
  assert "cannot read the checkpoint" in message


def test_export_config_does_not_match_weights(run_and_export, tmp_path, capsys):
  workdir = _copy(run_and_export[0], str(tmp_path / "run"))
  path = os.path.join(workdir, "model.json")
  with open(path, encoding="utf-8") as f:
    info = json.load(f)
  info["model"]["discriminator"]["intermediate_size"] = 48
  with open(path, "w", encoding="utf-8") as f:
    json.dump(info, f)
  message = _error(capsys, ["export", "--workdir", workdir, "--out", str(tmp_path / "o")])
  assert re.search(r"parameter discriminator/layer_0/intermediate/dense/(kernel|bias) has shape \[(32, )?64\], "
                   r"the model config needs \[(32, )?48\]", message), message


def test_export_generator_absent(run_and_export, tmp_path, capsys):
  _, out = run_and_export
  imported = str(tmp_path / "imported")
  assert cli.main(["import-hf", "--model", out, "--out", imported]) == 0
  message = _error(capsys, ["export", "--workdir", imported, "--out", str(tmp_path / "o"), "--part", "generator"])
  assert "no generator parameters" in message


def test_import_config_does_not_match_weights(run_and_export, tmp_path, capsys):
  hf_dir = _copy(run_and_export[1], str(tmp_path / "hf"))
  path = os.path.join(hf_dir, "config.json")
  with open(path, encoding="utf-8") as f:
    config = json.load(f)
  config["intermediate_size"] = 80
  with open(path, "w", encoding="utf-8") as f:
    json.dump(config, f)
  message = _error(capsys, ["import-hf", "--model", hf_dir, "--out", str(tmp_path / "w")])
  assert re.search(r"electra\.encoder\.layer\.0\.intermediate\.dense\.(weight|bias) has shape \[64(, 32)?\], "
                   r"the config needs \[80(, 32)?\]", message), message


def test_import_missing_weight_and_bad_dirs(run_and_export, tmp_path, capsys):
  from safetensors.numpy import load_file, save_file
  hf_dir = _copy(run_and_export[1], str(tmp_path / "hf"))
  weights = os.path.join(hf_dir, "model.safetensors")
  state = load_file(weights)
  del state["electra.encoder.layer.1.output.LayerNorm.weight"]
  save_file(state, weights, metadata={"format": "pt"})
  message = _error(capsys, ["import-hf", "--model", hf_dir, "--out", str(tmp_path / "w")])
  assert "missing weight electra.encoder.layer.1.output.LayerNorm.weight" in message
  assert "config.json: missing" in _error(capsys, ["import-hf", "--model", str(tmp_path), "--out",
                                                   str(tmp_path / "w")])
  os.remove(weights)
  assert "no model.safetensors" in _error(capsys, ["import-hf", "--model", hf_dir, "--out", str(tmp_path / "w")])
  workdir = run_and_export[0]
  assert "already holds checkpoints" in _error(capsys, ["import-hf", "--model", run_and_export[1], "--out", workdir])


def test_name_mapping_is_one_to_one():
  """Every ElectraPretrainer and task parameter gets a distinct HF name, and the names are HF's."""
  from korpat_jax.export import hf_config
  cfg = lib.tiny_config()
  for kind in hf_config.ARCHITECTURES:
    expected = hf_config.expected_shapes(cfg, kind, 3)
    names = [hf_names.hf_name(p, hf_config.layout(kind)) for p in expected]
    assert len(set(names)) == len(names), kind
  names = {hf_names.hf_name(p, hf_config.layout("discriminator")) for p in hf_config.expected_shapes(cfg,
                                                                                                  "discriminator")}
  assert {"electra.embeddings_project.weight", "electra.encoder.layer.1.attention.self.query.weight",
          "electra.encoder.layer.0.attention.output.LayerNorm.bias", "discriminator_predictions.dense_prediction.bias",
          "electra.embeddings.LayerNorm.weight"} <= names


def test_export_refuses_a_non_empty_out_unless_overwrite(run_and_export, capsys, tmp_path):
  workdir, out = run_and_export[0], str(tmp_path / "hf")
  assert cli.main(["export", "--workdir", workdir, "--out", out]) == 0
  (tmp_path / "hf" / "stale.txt").write_text("from another export")
  message = _error(capsys, ["export", "--workdir", workdir, "--out", out])
  assert "not empty" in message and "--overwrite" in message
  assert cli.main(["export", "--workdir", workdir, "--out", out, "--overwrite"]) == 0
  assert not (tmp_path / "hf" / "stale.txt").exists() and (tmp_path / "hf" / "config.json").exists()
