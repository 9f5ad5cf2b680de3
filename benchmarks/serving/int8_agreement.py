"""What `export --format onnx --quantize int8` costs on a real task: model.int8.onnx against model.onnx on a labelled
classification eval set, through the export's own tokenizer (raw text, Mecab-ko as remote code), batch 32.

    python -m benchmarks.serving.int8_agreement --workdir W --eval EVAL.tsv --out benchmarks/results/int8.md

W: a fine-tuned sequence-classification run; EVAL: TSV with a header and `text` and `label` columns (the run's
training format, e.g. the NSMC split of benchmarks/transfer). Reports each model's accuracy, how many labels the two
give alike, the largest probability difference, and sequences/s of each session (medians of --rounds passes over
the set, interleaved), with the CPU flags.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from typing import Optional, Sequence

import numpy as np

from benchmarks.common import machine, pin_cpus, write_report
from benchmarks.serving.onnx_speed import cpu_flags, ort_session


def read_eval(path: str) -> tuple[list[str], list[str]]:
  with open(path, encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
  return [r["text"] for r in rows], [r["label"] for r in rows]


def softmax(x: np.ndarray) -> np.ndarray:
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--eval", required=True)
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--out", required=True)
  args = parser.parse_args(list(argv) if argv is not None else None)
  cpus = pin_cpus(args.threads)

  import json

  import transformers
  from korpat_jax.export.onnx_export import export_onnx
  out = tempfile.mkdtemp(prefix="int8-")
  (done,) = export_onnx(args.workdir, out, quantize="int8")
  tokenizer = transformers.AutoTokenizer.from_pretrained(out, trust_remote_code=True)
  with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
    id2label = {int(k): v for k, v in json.load(f)["id2label"].items()}
  texts, gold = read_eval(args.eval)
  batches = [dict(tokenizer(texts[i:i + args.batch], padding=True, truncation=True, return_tensors="np"))
             for i in range(0, len(texts), args.batch)]
  sessions = {"model.onnx (fp32)": ort_session(done.path, args.threads, False),
              "model.int8.onnx": ort_session(done.int8.path, args.threads, False)}
  probs, times = {}, {name: [] for name in sessions}
  for r in range(args.rounds):
    for name in (list(sessions) if r % 2 == 0 else list(sessions)[::-1]):
      start = time.perf_counter()
      logits = [sessions[name].run(None, b)[0] for b in batches]
      times[name].append(time.perf_counter() - start)
      probs[name] = softmax(np.concatenate(logits))
  fp32, int8 = (probs[name] for name in sessions)
  labels = {name: [id2label[int(i)] for i in p.argmax(-1)] for name, p in probs.items()}
  same = sum(a == b for a, b in zip(*labels.values()))
  lines = [f"# model.int8.onnx vs model.onnx on a labelled set (`benchmarks/serving/int8_agreement.py`), "
           f"{time.strftime('%Y-%m-%d %H:%M')}", "",
           f"{machine()}; CPU flags: {cpu_flags()}; pinned to cores {cpus}; onnxruntime {args.threads} threads; "
           f"run {args.workdir}; eval {args.eval} ({len(texts):,} texts, batch {args.batch}, padded per batch).", "",
           "| model | accuracy | seq/s (median of rounds) |", "|---|---:|---:|"]
  for name in sessions:
    accuracy = sum(p == g for p, g in zip(labels[name], gold)) / len(gold)
    lines.append(f"| {name} | {accuracy:.4f} | {len(texts) / statistics.median(times[name]):,.0f} |")
  lines += ["", f"Labels alike: {same:,} of {len(texts):,}; largest probability difference "
                f"{float(np.abs(fp32 - int8).max()):.2e}; export check: {done.int8.agreement:.1%} of decisions "
                f"alike on random batches, max abs logit diff {done.int8.max_abs_diff:.1e}."]
  write_report(args.out, "\n".join(lines) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
