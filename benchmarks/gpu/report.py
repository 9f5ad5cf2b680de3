"""gpu.json (every number) and gpu.md (the tables), rewritten after every change to the report, so that a run cut
short by its time limit still leaves what it measured."""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

from .grid import GIB, REPO, SEARCHES, Profile, table_order

ROW_HEADER = ["| row | batch x seq | attention | remat | vocab projection | median step (ms) | sequences/s | tokens/s "
              "| MFU | step memory (GiB) | compile (s) | loss first -> last |",
              "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
SEARCH_HEADER = ["| search | attention | predicted | largest that fits | smallest that did not | peak memory (GiB) | "
                 "XLA estimate (GiB) | step (ms) | tokens/s | MFU | probes |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
ATTENTION = {"cudnn": "cuDNN fused", "xla": "XLA", "explicit": "softmax + dropout 0.1"}


def commit() -> str:
  """The checkout's short commit, or 'unknown' (no git on the machine, or no .git in the copy)."""
  try:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          timeout=10)
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  return done.stdout.strip() or "unknown"


def _num(value: Optional[float], fmt: str, scale: float = 1.0) -> str:
  return "n/a" if value is None or not math.isfinite(value) else format(value * scale, fmt)


def _util(value: Optional[float], platform: str) -> str:
  return ("n/a (CPU)" if platform == "cpu" else "n/a") if value is None else f"{value:.1%}"


def row_line(name: str, r: dict[str, Any], platform: str) -> str:
  if r.get("status") != "ok":
    return f"| {name} | | | | | {r.get('status')} | | | | | | |"
  attention = ATTENTION[r["attention"]] + (" (XLA on CPU)" if r["attention"] == "cudnn" and platform == "cpu" else "")
  vocab = "n/a" if r["task"] != "pretrain" else (("all positions" if r["vocab_all"] else "masked") +
                                                  f" (HLO: {r.get('vocab_logits')})")
  return (f"| {name} | {r['batch']} x {r['seq']} | {attention} | {'on' if r['remat'] else 'off'} | {vocab} | "
          f"{r['median_s'] * 1e3:.1f} | {r['sequences_per_s']:,.1f} | {r['tokens_per_s']:,.0f} | "
          f"{_util(r['mfu'], platform)} | {_num(r.get('need_bytes'), '.3g', 1 / GIB)} | {r['compile_s']:.1f} | "
          f"{r['loss_first']:.4f} -> {r['loss_last']:.4f} |")


def search_line(title: str, s: dict[str, Any], platform: str) -> str:
  if s.get("status") != "ok":
    return f"| {title} | | | {s.get('status')} | | | | | | | |"
  p = s.get("best_probe") or {}
  tried = "; ".join(f"b{q['batch']}: {'fits' if q['fits'] else q.get('why', 'no')}"[:80] for q in s["probes"])
  peak = "n/a (no memory_stats)" if p.get("peak_bytes") is None else _num(p["peak_bytes"], ".3g", 1 / GIB)
  fail = s["smallest_fail"] if s["smallest_fail"] is not None else "none tried"
  return (f"| {title} | {s['template']['attention']} | {s['predicted']} | {s['largest_fit']} (from "
          f"{s.get('largest_fit_from', 'a probe')}) | {fail} | {peak if p else 'n/a'} | "
          f"{_num(p.get('need_bytes'), '.3g', 1 / GIB)} | {_num(p.get('step_s'), '.1f', 1e3)} | "
          f"{_num(p.get('tokens_per_s'), ',.0f')} | {_util(p.get('mfu'), platform) if p else 'n/a'} | {tried} |")


def render(report: dict[str, Any], prof: Profile, cpu_smoke: bool) -> str:
  """The Markdown tables of a report, complete or not: rows not (yet) measured say so. No jax here: the
  orchestrating process must never start a backend (it would take the device's memory from the worker)."""
  platform = report.get("platform", "unknown")
  smoke = " (CPU SMOKE RUN: tiny sizes, not a measurement)" if cpu_smoke else ""
  kind = report.get("device_kind", "unknown")
  lines = [f"# korpat-jax train steps on {kind}{smoke}",
           "",
           f"{time.strftime('%Y-%m-%d %H:%M')}, jax {report.get('jax')}, commit {report.get('commit', 'unknown')}; "
           f"{report.get('stage', 'done')}, wall {_num(report.get('wall_s'), '.0f')} s of a "
           f"{report.get('budget_s', 0):.0f} s budget. bf16 compute, fp32 params; medians of {prof.rounds} "
           f"interleaved rounds x {prof.steps} synchronised steps after {prof.warmup} warm-up; MFU = analytic FLOPs "
           "(korpat_jax.mfu; the vocab-all row counts its projection at every position) / step / "
           f"{_num(report.get('peak_flops'), '.0f', 1e-12)} TFLOP/s; memory = XLA's buffer assignment of the step "
           "(state + temporaries).",
           "", *ROW_HEADER]
  rows = report.get("rows", {})
  lines += [row_line(name, rows.get(name, {"status": "not run"}), platform) for name in table_order(prof)]
  lines += ["", "Largest pretraining batch that fits (fresh process per probe; peak = memory_stats()):", "",
            *SEARCH_HEADER]
  searches = report.get("searches", {})
  lines += [search_line(t, searches.get(t, {"status": "not run (yet)"}), platform) for t in SEARCHES]
  memory, files = report.get("memory") or {}, report.get("files", {})
  lines += ["", f"- best pretraining row: {report.get('best', 'none')}; its optimised HLO: "
            f"{files.get('hlo') or 'none'}, its trace: {files.get('trace') or 'none'}",
            f"- worker process memory_stats: peak {_num(memory.get('peak_bytes'), '.2f', 1 / GIB)} GiB of "
            f"{_num(memory.get('bytes_limit'), '.2f', 1 / GIB)} GiB (all rows' states live at once)"]
  lines += [f"- {note}" for note in report.get("notes", [])]
  return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
  """Whole or not at all: a kill mid-write leaves the previous version."""
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(text, encoding="utf-8")
  os.replace(tmp, path)


def publish(report: dict[str, Any], out: Path, prof: Profile, cpu_smoke: bool) -> str:
  """Writes gpu.json and gpu.md; returns the Markdown."""
  if "started" in report:
    report["wall_s"] = time.time() - report["started"]
  markdown = render(report, prof, cpu_smoke)
  _write(out / "gpu.json", json.dumps(report, indent=1))
  _write(out / "gpu.md", markdown)
  return markdown
