"""ELECTRA's pretraining step in PyTorch (HF transformers' ELECTRA modules) against korpat-jax's, on CPU.

    python -m benchmarks.parity.torch_electra_step         # ELECTRA-Small, batch 32 x 128, fp32, 2 threads
    python -m benchmarks.parity.torch_electra_step --steps 3 --rounds 8
    python -m benchmarks.parity.torch_electra_step --quick # tiny sizes, 2 steps a side: a smoke run

The PyTorch step is ELECTRA's objective as korpat_jax.objective defines it: per sequence max(1, min(N, round(0.15 x
non-pad tokens))) positions drawn uniformly among the non-special tokens, 85% of them set to [MASK] and the rest
kept (never a random token); the generator (ElectraForMaskedLM) projects only those positions onto the vocabulary
(its encoder on every position, then a gather, then generator_predictions and the tied generator_lm_head, as
korpat's model does); a Gumbel-max sample of its logits (no gradient) replaces every chosen position; the
discriminator (ElectraForPreTraining) scores every non-pad token; loss = MLM mean + 50 x mean sigmoid cross-entropy.
Generator and discriminator share the embeddings module (word, position, token type, LayerNorm); the generator's
output projection is the word-embedding table. Update: clip the global norm to 1.0, AdamW (bias-corrected, on both
sides; weight decay 0.01 except LayerNorm and biases; torch's fused CPU kernel), the linear warmup/decay schedule.
Dropout 0.1 everywhere (SDPA attention with dropout on the torch side; softmax + dropout on korpat's).

korpat's side is the trainer's own step: configs/pretrain.py:small on the synthetic stream -> PretrainingTask ->
train.compile_steps on a one-CPU-device mesh, fp32. Both sides train on the same fixed batch (the stream's first),
in one process, interleaved A B A B round by round, every step synchronised; medians of the per-step times.

Threads: the process is pinned to --threads cores (sched_setaffinity, what `taskset -c 0,1` does) before JAX or
torch start. XLA:CPU has no thread-count flag: it sizes its intra-op Eigen pool from the schedulable cores (the
runner counts the pool's threads to show it); torch.set_num_threads(N), with OMP_WAIT_POLICY=PASSIVE set before
torch loads (libgomp's spinning makes shared cores several times slower).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional, Sequence

from benchmarks.common import REPO, machine as cpu_description, pin_cpus  # shared with finetune_speed
from korpat_jax import host_memory

QUICK = dict(num_layers=2, hidden_size=32, num_heads=2, intermediate_size=64, embedding_size=16, vocab_size=128)


def xla_pool_threads() -> int:
  """Threads of XLA:CPU's intra-op Eigen pool in this process (named tf_XLAEigen)."""
  count = 0
  for tid in os.listdir("/proc/self/task"):
    try:
      with open(f"/proc/self/task/{tid}/comm") as f:
        count += f.read().strip().startswith("tf_XLAEigen")
    except OSError:
      pass
  return count


# -- the PyTorch step ---------------------------------------------------------------------------------------------

def hf_configs(cfg) -> tuple[Any, Any]:
  """HF ElectraConfigs of korpat's generator and discriminator (korpat_jax.model.ElectraConfig)."""
  from transformers import ElectraConfig

  def one(enc):
    return ElectraConfig(vocab_size=cfg.vocab_size, embedding_size=cfg.embedding_size, hidden_size=enc.hidden_size,
                         num_hidden_layers=enc.num_layers, num_attention_heads=enc.num_heads,
                         intermediate_size=enc.intermediate_size, hidden_act="gelu",
                         hidden_dropout_prob=cfg.dropout_rate, attention_probs_dropout_prob=cfg.attention_dropout_rate,
                         max_position_embeddings=cfg.max_position_embeddings, type_vocab_size=cfg.type_vocab_size,
                         initializer_range=cfg.initializer_range, layer_norm_eps=cfg.layer_norm_eps)
  return one(cfg.generator), one(cfg.discriminator)


