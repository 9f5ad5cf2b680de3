"""Orbax checkpoints of the train state and the input iterator.

One `Checkpointer` per run directory (`WORKDIR/checkpoints`). A checkpoint is a Composite of
  state: the train state pytree (params, optimizer state, step, rng), saved sharded, restorable onto any mesh;
  data:  the Grain iterator state (one JSON per process), present when the run reads records.
Saves are async: the next train step runs while the previous save is written. Once a save is complete, the sha256
of every file it wrote goes into `<step>/korpat_checksums.json`, so that flipped bytes are found on restore
(`verify`); a checkpoint that cannot be restored is moved aside to `_broken/<step>` (`move_aside`), never deleted.
A save that fails (a full disk) raises SaveFailed, one line naming the path, the free space and the run's error log
(`error_log`): the full trace goes there, with the error records Orbax logs of it, not to the console. The loop
waits for each async save at the next step (`saving`, `wait`), so a failed save stops the run one step after it at
the latest; `when_complete` callbacks (the best evaluation's files) run only once a save is complete.

The directory may be a URL (gs://...): Orbax writes it itself (its array data through TensorStore's own gcs / s3
drivers), and everything here reads it through korpat_jax.files (etils.epath). There the checksums are file sizes,
not sha256s: hashing would read every checkpoint back from the bucket, and the object store checks the bytes of
each upload itself. Orbax creates the directory at the first save, so a run that fails before it leaves none.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint import checkpoint_managers as policies

from korpat_jax import files
from korpat_jax.errors import KorpatError

STATE, DATA = "state", "data"
CHECKSUMS = "korpat_checksums.json"
BROKEN = "_broken"
log = logging.getLogger("korpat_jax")


def error_line(error: BaseException) -> str:
  """`Type: first line of the message`: what a one-line error quotes of a library's exception. A long one keeps its
  end too, where TensorStore puts the OS error ("... Failed to write N bytes to file: No space left on device")."""
  line = (str(error).strip().splitlines() or [""])[0]
  return f"{type(error).__name__}: {line if len(line) <= 300 else line[:180] + ' ... ' + line[-115:]}"


class SaveFailed(KorpatError):
  """A checkpoint save failed (a full disk, a lost permission): the run stops; earlier checkpoints are intact."""


def append_trace(path: str, text: str) -> str:
  """Appends `text` to the error log `path` (its directory made); where that cannot be written (the full disk that
  failed the save), to a file in the system's temporary directory. Returns the file written, "" when none was."""
  fallback = os.path.join(tempfile.gettempdir(), f"korpat-jax-errors-{os.getpid()}.log")
  for target in (path, fallback):
    try:
      if files.is_remote(target):  # object stores cannot append: the (small) log is rewritten whole
        old = files.read_text(target) if files.exists(target) else ""
        files.write_text(target, old + text)
      else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a", encoding="utf-8") as f:
          f.write(text)
      return target
    except Exception:  # noqa: BLE001 - OSError locally, anything from an fsspec backend
      continue
  return ""


class _ErrorLog(logging.Filter):
  """Sends what a failed save prints to the run's error log instead of the console, where the loop reports the
  failure in one line (SaveFailed) naming the log: Orbax's error records (each with a traceback) while a training
  Checkpointer is open (`path`), and the noise of the writes it abandoned, which may come after the run has closed
  its Checkpointer (`after_failure`): asyncio's "exception was never retrieved" records of Orbax / TensorStore
  tasks, and "Event loop is closed" raised in TensorStore's callbacks into the closed loop (sys.unraisablehook).
  Everything else passes, and all of it passes while neither is set."""

  FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(pathname)s:%(lineno)d [%(threadName)s] "
                             "%(message)s")

  def __init__(self) -> None:
    super().__init__()
    self.path: Optional[str] = None
    self.after_failure: Optional[str] = None
    self._next_hook: Callable[[Any], Any] = sys.unraisablehook

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno < logging.ERROR:
      return True
    try:  # never raise here: the record may be Orbax's report of the very failure the loop must learn of
      target = (self.path or self.after_failure) if record.name == "asyncio" else self.path
      if not target:
        return True
      text = self.FORMAT.format(record)
      if not (("orbax" in text or "tensorstore" in text) if record.name == "asyncio" else "orbax" in record.pathname):
        return True
      return not append_trace(target, text + "\n")  # kept on the console when no file could be written
    except Exception:  # noqa: BLE001
      return True

  def unraisable(self, unraisable: Any) -> None:
    target = self.path or self.after_failure
    error = unraisable.exc_value
    if target and isinstance(error, RuntimeError) and "Event loop is closed" in str(error):
      trace = "".join(traceback.format_exception(type(error), error, unraisable.exc_traceback))
      if append_trace(target, f"unraisable (a write abandoned by a failed save): {trace}"):
        return
    self._next_hook(unraisable)

  def install(self) -> None:
    """On the loggers that Orbax's errors arrive through (absl) and asyncio's, and as sys.unraisablehook."""
    for name in ("absl", "asyncio"):
      logging.getLogger(name).addFilter(self)  # Logger.addFilter ignores a repeat
    if sys.unraisablehook != self.unraisable:
      self._next_hook, sys.unraisablehook = sys.unraisablehook, self.unraisable


