#!/usr/bin/env bash
# Two nodes x 8 GPUs under SLURM (the seed's 16-GPU run). Submit from the repository root:
#   sbatch launch/slurm_2x8_gpu.sh configs/pretrain.py:korpatelectra /shared/runs/korpat \
#       --config.data.records_dir=/shared/patents/records
#
# From elsewhere: KORPAT_REPO=/path/to/korpat-jax sbatch /path/to/korpat-jax/launch/slurm_2x8_gpu.sh ... (CONFIG is
# then relative to the directory you submit from, or absolute).
#
# One task per GPU: `jax.distributed.initialize()` under SLURM assumes one process per GPU and picks the GPU from
# SLURM_LOCALID, so --ntasks-per-node must equal the GPUs per node. (One process per node instead needs
# --ntasks-per-node=1 and --config.distributed.mode=explicit with local_device_ids=0,1,...,7.)
# The mesh is hybrid: data parallelism inside a node over NVLink (ICI) and across the 2 nodes over the network
# (DCN), so mesh.dcn_data=2. WORKDIR must be on a filesystem that every node sees (checkpoints are written by all).
#
# Preemption: SLURM sends SIGTERM 120 s before the time limit (--signal) or on preemption; every process stops at
# the same step, saves a checkpoint of it and exits with 143. The job then requeues itself (--requeue) and the
# requeued job resumes from that checkpoint. Any other failure is not requeued.
#SBATCH --job-name=korpat-electra
#SBATCH --signal=TERM@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=12
#SBATCH --exclusive
#SBATCH --output=%x-%j.out
set -euo pipefail
usage="usage: sbatch launch/slurm_2x8_gpu.sh CONFIG WORKDIR [--config.key=value ...] (from the repository root)"
config=${1:?$usage}
workdir=${2:?$usage}
shift 2

# sbatch runs a spooled copy of this script (e.g. /var/spool/slurmd/job123/slurm_script), so "$(dirname "$0")" holds
# nothing of ours: look in $KORPAT_REPO/launch, then $SLURM_SUBMIT_DIR/launch (sbatch run from the repository root),
# else beside this script (run directly: bash launch/slurm_2x8_gpu.sh ...).
flags_file() {
  local dir
  for dir in ${KORPAT_REPO:+"$KORPAT_REPO/launch"} ${SLURM_SUBMIT_DIR:+"$SLURM_SUBMIT_DIR/launch"} "$(dirname "$0")"; do
    if [ -f "$dir/xla_gpu_flags.sh" ]; then echo "$dir/xla_gpu_flags.sh"; return 0; fi
  done
  echo "slurm_2x8_gpu.sh: launch/xla_gpu_flags.sh not found under KORPAT_REPO=${KORPAT_REPO:-(unset)}," \
    "SLURM_SUBMIT_DIR=${SLURM_SUBMIT_DIR:-(unset)} nor $(dirname "$0"): submit from the repository root" \
    "or set KORPAT_REPO=/path/to/korpat-jax" >&2
  return 1
}
flags=$(flags_file)
source "$flags"

command=${KORPAT_COMMAND:-pretrain}   # KORPAT_COMMAND=finetune for a fine-tuning config
# --gpu-bind=none: every task sees all 8 GPUs of its node (CUDA_VISIBLE_DEVICES as SLURM sets it for the step) and
# JAX picks the one numbered SLURM_LOCALID. A site default that binds GPUs per task (--gpu-bind=single:1 or
# per_task:1, also implied by --gpus-per-task) would leave each task one GPU, numbered 0, so ranks 1-7 would ask for
# a GPU they cannot see and fail; an explicit --gpu-bind overrides that default.
status=0
srun --kill-on-bad-exit=1 --gpu-bind=none korpat-jax "$command" --config "$config" --workdir "$workdir" \
    --config.distributed.mode=auto --config.mesh.data=-1 --config.mesh.dcn_data="$SLURM_JOB_NUM_NODES" "$@" \
    || status=$?
if [ "$status" -eq 143 ]; then   # stopped on SIGTERM with a checkpoint: run again from it
  echo "korpat-jax: preempted with a checkpoint; requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