def build_torch_electra(cfg, seed: int = 0):
  """(generator, discriminator): HF ElectraForMaskedLM + ElectraForPreTraining with one embeddings module."""
  import torch
  from transformers import ElectraForMaskedLM, ElectraForPreTraining
  torch.manual_seed(seed)
  gen_cfg, disc_cfg = hf_configs(cfg)
  generator, discriminator = ElectraForMaskedLM(gen_cfg), ElectraForPreTraining(disc_cfg)
  generator.electra.embeddings = discriminator.electra.embeddings
  generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
  generator.train()
  discriminator.train()
  return generator, discriminator


def mask_tokens(input_ids, attention_mask, special, mask_prob: float, max_predictions: int,
                mask_token_fraction: float = 0.85):
  """korpat_jax.objective.mask_tokens in torch: (masked ids, positions [B, N], weights [B, N], labels [B, N])."""
  import torch
  valid = attention_mask.bool()
  candidates = valid & (input_ids != special.cls) & (input_ids != special.sep) & (input_ids != special.mask) \
      & (input_ids != special.pad)
  num_to_predict = torch.round(valid.sum(-1).float() * mask_prob).long().clamp(1, max_predictions)
  # Uniform sampling without replacement: the top N of i.i.d. uniform scores over the candidates.
  scores = torch.where(candidates, torch.rand(input_ids.shape), torch.full(input_ids.shape, -1.0))
  scores, positions = torch.topk(scores, max_predictions, dim=1)
  weights = (torch.arange(max_predictions)[None, :] < num_to_predict[:, None]) & (scores >= 0)
  labels = input_ids.gather(1, positions)
  use_mask = weights & (torch.rand(weights.shape) < mask_token_fraction)
  masked = input_ids.scatter(1, positions, torch.where(use_mask, torch.full_like(labels, special.mask), labels))
  return masked, positions, weights, labels


def electra_loss(generator, discriminator, batch: dict, special, mask_prob: float, max_predictions: int,
                 disc_weight: float, temperature: float = 1.0) -> tuple[Any, dict[str, float]]:
  """The ELECTRA loss of one batch and its statistics (see the module docstring)."""
  import torch
  import torch.nn.functional as F
  ids, mask, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
  masked, positions, weights, labels = mask_tokens(ids, mask, special, mask_prob, max_predictions)
  hidden = generator.electra(masked, attention_mask=mask, token_type_ids=types).last_hidden_state
  picked = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))
  logits = generator.generator_lm_head(generator.generator_predictions(picked))  # [B, N, V]
  w = weights.float()
  num_masked = w.sum().clamp_min(1.0)
  nll = -F.log_softmax(logits.float(), dim=-1).gather(-1, labels[..., None])[..., 0]
  gen_loss = (nll * w).sum() / num_masked
  with torch.no_grad():
    u = torch.rand(logits.shape).clamp_(1e-20, 1.0)
    sampled = torch.argmax(logits / temperature - torch.log(-torch.log(u)), dim=-1)
    fake = ids.scatter(1, positions, torch.where(weights, sampled, labels))
    is_fake = (fake != ids).float()
  disc_logits = discriminator(fake, attention_mask=mask, token_type_ids=types).logits
  m = mask.float()
  disc_loss = (F.binary_cross_entropy_with_logits(disc_logits, is_fake, reduction="none") * m).sum() / m.sum()
  loss = gen_loss + disc_weight * disc_loss
  predicted = (disc_logits.detach() > 0).float() * m
  return loss, {"gen_loss": gen_loss.item(), "disc_loss": disc_loss.item(),
                "replaced_fraction": float((is_fake * m).sum() / num_masked),
                "masked_fraction": float(num_masked / m.sum()),
                "disc_true_positive": float((predicted * is_fake).sum()),
                "disc_predicted_positive": float(predicted.sum()),
                "disc_actual_positive": float((is_fake * m).sum())}


