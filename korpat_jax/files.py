"""Every run-directory, records and tokenizer path goes through here: local paths and the URLs that etils.epath
supports (gs://, s3://, az://, hf://, through fsspec: gcsfs, s3fs, adlfs, huggingface_hub) alike. Paths stay
strings; `resolve` makes a local one absolute and leaves a URL as it is (os.path.abspath would mangle it).

Atomic writes (a reader, or a rerun after a crash, never sees half a file):
  local   the file is written under a temporary name beside the target (with the process id, so two processes
          never share one) and renamed over it; the rename is atomic on POSIX file systems.
  remote  object stores have no atomic rename (gcsfs and s3fs rename by copy + delete), but an object becomes
          visible only once its upload is complete. So the file is written to a local temporary file and uploaded
          in one write when the block ends without an error; a block that fails uploads nothing.
Local-only readers (Mecab-ko's dictionary, the ArrayRecord reader) get a `local_copy` of a remote directory (in the
cache directory) or a one-line refusal (`require_local`). Appended logs (metrics.jsonl, TensorBoard event files)
cannot be appended to on object stores: a `Mirror` keeps them in a local directory and uploads them whole.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import posixpath
import shutil
import tempfile
import time
from typing import Any, Iterable, Iterator, Mapping, Optional, TextIO

from etils import epath

from korpat_jax.errors import ConfigError, KorpatError

SCHEMES = ("gs", "s3", "az", "hf")  # the URL schemes etils.epath resolves (its gpath module)
CACHE_ENV = "KORPAT_CACHE_DIR"
_COPY_BLOCK = 1 << 24


# -- paths ------------------------------------------------------------------------------------------------

def scheme(path: str | os.PathLike) -> Optional[str]:
  """'gs' of 'gs://bucket/run'; None for a local path."""
  text = os.fspath(path)
  return text.split("://", 1)[0] if "://" in text else None


def is_remote(path: str | os.PathLike) -> bool:
  return scheme(path) is not None


def resolve(path: str | os.PathLike) -> str:
  """An absolute local path (`~` expanded), or the URL itself without a trailing slash; "" stays "".

  A URL of a scheme epath does not resolve is refused in one line: epath would read `memory://x` as the local
  relative path `memory:/x`."""
  text = os.fspath(path)
  if not text:
    return ""
  found = scheme(text)
  if found is None:
    return os.path.abspath(os.path.expanduser(text))
  if found not in SCHEMES:
    raise KorpatError(f"{text}: unsupported URL scheme {found}:// (supported: "
                      f"{', '.join(s + '://' for s in SCHEMES)}, or a local path)")
  return text.rstrip("/")


def path(p: str | os.PathLike) -> epath.Path:
  return epath.Path(resolve(p) if is_remote(p) else os.fspath(p))


def join(*parts: str) -> str:
  """os.path.join for local paths and URLs alike (URLs always take `/`)."""
  return posixpath.join(*parts) if parts and is_remote(parts[0]) else os.path.join(*parts)


def exists(p: str | os.PathLike) -> bool:
  return path(p).exists()


def isdir(p: str | os.PathLike) -> bool:
  return path(p).is_dir()


def isfile(p: str | os.PathLike) -> bool:
  return path(p).is_file()


def listdir(p: str | os.PathLike) -> list[str]:
  """Names in a directory ([] when it does not exist)."""
  directory = path(p)
  return sorted(child.name for child in directory.iterdir()) if directory.is_dir() else []


def makedirs(p: str | os.PathLike) -> None:
  """Creates a directory and its parents (object stores have no directories: nothing to do there)."""
  if not is_remote(p):
    os.makedirs(p, exist_ok=True)


def remove(p: str | os.PathLike) -> None:
  """Removes a file, if it exists."""
  path(p).unlink(missing_ok=True)


def rmtree(p: str | os.PathLike) -> None:
  path(p).rmtree(missing_ok=True)


def rename(src: str | os.PathLike, dst: str | os.PathLike) -> None:
  """Moves a file or directory: os.replace locally (shutil.move across local file systems); elsewhere a copy of each file, then the source is deleted (what
  gcsfs and s3fs do too; not atomic). epath's own rename is not used there: it wants the target's parent to exist,
  which an object store's prefix never does before a file is below it."""
  if not is_remote(src) and not is_remote(dst):
    try:
      os.replace(src, dst)
    except OSError as e:
      if e.errno != errno.EXDEV:
        raise
      shutil.move(src, dst)  # another file system (a temporary directory on tmpfs)
    return
  if isdir(src):
    for rel in walk_files(src):
      copy_file(join(src, *rel.split("/")), join(dst, *rel.split("/")))
    rmtree(src)
  else:
    copy_file(src, dst)
    remove(src)


