"""The `cpu` pretraining recipe for both frameworks: tokenizer and records (once), step timing, budgets -> step
counts, korpat-jax runs (`korpat-jax pretrain`) and the PyTorch peer (benchmarks/parity/demo_recipe.py's torch_peer: HF
ElectraForMaskedLM + ElectraForPreTraining on the trainer's own batches), saved as an HF directory and imported with
`korpat-jax import-hf` so that both are fine-tuned by the same korpat-jax path."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import shlex
import shutil
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from .worker import REPO, Job, write_json

PRETRAIN_CONFIG = REPO / "configs" / "pretrain.py"
VARIANT = "cpu"
FROZEN_KEYS = ("data.records_dir", "train.num_steps")  # set by the benchmark itself
TAIL_STEPS = 50  # the final pretraining metrics: the mean over the last this many steps
DONE = "transfer.json"


class RunFailed(Exception):
  """A pretraining run that cannot be used (its message names the run and why)."""


@dataclasses.dataclass(frozen=True)
class Recipe:
  """configs/pretrain.py:cpu with `--set` overrides, and its tokenizer / prepare settings."""
  overrides: tuple[tuple[str, str], ...]
  vocab_size: int
  prepare_args: tuple[str, ...]

  @property
  def suffix(self) -> str:
    """"" for the recipe as it is, else "_r" + a hash of the overrides (different recipes never share a run)."""
    if not self.overrides:
      return ""
    return "_r" + hashlib.sha256(json.dumps(self.overrides).encode()).hexdigest()[:8]

  def config(self, records_dir: Path | str, num_steps: int):
    """The resolved ConfigDict, as `korpat-jax pretrain` builds it from the same arguments."""
    from korpat_jax import config as config_lib
    config = config_lib.load(f"{PRETRAIN_CONFIG}:{VARIANT}")
    config_lib.apply_overrides(config, [("data.records_dir", str(records_dir)), ("train.num_steps", str(num_steps)),
                                        *self.overrides])
    return config

  def korpat_argv(self, records_dir: Path, workdir: Path, num_steps: int, *extra: tuple[str, str]) -> list[str]:
    return ["pretrain", "--config", f"{PRETRAIN_CONFIG}:{VARIANT}", "--workdir", str(workdir),
            f"--config.data.records_dir={records_dir}", f"--config.train.num_steps={num_steps}",
            *(f"--config.{k}={v}" for k, v in (*self.overrides, *extra))]


def parse_overrides(items: Sequence[str], flag: str, frozen: Sequence[str] = ()) -> tuple[tuple[str, str], ...]:
  """KEY=VALUE strings -> pairs; one line naming a malformed or reserved one."""
  out = []
  for item in items:
    key, eq, value = item.partition("=")
    key = key.strip().removeprefix("config.")
    if not eq or not key:
      raise SystemExit(f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} optimizer.learning_rate=5e-4")
    if key in frozen:
      raise SystemExit(f"{flag} {item!r}: {key} is set by the benchmark itself")
    out.append((key, value))
  return tuple(out)


def load_recipe(overrides: tuple[tuple[str, str], ...], vocab_size: Optional[int] = None) -> Recipe:
  """The recipe with configs/pretrain.py's CPU_VOCAB_SIZE and CPU_PREPARE_ARGS (vocab_size overrides the first);
  the overrides are checked against the config now, so that a typo stops before any run."""
  spec = importlib.util.spec_from_file_location("korpat_transfer_pretrain_config", PRETRAIN_CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for name in ("CPU_VOCAB_SIZE", "CPU_PREPARE_ARGS"):
    if not hasattr(module, name):
      raise SystemExit(f"{PRETRAIN_CONFIG}: no module constant {name} (the cpu recipe's tokenizer/prepare settings)")
  recipe = Recipe(overrides, int(vocab_size or module.CPU_VOCAB_SIZE),
                  tuple(shlex.split(module.CPU_PREPARE_ARGS or "")))
  from korpat_jax.errors import KorpatError
  try:
    recipe.config("records", 1)
  except KorpatError as e:
    raise SystemExit(f"--set: {e}") from None
  return recipe


def is_done(workdir: Path) -> bool:
  return (workdir / DONE).exists()


def data_jobs(out: Path, recipe: Recipe) -> list[Job]:
  """`korpat-jax tokenizer train` and `korpat-jax prepare` on DIR/data/pretrain.txt, unless done with the same
  arguments (other ones, e.g. a changed CPU_PREPARE_ARGS, are refused: the runs under DIR were made from them)."""
  corpus, tok, records = out / "data" / "pretrain.txt", out / "tok", out / "records"
  wanted = [
      Job("tokenizer", ["tokenizer", "train", "--corpus", str(corpus), "--vocab-size", str(recipe.vocab_size),
                        "--out", str(tok)], str(out / "logs" / "tokenizer.log"), str(tok / DONE)),
      Job("prepare", ["prepare", "--corpus", str(corpus), "--tokenizer", str(tok), "--out", str(records),
                      "--seq-len", "128", "--overwrite", *recipe.prepare_args],
          str(out / "logs" / "prepare.log"), str(records / DONE))]
  jobs = []
  for job in wanted:
    done = Path(job.done)
    if not done.exists():
      if job.name == "tokenizer":  # a half-written one (prepare resumes by itself)
        shutil.rmtree(done.parent, ignore_errors=True)
      jobs.append(job)
    elif json.loads(done.read_text(encoding="utf-8")).get("argv") != job.argv:
      raise SystemExit(f"{done.parent}: built by another `korpat-jax {job.argv[0]}` (see {done}), not "
                       f"`korpat-jax {' '.join(job.argv)}`; use another --out")
  return jobs


# -- step timing ----------------------------------------------------------------------------------------------------

def korpat_timing_job(out: Path, recipe: Recipe, timed_steps: int) -> tuple[Job, Path]:
  """A short korpat run whose metrics.jsonl times `timed_steps` steps after the first 5 (compilation and warm-up)."""
  workdir = out / "timing" / f"korpat{recipe.suffix}"
  steps = 5 + 5 * math.ceil(timed_steps / 5)
  job = Job("timing korpat", recipe.korpat_argv(out / "records", workdir, steps, ("train.log_every", "5"),
                                                 ("train.eval_every", "0"), ("train.checkpoint_every", "100000")),
            str(out / "logs" / f"timing_korpat{recipe.suffix}.log"), str(workdir / DONE))
  return job, workdir


def korpat_step_time(workdir: Path, after_step: int = 5) -> float:
  """Mean step time of a run's logged rows after `after_step` (each row times the steps since the one before)."""
  rows = [r for r in read_metrics(workdir) if "step_time" in r and r["step"] > after_step]
  if not rows:
    raise SystemExit(f"{workdir / 'metrics.jsonl'}: no timed training rows after step {after_step}")
  return sum(r["step_time"] for r in rows) / len(rows)


