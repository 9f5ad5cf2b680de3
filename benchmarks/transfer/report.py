"""DIR/results.json (every run's numbers and the machine), DIR/transfer.md (the table) and DIR/transfer.png
(downstream score against pretraining budget, one subplot per set)."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Optional, Sequence

from .worker import REPO

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx")
FRAMEWORK_NAMES = {"random": "random init", "korpat": "korpat-jax", "torch": "PyTorch (HF) peer"}


def machine_info() -> dict:
  """CPU model and the flags that matter for XLA:CPU and torch, cores, load, date, versions, git commit."""
  model, flags = platform.processor() or "unknown", set()
  try:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      key, _, value = line.partition(":")
      if key.strip() == "model name":
        model = value.strip()
      elif key.strip() == "flags":
        flags = set(value.split())
  except OSError:
    pass
  has = {f: (any(x.startswith("amx") for x in flags) if f == "amx" else f in flags) for f in CPU_FLAGS}

  def git(*args: str) -> str:
    try:
      return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
      return ""

  versions = {}
  for name in ("jax", "torch", "transformers"):
    try:
      versions[name] = __import__(name).__version__
    except ImportError:
      versions[name] = None
  return {"cpu": model, "flags": has, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
          "load_average": [round(x, 2) for x in os.getloadavg()], "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
          "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain")),
          "python": platform.python_version(), **versions}


def spread(values: Sequence[float]) -> Optional[dict]:
  """mean, min and max of the seeds' scores (None when there are none)."""
  if not values:
    return None
  return {"mean": sum(values) / len(values), "min": min(values), "max": max(values), "n": len(values)}


def summarize(finetuning: Sequence[dict]) -> list[dict]:
  """One entry per (framework, budget, set): the seeds' spread of the main metric."""
  groups: dict[tuple, list[float]] = {}
  metrics: dict[tuple, str] = {}  # from the runs that finished (a missing run has no metric)
  for row in finetuning:
    key = (row["framework"], row["budget"], row["set"])
    groups.setdefault(key, [])
    if row.get("score") is not None:
      groups[key].append(row["score"])
      metrics.setdefault(key, row.get("metric"))
  return [{"framework": f, "budget": b, "set": s, "metric": metrics.get((f, b, s)), **(spread(v) or {"n": 0})}
          for (f, b, s), v in groups.items()]


def number(value: Optional[float], fmt: str) -> str:
  return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, fmt)


def table(results: dict) -> str:
  """The Markdown table: a row per framework x budget, pretraining numbers, then per set mean [min, max]."""
  sets = results["sets"]
  unit = results["budget_unit"]
  metric = {s["set"]: s["metric"] for s in results["summary"] if s.get("metric")}
  head = ["init", f"budget ({unit})", "steps", "step (ms)", "gen loss", "disc loss", "disc P", "disc R",
          "base-rate loss", *(f"{s} {metric.get(s, 'score')}" for s in sets)]
  lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
  by_key = {(s["framework"], s["budget"], s["set"]): s for s in results["summary"]}
  pre = {(p["framework"], p["budget"]): p for p in results["pretraining"]}
  for framework, budget in results["rows"]:
    p = pre.get((framework, budget), {})
    cells = [FRAMEWORK_NAMES.get(framework, framework), f"{budget:g}", number(p.get("steps"), "d"),
             number(p.get("step_time") and p["step_time"] * 1e3, ".0f"), number(p.get("gen_loss"), ".3f"),
             number(p.get("disc_loss"), ".4f"), number(p.get("disc_precision"), ".3f"), number(p.get("disc_recall"), ".3f"),
             number(p.get("base_rate_loss"), ".4f")]
    if p.get("failed"):
      cells[2] = "failed"
    for s in sets:
      got = by_key.get((framework, budget, s))
      if not got or not got["n"]:
        cells.append("n/a")
      elif got["n"] == 1:
        cells.append(f"{got['mean']:.3f}")
      else:
        cells.append(f"{got['mean']:.3f} [{got['min']:.3f}, {got['max']:.3f}]")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def markdown(results: dict) -> str:
  """transfer.md: what was run, the table, how to read it."""
  m = results["machine"]
  flags = ", ".join(f for f, on in m["flags"].items() if on) or "none of " + ", ".join(CPU_FLAGS)
  seeds = ", ".join(str(s) for s in results["seeds"])
  recipe = ", ".join(f"{k}={v}" for k, v in results["recipe"]["overrides"]) or "as configs/pretrain.py has it"
  ft = ", ".join(f"{k}={v}" for k, v in results["recipe"]["finetune_overrides"])
  return "\n".join([
      f"# Transfer: pretraining budget -> downstream score ({results['machine']['date']})", "",
      f"{m['cpu']} ({flags}), {m['usable_cores']} usable cores of {m['cores']}, load average "
      f"{' '.join(str(x) for x in m['load_average'])}; jax {m['jax']}, torch {m['torch']}, transformers "
      f"{m['transformers']}; commit {m['git_commit'][:10]}{' (dirty)' if m['git_dirty'] else ''}.", "",
      f"Pretraining: configs/pretrain.py:cpu ({recipe}), vocab {results['recipe']['vocab_size']}, on "
      f"{results['data'].get('corpus_reviews', '?')} NSMC reviews of {results['data'].get('corpus_movies', '?')} "
      f"movies; budget in {results['budget_unit']}. Fine-tuning: configs/finetune.py "
      f"{'*_tiny (1 epoch)' if results['smoke'] else '*_cpu'}{f' ({ft})' if ft else ''}, seeds {seeds}; the "
      f"score is the best "
      f"evaluation the run kept (W/eval/metrics.json), mean [min, max] over seeds.", "",
      table(results), "",
      "Pretraining columns: the training metrics at the end of the run (korpat-jax: the mean of its metrics.jsonl "
      "rows in the last 50 steps, each one step's batch; the peer: the mean over its last 50 steps); step = "
      + ("the wall time per step measured before the runs, which turned minutes into steps"
         if results["budget_unit"] == "minutes" else "the run's own mean wall time per step")
      + "; base-rate loss = H(replaced share), the disc loss of always answering \"original\" (a disc loss below "
      "it, with non-zero recall, is detection). Every number of every run is in results.json.", ""])


def plot(results: dict, path: Path) -> None:
  """transfer.png: score against budget, one subplot per set, a line per framework (both start at random init),
  the seeds' [min, max] shaded."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  sets = results["sets"]
  summary = [s for s in results["summary"] if s["n"]]
  fig, axes = plt.subplots(1, len(sets), figsize=(4 * len(sets), 3.4), squeeze=False)
  for ax, name in zip(axes[0], sets):
    base = [s for s in summary if s["set"] == name and s["framework"] == "random"]
    for framework in results["frameworks"]:
      points = sorted(base + [s for s in summary if s["set"] == name and s["framework"] == framework],
                      key=lambda s: s["budget"])
      if not points:
        continue
      x = [p["budget"] for p in points]
      ax.plot(x, [p["mean"] for p in points], marker="o", label=FRAMEWORK_NAMES[framework])
      ax.fill_between(x, [p["min"] for p in points], [p["max"] for p in points], alpha=0.2)
    metric = next((s["metric"] for s in summary if s["set"] == name), "score")
    ax.set_title(name)
    ax.set_xlabel(f"pretraining ({results['budget_unit']})")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
