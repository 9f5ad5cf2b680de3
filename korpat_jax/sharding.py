"""The device mesh and where arrays live on it.

Axes: `data` (pure data parallelism) and `fsdp` (data parallelism that also shards parameters and optimizer state).
The batch is split over both. Across hosts with slow links (several GPU nodes, several TPU slices) the `data` axis
spans the slow (DCN) dimension, so only gradient all-reduces cross it.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from korpat_jax.errors import ConfigError

AXES = ("data", "fsdp")
BATCH_AXES = ("data", "fsdp")


def mesh_shape(mesh_cfg: Mapping[str, Any], num_devices: int) -> tuple[int, int]:
  """Resolves one -1 in (data, fsdp) and checks that the product equals the device count."""
  shape = [int(mesh_cfg["data"]), int(mesh_cfg["fsdp"])]
  if shape.count(-1) > 1:
    raise ConfigError("config.mesh: at most one of mesh.data / mesh.fsdp may be -1")
  if -1 in shape:
    known = int(np.prod([s for s in shape if s != -1]))
    if num_devices % known:
      raise ConfigError(f"config.mesh: {num_devices} devices do not divide by mesh.fsdp*mesh.data={known}")
    shape[shape.index(-1)] = num_devices // known
  if int(np.prod(shape)) != num_devices or min(shape) < 1:
    raise ConfigError(f"config.mesh: data={shape[0]} x fsdp={shape[1]} does not match {num_devices} devices")
  return shape[0], shape[1]


def make_mesh(mesh_cfg: Mapping[str, Any], devices: list | None = None) -> Mesh:
  """A (data, fsdp) mesh; a hybrid ICI x DCN mesh when `mesh.dcn_data` > 1 (several nodes or slices)."""
  devices = list(jax.devices() if devices is None else devices)
  data, fsdp = mesh_shape(mesh_cfg, len(devices))
  dcn = int(mesh_cfg.get("dcn_data", 1))
  if dcn > 1:
    if data % dcn:
      raise ConfigError(f"config.mesh.dcn_data={dcn} must divide mesh.data={data}")
    array = np.concatenate([mesh_utils.create_device_mesh((data // dcn, fsdp), devices=list(group))
                            for group in granules(devices, dcn)], axis=0)
  else:
    array = mesh_utils.create_device_mesh((data, fsdp), devices=devices)
  return Mesh(array, AXES, axis_types=(AxisType.Auto, AxisType.Auto))


def granules(devices: list, count: int) -> np.ndarray:
  """Devices split into `count` equal groups with fast links inside each (TPU slices, GPU nodes).

  TPU devices name their slice. GPU processes do not name their node, but launchers number processes node by node
  (SLURM's block distribution, one task per GPU or per node), so consecutive process indices share a node.
  """
  ordered = sorted(devices, key=lambda d: (getattr(d, "slice_index", 0) or 0, d.process_index, d.id))
  if len(ordered) % count:
    raise ConfigError(f"config.mesh.dcn_data={count} must divide the device count {len(ordered)}")
  return np.array(ordered, dtype=object).reshape(count, -1)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over every mesh axis."""
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def fsdp_spec(shape: tuple[int, ...], fsdp: int, min_size: int) -> P:
  """Shard the largest dimension divisible by the fsdp size; replicate small or indivisible arrays."""
  if fsdp == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
    return P()
  for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
    if shape[dim] % fsdp == 0:
      spec = [None] * len(shape)
      spec[dim] = "fsdp"
      return P(*spec)
  return P()


def state_shardings(abstract_state: Any, mesh: Mesh, min_size: int = 2**14) -> Any:
  """NamedShardings for every leaf of a (params / optimizer / train) state tree."""
  fsdp = mesh.shape["fsdp"]
  return jax.tree.map(lambda x: NamedSharding(mesh, fsdp_spec(tuple(x.shape), fsdp, min_size)), abstract_state)
