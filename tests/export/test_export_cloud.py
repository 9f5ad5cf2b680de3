"""Export into a gs:// directory (an in-memory bucket through etils.epath), with the run's tokenizer recorded as a
gs:// URL: the same files, byte for byte, as an export into a local directory."""

from __future__ import annotations

import os

import pytest

import hf_export_testlib as lib
from cloud_fs import fake_gs, stored_files  # noqa: F401 - the fixture
from korpat_jax import files
from korpat_jax.errors import KorpatError
from korpat_jax.export.to_hf import export


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  """A local run directory (model.json + a checkpoint) of a tiny pretrainer."""
  root = tmp_path_factory.mktemp("cloud_export")
  cfg = lib.tiny_config()
  lib.write_vocab(str(root / "tok"))
  return str(root), lib.make_workdir(str(root / "run"), cfg, lib.pretrainer_params(cfg), step=7)


def _local_files(directory: str) -> dict[str, bytes]:
  return {rel: open(os.path.join(directory, rel), "rb").read() for rel in files.walk_files(directory)}


def test_export_to_a_bucket_writes_what_a_local_export_writes(run_dir, fake_gs, tmp_path, monkeypatch):
  root, workdir = run_dir
  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "cache"))
  files.upload_tree(os.path.join(root, "tok"), f"{fake_gs}/tok")
  info = files.read_json(os.path.join(workdir, "model.json"))
  info["tokenizer_dir"] = f"{fake_gs}/tok"  # the run read its tokenizer from the bucket
  files.write_json(os.path.join(workdir, "model.json"), info)

  local_out, remote_out = str(tmp_path / "hf"), f"{fake_gs}/exports/hf"
  export(workdir, local_out, part="both")
  done = export(workdir, remote_out, part="both")
  assert [d.directory for d in done] == [f"{remote_out}/discriminator", f"{remote_out}/generator"]
  local = _local_files(local_out)
  assert {"discriminator/model.safetensors", "discriminator/config.json", "discriminator/vocab.txt",
          "discriminator/tokenizer_config.json", "generator/README.md"} <= set(local)
  assert sorted(stored_files()) == sorted([f"{fake_gs}/tok/vocab.txt"] + [f"{remote_out}/{rel}" for rel in local])
  for rel, data in local.items():
    assert files.read_bytes(f"{remote_out}/{rel}") == data, rel

  with pytest.raises(KorpatError, match=rf"^--out {remote_out}: not empty; choose another directory or pass "
                                        "--overwrite"):
    export(workdir, remote_out)
  export(workdir, remote_out, overwrite=True)  # the discriminator alone, in place of both
  assert sorted(files.listdir(remote_out)) == sorted(os.path.basename(rel) for rel in local
                                                      if rel.startswith("discriminator/"))
