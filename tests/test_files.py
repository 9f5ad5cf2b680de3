"""korpat_jax.files on local paths and on a non-local epath file system (an in-memory gs:// bucket, no network)."""

from __future__ import annotations

import os

import pytest

from cloud_fs import fake_gs, stored_files  # noqa: F401 - the fixture
from korpat_jax import files
from korpat_jax.errors import ConfigError, KorpatError


def test_resolve_keeps_urls_and_refuses_schemes_epath_does_not_resolve(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert files.resolve("run") == str(tmp_path / "run")
  assert files.resolve("~/x") == os.path.expanduser("~/x")
  assert files.resolve("gs://bucket/run/") == "gs://bucket/run"
  assert files.resolve("") == ""
  with pytest.raises(KorpatError, match=r"^memory://x: unsupported URL scheme memory:// \(supported: gs://"):
    files.resolve("memory://x")
  assert files.join("gs://b/run", "eval", "metrics.json") == "gs://b/run/eval/metrics.json"


def test_local_atomic_write_leaves_the_old_file_when_the_block_fails(tmp_path):
  target = tmp_path / "model.json"
  files.write_json(target, {"a": 1})
  with pytest.raises(RuntimeError):
    with files.atomic_open(target) as f:
      f.write('{"half": ')
      raise RuntimeError("killed")
  assert files.read_json(target) == {"a": 1}
  assert os.listdir(tmp_path) == ["model.json"]  # no temporary file left behind


def test_remote_atomic_write_uploads_only_a_complete_file(fake_gs):
  target = f"{fake_gs}/run/model.json"
  with pytest.raises(RuntimeError):
    with files.atomic_open(target) as f:
      f.write('{"half": ')
      raise RuntimeError("killed")
  assert stored_files() == []
  files.write_json(target, {"tokenizer_dir": "gs://b/tok", "텍스트": "한국어"})
  assert stored_files() == [target]
  assert files.read_json(target) == {"tokenizer_dir": "gs://b/tok", "텍스트": "한국어"}
  with files.atomic_path(f"{fake_gs}/run/model.safetensors") as local:  # a writer that wants a local file name
    assert not files.is_remote(local)
    with open(local, "wb") as f:
      f.write(b"\x00\x01")
  assert files.read_bytes(f"{fake_gs}/run/model.safetensors") == b"\x00\x01"


def test_directories_on_an_object_store(fake_gs):
  run = f"{fake_gs}/run"
  files.makedirs(f"{run}/checkpoints")  # nothing to create on an object store
  assert not files.isdir(f"{run}/checkpoints") and files.listdir(f"{run}/checkpoints") == []
  files.write_text(f"{run}/checkpoints/7/state/_METADATA", "{}")
  files.write_text(f"{run}/checkpoints/7/korpat_checksums.json", "{}")
  assert files.isdir(f"{run}/checkpoints/7") and files.isfile(f"{run}/checkpoints/7/state/_METADATA")
  assert files.listdir(f"{run}/checkpoints") == ["7"]
  assert files.walk_files(f"{run}/checkpoints") == ["7/korpat_checksums.json", "7/state/_METADATA"]
  assert files.file_size(f"{run}/checkpoints/7/state/_METADATA") == 2
  # epath's own rename wants the target's parent to exist, which a prefix never does before a file is below it
  files.rename(f"{run}/checkpoints/7", f"{run}/checkpoints/_broken/7")
  assert stored_files() == [f"{run}/checkpoints/_broken/7/korpat_checksums.json",
                            f"{run}/checkpoints/_broken/7/state/_METADATA"]
  files.rmtree(run)
  assert stored_files() == [] and not files.exists(run)


def test_rename_between_local_and_remote(tmp_path, fake_gs):
  local = tmp_path / "predictions.jsonl"
  local.write_text('{"id": 1}\n')
  files.rename(str(local), f"{fake_gs}/out/predictions.jsonl")
  assert not local.exists() and files.read_text(f"{fake_gs}/out/predictions.jsonl") == '{"id": 1}\n'


def test_local_copy_of_a_remote_directory_is_cached_and_refreshed(tmp_path, fake_gs, monkeypatch):
  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "cache"))
  tok = f"{fake_gs}/tok"
  files.write_text(f"{tok}/vocab.txt", "[PAD]\n[UNK]\n")
  files.write_text(f"{tok}/dic/user.dic", "x")
  assert files.local_copy(str(tmp_path)) == str(tmp_path)  # a local directory is used where it is
  local = files.local_copy(tok, "tokenizer directory")
  assert local.startswith(str(tmp_path / "cache"))
  assert open(os.path.join(local, "vocab.txt")).read() == "[PAD]\n[UNK]\n"
  assert open(os.path.join(local, "dic", "user.dic")).read() == "x"
  copies = []
  monkeypatch.setattr(files, "copy_file", lambda src, dst, real=files.copy_file: (copies.append(src), real(src, dst)))
  assert files.local_copy(tok) == local and copies == []  # unchanged: the cached copy
  files.write_text(f"{tok}/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n")
  copies.clear()
  assert files.local_copy(tok) == local and sorted(copies) == [f"{tok}/dic/user.dic", f"{tok}/vocab.txt"]
  assert open(os.path.join(local, "vocab.txt")).read().split() == ["[PAD]", "[UNK]", "[CLS]"]
  with pytest.raises(KorpatError, match=r"^gs://korpat-test-bucket/nothing: no such tokenizer directory$"):
    files.local_copy(f"{fake_gs}/nothing", "tokenizer directory")


def test_require_local_names_the_key():
  files.require_local("/data/records", "config.data.records_dir", "local only")
  with pytest.raises(ConfigError, match=r"^config.data.records_dir=gs://b/r: local only$"):
    files.require_local("gs://b/r", "config.data.records_dir", "local only")


def test_mirror_uploads_changed_files_whole(fake_gs, tmp_path):
  assert files.Mirror(str(tmp_path)).local == str(tmp_path)  # local: the directory itself
  mirror = files.Mirror(f"{fake_gs}/run/tensorboard", interval_s=3600)
  with open(mirror.path("events.1"), "w") as f:
    f.write("a")
  mirror.sync()
  assert stored_files() == []  # within the interval
  mirror.sync(force=True)
  assert files.read_text(f"{fake_gs}/run/tensorboard/events.1") == "a"
  with open(mirror.path("events.1"), "a") as f:
    f.write("b")
  local = mirror.local
  mirror.close()
  assert files.read_text(f"{fake_gs}/run/tensorboard/events.1") == "ab" and not os.path.exists(local)
  mirror.close()  # a second close (a failing run's cleanup after its own) does nothing
