"""NER score parity: the same init fine-tuned by korpat-jax and by HF transformers (PyTorch) with the same recipe.

    python -m benchmarks.parity.finetune_parity                  # pretrains the demo ELECTRA first (~2-3 min)
    python -m benchmarks.parity.finetune_parity --init runs/demo --out /tmp/parity --seeds 0 --config.train.num_epochs=3

1. The init: `korpat-jax pretrain --config configs/pretrain.py:demo` (or --init, a pretraining run directory).
2. korpat-jax, per seed: `korpat-jax finetune --config configs/finetune.py:ner_tiny --config.init_from=INIT
   --config.train.num_epochs=10` on the demo NER train set, evaluated on its eval set after every epoch
   (OUT/korpat_s{seed}/metrics.jsonl; eval/metrics.json holds the best). 10 epochs, not ner_tiny's 3: after 3 the
   demo model is still near F1 0, where two runs cannot be told apart.
3. HF, per seed: `korpat-jax export --part discriminator` of the same init, loaded as ElectraForTokenClassification,
   trained on exactly that korpat run's cached features (OUT/korpat_s{seed}/data/train.array_record, read through the
   task's own batch stream: the same batches in the same order), same epochs, batch, peak lr, layerwise decay,
   warmup, weight decay and clip, with google's AdamW (no bias correction) in torch; its argmax tags are scored by the
   task's own NER decoding and metrics (korpat_jax.ner, through TokenClassificationTask.evaluate) on the same eval features,
   after every epoch like korpat. One more HF run with torch.optim.AdamW (bias-corrected) shows that one difference.
4. Baselines: every token "O" (no entities), and korpat from random weights (--config.random_init=true).
Seeded (config.seed: korpat's head init, dropout and data order; torch.manual_seed: HF's head init and dropout). What
cannot match across the two is the dropout draws and the head's initial draw; the seeds show how much that moves F1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Optional, Sequence

from benchmarks.common import REPO

DEMO = REPO / "korpat_jax" / "demo" / "finetune"
FINETUNE = f"{REPO / 'configs' / 'finetune.py'}:ner_tiny"
EPOCHS = 10


def korpat(*args: str) -> None:
  """One korpat-jax command in a subprocess (its own JAX), echoed."""
  print("$ korpat-jax " + " ".join(args), flush=True)
  t0 = time.perf_counter()
  done = subprocess.run([sys.executable, "-m", "korpat_jax", *args], cwd=REPO, capture_output=True, text=True)
  if done.returncode:
    sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
    raise SystemExit(f"korpat-jax {args[0]} failed (exit {done.returncode})")
  print(f"  ({time.perf_counter() - t0:.0f}s)", flush=True)


def run_overrides(init: str, train: str, eval_file: str, seed: int, extra: Sequence[str]) -> list[str]:
  return [f"--config.init_from={init}", f"--config.data.train={train}", f"--config.data.eval={eval_file}",
          f"--config.seed={seed}", f"--config.train.num_epochs={EPOCHS}", *extra]


def korpat_scores(workdir: str) -> dict[str, Any]:
  """The f1 / char_macro_f1 of every evaluation and the logged train losses of a korpat run (metrics.jsonl)."""
  evals, losses = [], {}
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    for line in f:
      row = json.loads(line)
      if row.get("split") == "eval" and "f1" in row:
        evals.append({"step": row["step"], "f1": row["f1"], "char_macro_f1": row["char_macro_f1"]})
      elif row.get("split") == "train":
        losses[row["step"]] = row["loss"]
  with open(os.path.join(workdir, "eval", "metrics.json"), encoding="utf-8") as f:
    best = json.load(f)
  if abs(best["f1"] - max(e["f1"] for e in evals)) > 1e-6:
    raise SystemExit(f"{workdir}: eval/metrics.json f1 {best['f1']} is not the best of metrics.jsonl")
  return {"evals": evals, "losses": losses}


def load_task(workdir: str, overrides: Sequence[str]):
  """The korpat run's TokenClassificationTask on its cached features (make_input finds the cache: nothing is re-tokenized),
  with the run's batch stream and schedule."""
  from korpat_jax import config as config_lib
  from korpat_jax.tasks import make_task
  config = config_lib.load(FINETUNE)
  config_lib.apply_overrides(config, config_lib.split_overrides(list(overrides))[1])
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
  from benchmarks.parity import hf_finetune as hf

  def outputs():
    for batch in task.eval_batches("eval"):
      logits = hf.logits(model, hf.to_torch(batch, task.task_type))
      yield batch, np.argmax(logits, -1).astype(np.int32)

  return task.evaluate("eval", outputs()).scores


