"""Does the demo's discriminator learn, and does a PyTorch ELECTRA with the same sizes, data and recipe agree?

    python -m benchmarks.parity.demo_recipe                                  # the demo as configs/pretrain.py has it
    python -m benchmarks.parity.demo_recipe --set objective.temperature=1.0  # google's sampling temperature instead
    python -m benchmarks.parity.demo_recipe --steps 60 --sides korpat        # a quick look at our side only

Both sides train from their own random init on the same demo records (built under --data when absent), the same
batches in the same order (the trainer's Grain iterator), ELECTRA's objective (korpat_jax.objective; the PyTorch
step of benchmarks/parity/torch_electra_step.py: HF ElectraForMaskedLM + ElectraForPreTraining with shared embeddings)
and the recipe's optimizer (AdamW, bias-corrected as the demo sets it, clip 1.0, warmup + linear decay).
korpat's side is the real trainer (`korpat_jax.train.train`), read back from its metrics.jsonl.

"Learns" is read against the base rate: a discriminator that always answers "original" scores the binary entropy
H(replaced share of the tokens) as its loss, so disc loss below that (and a non-zero recall at a useful precision)
is what detection looks like. Prints a Markdown table per logged step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from typing import Optional, Sequence

from benchmarks.common import REPO


def base_rate_loss(replaced_share: float) -> float:
  """The loss of a discriminator that predicts the base rate at every token: H(p) in nats."""
  p = min(max(replaced_share, 1e-12), 1 - 1e-12)
  return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def demo_config(overrides: Sequence[tuple[str, str]], steps: int, log_every: int, data_dir: str):
  from korpat_jax import config as config_lib
  config = config_lib.load(f"{REPO / 'configs' / 'pretrain.py'}:demo")
  config_lib.apply_overrides(config, [("train.num_steps", str(steps)), ("train.log_every", str(log_every)),
                                      ("train.eval_every", "0"), ("train.checkpoint_every", str(steps)),
                                      ("data.records_dir", os.path.join(data_dir, "records")),
                                      ("data.tokenizer_dir", os.path.join(data_dir, "tokenizer")), *overrides])
  return config


def ensure_demo_data(config, data_dir: str) -> None:
  from korpat_jax.corpus.demo import build_demo_data
  if not os.path.exists(os.path.join(data_dir, "records", "manifest.json")):
    build_demo_data(os.path.join(data_dir, "records"), os.path.join(data_dir, "tokenizer"),
                    vocab_size=config.data.demo_vocab_size, seq_len=config.train.seq_len)


def run_korpat(config, workdir: str) -> list[dict[str, float]]:
  from korpat_jax.train import train
  train(config, workdir)
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8")]
  return [r for r in rows if "step_time" in r]  # training rows (eval rows have no step time)


def torch_peer(config):
  """The PyTorch ELECTRA of `config` (its model sizes with the records' vocab size, objective and optimizer over
  config.train.num_steps steps) and the trainer's own batch iterator over config.data.records_dir (the same batches
  in the same order as `korpat-jax pretrain` with this config): (TorchElectraStep, iterator)."""
  from korpat_jax import objective
  from korpat_jax.corpus import records
  from korpat_jax.input_pipeline import make_iterator
  from korpat_jax.model import ElectraConfig
  from korpat_jax.special_tokens import SpecialIds
  from benchmarks.parity.torch_electra_step import TorchElectraStep
  records_dir = config.data.records_dir
  manifest = records.read_manifest(records_dir)
  model = dict(config.model, vocab_size=manifest.vocab_size)
  cfg = ElectraConfig.from_config(model)
  special = SpecialIds.from_mapping(manifest.special_ids)
  obj = dict(config.objective)
  if obj["max_predictions"] < 0:  # -1: from seq_len, as the trainer does
    obj["max_predictions"] = objective.max_predictions_per_seq(config.train.seq_len, obj["mask_prob"])
  side = TorchElectraStep(cfg, None, special, obj, dict(config.optimizer), config.train.num_steps, config.seed)
  wv = config.get("word_vectors")
  if wv is not None and wv.source == "ppmi":  # the same table korpat's PretrainingTask.computed_params starts from
    import torch
    from korpat_jax import word_vectors
    table, _ = word_vectors.from_records(
        records_dir, manifest.special_ids.values(), cfg.vocab_size, cfg.embedding_size, cfg.initializer_range,
        word_vectors.Settings.from_config(wv), config.seed)
    with torch.no_grad():
      side.discriminator.electra.embeddings.word_embeddings.weight.copy_(torch.from_numpy(table))
  batches = make_iterator(records_dir, global_batch_size=config.train.batch_size, seed=config.seed,
                          process_index=0, process_count=1)
  return side, batches


def run_torch(config, log_every: int) -> list[dict[str, float]]:
  """The PyTorch ELECTRA on the trainer's own batches; per log step, the window's mean statistics."""
  side, batches = torch_peer(config)
  steps = config.train.num_steps
  rows, window = [], []
  for step in range(1, steps + 1):
    stats = side.step(side.to_torch(next(batches)))
    window.append(stats)
    if step % log_every == 0 or step == steps:
      mean = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
      tp, pp, ap = (sum(w[k] for w in window) for k in ("disc_true_positive", "disc_predicted_positive",
                                                         "disc_actual_positive"))
      mean.update(step=step, disc_precision=tp / max(pp, 1.0), disc_recall=tp / max(ap, 1.0))
      rows.append(mean)
      window = []
  return rows


def table(sides: dict[str, list[dict[str, float]]], masked_share: float) -> str:
  """`masked_share`: the masked share of a full sequence's tokens, for rows that do not carry their own."""
  lines = ["| side | step | gen loss | disc loss | base-rate loss | disc precision | disc recall |",
           "|---|---:|---:|---:|---:|---:|---:|"]
  for name, rows in sides.items():
    for r in rows:
      replaced_share = r["replaced_fraction"] * r.get("masked_fraction", masked_share)
      lines.append(f"| {name} | {r['step']} | {r['gen_loss']:.3f} | {r['disc_loss']:.4f} | "
                   f"{base_rate_loss(replaced_share):.4f} | {r['disc_precision']:.3f} | {r['disc_recall']:.3f} |")
  return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--log-every", type=int, default=50)
  parser.add_argument("--sides", default="korpat,torch", help="korpat, torch or both")
  parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "korpat_demo_recipe_data"),
                      help="demo tokenizer + records (built when absent)")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="a config override, e.g. objective.temperature=1.0 (repeatable)")
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  from korpat_jax import objective
  os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  overrides = [tuple(s.split("=", 1)) for s in args.set]
  config = demo_config(overrides, args.steps, args.log_every, args.data)
  ensure_demo_data(config, args.data)
  sides, seconds = {}, {}
  for side in args.sides.split(","):
    t0 = time.perf_counter()
    if side == "korpat":
      sides["korpat-jax"] = run_korpat(config, tempfile.mkdtemp(prefix="korpat_demo_recipe_"))
    elif side == "torch":
      sides["PyTorch (HF modules)"] = run_torch(config, args.log_every)
    else:
      raise SystemExit(f"--sides: unknown side {side!r}")
    seconds[side] = time.perf_counter() - t0
  print(f"# The demo recipe, {args.steps} steps, overrides: {', '.join(args.set) or 'none'}\n")
  seq = config.train.seq_len
  print(table(sides, min(objective.max_predictions_per_seq(seq, config.objective.mask_prob),
                         round(config.objective.mask_prob * seq)) / seq))
  print("\n" + ", ".join(f"{k}: {v:.0f} s" for k, v in seconds.items()))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
