"""`prepare`'s writes: a full disk or a failed write is one line naming the file and the free space, and the rerun
resumes; temporary files of a killed prepare are removed by the rerun."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import types

import pytest
from array_record.python import array_record_module

from corpus_fakes import WordHashFactory, write_corpus
from korpat_jax import run_lock
from korpat_jax.corpus import cli, local, manifest, records, writer
from korpat_jax.errors import KorpatError

ENOSPC = os.strerror(errno.ENOSPC)
RERUN = "once fixed, rerun the same command: it resumes where this one stopped"


@pytest.fixture
def prepare(tmp_path, monkeypatch):
  """`korpat-jax prepare` (in this process, the word-hash tokenizer) on a small corpus into tmp_path/out."""
  corpus = write_corpus(tmp_path / "corpus", n_docs=30, damaged=False)
  (tmp_path / "tok").mkdir()
  monkeypatch.setattr(cli, "MWPTokenizerFactory", lambda directory: WordHashFactory())

  def run(out: str = str(tmp_path / "out")) -> int:
    return cli.main(["--corpus", corpus, "--tokenizer", str(tmp_path / "tok"), "--out", out, "--seq-len", "32",
                     "--records-per-shard", "10", "--workers", "0", "--quiet"])
  return run


def _shards(out) -> dict[str, bytes]:
  return {n: open(os.path.join(out, n), "rb").read() for n in sorted(os.listdir(out)) if n.endswith(".array_record")}


def _failing_writers(monkeypatch, options: str, error: Exception, after: int = 3) -> list[str]:
  """ArrayRecord writers opened with `options` fail as on a full disk: `error` at the `after`-th write, or at close
  (where ArrayRecord reports it: its writes are buffered) when `error` is a RuntimeError. Returns their paths."""
  opened = []

  class Writer:
    def __init__(self, path: str, writer_options: str):
      self._real = array_record_module.ArrayRecordWriter(path, writer_options)
      self._fails = writer_options == options
      self._writes = 0
      if self._fails:
        opened.append(path)

    def write(self, record: bytes) -> None:
      self._writes += 1
      if self._fails and isinstance(error, OSError) and self._writes == after:
        raise error
      self._real.write(record)

    def close(self) -> None:
      self._real.close()
      if self._fails and isinstance(error, RuntimeError):
        raise RuntimeError(str(error).format(path=opened[-1]))

  fake = types.SimpleNamespace(ArrayRecordWriter=Writer, ArrayRecordReader=array_record_module.ArrayRecordReader)
  monkeypatch.setattr(writer, "array_record_module", fake)
  monkeypatch.setattr(local, "array_record_module", fake)
  return opened


# What ArrayRecord raises on a full disk (measured on a full tmpfs), and a plain OSError.
RIEGELI_ENOSPC = RuntimeError(f"write() failed: {ENOSPC}; writing {{path}}; at byte 114688; "
                              "Failed to close chunk_writer")
OS_ENOSPC = OSError(errno.ENOSPC, ENOSPC)


@pytest.mark.parametrize("error", [RIEGELI_ENOSPC, OS_ENOSPC], ids=["riegeli", "oserror"])
@pytest.mark.parametrize("options,name", [(writer.SHARD_OPTIONS, r"train-00000-of-\d{5}\.array_record"),
                                          (writer.SPILL_OPTIONS, r"\.prepare-work/f000000\.(train|eval)\.spill")],
                         ids=["shard", "intermediate"])
def test_a_full_disk_is_one_line_naming_the_file_and_the_rerun_resumes(prepare, tmp_path, monkeypatch, error,
                                                                        options, name):
  reference = str(tmp_path / "reference")
  assert prepare(reference) == 0
  out = str(tmp_path / "out")
  with monkeypatch.context() as m:
    _failing_writers(m, options, error)
    with pytest.raises(KorpatError) as raised:
      prepare(out)
  message = str(raised.value)
  assert "\n" not in message
  assert re.fullmatch(rf"{out}/{name}: {ENOSPC} \([0-9.]+ GiB free\); {RERUN}", message), message
  assert not [n for n in os.listdir(out) if ".tmp-" in n]  # the shard being written is not left half-written
  assert not os.path.exists(os.path.join(out, run_lock.LOCK_NAME))  # released: the rerun may start
  assert prepare(out) == 0
  assert _shards(out) == _shards(reference)


def test_a_failed_manifest_write_names_the_manifest(prepare, tmp_path, monkeypatch):
  real = manifest.files_lib.write_json

  def full(path, obj, indent=2):
    if str(path).endswith(records.MANIFEST):
      raise OSError(errno.ENOSPC, ENOSPC)  # a Python write: no file name in the error
    real(path, obj, indent)

  monkeypatch.setattr(manifest.files_lib, "write_json", full)
  out = str(tmp_path / "out")
  with pytest.raises(KorpatError, match=rf"^{out}/manifest.json: {ENOSPC} \([0-9.]+ GiB free\); {RERUN}$"):
    prepare(out)


def test_a_real_full_disk(prepare, tmp_path):
  disk = tmp_path / "disk"
  disk.mkdir()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(disk)], capture_output=True)
  if mounted.returncode:
    pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
  try:
    with pytest.raises(KorpatError, match=rf"^{disk}/out/\S+: {ENOSPC} \(0.0 GiB free\); {RERUN}$"):
      prepare(str(disk / "out"))
  finally:
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_the_rerun_removes_what_a_killed_prepare_left(prepare, tmp_path, monkeypatch, capsys):
  reference = str(tmp_path / "reference")
  assert prepare(reference) == 0
  out = str(tmp_path / "out")
  def killed(*args, **kwargs):
    raise RuntimeError("killed")

  with monkeypatch.context() as m:  # stopped while writing shards: the intermediate files are complete
    m.setattr(local, "_shards", killed)
    with pytest.raises(RuntimeError, match="killed"):
      prepare(out)
  work = os.path.join(out, manifest.WORK_DIR)
  # What SIGKILL leaves: files.atomic_path's temporaries (a pool worker's shard, the manifest) and a spill's.
  leftovers = [os.path.join(out, records.shard_name("train", 1, 3) + ".tmp-4242"),
               os.path.join(out, records.MANIFEST + ".tmp-4242"),
               os.path.join(work, "f000001.train.spill.tmp")]
  for path in leftovers:
    with open(path, "wb") as f:
      f.write(b"\0" * 400_000)
  foreign = os.path.join(out, "notes.txt.tmp-1")  # not prepare's: kept
  open(foreign, "w").close()
  capsys.readouterr()
  assert prepare(out) == 0
  assert not [p for p in leftovers if os.path.exists(p)] and os.path.exists(foreign)
  assert "[prepare] removed 3 temporary file(s) (1.2 MB) of an interrupted run" in capsys.readouterr().err
  assert _shards(out) == _shards(reference)