_ERROR_LOG = _ErrorLog()


def file_checksums(directory: str) -> dict[str, str]:
  """sha256 of every file below `directory` (relative paths), the checksum file itself excluded; on a remote
  directory `size:N` instead (see the module docstring)."""
  sums = {}
  for rel in files.walk_files(directory):
    if rel in (CHECKSUMS, CHECKSUMS + ".tmp") or rel.startswith(CHECKSUMS + ".tmp-"):
      continue
    path = files.join(directory, *rel.split("/"))
    sums[rel] = f"size:{files.file_size(path)}" if files.is_remote(directory) else files.sha256_of(path)
  return sums


class _NoMetricsWarningFilter(logging.Filter):
  """Drops Orbax's "Requested `tracked_metric`; did not provide metrics." and nothing else.

  With `best_metric`, only the saves of a new best evaluation carry metrics (evaluation.BestEval.offer: so they
  rise strictly and BestN(1) keeps exactly that checkpoint); every other save (between evaluations, an evaluation
  that is no new best, the last step, a preemption) has none by design, and Orbax warns at each of them."""

  MESSAGE = "Requested `tracked_metric`; did not provide metrics."

  def filter(self, record: logging.LogRecord) -> bool:
    return not (record.name == "absl" and record.msg == self.MESSAGE)


_NO_METRICS_FILTER = _NoMetricsWarningFilter()


def _quiet_no_metrics_warning() -> None:
  """Installs the filter on absl's logger, through which Orbax logs (once: Logger.addFilter ignores a repeat)."""
  logging.getLogger("absl").addFilter(_NO_METRICS_FILTER)


def _data_args(iterator: Any, save: bool) -> Any:
  import grain  # only runs that read records pay for grain here
  return grain.checkpoint.CheckpointSave(iterator) if save else grain.checkpoint.CheckpointRestore(iterator)


