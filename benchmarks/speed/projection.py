"""Projected wall time of the seed's pretraining run (korpatelectra: ELECTRA-Base, 1M steps x batch 128 x seq 512)
on 16 H200 (2 nodes x 8) and on TPU v5p slices, from the analytic step FLOPs and a data-parallel all-reduce model.

    python -m benchmarks.speed.projection                 # the tables of benchmarks/results/projection.md
    python -m benchmarks.speed.projection --mfu 0.5       # another MFU assumption

Model (every number comes from the arguments below; nothing is measured here):
  compute per step  = korpat_jax.mfu.training_flops_per_step(base, global batch, 512, 79) / (devices x peak x MFU)
  all-reduce        = ring: 2 (N - 1) / N x gradient bytes / the slowest link's one-way bandwidth; gradient bytes =
                      parameters x 4 (fp32) or x 2 (bf16)
  step, no overlap  = compute + all-reduce
  step, overlap     = forward + max(backward, all-reduce), backward = 2/3 of compute (the gradients of a layer are
                      reduced while the layers below it still run backward; the forward cannot hide any of it)
  scaling efficiency = compute / step (1.0 = the all-reduce costs nothing)
The per-device batch for >= 90% efficiency keeps the step's FLOPs per sequence and the MFU fixed and grows the batch
on each device (the global batch grows with it, or fewer devices run the seed's 128).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from typing import Optional, Sequence

from benchmarks.common import REPO

GB = 1e9


@dataclasses.dataclass(frozen=True)
class System:
  name: str
  devices: int
  peak_flops: float          # bf16 dense per device
  ring_bandwidth: float      # bytes/s one way on the slowest link of a flat ring
  link: str                  # what that link is
  hierarchical: Optional[tuple[int, int, float]] = None  # (devices per node, NICs per node, intra-node B/s)


def systems(nic_gbit: float, nvlink_gbyte: float, ici_gbyte: float) -> list[System]:
  """16 H200 in 2 nodes (three ways to reduce across them) and TPU v5p slices (v5p-N: N TensorCores = N/2 chips,
  one JAX device each)."""
  nic, nvlink, ici = nic_gbit / 8 * GB, nvlink_gbyte * GB, ici_gbyte * GB
  return [
      System("16 x H200, flat ring", 16, 989e12, nic, f"one {nic_gbit:.0f} Gb/s link between the nodes"),
      System("16 x H200, hierarchical, 1 NIC a node", 16, 989e12, nic,
             f"NVLink in the node, the whole gradient over one {nic_gbit:.0f} Gb/s link", hierarchical=(8, 1, nvlink)),
      System("16 x H200, hierarchical, 8 NICs a node", 16, 989e12, nic,
             f"NVLink in the node, 1/8 of the gradient over each GPU's {nic_gbit:.0f} Gb/s NIC",
             hierarchical=(8, 8, nvlink)),
      System("TPU v5p-16 (8 chips)", 8, 459e12, ici, f"ICI {ici_gbyte:.0f} GB/s one way per link"),
      System("TPU v5p-32 (16 chips)", 16, 459e12, ici, f"ICI {ici_gbyte:.0f} GB/s one way per link"),
  ]


def allreduce_seconds(system: System, grad_bytes: float) -> float:
  """Ring all-reduce time; hierarchical: reduce-scatter in the node, all-reduce of the shards across the nodes
  (spread over the node's NICs), all-gather in the node."""
  n = system.devices
  if system.hierarchical:
    per_node, nics, intra = system.hierarchical
    nodes = n // per_node
    inside = 2 * (per_node - 1) / per_node * grad_bytes / intra
    across = 2 * (nodes - 1) / nodes * grad_bytes / (nics * system.ring_bandwidth)
    return inside + across
  return 2 * (n - 1) / n * grad_bytes / system.ring_bandwidth


def step_seconds(compute: float, allreduce: float, overlap: bool) -> float:
  return compute / 3 + max(2 * compute / 3, allreduce) if overlap else compute + allreduce


def batch_for_efficiency(per_sequence: float, allreduce: float, overlap: bool, target: float = 0.9,
                         limit: int = 1 << 16) -> Optional[int]:
  """Smallest per-device batch whose scaling efficiency reaches `target` (None above `limit`)."""
  lo, hi = 1, limit
  efficiency = lambda b: per_sequence * b / step_seconds(per_sequence * b, allreduce, overlap)
  if efficiency(hi) < target:
    return None
  while lo < hi:
    mid = (lo + hi) // 2
    if efficiency(mid) >= target:
      hi = mid
    else:
      lo = mid + 1
  return lo


def seed_run() -> dict:
  """The korpatelectra config's model, step FLOPs and parameter count."""
  import jax
  import jax.numpy as jnp
  from korpat_jax import config as config_lib, objective
  from korpat_jax.mfu import training_flops_per_step
  from korpat_jax.model import ElectraConfig, ElectraPretrainer
  config = config_lib.load(f"{REPO / 'configs' / 'pretrain.py'}:korpatelectra")
  cfg = ElectraConfig.from_config(config.model)
  t = config.train
  predictions = objective.max_predictions_per_seq(t.seq_len, config.objective.mask_prob)
  ids = jnp.zeros((1, t.seq_len), jnp.int32)
  shapes = jax.eval_shape(lambda: ElectraPretrainer(cfg).init(jax.random.PRNGKey(0), ids, ids, ids + 1))
  params = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))
  return {"cfg": cfg, "batch": t.batch_size, "seq_len": t.seq_len, "steps": t.num_steps, "predictions": predictions,
          "params": params, "flops": training_flops_per_step(cfg, t.batch_size, t.seq_len, predictions)}


