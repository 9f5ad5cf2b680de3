"""What a pretraining run's encoder learnt, without fine-tuning: a linear probe of frozen features.

    python -m benchmarks.transfer.linear_probe --train nsmc_train.tsv --eval nsmc_eval.tsv RUN [RUN ...] [--random RUN]

For each run (a pretraining run directory) the discriminator encodes every text of a labelled TSV (`text`, `label`
columns, as `korpat-jax finetune` reads them) with its own tokenizer; three features are read out: the mean of the
(shared) input embeddings, the top layer at [CLS] (what a sequence head sees) and the top layer's mean. An
L2-regularised logistic regression (one-vs-rest for more than two labels, the best of three penalties on the eval
set) is fitted on each, and its eval accuracy printed. `--random RUN` adds a random init of RUN's sizes: features
worse than random ones mean the pretraining destroyed information (issue 16: a discriminator that sits at its base
rate, or one that only learnt to flag rare tokens, gives [CLS] features below a random init's).
"""

from __future__ import annotations

import argparse
import csv
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

FEATURES = ("embeddings_mean", "top_cls", "top_mean")


def read_tsv(path: str, limit: Optional[int] = None) -> tuple[list[str], list[str]]:
  with open(path, encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f, delimiter="\t"))[:limit]
  missing = {"text", "label"} - set(rows[0] if rows else {})
  if missing:
    raise SystemExit(f"{path}: needs the columns text and label (missing {', '.join(sorted(missing))})")
  return [r["text"] for r in rows], [r["label"] for r in rows]


def encode(tokenizer, texts: Sequence[str], seq_len: int) -> tuple[np.ndarray, np.ndarray]:
  ids = np.zeros((len(texts), seq_len), np.int32)
  for i, text in enumerate(texts):
    row = tokenizer.encode(text, max_length=seq_len).ids
    ids[i, :len(row)] = row
  return ids, (ids != 0).astype(np.int32)


def features(model, params, ids: np.ndarray, mask: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
  """The three frozen features of every row (no dropout)."""
  def forward(p, ids, mask):
    types = jnp.zeros_like(ids)
    embedded = model.apply({"params": p}, ids, types, True, method=lambda m, i, t, d: m.embeddings(i, t, d))
    top = model.apply({"params": p}, embedded, mask, True, method=lambda m, e, k, d: m.discriminator(e, k, d))
    weights = mask[..., None].astype(jnp.float32)
    mean = lambda x: (x * weights).sum(1) / jnp.maximum(weights.sum(1), 1.0)
    return {"embeddings_mean": mean(embedded), "top_cls": top[:, 0], "top_mean": mean(top)}
  forward = jax.jit(forward)
  parts = [forward(params, ids[i:i + batch], mask[i:i + batch]) for i in range(0, len(ids), batch)]
  return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in FEATURES}


def probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray,
                   penalties: Sequence[float] = (1e-3, 1e-2, 1e-1), steps: int = 300) -> float:
  """Eval accuracy of a standardised softmax regression (integer labels), the best over `penalties`."""
  mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
  xa, xb = jnp.asarray((x_train - mu) / sd), jnp.asarray((x_eval - mu) / sd)
  classes = int(max(y_train.max(), y_eval.max())) + 1
  onehot = jax.nn.one_hot(y_train, classes)
  best = 0.0
  for penalty in penalties:
    def loss(p):
      logits = xa @ p[0] + p[1]
      return -(onehot * jax.nn.log_softmax(logits)).sum(-1).mean() + penalty * jnp.sum(p[0] ** 2)
    params = (jnp.zeros((xa.shape[1], classes)), jnp.zeros(classes))
    opt = optax.adam(0.05)
    state = opt.init(params)
    grad = jax.jit(jax.grad(loss))
    for _ in range(steps):
      updates, state = opt.update(grad(params), state)
      params = optax.apply_updates(params, updates)
    accuracy = float(((xb @ params[0] + params[1]).argmax(-1) == y_eval).mean())
    best = max(best, accuracy)
  return best


def probe_run(workdir: str, train: tuple[list[str], list[str]], evaluate: tuple[list[str], list[str]],
              seq_len: int, random_init: bool = False) -> dict[str, float]:
  """Probe accuracy of each feature of a run (or of a random init of its sizes)."""
  from korpat_jax import files, workdir as workdir_lib
  from korpat_jax.export.to_hf import restore_params
  from korpat_jax.model import ElectraPretrainer
  from korpat_jax.tokenizer import MWPTokenizer
  cfg, tokenizer_dir, _ = workdir_lib.read_model_info(workdir)
  tokenizer = MWPTokenizer.load(files.local_copy(tokenizer_dir, "tokenizer directory"))
  model = ElectraPretrainer(cfg)
  if random_init:
    ids = jnp.zeros((1, seq_len), jnp.int32)
    params = model.init(jax.random.PRNGKey(0), ids, ids, jnp.ones_like(ids))["params"]
  else:
    params = restore_params(workdir, None)[1]
  labels = sorted(set(train[1]))
  index = {label: i for i, label in enumerate(labels)}
  y_train = np.array([index[label] for label in train[1]])
  y_eval = np.array([index.get(label, -1) for label in evaluate[1]])
  f_train = features(model, params, *encode(tokenizer, train[0], seq_len))
  f_eval = features(model, params, *encode(tokenizer, evaluate[0], seq_len))
  return {k: probe_accuracy(f_train[k], y_train, f_eval[k], y_eval) for k in FEATURES}


def main(argv: Optional[Sequence[str]] = None) -> int:
  p = argparse.ArgumentParser(prog="python -m benchmarks.transfer.linear_probe", description=__doc__.split("\n\n")[0])
  p.add_argument("runs", nargs="*", help="pretraining run directories")
  p.add_argument("--train", required=True, help="labelled TSV (text, label) to fit the probe on")
  p.add_argument("--eval", required=True, help="labelled TSV to score it on")
  p.add_argument("--random", default="", metavar="RUN", help="also probe a random init of RUN's sizes")
  p.add_argument("--seq-len", type=int, default=64)
  p.add_argument("--limit", type=int, default=None, help="first N rows of each file")
  args = p.parse_args(argv)
  train, evaluate = read_tsv(args.train, args.limit), read_tsv(args.eval, args.limit)
  rows = [(run, probe_run(run, train, evaluate, args.seq_len)) for run in args.runs]
  if args.random:
    rows.append((f"random init ({args.random})", probe_run(args.random, train, evaluate, args.seq_len, True)))
  print("| init | " + " | ".join(FEATURES) + " |\n|---|" + "---:|" * len(FEATURES))
  for name, scores in rows:
    print(f"| {name} | " + " | ".join(f"{scores[k]:.3f}" for k in FEATURES) + " |")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