def torch_step_time(config, timed_steps: int, warmup: int = 2) -> float:
  """The peer's wall time per step (batch fetch included) over `timed_steps` steps after `warmup`."""
  side, batches = _torch_peer(config)
  for _ in range(warmup):
    side.step(side.to_torch(next(batches)))
  t0 = time.perf_counter()
  for _ in range(timed_steps):
    side.step(side.to_torch(next(batches)))
  return (time.perf_counter() - t0) / timed_steps


# -- runs -----------------------------------------------------------------------------------------------------------

def read_metrics(workdir: Path) -> list[dict]:
  """Training rows of a run's metrics.jsonl (eval rows have split "eval")."""
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return []
  rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
  return [r for r in rows if r.get("split", "train") == "train"]


def masked_share(config) -> float:
  """The masked share of a full sequence's tokens (korpat's rows do not log it; as benchmarks/parity/demo_recipe.py)."""
  from korpat_jax import objective
  seq, prob = config.train.seq_len, config.objective.mask_prob
  n = config.objective.max_predictions
  n = objective.max_predictions_per_seq(seq, prob) if n < 0 else n
  return min(n, round(prob * seq)) / seq


def korpat_summary(workdir: Path, config) -> dict:
  """Final train metrics of a korpat run: the mean of its logged rows in the last TAIL_STEPS steps."""
  rows = read_metrics(workdir)
  if not rows:
    raise RunFailed(f"{workdir / 'metrics.jsonl'}: no training rows")
  last = rows[-1]["step"]
  tail = [r for r in rows if r["step"] > last - TAIL_STEPS] or rows[-1:]
  out = {k: _mean(r[k] for r in tail) for k in ("gen_loss", "disc_loss", "disc_precision", "disc_recall",
                                                 "replaced_fraction")}
  out["replaced_share"] = out["replaced_fraction"] * masked_share(config)
  timed = [r["step_time"] for r in rows if "step_time" in r]
  out.update(run_step_time=_mean(timed) if timed else None, final_step=last)
  return out


def _mean(values) -> float:
  values = list(values)
  return sum(values) / len(values)


def _torch_peer(config):
  os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: libgomp's spinning on shared cores
  from benchmarks.parity.demo_recipe import torch_peer
  return torch_peer(config)


