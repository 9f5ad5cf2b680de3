"""Corpus preparation speed: documents/s and tokens/s per core, by stage and end to end.

  python -m benchmarks.speed.prepare_speed [--tokenizer DIR] [--copies 4] [--runs 3] [--workers 2] [--seq-len 512]
                                           [--text korquad|patent]

`--text patent`: instead of KorQuAD, 2,000 x copies long patent-like sentences (benchmarks/speed/patent_sentences.py,
the set of the tokenizer benchmark's issue-11 table) as JSONL.zst patents (title, abstract, claims; 8 sentences
each) plus the demo corpus.

Corpus: the KorQuAD 1.0 dev contexts (964 Wikipedia paragraphs, from ../shared/data) plus the bundled demo corpus,
written as JSONL.zst (contexts, several copies with the copy number in each sentence so that no text repeats) and
plain text (demo corpus). Tokenizer: DIR, or an 8k MWP vocab trained on the bundled demo corpus. Stage figures are
one core, process CPU time; end-to-end runs report wall time and CPU time of the process and its workers, and the
per-core rates divide by CPU time (the machine may be shared). Medians of --runs. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import zstandard

from korpat_jax.corpus.local import run_local
from korpat_jax.corpus.pipeline import EvalRule, PrepConfig, document_sentences, process_documents
from korpat_jax.corpus.examples import PackingConfig
from korpat_jax.corpus.readers import expand_corpus, read_documents
from korpat_jax.corpus.report import PrepStats
from korpat_jax.corpus.tokenizing import MWPTokenizerFactory
from korpat_jax.tokenizer import demo_corpus_files, train_tokenizer

from benchmarks.common import REPO
from benchmarks.speed.patent_sentences import patent_sentences

DATA = REPO / ".." / "shared" / "data"


def build_corpus(root: Path, copies: int, text: str = "korquad") -> list[str]:
  root.mkdir(parents=True, exist_ok=True)
  if text == "patent":
    sentences = patent_sentences(2000 * copies)
    rows = [json.dumps({"title": f"특허 {i}", "abstract": " ".join(sentences[i:i + 4]),
                        "claims": " ".join(sentences[i + 4:i + 8])}, ensure_ascii=False)
            for i in range(0, len(sentences), 8)]
    (root / "patents.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress("\n".join(rows).encode()))
  else:
    data = json.loads((DATA / "KorQuAD_v1.0_dev.json").read_text(encoding="utf-8"))
    contexts = [p["context"] for a in data["data"] for p in a["paragraphs"]]
    for k in range(copies):
      rows = [json.dumps({"title": f"문서 {k}-{i}", "text": c.replace(". ", f" {k}. ")}, ensure_ascii=False)
              for i, c in enumerate(contexts)]
      (root / f"korquad-{k}.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress("\n".join(rows).encode()))
  for f in demo_corpus_files():
    if f.endswith(".txt"):
      shutil.copy(f, root / Path(f).name)
  return expand_corpus([str(root)])


def cpu_seconds(fn) -> float:
  start = time.process_time()
  fn()
  return time.process_time() - start


def timed(fn) -> tuple[float, float]:
  """(wall seconds, CPU seconds of this process and its reaped children)."""
  def cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
  wall, start = time.perf_counter(), cpu()
  fn()
  return time.perf_counter() - wall, cpu() - start


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--tokenizer")
  parser.add_argument("--copies", type=int, default=4)
  parser.add_argument("--runs", type=int, default=3)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--seq-len", type=int, default=512)
  parser.add_argument("--text", choices=("korquad", "patent"), default="korquad")
  args = parser.parse_args()
  tmp = Path(tempfile.mkdtemp(prefix="prepare_speed_"))
  tok_dir = args.tokenizer
  if not tok_dir:
    tok_dir = str(tmp / "tok")
    train_tokenizer(demo_corpus_files(), tok_dir, vocab_size=8000, show_progress=False, log=lambda m: None)
  files = build_corpus(tmp / "corpus", args.copies, args.text)
  corpus_bytes = sum(os.path.getsize(f) for f in files)
  config = PrepConfig(packing=PackingConfig(seq_len=args.seq_len))
  tokenizer = MWPTokenizerFactory(tok_dir)()
  rule = EvalRule(config.eval_fraction, None)

  docs = [d for f in files for d in read_documents(f, config.reader, PrepStats())]
  n_docs = len(docs)
  sentences = [s for d in docs for s in document_sentences(d, config, PrepStats())]
  n_tokens = sum(len(ids) for ids in tokenizer.encode_batch(sentences))
  stages = {
      "read + decompress + parse": lambda: [d for f in files for d in read_documents(f, config.reader, PrepStats())],
      "clean + sentence split": lambda: [document_sentences(d, config, PrepStats()) for d in docs],
      "MWP tokenize": lambda: tokenizer.encode_batch(sentences),
      "all stages in one process (no write)": lambda: process_documents(docs, config, tokenizer, rule, PrepStats()),
  }
  rows = []
  for name, fn in stages.items():
    seconds = statistics.median(cpu_seconds(fn) for _ in range(args.runs))
    rows.append((name, "1", "-", seconds, n_docs / seconds, n_tokens / seconds))

  def end_to_end(name: str, cores: str, run) -> None:
    walls, cpus = zip(*(timed(lambda r=r: run(tmp / f"out-{len(rows)}-{r}")) for r in range(args.runs)))
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    rows.append((name, cores, f"{wall:.2f}", cpu, n_docs / cpu, n_tokens / cpu))

  for workers in (0, args.workers):
    end_to_end("`prepare --runner local` end to end", "1 (in-process)" if workers == 0 else f"{workers} processes",
               lambda out, w=workers: run_local(files, config, MWPTokenizerFactory(tok_dir), str(out), workers=w,
                                                quiet=True))
  try:
    from korpat_jax.corpus.beam import run_beam
    end_to_end("`prepare --runner beam` (DirectRunner) end to end", "1 (default)",
               lambda out: run_beam(files, config, MWPTokenizerFactory(tok_dir), str(out)))
  except ImportError:
    pass
  print(f"Corpus ({args.text}): {len(files)} files, {corpus_bytes / 1e6:.1f} MB on disk, {n_docs} documents, "
        f"{len(sentences)} sentences, {n_tokens} tokens; seq_len {args.seq_len}; os.cpu_count() = {os.cpu_count()}\n")
  print("| stage | processes | wall s | CPU s | documents/s per core | tokens/s per core |")
  print("|---|---|---|---|---|---|")
  for name, cores, wall, cpu, dps, tps in rows:
    print(f"| {name} | {cores} | {wall} | {cpu:.2f} | {dps:,.0f} | {tps:,.0f} |")
  shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  main()
