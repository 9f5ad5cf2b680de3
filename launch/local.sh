#!/usr/bin/env bash
# One host, all its devices (GPUs, a TPU VM, or the CPU), one process.
#   bash launch/local.sh configs/pretrain.py:base /data/runs/base --config.data.records_dir=/data/records
# Extra arguments are passed on (config overrides). Rerunning the same command resumes from the latest checkpoint.
set -euo pipefail
config=${1:?usage: local.sh CONFIG WORKDIR [--config.key=value ...]}
workdir=${2:?usage: local.sh CONFIG WORKDIR [--config.key=value ...]}
shift 2
if command -v nvidia-smi >/dev/null 2>&1; then
  source "$(dirname "$0")/xla_gpu_flags.sh"
fi
exec korpat-jax pretrain --config "$config" --workdir "$workdir" --config.distributed.mode=off "$@"
