#!/usr/bin/env bash
# A Cloud TPU VM pod slice (e.g. v4-32: 4 hosts): the same command on every worker, one process per host.
#   bash launch/tpu_vm_pod.sh my-tpu us-central2-b configs/pretrain.py:base gs://bucket/runs/base \
#       --config.data.records_dir=/mnt/disks/data/records
# jax.distributed.initialize() finds the other hosts from the TPU metadata (distributed.mode=auto). Install the
# package on every worker first: pip install 'korpat-jax[tpu]' (or this checkout). Records must be readable from
# every host (a persistent disk attached read-only to all workers, or a GCS FUSE mount); the workdir may be gs://.
# Several slices (multislice): add --config.mesh.dcn_data=<number of slices>.
set -euo pipefail
tpu=${1:?usage: tpu_vm_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.key=value ...]}
zone=${2:?}; config=${3:?}; workdir=${4:?}
shift 4
gcloud compute tpus tpu-vm ssh "$tpu" --zone "$zone" --worker=all --command \
  "cd ~/korpat-jax && korpat-jax pretrain --config $config --workdir $workdir --config.distributed.mode=auto $*"
