"""`korpat-jax tokenizer {userdic,train,encode}`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from korpat_jax.errors import KorpatError

DEMO = "demo"


def _corpus(values: list[str] | None) -> list[str] | None:
  """Corpus globs; the word `demo` stands for the bundled demo corpus."""
  if not values:
    return None
  from korpat_jax.tokenizer.sources import demo_corpus_files, expand_corpus
  files: list[str] = []
  for value in values:
    files += demo_corpus_files() if value == DEMO else expand_corpus(value)
  return files


def _log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="korpat-jax tokenizer",
                                   description="Build and use the MWP tokenizer (Mecab-ko + WordPiece).")
  sub = parser.add_subparsers(dest="command", required=True)

  p = sub.add_parser("userdic", help="build a mecab-ko user dictionary (nouns, compound nouns) -> DIR/user.dic")
  p.add_argument("--corpus", nargs="+", metavar="GLOB", help=f"corpus text files (globs; '{DEMO}' = bundled corpus)")
  p.add_argument("--csv", nargs="+", default=[], metavar="FILE",
                 help="user CSV(s) in mecab-ko format to merge (their rows win); bad rows are reported and skipped")
  p.add_argument("--out", required=True, metavar="DIR")
  p.add_argument("--min-count", type=int, default=3, help="minimum corpus frequency of a candidate (default 3)")
  p.add_argument("--min-cohesion", type=float, default=0.05, help="minimum cohesion score (default 0.05)")
  p.add_argument("--min-branching", type=float, default=0.0,
                 help="minimum right branching entropy in nats (default 0)")
  p.add_argument("--default-cost", type=int, default=1000,
                 help="cost for user CSV rows that leave it empty (default 1000: below common nouns, so it wins)")

  p = sub.add_parser("train", help="train the WordPiece vocabulary on Mecab-ko-segmented text")
  p.add_argument("--corpus", nargs="+", required=True, metavar="GLOB",
                 help=f"corpus text files (globs; '{DEMO}' = bundled corpus)")
  p.add_argument("--user-dic", metavar="DIR", help="user dictionary directory (from `userdic`) or .dic file")
  p.add_argument("--vocab-size", type=int, default=35000)
  p.add_argument("--out", required=True, metavar="DIR")
  p.add_argument("--limit-alphabet", type=int, default=None,
                 help="most distinct characters kept (default 10000; the trainer's 1000 turns rare Hanja into [UNK])")
  p.add_argument("--min-frequency", type=int, default=None, help="minimum pair frequency (default 2)")
  p.add_argument("--workers", type=int, default=None, help="segmentation processes (default: CPUs, at most 8)")
  p.add_argument("--hf-out", metavar="DIR", help="also write a transformers AutoTokenizer directory")
  p.add_argument("--copy-user-dic", action="store_true", help="copy user.dic into --out (portable directory)")

  p = sub.add_parser("encode", help="encode stdin lines: tokens and ids (a quick look)")
  p.add_argument("--tokenizer", required=True, metavar="DIR")
  p.add_argument("--max-length", type=int, default=None)
  p.add_argument("--no-special", action="store_true", help="no [CLS]/[SEP]")
  p.add_argument("--json", action="store_true", help="one JSON object a line (tokens, ids, offsets)")
  return parser


def _userdic(args) -> int:
  from korpat_jax.tokenizer.userdic import ExtractOptions, build_user_dictionary
  corpus = _corpus(args.corpus)
  if not corpus and not args.csv:
    raise KorpatError("userdic: give --corpus GLOB and/or --csv FILE")
  options = ExtractOptions(min_count=args.min_count, min_cohesion=args.min_cohesion,
                           min_branching=args.min_branching)
  build_user_dictionary(corpus, args.out, args.csv, options, default_cost=args.default_cost, log=_log)
  return 0


def _train(args) -> int:
  from korpat_jax.tokenizer.vocab import DEFAULT_LIMIT_ALPHABET, DEFAULT_MIN_FREQUENCY, train_tokenizer
  tok = train_tokenizer(
      _corpus(args.corpus), args.out, args.vocab_size, user_dic_dir=args.user_dic,
      limit_alphabet=args.limit_alphabet if args.limit_alphabet is not None else DEFAULT_LIMIT_ALPHABET,
      min_frequency=args.min_frequency if args.min_frequency is not None else DEFAULT_MIN_FREQUENCY,
      num_workers=args.workers, log=_log)
  if args.copy_user_dic and tok.user_dic:
    tok.save(args.out, copy_user_dic=True)
  if args.hf_out:
    tok.save_hf(args.hf_out)
    _log(f"wrote transformers tokenizer directory {args.hf_out} (feed it presegment(text) output)")
  return 0


def _encode(args) -> int:
  from korpat_jax.tokenizer.mwp import MWPTokenizer
  tok = MWPTokenizer.load(args.tokenizer)
  for raw in sys.stdin.buffer:
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    enc = tok.encode(text, add_special_tokens=not args.no_special, max_length=args.max_length)
    if args.json:
      print(json.dumps({"text": text, "tokens": enc.tokens, "ids": enc.ids, "offsets": enc.offsets},
                       ensure_ascii=False))
    else:
      print(" ".join(enc.tokens))
      print(" ".join(map(str, enc.ids)))
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
  return {"userdic": _userdic, "train": _train, "encode": _encode}[args.command](args)