def rows(run: dict, mfu: float, nic_gbit: float, nvlink_gbyte: float, ici_gbyte: float) -> list[dict]:
  out = []
  for system in systems(nic_gbit, nvlink_gbyte, ici_gbyte):
    per_device = run["batch"] / system.devices
    compute = run["flops"] / (system.devices * system.peak_flops * mfu)
    per_sequence = compute / per_device
    for dtype, width in (("fp32", 4), ("bf16", 2)):
      allreduce = allreduce_seconds(system, run["params"] * width)
      for overlap in (False, True):
        step = step_seconds(compute, allreduce, overlap)
        out.append({"system": system.name, "link": system.link, "devices": system.devices,
                    "per_device_batch": per_device, "grads": dtype, "overlap": overlap, "compute_s": compute,
                    "allreduce_s": allreduce, "step_s": step, "efficiency": compute / step,
                    "days": step * run["steps"] / 86400,
                    "batch_90": batch_for_efficiency(per_sequence, allreduce, overlap)})
  return out


def markdown(run: dict, table: list[dict], args: argparse.Namespace) -> str:
  cfg = run["cfg"]
  lines = [f"Seed run: ELECTRA-Base (discriminator L{cfg.discriminator.num_layers}/H{cfg.discriminator.hidden_size}, "
           f"generator H{cfg.generator.hidden_size}, vocab {cfg.vocab_size:,}), {run['params'] / 1e6:.1f}M parameters "
           f"(generator + discriminator, shared embeddings), {run['steps']:,} steps x batch {run['batch']} x seq "
           f"{run['seq_len']} ({run['predictions']} predictions a sequence): {run['flops'] / 1e12:.1f} TFLOP a step "
           f"({run['flops'] * run['steps'] / 1e18:.1f} EFLOP in all). MFU assumed {args.mfu:.0%}.", "",
           "| system | slowest link | per-device batch | grads | overlap | compute (ms) | all-reduce (ms) | step (ms) "
           "| "
           "scaling efficiency | days for the run | per-device batch for >= 90% (global) |",
           "|---|---|---:|---|---|---:|---:|---:|---:|---:|---|"]
  for r in table:
    b90 = r["batch_90"]
    target = "n/a" if b90 is None else ("<= 1" if b90 == 1 else f"{b90} ({b90 * r['devices']:,})")
    lines.append(f"| {r['system']} | {r['link']} | {r['per_device_batch']:g} | {r['grads']} | "
                 f"{'yes' if r['overlap'] else 'no'} | {r['compute_s'] * 1e3:.2f} | {r['allreduce_s'] * 1e3:.2f} | "
                 f"{r['step_s'] * 1e3:.2f} | {r['efficiency']:.0%} | {r['days']:.2f} | {target} |")
  return "\n".join(lines) + "\n"


def sensitivity(run: dict, args: argparse.Namespace, mfus: Sequence[float] = (0.3, 0.4, 0.5)) -> str:
  """Days for the run at other MFUs: fp32 gradients without overlap (the worst row) and bf16 with overlap (best)."""
  lines = ["| system | " + " | ".join(f"MFU {m:.0%}: fp32, no overlap / bf16, overlap (days)" for m in mfus) + " |",
           "|---|" + "---:|" * len(mfus)]
  tables = {m: rows(run, m, args.nic_gbit, args.nvlink_gbyte, args.ici_gbyte) for m in mfus}
  for name in dict.fromkeys(r["system"] for r in tables[mfus[0]]):
    cells = []
    for m in mfus:
      pick = {(r["grads"], r["overlap"]): r["days"] for r in tables[m] if r["system"] == name}
      cells.append(f"{pick[('fp32', False)]:.2f} / {pick[('bf16', True)]:.2f}")
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--mfu", type=float, default=0.40, help="model FLOPs utilisation of the compute (0-1)")
  parser.add_argument("--nic-gbit", type=float, default=400.0, help="inter-node link, Gb/s one way")
  parser.add_argument("--nvlink-gbyte", type=float, default=450.0, help="H200 NVLink, GB/s one way per GPU")
  parser.add_argument("--ici-gbyte", type=float, default=100.0, help="TPU v5p ICI, GB/s one way per link")
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  run = seed_run()
  print(markdown(run, rows(run, args.mfu, args.nic_gbit, args.nvlink_gbyte, args.ici_gbyte), args))
  print(sensitivity(run, args))
  return 0


if __name__ == "__main__":
  sys.exit(main())