def window_stats(window: Sequence[dict]) -> dict:
  """Mean statistics of some steps; precision and recall from their summed counts."""
  out = {k: _mean(w[k] for w in window) for k in ("loss", "gen_loss", "disc_loss", "replaced_fraction",
                                                   "masked_fraction", "step_time")}
  tp, pp, ap = (sum(w[k] for w in window) for k in ("disc_true_positive", "disc_predicted_positive",
                                                     "disc_actual_positive"))
  out.update(disc_precision=tp / max(pp, 1.0), disc_recall=tp / max(ap, 1.0),
             replaced_share=_mean(w["replaced_fraction"] * w["masked_fraction"] for w in window))
  return out


def train_torch(config, workdir: Path, tok_dir: Path, log: Callable[[str], None] = print) -> dict:
  """The peer for config.train.num_steps steps; every log_every steps a metrics.jsonl row (the window's means) and
  a line; a non-finite loss stops it. Saves the discriminator as WORKDIR/hf (+ the tokenizer's files) and returns
  the final statistics (means over the last TAIL_STEPS steps), also written to WORKDIR/pretrain.json."""
  side, batches = _torch_peer(config)
  steps, log_every = config.train.num_steps, config.train.log_every
  workdir.mkdir(parents=True, exist_ok=True)
  tail: collections.deque = collections.deque(maxlen=TAIL_STEPS)
  window: list[dict] = []
  t_start = time.perf_counter()
  with open(workdir / "metrics.jsonl", "w", encoding="utf-8") as metrics:
    for step in range(1, steps + 1):
      t0 = time.perf_counter()
      stats = side.step(side.to_torch(next(batches)))
      stats["step_time"] = time.perf_counter() - t0
      bad = [k for k in ("loss", "gen_loss", "disc_loss") if not math.isfinite(stats[k])]
      if bad:
        raise RunFailed(f"torch peer {workdir.name}: {bad[0]} is {stats[bad[0]]} at step {step}")
      window.append(stats)
      tail.append(stats)
      if step % log_every == 0 or step == steps:
        row = {"split": "train", "step": step, **window_stats(window)}
        metrics.write(json.dumps(row) + "\n")
        metrics.flush()
        log(f"    torch step {step}/{steps}: gen_loss {row['gen_loss']:.3f} disc_loss {row['disc_loss']:.4f} "
            f"replaced {row['replaced_fraction']:.3f} of masked, disc P {row['disc_precision']:.3f} "
            f"R {row['disc_recall']:.3f}, {row['step_time'] * 1e3:.0f} ms/step")
        window = []
  seconds = time.perf_counter() - t_start
  hf = workdir / "hf"
  shutil.rmtree(hf, ignore_errors=True)
  from transformers.utils import logging as hf_logging
  hf_logging.disable_progress_bar()
  side.discriminator.save_pretrained(str(hf))
  for name in ("vocab.txt", "mwp_tokenizer.json"):  # import-hf records them as the run's tokenizer
    shutil.copyfile(tok_dir / name, hf / name)
  final = window_stats(list(tail))
  summary = {"gen_loss": final["gen_loss"], "disc_loss": final["disc_loss"],
             "disc_precision": final["disc_precision"], "disc_recall": final["disc_recall"],
             "replaced_fraction": final["replaced_fraction"], "replaced_share": final["replaced_share"],
             "run_step_time": (seconds / steps), "final_step": steps, "seconds": seconds,
             "num_params": side.num_params}
  write_json(workdir / "pretrain.json", summary)
  return summary


def import_job(workdir: Path, config) -> Job:
  """`korpat-jax import-hf` of WORKDIR/hf into WORKDIR/run (a half-written run from an interrupted try is removed)."""
  run = workdir / "run"
  if run.exists() and not is_done(run):
    shutil.rmtree(run)
  return Job(f"import-hf {workdir.name}", ["import-hf", "--model", str(workdir / "hf"), "--out", str(run),
                                           "--generator-hidden-fraction", str(config.model.generator_hidden_fraction)],
             str(workdir / "import.log"), str(run / DONE))


def budget_steps(budget: float, step_time: Optional[float], steps_per_budget: int) -> int:
  """Steps of a budget: budget x steps_per_budget, or budget minutes / the measured step time (at least 1)."""
  if steps_per_budget:
    return max(1, round(budget * steps_per_budget))
  if not step_time or step_time <= 0:
    raise SystemExit(f"budget {budget:g} min: no measured step time")
  return max(1, round(budget * 60 / step_time))
