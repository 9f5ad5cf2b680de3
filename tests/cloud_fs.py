"""A non-local file system for the tests, with no network: `gs://` served from memory (not a test module).

etils.epath sends `gs://` paths to fsspec's "gcs" implementation (gcsfs) when TensorFlow is absent; the fixture
registers an in-memory file system under that name instead, so the code under test goes through epath's real
`gs://` path handling. Like an object store, it has no directories of its own (a directory exists while a file is
below it, `makedirs` does nothing) and renames by copy + delete.
"""

from __future__ import annotations

import importlib

import fsspec
import pytest
from etils.epath import backend as epath_backend
from fsspec.implementations.memory import MemoryFileSystem

BUCKET = "gs://korpat-test-bucket"


class InMemoryGcs(MemoryFileSystem):
  protocol = ("gs", "gcs")
  store: dict = {}
  pseudo_dirs = [""]

  def __init__(self, *args, finalize_on_close=None, **kwargs):
    del finalize_on_close  # what etils passes to gcsfs
    super().__init__(*args, **kwargs)

  @classmethod
  def _strip_protocol(cls, path):
    path = str(path)
    for prefix in ("gs://", "gcs://"):
      path = path.removeprefix(prefix)
    path = path.lstrip("/").rstrip("/")
    return "/" + path if path else ""

  def makedirs(self, path, exist_ok=False):
    del path, exist_ok

  def mkdir(self, path, create_parents=True, **kwargs):
    del path, create_parents, kwargs


def _reset_epath_cache() -> None:
  epath_backend.fsspec_backend._get_filesystem.cache_clear()  # pylint: disable=protected-access


@pytest.fixture
def fake_gs():
  """A fresh, empty in-memory `gs://` bucket; yields its URL."""
  saved = {name: fsspec.registry.get(name) for name in ("gs", "gcs")}
  for name in ("gs", "gcs"):
    fsspec.register_implementation(name, InMemoryGcs, clobber=True)
  InMemoryGcs.store.clear()
  InMemoryGcs.pseudo_dirs[:] = [""]
  InMemoryGcs.clear_instance_cache()
  _reset_epath_cache()
  try:
    yield BUCKET
  finally:
    for name, cls in saved.items():
      if cls is None:
        importlib.import_module("fsspec.registry")._registry.pop(name, None)  # pylint: disable=protected-access
      else:
        fsspec.register_implementation(name, cls, clobber=True)
    InMemoryGcs.store.clear()
    _reset_epath_cache()


def stored_files() -> list[str]:
  """Every object in the fake bucket, as gs:// URLs."""
  return sorted("gs:/" + key for key in InMemoryGcs.store)
