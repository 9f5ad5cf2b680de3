import pytest

from korpat_jax import distributed
from korpat_jax.errors import ConfigError

CFG = dict(mode="auto", coordinator_address="", num_processes=0, process_id=-1, local_device_ids="")


def test_auto_mode_is_a_no_op_on_a_single_host(monkeypatch):
  for var in ("SLURM_NTASKS", "SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS"):
    monkeypatch.delenv(var, raising=False)
  assert distributed._detected_cluster() is None
  distributed.initialize(CFG)  # must not try to reach a coordinator


def test_cluster_detection(monkeypatch):
  monkeypatch.setenv("SLURM_JOB_ID", "1")
  monkeypatch.setenv("SLURM_NTASKS", "16")
  assert distributed._detected_cluster() == "slurm"
  monkeypatch.setenv("SLURM_NTASKS", "1")
  monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "t0,t1,t2,t3")
  assert distributed._detected_cluster() == "tpu"


def test_explicit_mode_needs_its_settings(monkeypatch):
  monkeypatch.delenv("KORPAT_COORDINATOR", raising=False)
  with pytest.raises(ConfigError, match="explicit mode needs coordinator_address"):
    distributed.initialize(dict(CFG, mode="explicit"))
  with pytest.raises(ConfigError, match="expected auto, explicit or off"):
    distributed.initialize(dict(CFG, mode="sometimes"))


# Every variable that one of JAX's cluster environments (or our own checks) reads to decide it is present.
CLUSTER_VARS = ("SLURM_NTASKS", "SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_PROCID", "SLURM_LOCALID",
                "TPU_WORKER_HOSTNAMES", "TPU_PROCESS_ADDRESSES", "MEGASCALE_COORDINATOR_ADDRESS",
                "OMPI_MCA_orte_hnp_uri", "KUBERNETES_SERVICE_HOST")


@pytest.fixture
def plain_machine(monkeypatch):
  """No cluster variables and not a Cloud TPU VM, whatever machine the tests run on."""
  from jax._src.clusters import cloud_tpu_cluster
  for var in CLUSTER_VARS:
    monkeypatch.delenv(var, raising=False)
  monkeypatch.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", False)
  return monkeypatch


@pytest.fixture
def init_calls(monkeypatch):
  """jax.distributed.initialize replaced by a recorder: the tests see whether a multi-host start would happen."""
  calls = []
  monkeypatch.setattr(distributed.jax.distributed, "initialize", lambda **kw: calls.append(kw))
  return calls


class FakeCloudTpuVm:
  """Stands in for one of JAX's ClusterEnv classes (not a subclass: that would register it for good)."""
  name = "gcetpu"
  opt_in_only_method = False
  hosts = 4

  @classmethod
  def is_env_present(cls) -> bool:
    return True

  @classmethod
  def get_process_count(cls) -> int:
    return cls.hosts


def test_plain_machine_starts_no_coordinator(plain_machine, init_calls):
  assert distributed._detected_cluster() is None
  distributed.initialize(CFG)
  assert init_calls == []


def test_cloud_tpu_vm_pod_is_detected_without_worker_hostnames(plain_machine, init_calls):
  """A TPU VM pod exports no TPU_WORKER_HOSTNAMES: detection must come from JAX's cluster registry."""
  from jax._src.clusters import ClusterEnv
  plain_machine.setattr(ClusterEnv, "_cluster_types", [FakeCloudTpuVm])
  assert distributed._detected_cluster() == "gcetpu"
  distributed.initialize(dict(CFG, heartbeat_timeout_s=30))
  assert init_calls == [dict(heartbeat_timeout_seconds=30)]


@pytest.mark.parametrize("hosts", [1, None])
def test_single_host_or_failing_detection_stays_one_process(plain_machine, init_calls, hosts, caplog):
  """A single-host TPU VM (v4-8) needs no coordinator; a probe that raises is logged, not fatal."""
  from jax._src.clusters import ClusterEnv

  class Env(FakeCloudTpuVm):
    @classmethod
    def get_process_count(cls) -> int:
      if hosts is None:
        raise RuntimeError("metadata server unreachable\nsecond line")
      return hosts

  plain_machine.setattr(ClusterEnv, "_cluster_types", [Env])
  distributed.initialize(CFG)
  assert init_calls == []
  if hosts is None:
    [record] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "process count is unknown (RuntimeError: metadata server unreachable)" in record.getMessage()


def test_jax_gce_tpu_cluster_with_stubbed_metadata(plain_machine, init_calls):
  """JAX's real GceTpuCluster, its metadata server stubbed as worker 2 of a v4-32 (4 hosts): detected, and JAX then
  finds coordinator, process count and id from the same metadata."""
  from jax._src.clusters import ClusterEnv, cloud_tpu_cluster
  metadata = {"agent-worker-number": "2", "worker-network-endpoints": "t0,t1,t2,t3",
              "tpu-env": "ACCELERATOR_TYPE: 'v4-32'\n"}
  plain_machine.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", True)
  plain_machine.delenv("TPU_SKIP_MDS_QUERY", raising=False)  # JAX sets it at import on a machine without TPU chips
  plain_machine.delenv("MEGASCALE_NUM_SLICES", raising=False)
  plain_machine.setattr(cloud_tpu_cluster, "get_metadata", lambda key: (metadata[key], 200))
  plain_machine.setattr(cloud_tpu_cluster.BaseTpuCluster, "wait_for_coordinator", classmethod(lambda *a: None))
  assert distributed._detected_cluster() == "gcetpu"
  distributed.initialize(CFG)
  assert len(init_calls) == 1
  address, count, pid, _ = ClusterEnv.auto_detect_unset_distributed_params(None, None, None, None, None, 300)
  assert (address, count, pid) == ("t0:8482", 4, 2)


def test_detection_falls_back_to_env_vars_when_jax_registry_moves(plain_machine, init_calls, caplog):
  from jax._src.clusters import ClusterEnv
  plain_machine.delattr(ClusterEnv, "_cluster_types")
  assert distributed._detected_cluster() is None
  assert "_cluster_types unavailable" in caplog.text
  plain_machine.setenv("TPU_WORKER_HOSTNAMES", "t0,t1,t2,t3")
  assert distributed._detected_cluster() == "tpu"
