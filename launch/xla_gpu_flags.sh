# Sourced by the launch scripts on NVIDIA GPUs. The flags that matter for data-parallel ELECTRA:
#   latency hiding scheduler: overlaps the gradient all-reduce of layer i with the backward of layer i-1.
#   all-reduce combine threshold: fuses many small per-parameter all-reduces into few large ones (NCCL likes
#     big messages); 64 MiB covers a base model's gradients in a handful of collectives.
# XLA reads XLA_FLAGS when the backend starts; anything already in XLA_FLAGS is kept and wins.
export XLA_FLAGS="--xla_gpu_enable_latency_hiding_scheduler=true \
--xla_gpu_all_reduce_combine_threshold_bytes=67108864 ${XLA_FLAGS:-}"
# Let XLA take 90% of each GPU's memory up front (the rest for NCCL and cuDNN workspaces).
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
# Cross-node: use the InfiniBand/RoCE NICs; set NCCL_SOCKET_IFNAME to your cluster's interface if needed.
export NCCL_IB_DISABLE=${NCCL_IB_DISABLE:-0}
