"""NER score parity: the same init fine-tuned by korpat-jax and by HF transformers (PyTorch) with the same recipe.

    python benchmarks/finetune_parity.py                         # pretrains the demo ELECTRA first (~3 min)
    python benchmarks/finetune_parity.py --init runs/demo --out /tmp/parity

1. The init: `korpat-jax pretrain --config configs/pretrain.py:demo` (or --init, a pretraining run directory).
2. korpat-jax: `korpat-jax finetune --config configs/finetune.py:ner_tiny --config.init_from=INIT` on the demo NER
   train set, scored on its eval set (OUT/korpat/eval/metrics.json, the best of the per-epoch evaluations).
3. HF: `korpat-jax export --part discriminator` of the same init, loaded as ElectraForTokenClassification, trained on
   exactly korpat's cached features (OUT/korpat/data/train.array_record, read through the task's own batch stream:
   same batches in the same order), same epochs, batch, peak lr, layerwise decay, warmup, weight decay and clip, with
   google's AdamW (no bias correction) in torch; its argmax tags are scored by the task's own NER decoding and metrics
   (korpat_jax.ner through TaggingTask.evaluate) on the same eval features, after each epoch like korpat. A second
   HF run with torch.optim.AdamW (bias-corrected) shows what that one difference does.
4. Baselines: every token "O" (no entities) and korpat from random weights (--config.random_init=true).
Seeded (korpat seed 0, torch.manual_seed 0); what cannot match is the dropout draws and the head's initial draw.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

DEMO = REPO / "korpat_jax" / "demo" / "finetune"
FINETUNE = f"{REPO / 'configs' / 'finetune.py'}:ner_tiny"


def korpat(*args: str) -> None:
  """One korpat-jax command in a subprocess (its own JAX), echoed."""
  cmd = [sys.executable, "-m", "korpat_jax", *args]
  print("$ korpat-jax " + " ".join(args), flush=True)
  t0 = time.perf_counter()
  done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
  if done.returncode:
    sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
    raise SystemExit(f"korpat-jax {args[0]} failed (exit {done.returncode})")
  print(f"  ({time.perf_counter() - t0:.0f}s)", flush=True)


def finetune_args(workdir: str, init: str, train: str, eval_file: str, overrides: Sequence[str]) -> list[str]:
  return ["finetune", "--config", FINETUNE, "--workdir", workdir, f"--config.init_from={init}",
          f"--config.data.train={train}", f"--config.data.eval={eval_file}", *overrides]


def korpat_scores(workdir: str) -> dict[str, Any]:
  """The best evaluation (eval/metrics.json) and the f1 of every evaluation (metrics.jsonl) of a korpat run."""
  with open(os.path.join(workdir, "eval", "metrics.json"), encoding="utf-8") as f:
    best = json.load(f)
  per_eval = []
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    for line in f:
      row = json.loads(line)
      if row.get("split") == "eval" and "f1" in row:
        per_eval.append((row["step"], row["f1"]))
  return {"best": best, "per_eval": per_eval}


def load_task(workdir: str, init: str, train: str, eval_file: str, overrides: Sequence[str]):
  """korpat's TaggingTask of the korpat run, on its cached features (make_input finds the cache; nothing is
  re-tokenized), with the run's batch stream and schedule."""
  from korpat_jax import config as config_lib
  from korpat_jax.tasks import make_task
  config = config_lib.load(FINETUNE)
  _, pairs = config_lib.split_overrides([f"--config.init_from={init}", f"--config.data.train={train}",
                                         f"--config.data.eval={eval_file}", *overrides])
  config_lib.apply_overrides(config, pairs)
  records = os.path.join(workdir, "data", "train.array_record")
  before = os.stat(records).st_mtime_ns
  task = make_task(config, workdir)
  task.validate(1)
  data = task.make_input(0)
  if os.stat(records).st_mtime_ns != before:
    raise SystemExit(f"{records} was rebuilt: the HF run would not read korpat's features")
  return config, task, data


def evaluate_hf(task, model) -> dict[str, Any]:
  """HF's argmax tags on the task's eval batches, scored by the task (korpat_jax.ner decoding and metrics)."""
  import numpy as np
  import hf_finetune as hf

  def outputs():
    for batch in task.eval_batches("eval"):
      logits = hf.logits(model, hf.to_torch(batch, task.task_type))
      yield batch, np.argmax(logits, -1).astype(np.int32)

  return task.evaluate("eval", outputs()).scores


def train_hf(config, task, data, hf_init: str, optimizer_kind: str, seed: int) -> dict[str, Any]:
  """HF ElectraForTokenClassification from the exported init, on the korpat run's own batches and schedule."""
  import torch
  import hf_finetune as hf

  torch.manual_seed(seed)
  model = hf.from_pretrained(task.task_type, hf_init, task.labels)
  model.train()
  o, layers = config.optimizer, task.model_config.discriminator.num_layers
  groups = hf.param_groups(model, layers, o.layerwise_lr_decay, o.weight_decay)
  optimizer = hf.make_optimizer(groups, optimizer_kind, o.b1, o.b2, o.eps)
  warmup = round(o.warmup_fraction * data.num_steps) if o.warmup_fraction >= 0 else o.warmup_steps
  per_eval, best, losses = [], None, []
  t0 = time.perf_counter()
  for step in range(data.num_steps):
    lr = hf.learning_rate(step, o.learning_rate, warmup, data.num_steps)
    losses.append(float(hf.train_step(model, optimizer, hf.to_torch(next(data.train), task.task_type), lr,
                                      o.grad_clip_norm)))
    done = step + 1
    if done % data.eval_every == 0 or done == data.num_steps:
      scores = evaluate_hf(task, model)
      per_eval.append((done, scores["f1"]))
      if best is None or scores["f1"] > best["f1"]:
        best = {"step": done, **scores}
  return {"best": best, "per_eval": per_eval, "seconds": time.perf_counter() - t0,
          "loss": (losses[0], losses[-1]), "num_steps": data.num_steps, "warmup": warmup}


