"""The run profiles (the GPU run and the CPU smoke run) and the rows of the tables."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENTRY = "benchmarks.gpu"  # the module the worker and probe processes run (`python -m`, PYTHONPATH=REPO)
DEMO = REPO / "korpat_jax" / "demo" / "finetune"
GIB = 2.0 ** 30


@dataclasses.dataclass(frozen=True)
class Profile:
  """Sizes and step counts of a run (the GPU run or the CPU smoke run)."""

  seq_len: int
  batches: tuple[int, int, int]  # the pretraining sweep; the middle one is the comparison batch
  finetune_batch: int
  finetune_seq_len: int
  pretrain_model: dict
  finetune_model: dict
  tokenizer_vocab: int
  examples: int           # demo examples per fine-tuning file
  warmup: int
  rounds: int
  steps: int              # timed steps per case per round
  trace_steps: int
  compile_threads: int    # concurrent compiles: each autotunes on the device, so few (2 on the GPU)
  batch_step: int         # granularity of the largest-batch search
  probes: int             # per search
  budget_s: float
  worker_share: float     # of the budget, for the worker (the rest is for the probes)
  reserve_s: float        # of the worker's time, kept for warm-up, timing, trace and HLO


GPU = Profile(
    seq_len=512, batches=(32, 64, 128), finetune_batch=32, finetune_seq_len=512,
    pretrain_model={}, finetune_model=dict(vocab_size=35_000, embedding_size=768, hidden_size=768, num_layers=12,
                                           num_heads=12, intermediate_size=3072, max_position_embeddings=512),
    tokenizer_vocab=8000, examples=96, warmup=2, rounds=3, steps=5, trace_steps=2, compile_threads=2,
    batch_step=8, probes=2, budget_s=330.0, worker_share=0.7, reserve_s=75.0)
SMOKE = Profile(
    seq_len=32, batches=(2, 4, 8), finetune_batch=2, finetune_seq_len=64,
    pretrain_model=dict(vocab_size=128, embedding_size=16, hidden_size=32, num_layers=1, num_heads=2,
                        intermediate_size=64, max_position_embeddings=128),
    finetune_model=dict(vocab_size=1000, embedding_size=16, hidden_size=32, num_layers=1, num_heads=2,
                        intermediate_size=64, max_position_embeddings=128),
    tokenizer_vocab=1000, examples=12, warmup=1, rounds=2, steps=1, trace_steps=1, compile_threads=1,
    batch_step=1, probes=1, budget_s=900.0, worker_share=0.8, reserve_s=30.0)
# The preflight: every row kind once at small sizes, so a broken import, trace or kernel shows in ~90 s instead of
# at the end of the main run. Head sizes suit cuDNN (multiples of 8) in the discriminator and in the generator
# (hidden x 1/3, one head per 64): 384 / 6 = 64 and 128 / 2 = 64 on the GPU; 48 / 2 = 24 and 16 on the CPU.
PREFLIGHT = dataclasses.replace(
    GPU, seq_len=128, batches=(4, 8, 16), finetune_batch=4, finetune_seq_len=128,
    pretrain_model=dict(vocab_size=8000, embedding_size=384, hidden_size=384, num_layers=2, num_heads=6,
                        intermediate_size=1536, max_position_embeddings=512),
    finetune_model=dict(vocab_size=8000, embedding_size=384, hidden_size=384, num_layers=2, num_heads=6,
                        intermediate_size=1536, max_position_embeddings=512),
    tokenizer_vocab=1000, examples=12, warmup=1, rounds=1, steps=1, trace_steps=1, budget_s=120.0)
PREFLIGHT_CPU = dataclasses.replace(
    SMOKE, pretrain_model=dict(SMOKE.pretrain_model, embedding_size=16, hidden_size=48, intermediate_size=96))


def profile(cpu_smoke: bool) -> Profile:
  return SMOKE if cpu_smoke else GPU


@dataclasses.dataclass(frozen=True)
class Case:
  """One row: a train step at one configuration."""

  name: str
  task: str                 # pretrain | ner | cls | qa
  batch: int
  attention: str = "cudnn"  # cudnn | xla | explicit (softmax + dropout 0.1)
  remat: bool = False
  vocab_all: bool = False   # generator vocab projection on every position, gathered afterwards


def cases(prof: Profile) -> list[Case]:
  """Every timed row, in the order they are built (most wanted first, so a short budget drops the least)."""
  small, mid, large = prof.batches
  fb = prof.finetune_batch
  return [
      Case(f"pretrain cudnn b{mid}", "pretrain", mid),
      Case(f"pretrain explicit-dropout b{mid}", "pretrain", mid, attention="explicit"),
      Case(f"pretrain xla b{mid}", "pretrain", mid, attention="xla"),
      Case(f"pretrain cudnn b{large}", "pretrain", large),
      Case(f"pretrain cudnn b{small}", "pretrain", small),
      Case(f"pretrain cudnn remat b{mid}", "pretrain", mid, remat=True),
      Case(f"pretrain cudnn vocab-all b{mid}", "pretrain", mid, vocab_all=True),
      Case(f"finetune ner b{fb}", "ner", fb),
      Case(f"finetune cls b{fb}", "cls", fb),
      Case(f"finetune qa b{fb}", "qa", fb),
  ]


TABLE_ORDER = ("pretrain cudnn b{s}", "pretrain cudnn b{m}", "pretrain cudnn b{l}", "pretrain xla b{m}",
               "pretrain explicit-dropout b{m}", "pretrain cudnn remat b{m}", "pretrain cudnn vocab-all b{m}",
               "finetune ner b{f}", "finetune cls b{f}", "finetune qa b{f}")
SEARCHES = ("largest batch, remat off", "largest batch, remat on")


def table_order(prof: Profile) -> list[str]:
  """The rows' names in table order (the build order puts the most wanted first instead)."""
  s, m, l = prof.batches
  return [name.format(s=s, m=m, l=l, f=prof.finetune_batch) for name in TABLE_ORDER]


def not_run(case: Case, status: str) -> dict:
  """A table row that has no numbers, with the reason."""
  return {**dataclasses.asdict(case), "status": status}


def log(message: str) -> None:
  print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