def make_torch_optimizer(modules: Sequence[Any], opt: dict, total_steps: int):
  """AdamW over the modules' distinct parameters (no decay on LayerNorm or biases) + korpat's lr schedule."""
  import torch
  params: dict[int, tuple[str, Any]] = {}
  for module in modules:
    for name, p in module.named_parameters():
      params.setdefault(id(p), (name, p))
  word_scale = float(opt.get("word_embedding_lr_scale", 1.0))
  words = [p for n, p in params.values() if n.endswith("word_embeddings.weight")] if word_scale != 1.0 else []
  rest = [(n, p) for n, p in params.values() if not any(p is w for w in words)]
  decay = [p for n, p in rest if not (n.endswith("bias") or "LayerNorm" in n)]
  no_decay = [p for n, p in rest if n.endswith("bias") or "LayerNorm" in n]
  groups = [{"params": decay, "weight_decay": opt["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
  if words:  # korpat's word_embedding_lr_scale: the table's step (decay included) scaled
    groups.append({"params": words, "weight_decay": opt["weight_decay"], "lr": opt["learning_rate"] * word_scale})
  kwargs = dict(lr=opt["learning_rate"], betas=(opt["b1"], opt["b2"]), eps=opt["eps"])
  try:
    optimizer, kind = torch.optim.AdamW(groups, fused=True, **kwargs), "fused"
  except (RuntimeError, TypeError):
    optimizer, kind = torch.optim.AdamW(groups, foreach=True, **kwargs), "foreach"
  warmup = max(1, opt["warmup_steps"])
  schedule = lambda t: min(1.0, t / warmup) * max(0.0, 1.0 - t / max(1, total_steps))
  return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), [p for _, p in params.values()], kind


class TorchElectraStep:
  """One PyTorch ELECTRA update per call on a fixed batch."""

  def __init__(self, cfg, host_batch: Optional[dict], special, obj: dict, opt: dict, total_steps: int, seed: int = 0):
    self.generator, self.discriminator = build_torch_electra(cfg, seed)
    self.batch = host_batch and self.to_torch(host_batch)
    self.special, self.obj, self.clip = special, obj, float(opt.get("grad_clip_norm", 1.0))
    self.optimizer, self.schedule, self.params, self.optimizer_kind = make_torch_optimizer(
        (self.generator, self.discriminator), opt, total_steps)
    self.num_params = sum(p.numel() for p in self.params)

  @staticmethod
  def to_torch(host_batch: dict) -> dict:
    import torch
    return {k: torch.as_tensor(v, dtype=torch.long) for k, v in host_batch.items()}

  def step(self, batch: dict) -> dict[str, float]:
    """One update on `batch` (torch tensors); the loss and the batch's statistics."""
    import torch
    self.optimizer.zero_grad(set_to_none=True)
    loss, stats = electra_loss(self.generator, self.discriminator, batch, self.special, self.obj["mask_prob"],
                               self.obj["max_predictions"], self.obj["disc_weight"], self.obj["temperature"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
    self.optimizer.step()
    self.schedule.step()
    return {"loss": loss.item(), **stats}

  def __call__(self) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    stats = self.step(self.batch)
    return time.perf_counter() - t0, stats

  def describe(self) -> str:
    shapes = ", ".join(f"{k} {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}" for k, v in self.batch.items())
    return (f"HF ElectraForMaskedLM + ElectraForPreTraining ({self.generator.config._attn_implementation} attention), "
            f"{self.num_params / 1e6:.2f}M distinct parameters, AdamW ({self.optimizer_kind}); fed {shapes}")


# -- korpat's step ------------------------------------------------------------------------------------------------

def build_korpat(args) -> dict[str, Any]:
  """configs/pretrain.py:small (or --quick sizes) on the synthetic stream, the trainer's compiled step, one batch."""
  import jax
  from korpat_jax import config as config_lib, input_pipeline, objective, sharding
  from korpat_jax.tasks.pretraining import PretrainingTask
  from korpat_jax.train import compile_steps
  config = config_lib.load(f"{REPO / 'configs' / 'pretrain.py'}:small")
  config.seed = args.seed
  config.data.source = "synthetic"
  config.model.update(dtype="float32", attention_impl="auto")
  if args.quick:
    config.model.update(max_position_embeddings=128, **QUICK)
  config.train.update(batch_size=args.batch, seq_len=args.seq_len, num_steps=args.total_steps)
  config.optimizer.update(warmup_steps=args.warmup_steps, bias_correction=True)
  config.mesh.update(data=1, fsdp=1)
  task = PretrainingTask(config, tempfile.mkdtemp(prefix="torch_electra_step_"))
  task.validate(1)
  stream = task.make_input(0).train
  host = next(stream)
  mesh = sharding.make_mesh({"data": 1, "fsdp": 1}, jax.devices("cpu")[:1])
  steps = compile_steps(task, mesh)
  obj = dict(config.objective)
  if obj["max_predictions"] < 0:
    obj["max_predictions"] = objective.max_predictions_per_seq(args.seq_len, obj["mask_prob"])
  return {"task": task, "steps": steps, "host": host, "obj": obj,
          "opt": dict(config.optimizer), "batch": input_pipeline.to_global(host, steps.batch_sharding),
          "special": stream.special if hasattr(stream, "special") else None}


def other_prng_step(args: argparse.Namespace, impl: str):
  """korpat's step with another jax_default_prng_impl (e.g. unsafe_rbg): a different random stream for masking,
  dropout and sampling (not the same numbers, so not the trainer's math), timed beside the default threefry."""
  import jax
  jax.config.update("jax_default_prng_impl", impl)
  try:
    run = build_korpat(args)
    side = KorpatStep(run)
    side.train_step = run["steps"].train_step.lower(side.state, run["batch"]).compile()
  finally:
    jax.config.update("jax_default_prng_impl", "threefry2x32")
  return side


class KorpatStep:
  """One korpat-jax update per call (the compiled train step, state donated) on a fixed on-device batch."""

  def __init__(self, run: dict[str, Any], train_step=None):
    self.run, self.state = run, run["steps"].init()
    self.train_step = train_step or run["steps"].train_step

  def __call__(self) -> tuple[float, dict[str, float]]:
    import jax
    t0 = time.perf_counter()
    self.state, metrics = self.train_step(self.state, self.run["batch"])
    jax.block_until_ready(metrics)
    seconds = time.perf_counter() - t0
    return seconds, {k: float(metrics[k]) for k in ("loss", "gen_loss", "disc_loss", "replaced_fraction")}


# -- the runner ---------------------------------------------------------------------------------------------------

def interleave(sides: dict[str, Any], warmup: int, rounds: int, steps: int) -> dict[str, dict[str, list]]:
  """Warm-up steps per side, then `rounds` x (each side `steps` synchronised steps in turn)."""
  record = {name: {"times": [], "stats": []} for name in sides}
  for name, side in sides.items():
    for _ in range(warmup):
      record[name]["stats"].append(side()[1])
  for _ in range(rounds):
    for name, side in sides.items():
      for _ in range(steps):
        seconds, stats = side()
        record[name]["times"].append(seconds)
        record[name]["stats"].append(stats)
  return record


def machine() -> str:
  """benchmarks.common's CPU description plus the load average (the machine is shared)."""
  try:
    load = "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
  except OSError:
    load = ""
  return f"{cpu_description()}, {load}"


def report(record: dict[str, dict[str, list]], descriptions: dict[str, str], batch: int, seq_len: int,
           header: str) -> bool:
  """Prints the tables; returns whether every loss was finite."""
  print(header)
  print("| side | median step (ms) | tokens/s | sequences/s | loss first -> last (repeated batch) | gen loss | "
        "disc loss | replaced / masked |")
  print("|---|---:|---:|---:|---|---|---|---:|")
  medians, tokens = {}, batch * seq_len
  finite = True
  for name, rec in record.items():
    median = statistics.median(rec["times"])
    medians[name] = median
    stats = rec["stats"]
    losses = [s["loss"] for s in stats]
    finite &= all(math.isfinite(x) for x in losses)
    replaced = statistics.mean(s["replaced_fraction"] for s in stats)
    print(f"| {name} | {median * 1e3:.1f} | {tokens / median:,.0f} | {batch / median:.2f} | "
          f"{losses[0]:.3f} -> {losses[-1]:.3f} ({'falling' if losses[-1] < losses[0] else 'NOT falling'}) | "
          f"{stats[0]['gen_loss']:.3f} -> {stats[-1]['gen_loss']:.3f} | "
          f"{stats[0]['disc_loss']:.4f} -> {stats[-1]['disc_loss']:.4f} | {replaced:.3f} |")
  torch_name = next(n for n in record if n.startswith("PyTorch"))
  print()
  for name in record:
    if name != torch_name:
      print(f"- {name} / {torch_name} speed (tokens/s ratio of medians): "
            f"**{medians[torch_name] / medians[name]:.2f}x**")
  for name, text in descriptions.items():
    print(f"- {name}: {text}")
  return finite


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seq-len", type=int, default=128)
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--steps", type=int, default=3, help="timed steps per side per round")
  parser.add_argument("--rounds", type=int, default=6)
  parser.add_argument("--warmup", type=int, default=2, help="untimed steps per side first")
  parser.add_argument("--warmup-steps", type=int, default=2, help="the lr schedule's warmup (both sides)")
  parser.add_argument("--total-steps", type=int, default=1000, help="the lr schedule's length (both sides)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--quick", action="store_true", help="tiny sizes, batch 4 x 32, 2 steps, 1 round")
  parser.add_argument("--also-prng", default="", help="also time korpat's step with this jax_default_prng_impl "
                      "(rbg, unsafe_rbg): another random stream, for what threefry costs")
  args = parser.parse_args(argv)
  if args.quick:
    args.batch, args.seq_len, args.steps, args.rounds, args.warmup = 4, 32, 2, 1, 1
  return args


def main(argv: Optional[Sequence[str]] = None, extra_sides=None) -> int:
  """`extra_sides(run) -> {name: KorpatStep}` adds korpat variants to the same interleaved run."""
  args = parse_args(argv)
  cpus = pin_cpus(args.threads)  # before JAX starts its CPU backend and before torch sizes its pool
  memory = host_memory.keep_freed_memory()  # as `korpat-jax pretrain` does (both sides share the process)
  os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
  import jax
  import torch
  import transformers
  from korpat_jax.special_tokens import SpecialIds
  torch.set_num_threads(args.threads)

  run = build_korpat(args)
  special = run["special"] or SpecialIds()
  cfg = run["task"].model_config
  sides: dict[str, Any] = {"korpat-jax": KorpatStep(run)}
  if args.also_prng:
    sides[f"korpat-jax, {args.also_prng} PRNG"] = other_prng_step(args, args.also_prng)
  if extra_sides:
    sides.update(extra_sides(run))
  sides["PyTorch (HF modules)"] = TorchElectraStep(cfg, run["host"], special, run["obj"], run["opt"],
                                                   args.total_steps, args.seed)
  host = run["host"]
  fed = ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in host.items())
  descriptions = {"korpat-jax": f"PretrainingTask + train.compile_steps, {cfg.dtype}, "
                                f"attention {cfg.attention_impl} (dropout {cfg.attention_dropout_rate}); fed {fed}",
                  "PyTorch (HF modules)": sides["PyTorch (HF modules)"].describe()}
  record = interleave(sides, args.warmup, args.rounds, args.steps)
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
  d, g = cfg.discriminator, cfg.generator
  header = (f"\n# ELECTRA pretraining step on CPU: korpat-jax vs PyTorch, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
            f"{machine()}; pinned to cores {cpus}; XLA intra-op pool {xla_pool_threads()} threads (1 CPU device); "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads, OMP_WAIT_POLICY="
            f"{os.environ.get('OMP_WAIT_POLICY')}); transformers {transformers.__version__}; jax {jax.__version__}; "
            f"freed host memory {memory}; commit {commit}\nmodel: discriminator L{d.num_layers}/H{d.hidden_size}/"
            f"heads {d.num_heads}/FFN "
            f"{d.intermediate_size}, generator H{g.hidden_size}/heads {g.num_heads}, E{cfg.embedding_size}, vocab "
            f"{cfg.vocab_size}; batch {args.batch} x {args.seq_len}, {run['obj']['max_predictions']} predictions a "
            f"sequence, fp32, dropout 0.1; {args.rounds} rounds x {args.steps} steps a side after {args.warmup} "
            f"warm-up, A B A B\n")
  return 0 if report(record, descriptions, args.batch, args.seq_len, header) else 1


if __name__ == "__main__":
  sys.exit(main())
