"""launch/slurm_2x8_gpu.sh as sbatch runs it: a spooled copy with nothing beside it, stub srun and scontrol on PATH.
Checks the srun command line, that the GPU XLA flags reach it, and the requeue-on-143 exit logic."""

from __future__ import annotations

import os
import shutil

import pytest

from launch_testlib import LAUNCH, REPO, calls, run_script, stub_env, write_stub

SCRIPT = LAUNCH / "slurm_2x8_gpu.sh"
CONFIG, WORKDIR = "configs/pretrain.py:korpatelectra", "/shared/runs/korpat"
EXTRA = ["--config.x=y", "--config.train.note=two words"]


@pytest.fixture
def cluster(tmp_path):
  """A spool directory holding only the copied script (as slurmd's), stub srun / scontrol, and the job's env."""
  spool = tmp_path / "spool dir" / "job4242"
  spool.mkdir(parents=True)
  shutil.copy(SCRIPT, spool / "slurm_script")
  bin_dir, logs = tmp_path / "bin", tmp_path / "logs"
  logs.mkdir()
  write_stub(bin_dir, "srun", exit_var="SRUN_STUB_EXIT")
  write_stub(bin_dir, "scontrol")
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("SLURM_", "KORPAT_", "XLA_", "NCCL_"))}
  env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(logs), SLURM_SUBMIT_DIR=str(REPO),
             SLURM_JOB_ID="4242", SLURM_JOB_NUM_NODES="2", XLA_FLAGS="--xla_dump_to=/tmp/hlo")
  return dict(script=spool / "slurm_script", env=env, logs=logs, cwd=tmp_path)


def sbatch(cluster: dict, srun_exit: int = 0, **env: str):
  """Runs the spooled script as `bash slurm_script CONFIG WORKDIR EXTRA...` with srun exiting `srun_exit`."""
  full_env = dict(cluster["env"], SRUN_STUB_EXIT=str(srun_exit), **env)
  full_env = {k: v for k, v in full_env.items() if v is not None}
  return run_script([str(cluster["script"]), CONFIG, WORKDIR, *EXTRA], full_env, cluster["cwd"])


def test_srun_command_line_and_gpu_flags(cluster):
  result = sbatch(cluster)
  assert result.returncode == 0, result.stderr
  assert calls(cluster["logs"], "srun") == [[
      "--kill-on-bad-exit=1", "--gpu-bind=none", "korpat-jax", "pretrain", "--config", CONFIG, "--workdir", WORKDIR,
      "--config.distributed.mode=auto", "--config.mesh.data=-1", "--config.mesh.dcn_data=2", *EXTRA]]
  env = stub_env(cluster["logs"], "srun")
  flags = env["XLA_FLAGS"].split()
  assert "--xla_gpu_enable_latency_hiding_scheduler=true" in flags
  assert "--xla_gpu_all_reduce_combine_threshold_bytes=67108864" in flags
  assert flags[-1] == "--xla_dump_to=/tmp/hlo"  # the submitter's own flags are kept, last (they win)
  assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.9"


@pytest.mark.parametrize("srun_exit, requeued", [(143, True), (1, False), (0, False)])
def test_requeue_only_after_a_preemption_checkpoint(cluster, srun_exit, requeued):
  """143 = stopped on SIGTERM with a checkpoint: requeue and exit 143; any other status: no requeue, same status."""
  result = sbatch(cluster, srun_exit)
  assert result.returncode == srun_exit, result.stderr
  assert calls(cluster["logs"], "scontrol") == ([["requeue", "4242"]] if requeued else [])
  assert ("requeueing job 4242" in result.stdout) == requeued


def test_finetune_command(cluster):
  assert sbatch(cluster, KORPAT_COMMAND="finetune").returncode == 0
  assert calls(cluster["logs"], "srun")[0][2:4] == ["korpat-jax", "finetune"]


def test_no_flags_file_is_a_one_line_error(cluster):
  """Neither SLURM_SUBMIT_DIR nor KORPAT_REPO, and nothing beside the spooled copy: one line naming what it looked
  for, and srun never starts."""
  result = sbatch(cluster, SLURM_SUBMIT_DIR=None)
  assert result.returncode != 0
  [line] = result.stderr.strip().splitlines()
  assert "xla_gpu_flags.sh not found" in line and "SLURM_SUBMIT_DIR=(unset)" in line and "KORPAT_REPO" in line
  assert calls(cluster["logs"], "srun") == []


def test_flags_found_from_korpat_repo_or_beside_the_script(cluster, tmp_path):
  """KORPAT_REPO (a path with a space here) wins over a submit directory without launch/; run directly from the
  checkout, the script finds the flags beside itself."""
  repo_link = tmp_path / "my checkout"
  repo_link.symlink_to(REPO)
  assert sbatch(cluster, SLURM_SUBMIT_DIR=str(tmp_path), KORPAT_REPO=str(repo_link)).returncode == 0
  env = dict(cluster["env"])
  del env["SLURM_SUBMIT_DIR"]
  result = run_script([str(SCRIPT), CONFIG, WORKDIR], env, cluster["cwd"])
  assert result.returncode == 0, result.stderr
  assert len(calls(cluster["logs"], "srun")) == 2
  assert "--xla_gpu_enable_latency_hiding_scheduler=true" in stub_env(cluster["logs"], "srun")["XLA_FLAGS"]