def all_o_scores(task) -> dict[str, Any]:
  import numpy as np
  o = task.labels.index("O")
  outputs = ((batch, np.full(batch["input_ids"].shape, o, np.int32)) for batch in task.eval_batches("eval"))
  return task.evaluate("eval", outputs).scores


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--init", default="", help="a pretraining run directory (default: pretrain the demo into OUT)")
  parser.add_argument("--out", default="/tmp/korpat_finetune_parity", help="run directories go here")
  parser.add_argument("--train", default=str(DEMO / "ner_train.tsv"))
  parser.add_argument("--eval", default=str(DEMO / "ner_eval.tsv"))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--threads", type=int, default=2, help="torch threads")
  parser.add_argument("--no-torch-adamw", action="store_true", help="skip the bias-corrected torch.optim.AdamW run")
  parser.epilog = "Any --config.k=v goes to both sides, e.g. --config.train.num_epochs=2."
  from korpat_jax.config import split_overrides
  rest, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
  args = parser.parse_args(rest)
  args.overrides = [f"--config.{key}={value}" for key, value in overrides]
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  overrides = [f"--config.seed={args.seed}", *args.overrides]
  os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see finetune_speed.py; before torch loads
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  out = os.path.abspath(args.out)
  os.makedirs(out, exist_ok=True)
  t_start = time.perf_counter()
  init = os.path.abspath(args.init) if args.init else os.path.join(out, "pretrain")
  if not args.init:
    korpat("pretrain", "--config", f"{REPO / 'configs' / 'pretrain.py'}:demo", "--workdir", init,
           f"--config.seed={args.seed}")
  runs = {"korpat": os.path.join(out, "korpat"), "random": os.path.join(out, "korpat_random")}
  korpat(*finetune_args(runs["korpat"], init, args.train, args.eval, overrides))
  korpat(*finetune_args(runs["random"], init, args.train, args.eval, [*overrides, "--config.random_init=true"]))
  hf_init = os.path.join(out, "hf_init")
  korpat("export", "--workdir", init, "--out", hf_init, "--part", "discriminator")

  import torch
  torch.set_num_threads(args.threads)
  config, task, data = load_task(runs["korpat"], init, args.train, args.eval, overrides)
  print(f"HF reads {task.splits['train'].num_features} korpat training features "
        f"({runs['korpat']}/data/train.array_record), {data.num_steps} steps, eval every {data.eval_every}; "
        f"{task.splits['eval'].num_features} eval features", flush=True)
  results = {"hf": train_hf(config, task, data, hf_init, "google", args.seed)}
  if not args.no_torch_adamw:
    _, task, data = load_task(runs["korpat"], init, args.train, args.eval, overrides)  # a fresh stream
    results["hf_torch"] = train_hf(config, task, data, hf_init, "torch", args.seed)
  baseline = all_o_scores(task)
  ours, random_init = korpat_scores(runs["korpat"]), korpat_scores(runs["random"])

  t, o, hf_run = config.train, config.optimizer, results["hf"]
  print(f"\n# NER parity, korpat-jax vs HF transformers, {time.strftime('%Y-%m-%d %H:%M')}\n")
  print(f"init {init} (demo ELECTRA, L{task.model_config.discriminator.num_layers} "
        f"H{task.model_config.discriminator.hidden_size}); train {args.train} ({task.splits['train'].num_examples} "
        f"sentences), eval {args.eval} ({task.splits['eval'].num_examples}); ner_tiny recipe: batch {t.batch_size}, "
        f"seq {t.seq_len}, {t.num_epochs:g} epochs = {hf_run['num_steps']} steps, lr {o.learning_rate:g}, layerwise "
        f"decay {o.layerwise_lr_decay:g}, warmup {hf_run['warmup']} steps, weight decay {o.weight_decay:g}, clip "
        f"{o.grad_clip_norm:g}, dropout 0.1; seed {args.seed}\n")
  print("| run | optimizer | eval entity F1 (best epoch) | F1 after each epoch | char macro F1 (best epoch) |")
  print("|---|---|---:|---|---:|")
  row = lambda name, opt, r: print(
      f"| {name} | {opt} | {r['best']['f1']:.4f} | {' / '.join(f'{f:.4f}' for _, f in r['per_eval'])} | "
      f"{r['best']['char_macro_f1']:.4f} |")
  row("korpat-jax, demo init", "google AdamW (optax)", ours)
  row("HF transformers, same init and features", "google AdamW (torch)", hf_run)
  if "hf_torch" in results:
    row("HF transformers, same init and features", "torch.optim.AdamW (bias-corrected)", results["hf_torch"])
  row("korpat-jax, random init", "google AdamW (optax)", random_init)
  print(f"| all-O baseline (0 entities) | - | {baseline['f1']:.4f} | - | {baseline['char_macro_f1']:.4f} |")
  for name, r in results.items():
    print(f"\n{name}: loss {r['loss'][0]:.4f} -> {r['loss'][1]:.4f}, {r['seconds']:.0f}s of training + eval")
  print(f"\ntotal {time.perf_counter() - t_start:.0f}s; run directories under {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