def train_hf(config, task, data, hf_init: str, optimizer_kind: str, seed: int) -> dict[str, Any]:
  """HF ElectraForTokenClassification from the exported init, on the korpat run's own batches and schedule."""
  import torch
  from benchmarks.parity import hf_finetune as hf

  torch.manual_seed(seed)
  model = hf.from_pretrained(task.task_type, hf_init, task.labels)
  model.train()
  o, layers = config.optimizer, task.model_config.discriminator.num_layers
  groups = hf.param_groups(model, layers, o.layerwise_lr_decay, o.weight_decay)
  optimizer = hf.make_optimizer(groups, optimizer_kind, o.b1, o.b2, o.eps)
  warmup = round(o.warmup_fraction * data.num_steps) if o.warmup_fraction >= 0 else o.warmup_steps
  evals, losses = [], {}
  t0 = time.perf_counter()
  for step in range(data.num_steps):
    lr = hf.learning_rate(step, o.learning_rate, warmup, data.num_steps)
    loss = hf.train_step(model, optimizer, hf.to_torch(next(data.train), task.task_type), lr, o.grad_clip_norm)
    done = step + 1
    losses[done] = float(loss)
    if done % data.eval_every == 0 or done == data.num_steps:
      scores = evaluate_hf(task, model)
      evals.append({"step": done, "f1": scores["f1"], "char_macro_f1": scores["char_macro_f1"]})
  return {"evals": evals, "losses": losses, "seconds": time.perf_counter() - t0, "num_steps": data.num_steps,
          "warmup": warmup, "eval_every": data.eval_every}


def all_o_scores(task) -> dict[str, Any]:
  import numpy as np
  o = task.labels.index("O")
  outputs = ((batch, np.full(batch["input_ids"].shape, o, np.int32)) for batch in task.eval_batches("eval"))
  return task.evaluate("eval", outputs).scores


