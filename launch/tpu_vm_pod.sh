#!/usr/bin/env bash
# A Cloud TPU VM pod slice (e.g. v4-32: 4 hosts): the same command on every worker, one process per host.
#   bash launch/tpu_vm_pod.sh my-tpu us-central2-b configs/pretrain.py:base gs://bucket/runs/base \
#       --config.data.records_dir=/mnt/disks/data/records
# jax.distributed.initialize() finds the other hosts from the TPU metadata (distributed.mode=auto). Install the
# package on every worker first: pip install 'korpat-jax[tpu]' (or this checkout). Records must be readable from
# every host (a persistent disk attached read-only to all workers, or a GCS FUSE mount); the workdir may be gs://.
# Several slices (multislice): add --config.mesh.dcn_data=<number of slices>.
#
# On each worker the command runs from the checkout KORPAT_CHECKOUT (default korpat-jax, relative to the home
# directory there) in a login shell, so a `pip install --user` (~/.local/bin) is on PATH; KORPAT_VENV=<dir> (on the
# workers, relative to home or absolute) activates a virtual environment first. KORPAT_COMMAND=finetune for a
# fine-tuning config. Arguments keep their spaces and quotes: each is quoted for the remote shell.
set -euo pipefail
usage="usage: tpu_vm_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.key=value ...]"
tpu=${1:?$usage}; zone=${2:?$usage}; config=${3:?$usage}; workdir=${4:?$usage}
shift 4

# The script bash runs on each worker: activate the environment, enter the checkout, start the trainer.
remote_script() {
  local venv=${KORPAT_VENV:-} checkout=${KORPAT_CHECKOUT:-korpat-jax} command=${KORPAT_COMMAND:-pretrain}
  if [ -n "$venv" ]; then printf 'source %q/bin/activate && ' "$venv"; fi
  printf 'cd %q && exec korpat-jax %q --config %q --workdir %q --config.distributed.mode=auto' \
    "$checkout" "$command" "$config" "$workdir"
  if [ "$#" -gt 0 ]; then printf ' %q' "$@"; fi
}

# POSIX single quotes (any login shell reads them, unlike bash's $'...' from %q): ' becomes '\''.
single_quoted() {
  local escaped="'\\''"
  printf "'%s'" "${1//\'/$escaped}"
}

# `gcloud ... ssh --command` hands its string to the worker's shell without a login (no ~/.profile, so no
# ~/.local/bin on PATH): run the script with `bash -lc`, quoted for that outer shell.
gcloud compute tpus tpu-vm ssh "$tpu" --zone "$zone" --worker=all \
  --command "bash -lc $(single_quoted "$(remote_script "$@")")"
