"""Vocabulary extension for domain adaptation (`korpat-jax tokenizer extend`): tokens per sentence and [UNK] rate on
held-out patent-like text, before and after extending a tokenizer trained on general text.

  python -m benchmarks.speed.vocab_extension [--reviews 100000] [--vocab-size 16000] [--add 500,2000]
                                             [--patent-sentences 20000] [--work /tmp/vocab_extension] [--out FILE]

Base: an MWP tokenizer (system dictionary) trained on the first --reviews NSMC movie reviews
(../shared/data/nsmc_reviews.tsv.zst, read by the project's TSV reader, column `review`, as `tokenizer train
--tsv-column review` reads it). Extension corpus: --patent-sentences patent-like sentences
(benchmarks/speed/patent_sentences.py, seed 11) + the first half of the documents of the demo corpus's
patent_style.txt. Held out: 2,000 other generated sentences (seed 1011, none of them in the extension corpus; they
share its word lists, as patents of one field share terms), the other half of patent_style.txt (hand-written, not
generated) and 2,000 later NSMC reviews (general text: what the extension costs there). Tokens are counted without
[CLS]/[SEP]. Prints a Markdown table (and writes it to --out).
"""

from __future__ import annotations

import argparse
import io
import itertools
import time
from pathlib import Path
from typing import Sequence

import zstandard

from korpat_jax.corpus.readers import ReaderConfig
from korpat_jax.tokenizer import MWPTokenizer, train_tokenizer
from korpat_jax.tokenizer.extend import extend_tokenizer

from benchmarks.common import REPO, machine, write_report
from benchmarks.speed.patent_sentences import patent_sentences

NSMC = REPO / ".." / "shared" / "data" / "nsmc_reviews.tsv.zst"
PATENT_STYLE = REPO / "korpat_jax" / "demo" / "corpus" / "patent_style.txt"
HELD_OUT = 2000


def nsmc_rows(start: int, stop: int) -> list[str]:
  """Lines start..stop-1 of the NSMC TSV after its header (movie_id, rating, review)."""
  with open(NSMC, "rb") as f:
    text = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8")
    header = next(text)
    return [header] + list(itertools.islice(text, start, stop))


def write_reviews(path: Path, count: int) -> Path:
  if not path.exists():
    path.write_text("".join(nsmc_rows(0, count)), encoding="utf-8")
  return path


def held_out_reviews(start: int, count: int) -> list[str]:
  return [row.rstrip("\n").split("\t")[2] for row in nsmc_rows(start, start + count)[1:]]


def patent_style_halves() -> tuple[str, list[str]]:
  """(the first half of patent_style.txt's documents as text, the sentences of the other half)."""
  docs = [d for d in PATENT_STYLE.read_text(encoding="utf-8").split("\n\n") if d.strip()]
  half = len(docs) // 2
  return "\n\n".join(docs[:half]) + "\n", [s for d in docs[half:] for s in d.splitlines() if s.strip()]


def measure(tok: MWPTokenizer, sentences: Sequence[str]) -> tuple[float, float, int]:
  """(tokens per sentence, [UNK] share of the tokens, [UNK] count)."""
  ids = [tok.encode(s, add_special_tokens=False).ids for s in sentences]
  tokens, unknown = sum(map(len, ids)), sum(x.count(tok.unk_id) for x in ids)
  return tokens / len(sentences), unknown / tokens, unknown


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--reviews", type=int, default=100_000, help="NSMC reviews the base tokenizer is trained on")
  parser.add_argument("--vocab-size", type=int, default=16_000, help="the base tokenizer's vocabulary size")
  parser.add_argument("--add", default="500,2000", help="comma-separated numbers of tokens to add")
  parser.add_argument("--patent-sentences", type=int, default=20_000, help="generated sentences to extend on")
  parser.add_argument("--work", default="/tmp/vocab_extension", help="scratch directory (the base is kept there)")
  parser.add_argument("--out", default="", help="write the Markdown report there too (default: print only)")
  args = parser.parse_args()
  work = Path(args.work)
  work.mkdir(parents=True, exist_ok=True)

  base_dir = work / f"base_{args.reviews}_{args.vocab_size}"
  seconds: dict[str, float] = {}
  if not (base_dir / "vocab.txt").is_file():
    start = time.perf_counter()
    train_tokenizer([str(write_reviews(work / f"nsmc_{args.reviews}.tsv", args.reviews))], str(base_dir),
                    args.vocab_size, num_workers=1, show_progress=False, reader=ReaderConfig(tsv_column="review"))
    seconds["base"] = time.perf_counter() - start

  extension_text = patent_sentences(args.patent_sentences, seed=11)
  seen = set(extension_text)
  held_out = [s for s in patent_sentences(HELD_OUT, seed=1011) if s not in seen]
  own_half, style_held_out = patent_style_halves()
  corpus = work / f"patents_{args.patent_sentences}.txt"
  corpus.write_text("\n".join(extension_text) + "\n\n" + own_half, encoding="utf-8")
  reviews = held_out_reviews(args.reviews, HELD_OUT)

  tokenizers = [("base (NSMC)", MWPTokenizer.load(base_dir), "")]
  for n in (int(x) for x in args.add.split(",")):
    start = time.perf_counter()
    done = extend_tokenizer(str(base_dir), [str(corpus)], n, str(work / f"extended_{n}"), show_progress=False,
                            log=lambda m: None)
    seconds[f"+{n}"] = time.perf_counter() - start
    kinds = {k: sum(c.source == k for c in done.added) for k in ("character", "wordpiece")}
    tokenizers.append((f"+{n}", done.tokenizer, f"{kinds['character']} characters, {kinds['wordpiece']} merges"))

  base_tok = tokenizers[0][1]
  lines = [f"Vocabulary extension: base = MWP {base_tok.vocab_size:,} tokens trained on {args.reviews:,} NSMC reviews; "
           f"extended on {len(extension_text):,} generated patent-like sentences + half of patent_style.txt "
           f"({machine()}).", "",
           f"| tokenizer | vocab | added | patent-like held-out ({len(held_out):,}): tokens/sentence | [UNK] | "
           f"patent_style.txt held-out ({len(style_held_out)}): tokens/sentence | [UNK] | NSMC held-out "
           f"({len(reviews):,}): tokens/sentence | [UNK] |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
  for name, tok, added in tokenizers:
    cells = []
    for sentences in (held_out, style_held_out, reviews):
      per, share, unknown = measure(tok, sentences)
      cells += [f"{per:.1f}", f"{share:.2%} ({unknown:,})"]
    lines.append(f"| {name} | {tok.vocab_size:,} | {added or '-'} | " + " | ".join(cells) + " |")
  lines += ["", "Seconds (one process, niced, on a shared machine): " +
            ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())]
  text = "\n".join(lines) + "\n"
  if args.out:
    write_report(args.out, text)
  else:
    print(text)


if __name__ == "__main__":
  main()