def summary(run: dict[str, Any], logged: Sequence[int], last_epoch_from: int) -> dict[str, float]:
  """Best and last eval, and the mean train loss of the last epoch at korpat's logged steps."""
  best = max(run["evals"], key=lambda e: e["f1"])
  last = run["evals"][-1]
  losses = [run["losses"][s] for s in logged if s > last_epoch_from and s in run["losses"]]
  return {"best_f1": best["f1"], "best_step": best["step"], "last_f1": last["f1"],
          "last_char": last["char_macro_f1"], "loss": statistics.mean(losses) if losses else float("nan")}


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   epilog="Any --config.k=v goes to both sides, e.g. --config.train.num_epochs=3.")
  parser.add_argument("--init", default="", help="a pretraining run directory (default: pretrain the demo into OUT)")
  parser.add_argument("--out", default="/tmp/korpat_finetune_parity", help="run directories go here")
  parser.add_argument("--train", default=str(DEMO / "ner_train.tsv"))
  parser.add_argument("--eval", default=str(DEMO / "ner_eval.tsv"))
  parser.add_argument("--seeds", default="0,1,2", help="fine-tuning seeds, each run by both sides")
  parser.add_argument("--threads", type=int, default=2, help="torch threads")
  parser.add_argument("--no-torch-adamw", action="store_true", help="skip the bias-corrected torch.optim.AdamW run")
  from korpat_jax.config import split_overrides
  rest, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
  args = parser.parse_args(rest)
  args.overrides = [f"--config.{key}={value}" for key, value in overrides]
  args.seeds = [int(s) for s in args.seeds.split(",")]
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see finetune_speed.py
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  out = os.path.abspath(args.out)
  os.makedirs(out, exist_ok=True)
  t_start = time.perf_counter()
  init = os.path.abspath(args.init) if args.init else os.path.join(out, "pretrain")
  if not args.init:
    korpat("pretrain", "--config", f"{REPO / 'configs' / 'pretrain.py'}:demo", "--workdir", init, "--config.seed=0")
  hf_init = os.path.join(out, "hf_init")
  korpat("export", "--workdir", init, "--out", hf_init, "--part", "discriminator")
  over = lambda seed, *extra: run_overrides(init, args.train, args.eval, seed, [*args.overrides, *extra])
  finetune = lambda workdir, seed, *extra: korpat("finetune", "--config", FINETUNE, "--workdir", workdir,
                                                  *over(seed, *extra))

  import torch
  torch.set_num_threads(args.threads)
  rows: list[tuple[str, str, int, dict[str, Any]]] = []   # (who, optimizer, seed, run)
  first = args.seeds[0]
  for seed in args.seeds:
    workdir = os.path.join(out, f"korpat_s{seed}")
    finetune(workdir, seed)
    rows.append(("korpat-jax", "google AdamW (optax)", seed, korpat_scores(workdir)))
    config, task, data = load_task(workdir, over(seed))
    if seed == first:
      print(f"HF reads {task.splits['train'].num_features} korpat training features ({workdir}/data/"
            f"train.array_record), {data.num_steps} steps, eval every {data.eval_every}; "
            f"{task.splits['eval'].num_features} eval features", flush=True)
    print(f"  HF seed {seed} ...", flush=True)
    rows.append(("HF transformers", "google AdamW (torch)", seed, train_hf(config, task, data, hf_init, "google",
                                                                            seed)))
  if not args.no_torch_adamw:
    print("  HF torch.optim.AdamW ...", flush=True)
    config, task, data = load_task(os.path.join(out, f"korpat_s{first}"), over(first))
    rows.append(("HF transformers", "torch.optim.AdamW (bias-corrected)", first,
                 train_hf(config, task, data, hf_init, "torch", first)))
  random_dir = os.path.join(out, f"korpat_random_s{first}")
  finetune(random_dir, first, "--config.random_init=true")
  rows.append(("korpat-jax, random init", "google AdamW (optax)", first, korpat_scores(random_dir)))
  baseline = all_o_scores(task)

  hf_run = next(r for who, opt, _, r in rows if who == "HF transformers")
  logged = sorted(rows[0][3]["losses"])
  last_epoch_from = hf_run["num_steps"] - hf_run["eval_every"]
  t, o, cfg = config.train, config.optimizer, task.model_config
  print(f"\n# NER parity, korpat-jax vs HF transformers, {time.strftime('%Y-%m-%d %H:%M')}\n")
  print(f"init {init} (demo ELECTRA discriminator, L{cfg.discriminator.num_layers} H{cfg.discriminator.hidden_size} "
        f"E{cfg.embedding_size}); train {args.train} ({task.splits['train'].num_examples} sentences, "
        f"{task.splits['train'].num_features} features), eval {args.eval} ({task.splits['eval'].num_examples}); "
        f"ner_tiny recipe with {t.num_epochs:g} epochs: batch {t.batch_size}, seq {t.seq_len}, {hf_run['num_steps']} "
        f"steps, lr {o.learning_rate:g}, layerwise decay {o.layerwise_lr_decay:g}, warmup {hf_run['warmup']} steps, "
        f"weight decay {o.weight_decay:g}, clip {o.grad_clip_norm:g}, dropout 0.1\n")
  print("| run | optimizer | seed | entity F1, best epoch (step) | entity F1, last epoch | char macro F1, last | "
        "train loss, last epoch |")
  print("|---|---|---:|---:|---:|---:|---:|")
  stats: dict[str, list[dict[str, float]]] = {}
  for who, opt, seed, run in rows:
    s = summary(run, logged, last_epoch_from)
    stats.setdefault(f"{who} | {opt}", []).append(s)
    print(f"| {who} | {opt} | {seed} | {s['best_f1']:.4f} ({s['best_step']}) | {s['last_f1']:.4f} | "
          f"{s['last_char']:.4f} | {s['loss']:.4f} |")
  print(f"| all-O baseline (0 entities) | - | - | {baseline['f1']:.4f} | {baseline['f1']:.4f} | "
        f"{baseline['char_macro_f1']:.4f} | - |")
  print("\nOver the seeds (mean, and min-max):\n")
  print("| run | optimizer | seeds | entity F1, best epoch | entity F1, last epoch | char macro F1, last |")
  print("|---|---|---:|---|---|---|")
  for name, items in stats.items():
    cell = lambda key: (f"{statistics.mean(x[key] for x in items):.4f} ({min(x[key] for x in items):.4f}-"
                        f"{max(x[key] for x in items):.4f})")
    print(f"| {name} | {len(items)} | {cell('best_f1')} | {cell('last_f1')} | {cell('last_char')} |")
  print("\nF1 after each epoch:")
  for who, opt, seed, run in rows:
    curve = " ".join(format(e["f1"], ".3f") for e in run["evals"])
    print(f"  {who}, {opt}, seed {seed}: {curve}")
  print(f"\ntotal {time.perf_counter() - t_start:.0f}s; run directories under {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
