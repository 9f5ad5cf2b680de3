"""The pretraining options beyond ELECTRA's recipe (masking strategies, GDES) on the transfer benchmark at equal
CPU minutes against the recipe as it is: one table of downstream scores and end-of-run pretraining metrics.

    python -m benchmarks.transfer.options --out runs/transfer --budget 15
    python -m benchmarks.transfer.options --out runs/transfer --budget 5 --sets nsmc,klue_ner,cpc --timing baseline

Each option is `python -m benchmarks.transfer --out OUT --budgets B --frameworks korpat --set OPTION` (its runs live
beside the default recipe's, named by the option's hash; a rerun skips what is done; its own report goes to
OUT/options_NAME.{json,md,png}), then one table of all of them: OUT/options.md and options.json. --timing own: each option's minutes become steps through its own step time,
measured by the benchmark as the recipe's is; baseline: every option takes the recipe's step time (equal steps: for
options whose step costs the same, which `own` timings on a quiet machine show; the runs themselves may then share
the machine).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

from . import data as data_lib, pretrain, report
from .__main__ import main as transfer_main
from .worker import write_json

OPTIONS = {  # name -> the --set overrides of configs/pretrain.py:cpu
    "token (recipe)": (),
    "morpheme": ("objective.masking=morpheme",),
    "eojeol": ("objective.masking=eojeol",),
    "span": ("objective.masking=span",),
    "gdes": ("objective.embedding_sharing=gdes",),
}


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m benchmarks.transfer.options", description=__doc__.split("\n\n")[0])
  p.add_argument("--out", required=True, help="the transfer benchmark's directory (data, records, runs)")
  p.add_argument("--budget", type=float, default=15.0, help="pretraining minutes of every option")
  p.add_argument("--options", default=",".join(OPTIONS), help="comma-separated, of: " + ", ".join(OPTIONS))
  p.add_argument("--sets", default=",".join(data_lib.SETS), help="fine-tuning sets")
  p.add_argument("--seeds", default="0,1,2")
  p.add_argument("--timing", choices=("own", "baseline"), default="own",
                 help="minutes -> steps through each option's own step time, or the recipe's (equal steps)")
  p.add_argument("--report-only", action="store_true", help="run nothing: the table from the finished runs")
  p.add_argument("--data", default=None, help="the shared data folder (default: the transfer benchmark's)")
  args = p.parse_args(argv)
  unknown = [o for o in args.options.split(",") if o not in OPTIONS]
  if unknown:
    raise SystemExit(f"--options: unknown {', '.join(unknown)}; expected some of {', '.join(OPTIONS)}")
  return args


def adopt_baseline_timing(out: Path, overrides: tuple[tuple[str, str], ...]) -> None:
  """--timing baseline: the option's timing file gets the recipe's korpat step time (unless it has its own)."""
  base = out / "timing" / "timing.json"
  own = out / "timing" / f"timing{pretrain.load_recipe(overrides).suffix}.json"
  if own == base or own.exists():
    return
  if not base.exists():
    raise SystemExit(f"--timing baseline: {base} not found; run the recipe first "
                     f"(python -m benchmarks.transfer --out {out} --budgets ... --frameworks korpat)")
  step_time = json.loads(base.read_text(encoding="utf-8"))["korpat"]["step_time"]
  write_json(own, {"korpat": {"step_time": step_time, "timed_steps": 0, "from": str(base)}})


def run_option(args: argparse.Namespace, name: str) -> dict:
  sets = [f"--set={s}" for s in OPTIONS[name]]
  report_name = f"options_{name.split()[0]}"
  argv = ["--out", args.out, "--budgets", f"{args.budget:g}", "--frameworks", "korpat", "--sets", args.sets,
          "--seeds", args.seeds, "--report-name", report_name, *sets, *(["--data", args.data] if args.data else [])]
  overrides = pretrain.parse_overrides(list(OPTIONS[name]), "--set")
  out = Path(args.out).resolve()
  if args.timing == "baseline" and not args.report_only:
    adopt_baseline_timing(out, overrides)
  transfer_main(argv + (["--report-only"] if args.report_only else []))
  return json.loads((out / f"{report_name}.json").read_text(encoding="utf-8"))


def option_row(name: str, results: dict, budget: float) -> dict:
  """The option's pretraining metrics at the budget and its per-set score spreads (None where not finished)."""
  pre = next((r for r in results["pretraining"] if r["framework"] == "korpat" and r["budget"] == budget), {})
  scores = {s["set"]: s for s in results["summary"] if s["framework"] == "korpat" and s["budget"] == budget}
  return {"option": name, "overrides": list(OPTIONS[name]), "pretraining": pre, "scores": scores}


def markdown(rows: list[dict], sets: Sequence[str], budget: float, machine: dict, seeds: str) -> str:
  head = ["option", "steps", "gen loss", "disc loss", "disc P", "disc R", *(f"{s}" for s in sets)]
  lines = [f"Options on the transfer benchmark: configs/pretrain.py:cpu for {budget:g} minutes each "
           f"({machine.get('cpu', '?')}, commit {str(machine.get('git_commit', ''))[:10]}); fine-tuning seeds "
           f"{seeds}, the score mean [min, max]; in brackets after the mean, the difference from the recipe's mean.",
           "", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
  base = rows[0]["scores"] if rows and not rows[0]["overrides"] else {}
  for row in rows:
    pre = row["pretraining"]
    cells = [row["option"], f"{pre['steps']:,}" if pre.get("steps") else "–",
             *(report.number(pre.get(k), f) for k, f in (("gen_loss", ".3f"), ("disc_loss", ".4f"),
                                                     ("disc_precision", ".3f"), ("disc_recall", ".3f")))]
    for s in sets:
      score = row["scores"].get(s)
      if not score or score.get("mean") is None:
        cells.append("–")
        continue
      delta = ""
      if row["overrides"] and base.get(s) and base[s].get("mean") is not None:
        delta = f" ({score['mean'] - base[s]['mean']:+.3f})"
      cells.append(f"{score['mean']:.3f}{delta} [{score['min']:.3f}, {score['max']:.3f}]")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  names = args.options.split(",")
  rows, machine = [], {}
  for name in names:
    results = run_option(args, name)
    machine = results.get("machine", machine)
    rows.append(option_row(name, results, args.budget))
  sets = args.sets.split(",")
  out = Path(args.out).resolve()
  write_json(out / "options.json", {"budget": args.budget, "timing": args.timing, "sets": sets, "rows": rows,
                                    "machine": machine})
  text = markdown(rows, sets, args.budget, machine, args.seeds)
  (out / "options.md").write_text(text, encoding="utf-8")
  print("\n" + text, flush=True)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