def file_size(p: str | os.PathLike) -> int:
  return int(path(p).stat().length or 0)


def walk_files(directory: str | os.PathLike) -> list[str]:
  """Relative paths (with `/`) of every file below `directory`, sorted."""
  root = path(directory)
  found = []
  pending = [("", root)]
  while pending:
    rel, current = pending.pop()
    for child in current.iterdir():
      child_rel = f"{rel}{child.name}"
      if child.is_dir():
        pending.append((child_rel + "/", child))
      else:
        found.append(child_rel)
  return sorted(found)


# -- reading ----------------------------------------------------------------------------------------------

def read_bytes(p: str | os.PathLike) -> bytes:
  with path(p).open("rb") as f:
    return f.read()


def read_text(p: str | os.PathLike, errors: str = "strict") -> str:
  return read_bytes(p).decode("utf-8", errors=errors)


def read_json(p: str | os.PathLike) -> Any:
  return json.loads(read_text(p))


def sha256_of(p: str | os.PathLike) -> str:
  digest = hashlib.sha256()
  with path(p).open("rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


# -- copying ----------------------------------------------------------------------------------------------

def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
  """Copies one file between any two places (a local one keeps its metadata, as shutil.copyfile)."""
  if not is_remote(src) and not is_remote(dst):
    shutil.copyfile(src, dst)
    return
  with path(src).open("rb") as source, path(dst).open("wb") as target:
    shutil.copyfileobj(source, target, _COPY_BLOCK)


def upload_tree(local: str, target: str) -> None:
  """Copies every file below the local directory `local` to the same relative paths below `target`."""
  for rel in walk_files(local):
    destination = join(target, *rel.split("/"))
    makedirs(os.path.dirname(destination))
    copy_file(os.path.join(local, *rel.split("/")), destination)


def cache_root() -> str:
  """Where copies of remote directories live: $KORPAT_CACHE_DIR, default ~/.cache/korpat_jax."""
  return os.path.abspath(os.path.expanduser(os.environ.get(CACHE_ENV) or "~/.cache/korpat_jax"))


def local_cache_dir(p: str, purpose: str) -> str:
  """A local directory standing for `p`: `p` itself when local, else one per URL below the cache root."""
  if not is_remote(p):
    return p
  key = hashlib.sha256(resolve(p).encode("utf-8")).hexdigest()[:16]
  return os.path.join(cache_root(), purpose, f"{posixpath.basename(resolve(p)) or 'root'}-{key}")


def local_copy(p: str, what: str = "directory") -> str:
  """A local directory with the files of `p`, for readers that only open local files (Mecab-ko's compiled
  dictionary, the tokenizer's files). Local: `p` itself. Remote: copied once into the cache (`local_cache_dir`)
  and again only when its file names or sizes change."""
  if not p or not is_remote(p):
    return p
  source = resolve(p)
  if not isdir(source):
    raise KorpatError(f"{source}: no such {what}")
  listing = {rel: file_size(join(source, rel)) for rel in walk_files(source)}
  target = local_cache_dir(source, "remote")
  stamp = os.path.join(target, ".korpat_copy.json")
  try:
    with open(stamp, encoding="utf-8") as f:
      if json.load(f) == {"source": source, "files": listing}:
        return target
  except (OSError, json.JSONDecodeError):
    pass
  os.makedirs(os.path.dirname(target), exist_ok=True)
  scratch = tempfile.mkdtemp(prefix=os.path.basename(target) + ".tmp-", dir=os.path.dirname(target))
  try:
    for rel in listing:
      local = os.path.join(scratch, *rel.split("/"))
      os.makedirs(os.path.dirname(local), exist_ok=True)
      copy_file(join(source, rel), local)
    write_json(os.path.join(scratch, ".korpat_copy.json"), {"source": source, "files": listing})
    shutil.rmtree(target, ignore_errors=True)
    os.replace(scratch, target)
  except BaseException:
    shutil.rmtree(scratch, ignore_errors=True)
    raise
  return target


def require_local(p: str, key: str, why: str) -> None:
  """A one-line ConfigError for a URL where only a local path can work (`key`: the config key or flag)."""
  if is_remote(p):
    raise ConfigError(f"{key}={p}: {why}")


# -- atomic writes ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def atomic_path(p: str | os.PathLike) -> Iterator[str]:
  """A local temporary path to write; it becomes `p` when the block ends without an error (renamed over a local
  target, uploaded in one write to a remote one), and is removed otherwise."""
  p = os.fspath(p)
  if is_remote(p):
    with tempfile.TemporaryDirectory(prefix="korpat-upload-") as scratch:
      tmp = os.path.join(scratch, posixpath.basename(p) or "file")
      yield tmp
      copy_file(tmp, resolve(p))
    return
  tmp = f"{p}.tmp-{os.getpid()}"
  try:
    yield tmp
    os.replace(tmp, p)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


@contextlib.contextmanager
def atomic_open(p: str | os.PathLike, newline: str | None = None) -> Iterator[TextIO]:
  """A UTF-8 text file that appears at `p` only once it is completely written."""
  with atomic_path(p) as tmp:
    with open(tmp, "w", encoding="utf-8", newline=newline) as f:
      yield f


def write_text(p: str | os.PathLike, text: str, newline: str | None = None) -> None:
  with atomic_open(p, newline=newline) as f:
    f.write(text)


def write_json(p: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
  with atomic_open(p) as f:
    json.dump(obj, f, indent=indent, ensure_ascii=False, default=str)
    f.write("\n")


def write_jsonl(p: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
  """One JSON object a line."""
  with atomic_open(p) as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")


# -- appended logs ----------------------------------------------------------------------------------------

class Mirror:
  """A local directory standing for the directory `target` while files in it grow (metrics.jsonl, TensorBoard
  event files): object stores cannot append. Local target: the directory itself, `sync` does nothing. Remote
  target: a fresh temporary directory; `sync` uploads each file that changed since its last upload, whole (one
  atomic object write each), at most every `interval_s` seconds unless forced; `close` syncs and removes it.
  What was written after the last sync of a killed process is lost from the remote copy."""

  def __init__(self, target: str, interval_s: float = 30.0):
    self.target = resolve(target)
    self.remote = is_remote(target)
    self.interval_s = interval_s
    self.local = tempfile.mkdtemp(prefix="korpat-mirror-") if self.remote else self.target
    self._uploaded: dict[str, tuple[int, int]] = {}
    self._last_sync = time.monotonic()

  def path(self, name: str) -> str:
    """The local path of `name` (a file directly in the directory)."""
    return os.path.join(self.local, name)

  def target_path(self, name: str) -> str:
    return join(self.target, name)

  def pull(self, name: str) -> None:
    """Copies `name` from the remote directory into the mirror, when it is there (to continue a resumed log)."""
    if self.remote and exists(self.target_path(name)):
      copy_file(self.target_path(name), self.path(name))
      self._uploaded[name] = self._signature(name)

  def sync(self, force: bool = False) -> None:
    if not self.remote or (not force and time.monotonic() - self._last_sync < self.interval_s):
      return
    for rel in walk_files(self.local):
      signature = self._signature(rel)
      if self._uploaded.get(rel) != signature:
        copy_file(self.path(rel), join(self.target, *rel.split("/")))
        self._uploaded[rel] = signature
    self._last_sync = time.monotonic()

  def _signature(self, rel: str) -> tuple[int, int]:
    stat = os.stat(self.path(rel))
    return stat.st_size, stat.st_mtime_ns

  def close(self) -> None:
    """Syncs and removes the local copy; again: nothing."""
    if self.remote and not os.path.isdir(self.local):
      return
    try:
      self.sync(force=True)
    finally:
      if self.remote:
        shutil.rmtree(self.local, ignore_errors=True)


def free_space(path: str) -> str:
  """'12.3 GiB free' on the file system of `path` (or of its nearest existing parent)."""
  if is_remote(path):
    return f"on {scheme(path)}:// (an object store: check its quota and permissions)"
  while path and not os.path.exists(path):
    path = os.path.dirname(path)
  try:
    return f"{shutil.disk_usage(path or '.').free / 2**30:.1f} GiB free"
  except OSError:
    return "free space unknown"
