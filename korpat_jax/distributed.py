"""Multi-host start: one JAX process per host (TPU) or per GPU (SLURM), before anything touches a device."""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

import jax

from korpat_jax.errors import ConfigError

log = logging.getLogger(__name__)


def _detected_cluster() -> str | None:
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
    return "slurm"
  if "," in os.environ.get("TPU_WORKER_HOSTNAMES", "") or "MEGASCALE_COORDINATOR_ADDRESS" in os.environ:
    return "tpu"
  return None


def initialize(cfg: Mapping[str, Any]) -> None:
  """`config.distributed`: mode auto | explicit | off.

  auto: `jax.distributed.initialize()` when SLURM (several tasks) or a multi-host Cloud TPU is detected; JAX reads
    the coordinator from the environment. Under SLURM on GPUs that means one task per GPU (--ntasks-per-node=8).
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