class Checkpointer:
  """CheckpointManager with the project's policies: every `interval` steps, on preemption, keep the latest `keep`;
  with `best_metric`, also the checkpoint whose saved metrics hold the highest value of it (fine-tuning).
  `error_log` (a training run's): where the full trace of a failed save goes, and Orbax's error records with it."""

  def __init__(self, directory: str, *, interval: int, keep: int, async_save: bool = True,
               read_only: bool = False, best_metric: Optional[str] = None, error_log: Optional[str] = None):
    self.directory = files.resolve(directory)
    self.error_log = error_log
    save_policy = policies.AnySavePolicy([policies.FixedIntervalPolicy(max(1, interval)),
                                          policies.PreemptionCheckpointingPolicy()])
    keep_policy = policies.LatestN(max(1, keep))
    best_fn = None
    if best_metric:
      best_fn = lambda metrics: metrics[best_metric]  # noqa: E731 - also makes Orbax write and re-read metrics
      keep_policy = policies.AnyPreservationPolicy([keep_policy, policies.BestN(
          get_metric_fn=best_fn, n=1, keep_checkpoints_without_metrics=False)])
      _quiet_no_metrics_warning()  # saves without metrics are the rule here (see _NoMetricsWarningFilter)
    absl_logger = logging.getLogger("absl")  # Orbax warns that a read-only manager is read-only
    level = absl_logger.level
    if read_only:
      absl_logger.setLevel(logging.ERROR)
    try:
      options = ocp.CheckpointManagerOptions(
          save_decision_policy=save_policy,
          preservation_policy=keep_policy,
          best_fn=best_fn,
          enable_async_checkpointing=async_save,
          read_only=read_only,
          create=False,  # the first save creates it: a run that fails before leaves no empty checkpoints/
      )
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    finally:
      absl_logger.setLevel(level)
    self._unhashed: list[int] = []
    self._on_complete: list[Callable[[int], None]] = []
    if error_log:
      _ERROR_LOG.path = error_log
      _ERROR_LOG.install()

  @staticmethod
  def latest_in(directory: str) -> Optional[int]:
    """The latest finalised step in `directory` (None when there is none), read from the directory names alone:
    no CheckpointManager, whose creation every process would have to enter in the same order."""
    steps = [int(name) for name in files.listdir(directory)
             if name.isdigit() and files.isdir(files.join(directory, name))]
    return max(steps, default=None)

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, data_iterator: Any = None, *, force: bool = False,
           metrics: Optional[dict[str, float]] = None) -> bool:
    """Saves when the policy says so (or `force`); returns whether a save started. `metrics` rank it for
    `best_metric`."""
    items = {STATE: ocp.args.StandardSave(state)}
    if data_iterator is not None:
      items[DATA] = _data_args(data_iterator, save=True)
    if self._unhashed and (force or self._manager.should_save(step)):
      self.wait()
    try:
      saved = self._manager.save(step, args=ocp.args.Composite(**items), force=force, metrics=metrics)
    except Exception as e:  # noqa: BLE001 - the previous async save's error surfaces here too
      raise self._save_error(step, e) from None
    if saved:
      self._unhashed.append(step)
    return saved

  def should_save(self, step: int) -> bool:
    return self._manager.should_save(step)

  @property
  def saving(self) -> bool:
    """Whether a save was started that `wait` has not completed yet."""
    return bool(self._unhashed)

  def when_complete(self, callback: Callable[[int], None]) -> None:
    """Calls `callback(step)` once the checkpoint of `step` is complete (finalised, checksummed), on every process."""
    self._on_complete.append(callback)

  def _save_error(self, step: int, error: BaseException) -> SaveFailed:
    path = files.join(self.directory, str(step))
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    logged = append_trace(self.error_log, f"{time.strftime('%Y-%m-%d %H:%M:%S')} saving {path} failed:\n{trace}\n"
                          ) if self.error_log else ""
    if self.error_log:
      _ERROR_LOG.after_failure = self.error_log
    latest = Checkpointer.latest_in(self.directory)
    resume = "rerun (no checkpoint yet: it starts over)" if latest is None else f"rerun to resume from step {latest}"
    free = files.free_space(self.directory)
    return SaveFailed(f"{path}: saving the checkpoint failed ({error_line(error)}; {free}); "
                      f"earlier checkpoints are intact: free space and {resume}"
                      + (f" (full trace in {logged})" if logged else ""))

  def _write_checksums(self) -> list[int]:
    """Checksums each finished save (process 0); returns their steps."""
    done, self._unhashed = self._unhashed, []
    complete = []
    for step in done:
      directory = files.join(self.directory, str(step))
      if not files.isdir(directory):
        continue  # removed at once by the keep policy
      if jax.process_index() == 0:
        try:
          files.write_text(files.join(directory, CHECKSUMS),
                           json.dumps(file_checksums(directory), indent=0, sort_keys=True))
        except OSError as e:  # the disk filled up right after the save
          raise self._save_error(step, e) from None
      complete.append(step)
    return complete

  def verify(self, step: int, needs_data: bool) -> Optional[str]:
    """Why the checkpoint of `step` cannot be restored (missing items, changed bytes), or None."""
    directory = files.join(self.directory, str(step))
    for item in (STATE, DATA) if needs_data else (STATE,):
      if not files.isdir(files.join(directory, item)):
        return f"its {item!r} item is missing" + (" (the data iterator's position)" if item == DATA else "")
    metadata = files.join(directory, STATE, "_METADATA")
    if not files.isfile(metadata) or not files.file_size(metadata):
      return "state/_METADATA is missing or empty"
    try:
      expected = files.read_json(files.join(directory, CHECKSUMS))
    except FileNotFoundError:
      return None  # written before checksums, or killed before they were: the restore itself decides
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
      return f"{CHECKSUMS} is unreadable ({error_line(e)})"
    found = file_checksums(directory)
    for rel, digest in sorted(expected.items()):
      if rel not in found:
        return f"{rel} is missing"
      if found[rel] != digest:
        return f"{rel} has changed since it was saved ({'size' if found[rel].startswith('size:') else 'sha256'} mismatch)"
    return None

  def move_aside(self, step: int, reason: str) -> str:
    """Moves a checkpoint that cannot be restored to `_broken/<step>` (never deletes it); returns where."""
    target = files.join(self.directory, BROKEN, str(step))
    source = files.join(self.directory, str(step))
    if jax.process_index() == 0:
      files.makedirs(files.join(self.directory, BROKEN))
      suffix = 1
      while files.exists(target):
        target = files.join(self.directory, BROKEN, f"{step}.{suffix}")
        suffix += 1
      files.rename(source, target)
      log.warning("%s: cannot be restored (%s): moved to %s", source, reason, target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f"korpat_move_aside_{step}")
    self._manager.reload()
    return target

  def restore(self, step: int, abstract_state: Any, data_iterator: Any = None) -> Any:
    """Restores `state` laid out as `abstract_state` (ShapeDtypeStructs carrying the target shardings).

    The iterator, when given, is restored in place (`verify` first: a checkpoint without it is broken).
    """
    self._check_step(step)
    items = {STATE: ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None and DATA in self._saved_items(step):
      items[DATA] = _data_args(data_iterator, save=False)
    return self._manager.restore(step, args=ocp.args.Composite(**items))[STATE]

  def restore_params_on_host(self, step: Optional[int] = None) -> tuple[int, Any]:
    """(step, params) as numpy arrays on one host CPU device, whatever mesh saved them. For export and init_from.

    The abstract tree comes from the item's own metadata: the saved shardings name devices that this machine may
    not have. Unreadable checkpoints (partial, foreign) become one-line KorpatErrors.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise KorpatError(f"{self.directory}: no checkpoint found")
    self._check_step(step)
    item = files.join(self.directory, str(step), STATE)
    try:
      metadata = ocp.StandardCheckpointHandler().metadata(epath.Path(item))
      device = jax.local_devices(backend="cpu")[0]
      sharding = jax.sharding.SingleDeviceSharding(device)
      abstract = jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding),
                                        metadata)
      state = self._manager.restore(step, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore(abstract)}))
    except Exception as e:  # Orbax raises many types for a truncated or foreign directory
      raise KorpatError(f"{item}: cannot read the checkpoint (partial, or not a korpat-jax train state?): "
                        f"{error_line(e)}") from None
    state = state[STATE]
    if "params" not in state:
      raise KorpatError(f"{item}: the train state has no 'params' (keys: {sorted(state)})")
    return step, jax.tree_util.tree_map(np.asarray, state["params"])

  def _saved_items(self, step: int) -> set[str]:
    return set(files.listdir(files.join(self.directory, str(step))))

  def _check_step(self, step: int) -> None:
    steps = self.all_steps()
    if step not in steps:
      raise KorpatError(f"{self.directory}: no checkpoint at step {step} (saved steps: {steps or 'none'})")

  def wait(self) -> None:
    """Waits for the async save in flight (raising its error in one line: SaveFailed), checksums what it wrote and
    runs the `when_complete` callbacks."""
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # noqa: BLE001
      failed, self._unhashed = (self._unhashed[-1] if self._unhashed else -1), []  # never "complete" a failed save
      raise self._save_error(failed, e) from None
    for step in self._write_checksums():
      for callback in self._on_complete:
        callback(step)

  def close(self) -> None:
    try:
      self.wait()
      self._manager.close()
    finally:
      if self.error_log and _ERROR_LOG.path == self.error_log:
        _ERROR_LOG.path = None
