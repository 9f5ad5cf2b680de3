"""Transfer benchmark: is a korpat-jax pretrained model a better fine-tuning init than a random one, and than a
PyTorch (HF transformers) ELECTRA trained for the same wall-clock minutes?

    python -m benchmarks.transfer --out runs/transfer                          # budgets 0,15,30,60 min, 3 seeds
    python -m benchmarks.transfer --out runs/transfer --set objective.temperature=3.0   # another recipe (A/B)
    python -m benchmarks.transfer --out /tmp/transfer_smoke --smoke            # the CI run (~3 min)

Pretraining corpus: NSMC reviews of 80% of the movies (a document per movie); fine-tuning sets: NSMC sentiment
(the other movies), KLUE NER and NLI dev (80/20 splits) and the bundled CPC demo set. Every run has its own
directory under --out and a finished one is skipped on rerun. Writes results.json, transfer.md and transfer.png
(with --set / --finetune-set: results_rHASH.json etc., so that another recipe never overwrites the default's).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Optional, Sequence

from . import data as data_lib, finetune, pretrain, report
from .worker import REPO, Job, run_jobs, write_json

SMOKE = dict(budgets="0,1", seeds="0", steps_per_budget=5, vocab_size=2000, nsmc_train=200, nsmc_eval=100)
SMOKE_SIZES = dict(corpus_reviews=2000, klue_train=200, klue_eval=100)
SMOKE_PRETRAIN_SETS = ("train.eval_every=0",)  # no eval compile in a 5-step run
FINETUNE_FROZEN = ("init_from", "seed", "data.train", "data.eval", "random_init")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m benchmarks.transfer", description=__doc__.split("\n\n")[0])
  p.add_argument("--out", required=True, help="benchmark directory (data, runs, results); a rerun resumes")
  p.add_argument("--budgets", default=None, help="pretraining minutes, 0 = random init (default 0,15,30,60)")
  p.add_argument("--steps-per-budget", type=int, default=None, metavar="N",
                 help="budget b = b x N steps for each framework instead of b minutes (no timing)")
  p.add_argument("--seeds", default=None, help="fine-tuning seeds (default 0,1,2)")
  p.add_argument("--frameworks", default="korpat,torch", help="korpat and/or torch")
  p.add_argument("--sets", default=",".join(data_lib.SETS), help="fine-tuning sets")
  p.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="pretraining config override for both frameworks (repeatable), e.g. optimizer.learning_rate=5e-4")
  p.add_argument("--finetune-set", action="append", default=[], metavar="KEY=VALUE",
                 help="fine-tuning config override (repeatable), e.g. train.num_epochs=5")
  p.add_argument("--nsmc-train", type=int, default=None, help="sentiment training reviews (default 4000)")
  p.add_argument("--nsmc-eval", type=int, default=None, help="sentiment evaluation reviews (default 1000)")
  p.add_argument("--vocab-size", type=int, default=None, help="default: configs/pretrain.py's CPU_VOCAB_SIZE")
  p.add_argument("--timing-steps", type=int, default=20, help="steps timed per framework (after compilation)")
  p.add_argument("--report-only", action="store_true",
                 help="run nothing: the table, results.json and plot from the runs of --budgets/--frameworks that "
                      "have finished (a pretraining not done is left out; a fine-tuning not done counts as missing)")
  p.add_argument("--report-name", default=None, metavar="NAME",
                 help="write NAME.json, NAME.md and NAME.png (default: results.json, transfer.md, transfer.png, "
                      "with the recipe's hash for --set / --finetune-set)")
  p.add_argument("--smoke", action="store_true",
                 help="tiny end to end: data slices, vocab 2000, budgets 0 and 5 steps, 1 seed, *_tiny for 1 epoch")
  args = p.parse_args(argv)
  defaults = dict(budgets="0,15,30,60", seeds="0,1,2", steps_per_budget=0, vocab_size=None, nsmc_train=4000,
                  nsmc_eval=1000)
  for key, value in (SMOKE if args.smoke else defaults).items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  return args


def csv(text: str, kind, flag: str) -> list:
  try:
    values = [kind(x) for x in text.split(",") if x.strip()]
  except ValueError:
    raise SystemExit(f"{flag} {text!r}: expected comma-separated {kind.__name__}s") from None
  if not values:
    raise SystemExit(f"{flag}: empty")
  return values


class Benchmark:
  """One invocation: the plan, the run directories and what has been found so far."""

  def __init__(self, args: argparse.Namespace):
    self.args, self.out = args, Path(args.out).resolve()
    self.budgets = sorted(set(csv(args.budgets, float, "--budgets")))
    if any(b < 0 for b in self.budgets):
      raise SystemExit(f"--budgets {args.budgets}: budgets are >= 0")
    self.seeds = csv(args.seeds, int, "--seeds")
    self.frameworks = csv(args.frameworks, str, "--frameworks")
    for f in self.frameworks:
      if f not in ("korpat", "torch"):
        raise SystemExit(f"--frameworks: unknown framework {f!r} (korpat, torch)")
    if "torch" in self.frameworks and not all(importlib.util.find_spec(m) for m in ("torch", "transformers")):
      raise SystemExit("--frameworks torch needs torch and transformers (pip install -e '.[export]')")
    self.sets = csv(args.sets, str, "--sets")
    unknown = [s for s in self.sets if s not in data_lib.SETS]
    if unknown:
      raise SystemExit(f"--sets: unknown set {unknown[0]!r} (one of {', '.join(data_lib.SETS)})")
    pre_sets = [*args.set, *(SMOKE_PRETRAIN_SETS if args.smoke else ())]
    self.recipe = pretrain.load_recipe(pretrain.parse_overrides(pre_sets, "--set", pretrain.FROZEN_KEYS),
                                       args.vocab_size)
    self.ft_overrides = pretrain.parse_overrides(args.finetune_set, "--finetune-set", FINETUNE_FROZEN)
    self.records, self.tok = self.out / "records", self.out / "tok"
    self.cache = str(self.out / "jax_cache")
    self.timing: dict = {}
    self.failed: list[str] = []

  @property
  def unit(self) -> str:
    return f"x {self.args.steps_per_budget} steps" if self.args.steps_per_budget else "minutes"

  def steps(self, framework: str, budget: float) -> int:
    return pretrain.budget_steps(budget, self.timing.get(framework, {}).get("step_time"),
                                 self.args.steps_per_budget)

  def label(self, framework: str, budget: float) -> str:
    if framework == "random" or not self.args.steps_per_budget:
      return f"{framework}_{budget:g}m{self.recipe.suffix}"
    return f"{framework}_{self.steps(framework, budget)}steps{self.recipe.suffix}"

  def pretrain_dir(self, framework: str, budget: float) -> Path:
    return self.out / "pretrain" / self.label(framework, budget)

  def init(self, framework: str, budget: float) -> finetune.Init:
    if framework == "random":
      return finetune.Init("random", 0.0, self.label("random", 0.0), self.random_base(), random_init=True)
    run = self.pretrain_dir(framework, budget)
    return finetune.Init(framework, budget, self.label(framework, budget), run / "run" if framework == "torch" else run)

  def random_base(self) -> Path:
    """The run whose sizes and tokenizer the random init takes: the shortest korpat budget, else a 1-step run."""
    positive = [b for b in self.budgets if b > 0]
    if "korpat" in self.frameworks and positive:
      return self.pretrain_dir("korpat", positive[0])
    return self.out / "pretrain" / f"korpat_init{self.recipe.suffix}"

  def log(self, message: str) -> None:
    print(message, flush=True)

  # -- the steps ----------------------------------------------------------------------------------------------------

  def run(self) -> int:
    t0 = time.perf_counter()
    a = self.args
    sizes = data_lib.Sizes(a.nsmc_train, a.nsmc_eval, **(SMOKE_SIZES if a.smoke else {}))
    self.files = data_lib.build_data(Path(a.data), self.out / "data", self.sets, sizes, self.log)
    self.sets = [s for s in self.sets if s in self.files]
    budgets, seeds = (", ".join(f"{x:g}" for x in self.budgets), ", ".join(map(str, self.seeds)))
    recipe = " ".join(f"{k}={v}" for k, v in self.recipe.overrides) or "(as is)"
    self.log(f"sets: {', '.join(self.sets) or 'none'}; budgets ({self.unit}): {budgets}; seeds {seeds}; frameworks "
             f"{', '.join(self.frameworks)}; recipe configs/pretrain.py:cpu {recipe}, vocab {self.recipe.vocab_size}")
    positive = [b for b in self.budgets if b > 0]
    if a.report_only:
      return self.report(self.finished_inits(positive), t0)
    jobs = pretrain.data_jobs(self.out, self.recipe)
    if not a.steps_per_budget and positive:  # minutes -> steps needs the step times first
      timing_path = self.out / "timing" / f"timing{self.recipe.suffix}.json"
      self.timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
      timing_job, timing_dir = pretrain.korpat_timing_job(self.out, self.recipe, a.timing_steps)
      if "korpat" in self.frameworks and "korpat" not in self.timing and not pretrain.is_done(timing_dir):
        jobs.append(timing_job)
      self.batch("tokenizer, records, step timing", jobs)
      self.require_done([self.tok, self.records])
      self.measure(timing_path, timing_dir)
      jobs = []
    self.batch("korpat-jax pretraining", jobs + self.korpat_jobs(positive))
    self.require_done([self.tok, self.records])
    jobs = self.torch_runs(positive)
    inits = self.inits(positive)
    jobs += [j for init in inits if self.usable(init) for j in self.finetune_jobs(init)]
    self.batch("fine-tuning", jobs)
    return self.report(inits, t0)

  @property
  def results_suffix(self) -> str:
    """Another recipe (--set) or fine-tuning (--finetune-set) writes its own results files beside the default's."""
    return (self.recipe.suffix if self.args.set else "") + finetune.overrides_suffix(self.ft_overrides)

  def report(self, inits: list[finetune.Init], t0: float) -> int:
    results = self.results(inits)
    if self.args.report_name:
      names = [f"{self.args.report_name}.{ext}" for ext in ("json", "md", "png")]
    else:
      names = [f"{stem}{self.results_suffix}.{ext}" for stem, ext in (("results", "json"), ("transfer", "md"),
                                                                        ("transfer", "png"))]
    write_json(self.out / names[0], results)
    (self.out / names[1]).write_text(report.markdown(results), encoding="utf-8")
    try:
      report.plot(results, self.out / names[2])
    except ImportError:
      self.log(f"{names[2]}: not drawn, matplotlib is absent (pip install -e '.[bench]')")
    self.log("\n" + report.table(results))
    self.log(f"\n{self.out / names[1]}, {names[0]}, {names[2]}; {time.perf_counter() - t0:.0f} s")
    if self.failed:
      self.log(f"{len(self.failed)} run(s) failed: {'; '.join(self.failed[:5])}")
    return 1 if self.failed else 0

  def batch(self, what: str, jobs: list[Job]) -> None:
    if not jobs:
      return
    self.log(f"{what}: {len(jobs)} run(s) in one worker process (logs beside each run)")
    for name, result in run_jobs(jobs, self.out / "logs", self.cache).items():
      if result["rc"] != 0:
        self.failed.append(f"{name} (see {result['log']})")

  def require_done(self, dirs: Sequence[Path]) -> None:
    for d in dirs:
      if not pretrain.is_done(d):
        raise SystemExit(f"{d}: not built (see {self.out / 'logs'}); nothing to pretrain on")

  def measure(self, timing_path: Path, timing_dir: Path) -> None:
    """Step times per framework (once; reruns reuse them so that budgets keep their step counts)."""
    if "korpat" in self.frameworks and "korpat" not in self.timing:
      if not pretrain.is_done(timing_dir):
        raise SystemExit(f"{timing_dir}: the korpat timing run failed (see {self.out / 'logs'})")
      self.timing["korpat"] = {"step_time": pretrain.korpat_step_time(timing_dir),
                               "timed_steps": self.args.timing_steps, "load_average": os.getloadavg()}
    if "torch" in self.frameworks and "torch" not in self.timing:
      step_time = pretrain.torch_step_time(self.recipe.config(self.records, 1000), self.args.timing_steps)
      self.timing["torch"] = {"step_time": step_time, "timed_steps": self.args.timing_steps,
                              "load_average": os.getloadavg()}
    write_json(timing_path, self.timing)
    self.log("step time: " + ", ".join(f"{f} {t['step_time'] * 1e3:.0f} ms" for f, t in self.timing.items()))

  def korpat_jobs(self, positive: list[float]) -> list[Job]:
    wanted = [(b, self.pretrain_dir("korpat", b), self.steps("korpat", b)) for b in positive
              if "korpat" in self.frameworks]
    if 0 in self.budgets and not wanted:
      wanted.append((0.0, self.random_base(), 1))
    return [Job(f"pretrain {w.name} ({steps} steps)", self.recipe.korpat_argv(self.records, w, steps),
                str(w / "pretrain.log"), str(w / pretrain.DONE))
            for _, w, steps in wanted if not pretrain.is_done(w)]

  def torch_runs(self, positive: list[float]) -> list[Job]:
    """Trains the peer for every budget here (this process), then returns its import-hf jobs."""
    jobs = []
    for b in positive if "torch" in self.frameworks else []:
      w, steps = self.pretrain_dir("torch", b), self.steps("torch", b)
      if not (w / "pretrain.json").exists():
        self.log(f"pretrain {w.name}: PyTorch peer, {steps} steps")
        try:
          pretrain.train_torch(self.recipe.config(self.records, steps), w, self.tok, self.log)
        except pretrain.RunFailed as e:
          self.failed.append(str(e))
          self.log(f"  FAILED: {e}")
          continue
      if not pretrain.is_done(w / "run"):
        jobs.append(pretrain.import_job(w, self.recipe.config(self.records, steps)))
    return jobs

  def usable(self, init: finetune.Init) -> bool:
    """Whether the init's pretraining finished (torch: trained; its import runs in the fine-tuning batch)."""
    if init.framework == "torch":
      return (init.run.parent / "pretrain.json").exists()
    return pretrain.is_done(init.run)

  def inits(self, positive: list[float]) -> list[finetune.Init]:
    out = [self.init("random", 0.0)] if 0 in self.budgets else []
    return out + [self.init(f, b) for f in self.frameworks for b in positive]

  def finished_inits(self, positive: list[float]) -> list[finetune.Init]:
    """--report-only: the inits whose pretraining has finished, with the step times recorded when they ran."""
    timing_path = self.out / "timing" / f"timing{self.recipe.suffix}.json"
    self.timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    done = [i for i in self.inits(positive) if self.usable(i) or (i.framework == "random" and
                                                                   pretrain.is_done(self.random_base()))]
    left_out = [i.label for i in self.inits(positive) if i not in done]
    if left_out:
      self.log(f"--report-only: left out (pretraining not finished): {', '.join(left_out)}")
    return done

  def finetune_jobs(self, init: finetune.Init) -> list[Job]:
    jobs = [finetune.job(self.out, init, name, self.files[name], seed, self.args.smoke, self.ft_overrides)
            for name in self.sets for seed in self.seeds]
    return [j for j in jobs if j is not None]

  # -- results ------------------------------------------------------------------------------------------------------

  def pretraining_row(self, init: finetune.Init) -> dict:
    row = {"framework": init.framework, "budget": init.budget, "label": init.label, "run": str(init.run)}
    if init.framework == "random":
      return {**row, "steps": 0, "random_init_of": str(init.run)}
    w = self.pretrain_dir(init.framework, init.budget)
    steps = self.steps(init.framework, init.budget)
    config = self.recipe.config(self.records, steps)
    try:
      if init.framework == "korpat":
        if not pretrain.is_done(w):
          raise pretrain.RunFailed(f"{w}: not finished")
        stats = pretrain.korpat_summary(w, config)
        stats["seconds"] = json.loads((w / pretrain.DONE).read_text())["seconds"]
      else:
        stats = json.loads((w / "pretrain.json").read_text())
    except (pretrain.RunFailed, OSError) as e:
      return {**row, "steps": steps, "failed": str(e)}
    measured = self.timing.get(init.framework, {}).get("step_time")
    return {**row, "steps": steps, **stats, "step_time": measured or stats.get("run_step_time"),
            "base_rate_loss": _base_rate(stats["replaced_share"])}

  def results(self, inits: list[finetune.Init]) -> dict:
    finetuning = []
    for init in inits:
      for name in self.sets:
        for seed in self.seeds:
          w = finetune.workdir(self.out, init, name, seed, self.ft_overrides)
          score = finetune.read_score(w)
          finetuning.append({"framework": init.framework, "budget": init.budget, "set": name, "seed": seed,
                             "run": str(w), **(score or {"score": None, "failed": True})})
    counts = json.loads((self.out / "data" / "manifest.json").read_text())["counts"]
    return {"machine": report.machine_info(), "settings": vars(self.args), "smoke": self.args.smoke,
            "recipe": {"config": f"configs/pretrain.py:{pretrain.VARIANT}", "overrides": self.recipe.overrides,
                       "suffix": self.recipe.suffix, "vocab_size": self.recipe.vocab_size,
                       "prepare_args": self.recipe.prepare_args, "finetune_overrides": self.ft_overrides},
            "data": counts, "sets": self.sets, "seeds": self.seeds, "frameworks": self.frameworks,
            "budgets": self.budgets, "budget_unit": self.unit, "timing": self.timing,
            "pretraining": [self.pretraining_row(i) for i in inits], "finetuning": finetuning,
            "summary": report.summarize(finetuning), "rows": [(i.framework, i.budget) for i in inits],
            "failed": self.failed}


def _base_rate(share: float) -> float:
  from benchmarks.parity.demo_recipe import base_rate_loss
  return base_rate_loss(share)


def main(argv: Optional[Sequence[str]] = None) -> int:
  return Benchmark(parse_args(argv)).run()


if __name__ == "__main__":
  raise SystemExit(main())
