"""Fine-tuning train-step speed of korpat-jax against HF transformers (PyTorch) at the same size, batch and length.

    python -m benchmarks.parity.finetune_speed          # ELECTRA-Small discriminator, batch 32 x 128, 2 threads
    python -m benchmarks.parity.finetune_speed --heads token --batch 16 --seq-len 64 --steps 5 --rounds 4
    python -m benchmarks.parity.finetune_speed --quick  # tiny sizes, 2 steps: a smoke run (the tests run it)

Per head (token: NER, ElectraForTokenClassification; sequence: sentence pairs, ElectraForSequenceClassification;
qa: ElectraForQuestionAnswering) the korpat side is the project's own task: configs/finetune.py -> make_task ->
make_input (the feature cache of a data file) -> train.compile_steps on a one-CPU-device mesh, fed one fixed batch
of the task's own train stream, already on device. The HF side is the same model (the exporter's config.json, the
korpat init copied in), fed the same batch as torch tensors, and does the same optimizer work: clip 1.0, AdamW with
the layerwise multipliers as param groups (google's uncorrected moments by default; --hf-optimizer torch for
torch.optim.AdamW), decoupled weight decay, dropout on, the task's warmup schedule. fp32 throughout.

Both run in one process, interleaved A B A B (korpat, then HF, head after head, round after round); every step is
synchronised, figures are medians of the per-step times. Threads: torch.set_num_threads(N), with OMP_WAIT_POLICY=
PASSIVE set before torch loads (libgomp's default spin-waiting makes a step several times slower whenever other
processes share the cores); XLA has no thread-count flag, so the process is pinned to N cores (sched_setaffinity)
before JAX starts its CPU backend, which sizes XLA's intra-op pool from the schedulable cores (and bounds torch alike).
Tokens/s counts padded positions (batch x seq).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional, Sequence

from benchmarks.common import REPO, machine, pin_cpus, process_settings_restored
from korpat_jax import host_memory

DEMO = REPO / "korpat_jax" / "demo" / "finetune"
HEADS = {  # head -> (configs/finetune.py variant, task type, demo training file)
    "token": ("ner", "token_classification", "ner_train.tsv"),
    "sequence": ("pair", "sequence_classification", "pair_train.tsv"),
    "qa": ("qa", "question_answering", "qa_train.json"),
}
SMALL = dict(num_layers=12, hidden_size=256, num_heads=4, intermediate_size=1024, embedding_size=128, vocab_size=8000)
QUICK = dict(num_layers=2, hidden_size=32, num_heads=2, intermediate_size=64, embedding_size=16, vocab_size=8000)


def synthetic_squad(path: str, num_questions: int, seed: int = 0) -> str:
  """A SQuAD-format file cut from the bundled demo corpus: contexts of a few lines, an answer word of each, a
  question made of the words around it (only the shapes matter for a speed run)."""
  from korpat_jax.tokenizer import demo_corpus_files
  lines = [line.strip() for f in demo_corpus_files() for line in open(f, encoding="utf-8") if len(line.strip()) > 20]
  rng = random.Random(seed)
  paragraphs = []
  for i in range(num_questions):
    start = rng.randrange(0, len(lines) - 4)
    context = " ".join(lines[start:start + rng.randint(2, 4)])
    words = context.split(" ")
    pick = rng.randrange(len(words))
    answer_start = len(" ".join(words[:pick])) + (1 if pick else 0)
    question = " ".join(words[max(0, pick - 3):pick] + ["무엇인가?"])
    paragraphs.append({"context": context, "qas": [{"id": f"q{i}", "question": question,
                                                    "answers": [{"text": words[pick], "answer_start": answer_start}]}]})
  with open(path, "w", encoding="utf-8") as f:
    json.dump({"version": "synthetic", "data": [{"title": "demo", "paragraphs": paragraphs}]}, f, ensure_ascii=False)
  return path


def train_file(head: str, work: str, override: Optional[str]) -> str:
  if override:
    return override
  path = DEMO / HEADS[head][2]
  if path.is_file():
    return str(path)
  if head == "qa":
    return synthetic_squad(os.path.join(work, "qa_train.json"), 600)
  raise SystemExit(f"{path}: the demo training file is missing; pass --{head}-train")


def tokenizer_dir(args, work: str) -> str:
  if args.tokenizer_dir:
    return args.tokenizer_dir
  from korpat_jax.tokenizer import demo_corpus_files, train_tokenizer
  out = os.path.join(work, "tokenizer")
  train_tokenizer(demo_corpus_files(), out, vocab_size=8000, show_progress=False, log=lambda m: None)
  return out


def build_korpat(head: str, args, sizes: dict, tok: str, data_file: str, work: str) -> dict[str, Any]:
  """The korpat task of `head` with its compiled steps, fresh state and one fixed on-device batch."""
  import jax
  from korpat_jax import config as config_lib, input_pipeline, sharding
  from korpat_jax.tasks import make_task
  from korpat_jax.train import compile_steps

  variant, task_type, _ = HEADS[head]
  config = config_lib.load(f"{REPO / 'configs' / 'finetune.py'}:{variant}")
  config.seed = args.seed
  config.model.update(max_position_embeddings=max(512, args.seq_len), **sizes)
  config.data.update(train=data_file, tokenizer_dir=tok)
  config.train.update(batch_size=args.batch, eval_batch_size=args.batch, seq_len=args.seq_len)
  if head == "qa":
    query = min(64, args.seq_len // 4)
    config.head.update(max_query_length=query, doc_stride=min(128, args.seq_len - query - 3))
  task = make_task(config, os.path.join(work, head))
  task.validate(1)
  data = task.make_input(0)
  mesh = sharding.make_mesh({"data": 1, "fsdp": 1}, jax.devices("cpu")[:1])
  steps = compile_steps(task, mesh)
  state = steps.init()
  host_batch = dict(next(data.train))
  return {"task": task, "task_type": task_type, "steps": steps, "state": state, "host_batch": host_batch,
          "batch": input_pipeline.to_global(host_batch, steps.batch_sharding),
          "params0": jax.device_get(state.params), "num_steps": data.num_steps, "config": config}


def build_hf(run: dict[str, Any], args) -> dict[str, Any]:
  """The HF twin of a korpat run: same config, same init, same batch, same optimizer groups."""
  import torch
  from benchmarks.parity import hf_finetune as hf

  task, config = run["task"], run["config"]
  torch.manual_seed(args.seed)
  hf_cfg = hf.electra_config(task.model_config, run["task_type"], task.tok.pad_id, task.label_names(), args.attn)
  model = hf.make_model(run["task_type"], hf_cfg)
  hf.load_flax_params(model, run["params0"])
  model.train()
  o, layers = config.optimizer, task.model_config.discriminator.num_layers
  groups = hf.param_groups(model, layers, o.layerwise_lr_decay, o.weight_decay)
  checked = hf.check_groups_match_korpat(groups, run["params0"], layers, o.layerwise_lr_decay)
  optimizer = hf.make_optimizer(groups, args.hf_optimizer, o.b1, o.b2, o.eps)
  inputs = hf.to_torch(run["host_batch"], run["task_type"])
  warmup = round(o.warmup_fraction * run["num_steps"]) if o.warmup_fraction >= 0 else o.warmup_steps
  lr = lambda step: hf.learning_rate(step, o.learning_rate, warmup, run["num_steps"])
  return {"model": model, "optimizer": optimizer, "inputs": inputs, "lr": lr, "step": 0, "checked": checked,
          "attn": model.config._attn_implementation}


def max_logit_gap(run: dict[str, Any], peer: dict[str, Any], rows: int = 4) -> float:
  """Largest |korpat - HF| deterministic output of the same init on the first rows of the batch."""
  import jax
  import numpy as np
  from benchmarks.parity import hf_finetune as hf

  b = {k: np.asarray(v)[:rows] for k, v in run["host_batch"].items()}
  ours = run["task"].model.apply({"params": run["params0"]}, b["input_ids"], b["token_type_ids"],
                                 b["attention_mask"], True)
  theirs = hf.logits(peer["model"], {k: v[:rows] for k, v in peer["inputs"].items()})
  ours, theirs = jax.tree.leaves(jax.device_get(ours)), jax.tree.leaves(theirs)
  mask = b["attention_mask"].astype(bool)
  gaps = []
  for a, t in zip(ours, theirs):
    diff = np.abs(np.asarray(a) - np.asarray(t))
    gaps.append(float(diff[mask].max() if diff.shape[:2] == mask.shape else diff.max()))  # real positions only
  return max(gaps)


def korpat_step(run: dict[str, Any]) -> tuple[float, float, Any]:
  """One synchronised step: (wall seconds, CPU seconds of the whole process, loss)."""
  import jax
  t0, c0 = time.perf_counter(), time.process_time()
  run["state"], metrics = run["steps"].train_step(run["state"], run["batch"])
  jax.block_until_ready(metrics)
  return time.perf_counter() - t0, time.process_time() - c0, metrics["loss"]


def hf_step(peer: dict[str, Any]) -> tuple[float, float, Any]:
  from benchmarks.parity import hf_finetune as hf
  t0, c0 = time.perf_counter(), time.process_time()
  loss = hf.train_step(peer["model"], peer["optimizer"], peer["inputs"], peer["lr"](peer["step"]))
  peer["step"] += 1
  return time.perf_counter() - t0, time.process_time() - c0, loss


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--heads", default="token,sequence,qa", help=f"comma-separated: {', '.join(HEADS)}")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seq-len", type=int, default=128)
  parser.add_argument("--layers", type=int, default=SMALL["num_layers"])
  parser.add_argument("--hidden", type=int, default=SMALL["hidden_size"])
  parser.add_argument("--num-heads", type=int, default=SMALL["num_heads"])
  parser.add_argument("--ffn", type=int, default=SMALL["intermediate_size"])
  parser.add_argument("--embedding", type=int, default=SMALL["embedding_size"])
  parser.add_argument("--vocab", type=int, default=SMALL["vocab_size"], help=">= the tokenizer's (8000)")
  parser.add_argument("--steps", type=int, default=3, help="timed steps per framework per head per round")
  parser.add_argument("--rounds", type=int, default=6)
  parser.add_argument("--warmup", type=int, default=2, help="untimed steps per side first (compilation, allocator)")
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--omp-wait-policy", default="PASSIVE",
                      help="OMP_WAIT_POLICY for torch's OpenMP pool, set before torch loads ('' = libgomp's default "
                           "spin-waiting, which collapses when the cores are shared)")
  parser.add_argument("--attn", default="sdpa", help="HF attn_implementation: sdpa (HF's default) | eager")
  parser.add_argument("--hf-optimizer", default="google", choices=("google", "torch"),
                      help="google: uncorrected Adam as korpat; torch: torch.optim.AdamW(foreach=True)")
  parser.add_argument("--tokenizer-dir", default="", help="an MWP tokenizer (default: train the demo one, ~1 s)")
  parser.add_argument("--token-train", default="", help="NER training file (default: the demo set)")
  parser.add_argument("--sequence-train", default="", help="pair training file (default: the demo set)")
  parser.add_argument("--qa-train", default="", help="SQuAD-format file (default: demo set, else synthetic)")
  parser.add_argument("--workdir", default="", help="where feature caches go (default: a temporary directory)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--quick", action="store_true", help="tiny sizes, batch 4 x 32, 2 steps, 1 round")
  args = parser.parse_args(argv)
  if args.quick:
    args.layers, args.hidden, args.num_heads, args.ffn, args.embedding, args.vocab = QUICK.values()
    args.batch, args.seq_len, args.steps, args.rounds, args.warmup = 4, 32, 2, 1, 1
  unknown = set(args.heads.split(",")) - set(HEADS)
  if unknown:
    parser.error(f"--heads: unknown {sorted(unknown)}; expected some of {', '.join(HEADS)}")
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Parses `argv`, measures, prints the tables; the calling process gets its affinity, OMP_WAIT_POLICY and torch
  threads back afterwards (the tests call this in-process)."""
  args = parse_args(argv)
  with process_settings_restored():
    return measure(args)


