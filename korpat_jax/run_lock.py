"""One run per directory: a lock file that `pretrain`, `finetune` and `prepare` hold for their whole life.

`DIR/.korpat-lock.json` names the holder (command, host, pid, start time) and carries a heartbeat that a thread
renews every `heartbeat_s`. A second run on the same directory stops at once with one line naming the holder. A
lock left by a run that is gone is taken over with one line: on the same host when its pid no longer lives, on any
host when its heartbeat is older than `stale_after_s`.

Local directories: the lock is created with O_CREAT | O_EXCL, so two runs that start at the same moment cannot both
get it; a takeover renames the stale file away first (rename is atomic: one of two contenders wins). Object stores
(gs://, s3:// through etils.epath) have no exclusive create there: the lock is written and read back, which stops
a second run started after the first has written its lock (the common case: a resubmitted job) but leaves a window
of a few hundred milliseconds in which two runs started together may both proceed.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Iterator, Optional

from korpat_jax import files
from korpat_jax.errors import KorpatError

log = logging.getLogger("korpat_jax")

LOCK_NAME = ".korpat-lock.json"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0  # 20 missed heartbeats: a run this quiet is gone (a suspended VM, a lost node)


class RunLocked(KorpatError):
  """Another live run holds the directory."""


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process: alive
    return True
  return True


def _now() -> float:
  return time.time()


def _stamp(t: float) -> str:
  return datetime.datetime.fromtimestamp(t).isoformat(timespec="seconds")


class RunLock:
  """The lock of `directory` for `command`; `acquire()` / `release()`, or `with hold(...)`."""

  def __init__(self, directory: str, command: str, heartbeat_s: float = HEARTBEAT_S,
               stale_after_s: float = STALE_AFTER_S):
    self.directory = directory
    self.path = files.join(directory, LOCK_NAME)
    self.command = command
    self.heartbeat_s = heartbeat_s
    self.stale_after_s = stale_after_s
    self.token = uuid.uuid4().hex
    self.record: dict[str, Any] = {}
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None

  # -- reading and judging a holder ----------------------------------------------------------------------------

  def holder(self) -> Optional[dict[str, Any]]:
    """The lock's content, {} for an unreadable one (a writer caught mid-write), None when there is none."""
    try:
      return json.loads(files.read_text(self.path))
    except FileNotFoundError:
      return None
    except (ValueError, OSError):
      return {} if files.exists(self.path) else None

  def stale_reason(self, held: dict[str, Any]) -> Optional[str]:
    """Why a holder is gone, or None while it may live."""
    if not held:
      return None  # being written this instant
    age = _now() - float(held.get("heartbeat", 0))
    if held.get("host") == socket.gethostname() and not _pid_alive(int(held.get("pid", -1))):
      return f"its process {held.get('pid')} on this host has ended"
    if age > self.stale_after_s:
      return f"its last heartbeat was {age:.0f} s ago (more than {self.stale_after_s:.0f} s)"
    return None

  def describe(self, held: dict[str, Any]) -> str:
    age = _now() - float(held.get("heartbeat", 0))
    return (f"`{held.get('command', '?')}` (pid {held.get('pid', '?')} on {held.get('host', '?')}, started "
            f"{_stamp(float(held.get('started', 0)))}, heartbeat {age:.0f} s ago)")

  # -- taking and giving back ------------------------------------------------------------------------------------

  def acquire(self) -> None:
    files.makedirs(self.directory)
    started = _now()
    self.record = {"command": self.command, "host": socket.gethostname(), "pid": os.getpid(), "started": started,
                   "heartbeat": started, "token": self.token}
    for _ in range(3):  # a lost race for a stale lock's takeover is retried, then reported as held
      if self._create():
        self._start_heartbeat()
        return
      held = self.holder()
      if held is None:
        continue  # released between our attempt and the read
      reason = self.stale_reason(held)
      if reason is None:
        raise RunLocked(f"{self.directory} is in use by {self.describe(held) if held else 'a run starting now'}: "
                        f"one run per directory; wait for it to end, or use another directory "
                        f"(if that run is gone, delete {self.path})")
      log.warning("%s: taking over the lock of %s: %s", self.directory, self.describe(held), reason)
      self._remove_stale(held)
    held = self.holder() or {}
    raise RunLocked(f"{self.directory} is in use by {self.describe(held)}: one run per directory")

  def _create(self) -> bool:
    text = json.dumps(self.record)
    if files.is_remote(self.path):
      if files.exists(self.path):
        return False
      files.write_text(self.path, text)
      return (self.holder() or {}).get("token") == self.token
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
    return True

  def _remove_stale(self, held: dict[str, Any]) -> None:
    """Moves the stale lock `held` out of the way; a lock that replaced it meanwhile is put back."""
    if files.is_remote(self.path):
      files.remove(self.path)
      return
    aside = f"{self.path}.stale-{os.getpid()}-{self.token[:8]}"
    try:
      os.rename(self.path, aside)  # atomic: of two runs taking over, one moves it, the other finds it gone
    except FileNotFoundError:
      return
    try:
      with open(aside, encoding="utf-8") as f:
        moved = json.load(f)
    except ValueError:
      moved = {}
    if moved.get("token") not in (None, held.get("token")):  # a live run's fresh lock: give it back
      with contextlib.suppress(OSError):
        os.link(aside, self.path)  # fails if yet another lock exists; then ours to report as held
    os.remove(aside)

  def _start_heartbeat(self) -> None:
    self._stop.clear()
    self._thread = threading.Thread(target=self._beat, name="korpat-run-lock", daemon=True)
    self._thread.start()

  def _beat(self) -> None:
    while not self._stop.wait(self.heartbeat_s):
      held = self.holder()
      if held and held.get("token") != self.token:
        log.warning("%s: the run lock now belongs to %s; this run keeps going but no longer renews it",
                    self.directory, self.describe(held))
        return
      self.record["heartbeat"] = _now()
      try:
        files.write_json(self.path, self.record, indent=None)
      except OSError as e:  # a full disk must not kill the run from a side thread; the next beat retries
        log.debug("run lock heartbeat failed: %s", e)

  def release(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=5)
      self._thread = None
    held = self.holder()
    if held and held.get("token") == self.token:
      with contextlib.suppress(FileNotFoundError, OSError):
        files.remove(self.path)


@contextlib.contextmanager
def hold(directory: str, command: str, enabled: bool = True, **kwargs: Any) -> Iterator[Optional[RunLock]]:
  """Holds the lock of `directory` for the block (nothing when not `enabled`: processes other than 0)."""
  if not enabled:
    yield None
    return
  lock = RunLock(directory, command, **kwargs)
  lock.acquire()
  try:
    yield lock
  finally:
    lock.release()
