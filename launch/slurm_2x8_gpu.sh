#!/usr/bin/env bash
# Two nodes x 8 GPUs under SLURM (the seed's 16-GPU run). Submit from the repository root:
#   sbatch launch/slurm_2x8_gpu.sh configs/pretrain.py:korpatelectra /shared/runs/korpat \
#       --config.data.records_dir=/shared/patents/records
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
config=${1:?usage: sbatch slurm_2x8_gpu.sh CONFIG WORKDIR [--config.key=value ...]}
workdir=${2:?usage: sbatch slurm_2x8_gpu.sh CONFIG WORKDIR [--config.key=value ...]}
shift 2
source "$(dirname "$0")/xla_gpu_flags.sh"
command=${KORPAT_COMMAND:-pretrain}   # KORPAT_COMMAND=finetune for a fine-tuning config
status=0
srun --kill-on-bad-exit=1 korpat-jax "$command" --config "$config" --workdir "$workdir" \
    --config.distributed.mode=auto --config.mesh.data=-1 --config.mesh.dcn_data="$SLURM_JOB_NUM_NODES" "$@" \
    || status=$?
if [ "$status" -eq 143 ]; then   # stopped on SIGTERM with a checkpoint: run again from it
  echo "korpat-jax: preempted with a checkpoint; requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
