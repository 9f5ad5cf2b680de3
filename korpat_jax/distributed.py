"""Multi-host start: one JAX process per host (TPU) or per GPU (SLURM), before anything touches a device."""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any, Mapping

import jax

from korpat_jax.errors import ConfigError

log = logging.getLogger(__name__)


def _detected_cluster() -> str | None:
  """The multi-process environment `jax.distributed.initialize()` will bootstrap from, or None (one process).

  Environment variables first (cheap; SLURM with several tasks, GKE TPU hostnames, multislice), then JAX's own
  cluster registry, which also finds what exports no variable: a Cloud TPU VM pod (GCE metadata), Open MPI,
  Kubernetes jobs."""
  return _cluster_from_env() or _cluster_from_jax()


def _cluster_from_env() -> str | None:
  """The checks that need no JAX internals: they stay when JAX's registry moves."""
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
    return "slurm"
  if "," in os.environ.get("TPU_WORKER_HOSTNAMES", "") or "MEGASCALE_COORDINATOR_ADDRESS" in os.environ:
    return "tpu"
  return None


def _jax_cluster_envs() -> list[type] | None:
  """JAX's cluster environments in its own detection order (opt-in ones left out, as JAX does by default); None
  where that private API is gone, so that only the environment-variable checks apply."""
  try:
    from jax._src import clusters
    envs = list(clusters.ClusterEnv._cluster_types)
  except (ImportError, AttributeError) as e:
    log.warning("jax._src.clusters.ClusterEnv._cluster_types unavailable (%s): only SLURM_* / TPU_WORKER_HOSTNAMES "
                "detect a multi-host run; use --config.distributed.mode=explicit elsewhere", e)
    return None
  return [env for env in envs if not getattr(env, "opt_in_only_method", False)]


def _cluster_from_jax() -> str | None:
  """The environment JAX itself would pick (the first present one), when it has several processes.

  Cheap on a plain machine: the Cloud TPU checks ask the metadata server only on a TPU VM (JAX's PCI scan at import),
  Kubernetes only where KUBERNETES_SERVICE_HOST is set."""
  env = next((env for env in _jax_cluster_envs() or [] if _present(env)), None)
  if env is None:
    return None
  name = getattr(env, "name", "") or env.__name__
  count = _process_count(env, name)
  log.info("cluster environment %s: %d process(es)", name, count)
  return name if count > 1 else None


def _present(env: type) -> bool:
  """env.is_env_present(); a failing check counts as absent, with a warning (the run then starts one process)."""
  try:
    with warnings.catch_warnings(record=True) as caught:  # e.g. K8s without the kubernetes package, on any pod
      warnings.simplefilter("always")
      present = bool(env.is_env_present())
  except Exception as e:  # noqa: BLE001 - any failure of a third-party probe means "not detected"
    log.warning("cluster detection %s.is_env_present() failed (%s): not treated as multi-host", env.__name__,
                _first_line(e))
    return False
  for w in caught:
    log.debug("cluster detection %s: %s", env.__name__, w.message)
  return present


def _process_count(env: type, name: str) -> int:
  """How many processes the environment says the job has; 1 (no multi-host start) where it cannot say."""
  try:
    return int(env.get_process_count())
  except Exception as e:  # noqa: BLE001
    log.warning("cluster %s detected but its process count is unknown (%s): starting one process; set "
                "--config.distributed.mode=explicit for a multi-host run", name, _first_line(e))
    return 1


def _first_line(e: BaseException) -> str:
  """Kubernetes and metadata errors span many lines; the log keeps one."""
  text = str(e).strip()
  return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def initialize(cfg: Mapping[str, Any]) -> None:
  """`config.distributed`: mode auto | explicit | off.

  auto: `jax.distributed.initialize()` when an environment with several processes is detected (SLURM, a Cloud TPU
    VM pod or GKE TPU slice, Open MPI, a Kubernetes job: see `_detected_cluster`); JAX reads the coordinator from
    it. Under SLURM on GPUs that means one task per GPU (--ntasks-per-node=8).
  explicit: coordinator_address, num_processes and process_id from the config (or KORPAT_COORDINATOR,
    KORPAT_NUM_PROCESSES, KORPAT_PROCESS_ID), and local_device_ids for one process per node.
  """
  mode = cfg["mode"]
  if mode == "off":
    return
  if mode == "auto":
    cluster = _detected_cluster()
    if cluster is None:
      return
    log.info("multi-host start: %s detected", cluster)
    jax.distributed.initialize(heartbeat_timeout_seconds=_heartbeat(cfg))
    return
  if mode != "explicit":
    raise ConfigError(f"config.distributed.mode={mode!r}: expected auto, explicit or off")
  address = cfg["coordinator_address"] or os.environ.get("KORPAT_COORDINATOR", "")
  num = int(cfg["num_processes"] or os.environ.get("KORPAT_NUM_PROCESSES", 0))
  pid = cfg["process_id"] if cfg["process_id"] >= 0 else int(os.environ.get("KORPAT_PROCESS_ID", -1))
  if not address or num < 1 or pid < 0:
    raise ConfigError("config.distributed: explicit mode needs coordinator_address, num_processes and process_id")
  local = [int(i) for i in str(cfg["local_device_ids"]).split(",") if i.strip()] or None
  jax.distributed.initialize(coordinator_address=address, num_processes=num, process_id=pid,
                             local_device_ids=local, heartbeat_timeout_seconds=_heartbeat(cfg))


def _heartbeat(cfg: Mapping[str, Any]) -> int:
  """Seconds without a heartbeat after which a process counts as lost and the others exit (JAX's default: 100)."""
  seconds = int(cfg.get("heartbeat_timeout_s", 60))
  if seconds < 1:
    raise ConfigError(f"config.distributed.heartbeat_timeout_s={seconds}: must be >= 1")
  return seconds
