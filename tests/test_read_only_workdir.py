"""A run directory that cannot be written: one line before anything else happens, unless its run is finished (then
it says so); `export` and `predict` read a finished read-only run as before.

Read-only for real, root included (tests may run as root, whom permission bits do not stop): a read-only bind
mount of the directory onto itself; without mount rights, permission bits for a user other than root; else skip."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

import pytest

from helpers import DEMO_SETS, REPO, finetune_config
from korpat_jax import cli
from korpat_jax.train import train


@pytest.fixture
def read_only():
  """`read_only(directory)` makes `directory` unwritable until the test ends."""
  mounted, chmodded = [], []

  def make(directory) -> None:
    directory = str(directory)
    bind = subprocess.run(["mount", "--bind", directory, directory], capture_output=True)
    if bind.returncode == 0:
      mounted.append(directory)
      if subprocess.run(["mount", "-o", "remount,ro,bind", directory], capture_output=True).returncode == 0:
        return
    if os.geteuid() == 0:
      pytest.skip(f"cannot make {directory} read-only here: no read-only bind mount, and root ignores permissions")
    for root, dirs, _ in os.walk(directory):
      chmodded.extend(os.path.join(root, d) for d in dirs)
    chmodded.append(directory)
    for path in chmodded:
      os.chmod(path, 0o555)

  yield make
  for directory in reversed(mounted):
    subprocess.run(["umount", directory], check=False)
  for path in chmodded:
    os.chmod(path, 0o755)


@pytest.fixture
def console(capsys):
  """The stderr of an in-process `korpat-jax` command (its logging set up as the command line does), the test's own
  logging restored after it."""
  root = logging.getLogger()
  handlers, level = root.handlers[:], root.level

  def read() -> list[str]:
    return capsys.readouterr().err.strip().splitlines()

  yield read
  for handler in root.handlers[:]:
    root.removeHandler(handler)
  for handler in handlers:
    root.addHandler(handler)
  root.setLevel(level)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, demo_tok_dir):
  """A finished CPC fine-tuning run whose length came from its training set (train.num_steps -1: 160 examples,
  batch 16, half an epoch: 5 steps), as model.json records it."""
  workdir = tmp_path_factory.mktemp("finetuned") / "run"
  train(finetune_config("cpc_tiny", **_overrides(demo_tok_dir)), str(workdir))
  return workdir


def _overrides(tok_dir, **more):
  return {"data.train": str(DEMO_SETS / "cpc_train.tsv"), "data.eval": str(DEMO_SETS / "cpc_eval.tsv"),
          "data.text_fields": "title,abstract", "data.tokenizer_dir": str(tok_dir), "model.vocab_size": 8000,
          "model.embedding_size": 16, "model.hidden_size": 16, "model.num_layers": 1, "model.num_heads": 2,
          "model.intermediate_size": 32, "model.max_position_embeddings": 64, "train.num_epochs": 0.5,
          "train.eval_every": 0, **more}


def _finetune(workdir, tok_dir, **more):
  return ["finetune", "--config", f"{REPO}/configs/finetune.py:cpc_tiny", "--workdir", str(workdir),
          *(f"--config.{key}={value}" for key, value in _overrides(tok_dir, **more).items())]


def _read_only_copy(run, tmp_path, read_only):
  copy = tmp_path / "ro" / "run"
  shutil.copytree(run, copy)
  read_only(tmp_path / "ro")
  with pytest.raises(OSError):
    (copy / "probe").write_text("")  # really read-only
  return copy


def test_a_finished_run_in_a_read_only_workdir_says_it_is_finished(finished_run, tmp_path, read_only, demo_tok_dir,
                                                                    console):
  workdir = _read_only_copy(finished_run, tmp_path, read_only)
  for more in ({}, {"train.num_steps": 5}):  # the length model.json recorded; the config's own
    assert cli.main(_finetune(workdir, demo_tok_dir, **more)) == 0
    lines = console()
    assert len(lines) == 1 and "already trained to step 5 (5 steps): nothing to do" in lines[0], lines
    assert f"{workdir} cannot be written" in lines[0]


def test_an_unfinished_run_in_a_read_only_workdir_stops_in_one_line_first(finished_run, tmp_path, read_only,
                                                                          demo_tok_dir, console):
  workdir = _read_only_copy(finished_run, tmp_path, read_only)
  for target, more, fix in ((workdir, {"train.num_steps": 8}, "copy it to a writable --workdir and rerun there to "
                             "resume"), (workdir.parent / "new_run", {}, "use a writable --workdir")):
    assert cli.main(_finetune(target, demo_tok_dir, **more)) == 2
    lines = console()
    assert len(lines) == 1, lines  # nothing before it: no mesh, no input, no lock
    assert lines[0].startswith(f"korpat-jax finetune: error: {target}: the run directory cannot be written ("), lines
    assert lines[0].endswith(f"); make it writable (remount it read-write, fix its permissions), or {fix}"), lines
  assert not (workdir.parent / "new_run").exists()


def test_predict_and_export_read_a_read_only_run(finished_run, tmp_path, read_only):
  from korpat_jax.export import cli as export_cli
  from korpat_jax.finetune.predict import predict
  workdir = _read_only_copy(finished_run, tmp_path, read_only)
  out = tmp_path / "predictions.jsonl"
  assert predict(str(workdir), str(DEMO_SETS / "cpc_eval.tsv"), str(out)) == 48
  assert len(out.read_text(encoding="utf-8").splitlines()) == 48
  assert export_cli.main(["--workdir", str(workdir), "--out", str(tmp_path / "hf")]) == 0
  assert (tmp_path / "hf" / "config.json").is_file()
