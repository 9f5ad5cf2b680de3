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