def measure(args: argparse.Namespace) -> int:
  """Builds both sides of every head, times them interleaved and prints the tables; 1 on a non-finite loss."""
  cpus = pin_cpus(args.threads)  # before JAX starts its CPU backend
  memory = host_memory.keep_freed_memory()  # as `korpat-jax finetune` does (both sides share the process)
  if args.omp_wait_policy and "torch" not in sys.modules:  # libgomp reads it once, when torch loads it
    os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
  import jax
  import torch
  import transformers
  from benchmarks.parity import hf_finetune as hf
  torch.set_num_threads(args.threads)
  sizes = dict(num_layers=args.layers, hidden_size=args.hidden, num_heads=args.num_heads,
               intermediate_size=args.ffn, embedding_size=args.embedding, vocab_size=args.vocab)
  heads = args.heads.split(",")

  with tempfile.TemporaryDirectory(prefix="finetune_speed_") as tmp:
    work = args.workdir or tmp
    tok = tokenizer_dir(args, work)
    runs: dict[str, dict[str, Any]] = {}
    for head in heads:
      t0 = time.perf_counter()
      run = build_korpat(head, args, sizes, tok, train_file(head, work, getattr(args, f"{head}_train")), work)
      peer = build_hf(run, args)
      run["gap"] = max_logit_gap(run, peer)
      for _ in range(args.warmup):
        korpat_step(run)
        hf_step(peer)
      run.update(peer=peer, setup_s=time.perf_counter() - t0, times=[], hf_times=[], cpu=[], hf_cpu=[], losses=[],
                 hf_losses=[])
      runs[head] = run
      print(f"[{head}] HF {type(peer['model']).__name__} ({peer['attn']} attention, {args.hf_optimizer} AdamW, "
            f"{peer['checked']} parameters in the same lr/decay groups as korpat) is fed: "
            f"{hf.describe_inputs(peer['inputs'])}; "
            f"max |korpat - HF| deterministic output at init {run['gap']:.2e}", flush=True)

    for _ in range(args.rounds):  # A B A B
      for run in runs.values():
        for _ in range(args.steps):
          seconds, cpu, loss = korpat_step(run)
          run["times"].append(seconds)
          run["cpu"].append(cpu)
          run["losses"].append(loss)
        for _ in range(args.steps):
          seconds, cpu, loss = hf_step(run["peer"])
          run["hf_times"].append(seconds)
          run["hf_cpu"].append(cpu)
          run["hf_losses"].append(loss)

  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
  dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip()
  print(f"\n# fine-tuning step speed, korpat-jax vs HF PyTorch, {time.strftime('%Y-%m-%d %H:%M')}\n")
  print(f"{machine()}, pinned to cores {cpus}; torch {torch.__version__} ({torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}), "
        f"transformers {transformers.__version__}, jax {jax.__version__} on {jax.devices('cpu')[0].device_kind} "
        f"(1 device); freed host memory {memory}; commit {commit}{' (dirty tree)' if dirty else ''}")
  print(f"model L{args.layers} H{args.hidden} heads {args.num_heads} FFN {args.ffn} E{args.embedding} "
        f"vocab {args.vocab}, fp32, dropout 0.1, batch {args.batch} x seq {args.seq_len}; "
        f"{args.rounds} rounds x {args.steps} steps per side, medians\n")
  print("CPU: process CPU time over the step (every thread), so CPU / wall is how many cores the step kept busy.\n")
  print("| head | HF class | params (M) | korpat step (ms) | HF step (ms) | korpat tokens/s | HF tokens/s | "
        "korpat/HF speed | korpat CPU (ms) | HF CPU (ms) | korpat/HF CPU |")
  print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  tokens = args.batch * args.seq_len
  for head, run in runs.items():
    ours, theirs = statistics.median(run["times"]), statistics.median(run["hf_times"])
    ours_cpu, theirs_cpu = statistics.median(run["cpu"]), statistics.median(run["hf_cpu"])
    params = sum(x.size for x in jax.tree.leaves(run["params0"])) / 1e6
    print(f"| {head} | {type(run['peer']['model']).__name__} | {params:.2f} | {ours * 1e3:.1f} | "
          f"{theirs * 1e3:.1f} | {tokens / ours:,.0f} | {tokens / theirs:,.0f} | {theirs / ours:.2f}x | "
          f"{ours_cpu * 1e3:.0f} | {theirs_cpu * 1e3:.0f} | {ours_cpu / theirs_cpu:.2f} |")
  print("\nLoss of the repeated batch over the timed steps:\n")
  print("| head | korpat loss first -> last | HF loss first -> last | both finite and falling | "
        "setup incl. compile (s) |")
  print("|---|---|---|---|---:|")
  finite = True
  for head, run in runs.items():
    ours = [float(x) for x in run["losses"]]
    theirs = [float(x) for x in run["hf_losses"]]
    ok = all(math.isfinite(x) for x in ours + theirs)
    finite &= ok
    falls = "yes" if ok and ours[-1] < ours[0] and theirs[-1] < theirs[0] else "no"
    print(f"| {head} | {ours[0]:.4f} -> {ours[-1]:.4f} | {theirs[0]:.4f} -> {theirs[-1]:.4f} | {falls} | "
          f"{run['setup_s']:.1f} |")
  if not finite:
    print("\nnon-finite loss: the comparison is not valid")
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
