"""MWP tokenizer speed on one core vs bare Mecab-ko and the seed recipe; batch_encode on N cores; [UNK] rate.

  python benchmarks/tokenizer_speed.py [--tokenizer DIR] [--runs 5] [--workers 2]

Text: KorQuAD 1.0 dev contexts whole (abstract-length) and cut into sentences, and the held-out KLUE NER dev
sentences 4500-4999 (both from ../shared/data), plus the bundled patent-style sentences. Tokenizer: DIR, or
the 8k demo tokenizer trained on the bundled corpus (built when absent). One-core figures use process CPU time
(the machine may be shared) in interleaved rounds; batch_encode is timed on the wall clock and, for a machine
shared with other jobs, projected from the CPU time of the parent and of the workers. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from pathlib import Path

from korpat_jax.tokenizer import MWPTokenizer, demo_corpus_files, train_tokenizer
from korpat_jax.tokenizer.morphemes import make_tagger
from korpat_jax.tokenizer.sources import iter_lines

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def korquad_sentences(limit: int = 3000) -> list[str]:
  data = json.loads((DATA / "KorQuAD_v1.0_dev.json").read_text(encoding="utf-8"))
  out = []
  for article in data["data"]:
    for para in article["paragraphs"]:
      out += [s.strip() for s in re.split(r"(?<=[.?!])\s+", para["context"]) if s.strip()]
  return out[:limit]


def korquad_paragraphs(limit: int = 500) -> list[str]:
  """Whole KorQuAD contexts: abstract-length texts (several hundred characters)."""
  data = json.loads((DATA / "KorQuAD_v1.0_dev.json").read_text(encoding="utf-8"))
  return [para["context"] for article in data["data"] for para in article["paragraphs"]][:limit]


def klue_heldout() -> list[str]:
  out = []
  for line in (DATA / "klue-ner-v1.1_dev.tsv").read_text(encoding="utf-8").splitlines():
    if line.startswith("## klue-ner"):
      out.append(re.sub(r"<([^<>:]+):[A-Z]{2}>", r"\1", line.split("\t", 1)[1]).strip())
  return out[4500:]


def seed_recipe(vocab_path: str):
  """Mecab morphs (as konlpy's Mecab.morphs) + Google BERT's pure-Python WordPiece, do_lower_case=False."""
  from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
  bert = BertTokenizerLegacy(vocab_path, do_lower_case=False)
  tagger = make_tagger()

  def encode(text: str) -> list[int]:
    morphs = [line.split("\t", 1)[0] for line in tagger.parse(text).split("\n")[:-2]]
    return bert.convert_tokens_to_ids(bert.tokenize(" ".join(morphs)))
  return encode


def cpu_rates(fns: dict, texts, runs) -> dict[str, float]:
  """Median sentences per CPU second of this process for each fn, measured in interleaved rounds (a shared
  machine drifts; interleaving keeps the ratios fair). Also '<a>/<b>' medians of per-round ratios."""
  rounds: dict[str, list[float]] = {name: [] for name in fns}
  for _ in range(runs):
    for name, fn in fns.items():
      start = time.process_time()
      for text in texts:
        fn(text)
      rounds[name].append(len(texts) / (time.process_time() - start))
  out = {name: statistics.median(r) for name, r in rounds.items()}
  names = list(fns)
  for a in names:
    for b in names:
      if a != b:
        out[f"{a}/{b}"] = statistics.median(x / y for x, y in zip(rounds[a], rounds[b]))
  return out


def wall_rate(fn, texts, runs) -> float:
  rates = []
  for _ in range(runs):
    start = time.perf_counter()
    fn(texts)
    rates.append(len(texts) / (time.perf_counter() - start))
  return statistics.median(rates)


def _proc_cpu(pid: int) -> float:
  fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_cpu(tok: MWPTokenizer, texts: list[str], workers: int) -> tuple[float, float]:
  """CPU seconds per sentence of batch_encode: (this process, all workers together)."""
  pids = [p.pid for p in tok._get_pool(workers)._pool]
  before = [_proc_cpu(p) for p in pids]
  start = time.process_time()
  tok.batch_encode(texts, num_workers=workers)
  parent = time.process_time() - start
  children = sum(_proc_cpu(p) for p in pids) - sum(before)
  return parent / len(texts), children / len(texts)


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--tokenizer", default="/tmp/korpat_demo_tokenizer")
  parser.add_argument("--runs", type=int, default=5)
  parser.add_argument("--workers", type=int, default=2)
  args = parser.parse_args()
  if not (Path(args.tokenizer) / "vocab.txt").is_file():
    train_tokenizer(demo_corpus_files(), args.tokenizer, vocab_size=8000, show_progress=False)
  tok = MWPTokenizer.load(args.tokenizer)
  patent = [line for line in iter_lines([f for f in demo_corpus_files() if f.endswith("patent_style.txt")])]
  sets = {"KorQuAD dev paragraphs (abstract-length)": korquad_paragraphs(),
          "KorQuAD dev sentences": korquad_sentences(), "KLUE NER held-out": klue_heldout(),
          "patent-style (bundled)": patent * 20}
  seed = seed_recipe(str(Path(args.tokenizer) / "vocab.txt"))
  bare = make_tagger()

  print(f"tokenizer: {args.tokenizer} (vocab {tok.vocab_size}), runs: {args.runs}, median\n")
  print("| text | sentences | chars/sentence | bare Mecab-ko (sent/s) | MWPTokenizer.encode (sent/s) | "
        "encode / Mecab | seed recipe (sent/s) | encode / seed | encode + offsets (sent/s) | "
        f"batch_encode {args.workers} procs vs 1 (wall) | batch_encode CPU ms/sent: parent, workers | "
        f"batch_encode projected on {args.workers} idle cores | ids identical | [UNK] rate |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
  for name, texts in sets.items():
    for text in texts:   # warm the piece cache like a long run would
      tok.encode(text)
    ours = [tok.encode(t).ids for t in texts]
    identical = ours == [[tok.cls_id, *seed(t), tok.sep_id] for t in texts]
    rates = cpu_rates({"bare": bare.parse, "ours": lambda t: tok.encode(t).ids,
                       "offsets": lambda t: tok.encode(t).offsets, "seed": seed}, texts, args.runs)
    r_bare, r_ours, r_off, r_seed = rates["bare"], rates["ours"], rates["offsets"], rates["seed"]
    chars = sum(map(len, texts)) / len(texts)
    big = texts * max(1, 400_000 // sum(map(len, texts)))
    tok.batch_encode(big[:200], num_workers=args.workers)   # start the pool
    r_one = wall_rate(lambda ts: [tok.encode(t).ids for t in ts], big, max(1, args.runs // 2))
    r_many = wall_rate(lambda ts: tok.batch_encode(ts, num_workers=args.workers), big, max(1, args.runs // 2))
    parent_cpu, worker_cpu = batch_cpu(tok, big, args.workers)
    projected = 1 / max(parent_cpu, worker_cpu / args.workers)
    unk = sum(ids.count(tok.unk_id) for ids in ours) / max(1, sum(len(ids) - 2 for ids in ours))
    print(f"| {name} | {len(texts)} | {chars:.0f} | {r_bare:,.0f} ({r_bare * chars:,.0f} chars/s) | "
          f"{r_ours:,.0f} ({r_ours * chars:,.0f} chars/s) | {rates['ours/bare']:.0%} | {r_seed:,.0f} | "
          f"{rates['ours/seed']:.1f}x | {r_off:,.0f} | {r_many:,.0f} vs {r_one:,.0f} sent/s = {r_many / r_one:.2f}x | "
          f"{parent_cpu * 1e3:.3f}, {worker_cpu * 1e3:.3f} | {projected:,.0f} sent/s = {projected / r_ours:.2f}x "
          f"encode | {identical} | {unk:.3%} |")
  tok.close()
  alphabet_study(sets, Path(args.tokenizer).parent / "korpat_alphabet_study")


def alphabet_study(sets: dict[str, list[str]], work: Path) -> None:
  """[UNK] rate on held-out text for the trainer's default limit_alphabet (1000) vs ours."""
  print("\n| limit_alphabet | single-char tokens | " + " | ".join(f"[UNK] {name}" for name in sets) + " |")
  print("|---|---|" + "---|" * len(sets))
  for limit in (1000, 10_000):
    tok = train_tokenizer(demo_corpus_files(), str(work / str(limit)), vocab_size=8000, limit_alphabet=limit,
                          show_progress=False, log=lambda m: None)
    rates = []
    for texts in sets.values():
      ids = [i for t in texts for i in tok.encode(t, add_special_tokens=False).ids]
      rates.append(ids.count(tok.unk_id) / len(ids))
    singles = tok.config["training"]["alphabet_size"]
    print(f"| {limit} | {singles} | " + " | ".join(f"{r:.3%}" for r in rates) + " |")


if __name__ == "__main__":
  main()
