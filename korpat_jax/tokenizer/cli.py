"""`korpat-jax tokenizer {userdic,train,encode}`."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any, Sequence

from korpat_jax.corpus.readers import DEFAULT_JSONL_FIELDS, FORMATS, ReaderConfig
from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer.noun_counts import BYTES_PER_STRING
from korpat_jax.tokenizer.nouns import ExtractOptions
from korpat_jax.tokenizer.sources import DEMO

DEFAULT_VOCAB_SIZE = 35_000   # KorPatELECTRA's vocabulary
DEFAULT_USER_CSV_COST = 1000   # below common nouns, so a user's row wins
CORPUS_HELP = (f"corpus files: globs (** allowed) or directories; plain text (blank line between documents), JSONL "
               f"or TSV, optionally .gz/.zst, read as `prepare` reads them (see the input options); '{DEMO}' = "
               f"the bundled corpus; repeatable")


class _HelpFormatter(argparse.HelpFormatter):
  """Appends '(default: X)' to every option whose default is a value (not a flag, not required, not None)."""

  def _get_help_string(self, action: argparse.Action) -> str:
    text = action.help or ""
    no_value = action.default is None or action.default is False or action.default in (argparse.SUPPRESS, [])
    if "default" in text or action.required or no_value or not action.option_strings:
      return text
    return text + " (default: %(default)s)"


def _log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def _add_input_options(p: argparse.ArgumentParser) -> None:
  g = p.add_argument_group("input (as `korpat-jax prepare`)")
  g.add_argument("--format", choices=FORMATS, default="auto",
                 help="file format; auto: by extension (.jsonl/.json/.ndjson, .tsv, else text) under .gz/.zst")
  g.add_argument("--encoding", default="utf-8", metavar="NAME", help="text encoding of the files, e.g. cp949")
  g.add_argument("--jsonl-fields", default=",".join(DEFAULT_JSONL_FIELDS), metavar="F1,F2",
                 help="JSONL fields joined into a document, in order (a field may be a list, e.g. claims)")
  g.add_argument("--tsv-column", default="text", metavar="COLUMN",
                 help="TSV text column: header name, or 0-based index (no header)")
  g.add_argument("--max-document-chars", type=int, default=ReaderConfig.max_document_chars, metavar="N",
                 help="longer documents are read in parts, cut at line boundaries")


def _reader_config(args: argparse.Namespace) -> ReaderConfig:
  fields = tuple(f.strip() for f in args.jsonl_fields.split(",") if f.strip())
  if not fields:
    raise KorpatError("--jsonl-fields: no field names")
  try:
    "".encode(args.encoding)
  except LookupError:
    raise KorpatError(f"--encoding {args.encoding}: unknown encoding") from None
  return ReaderConfig(format=args.format, encoding=args.encoding, jsonl_fields=fields, tsv_column=args.tsv_column,
                      max_document_chars=args.max_document_chars)


def _add_runner_option(p: argparse.ArgumentParser) -> None:
  p.add_argument("--runner", choices=("local", "beam"), default="local",
                 help="local: processes on this machine; beam: the analysis and counting on Apache Beam "
                      "(DirectRunner unless set after `--`, e.g. `-- --runner=DataflowRunner --project=P "
                      "--region=R --temp_location=gs://B/tmp`), exact counts, the rest on this machine")


def _add_sample_options(p: argparse.ArgumentParser) -> None:
  g = p.add_argument_group("sample (a first vocabulary or dictionary from part of a big corpus)")
  g.add_argument("--sample-lines", type=int, default=None, metavar="N",
                 help="use a uniform sample of N corpus lines (all when fewer), chosen by a seeded hash of each "
                      "line's file and position: one pass, N lines held (default: none, every line)")
  g.add_argument("--sample-fraction", type=float, default=None, metavar="F",
                 help="use each corpus line with probability F (a seeded hash of its file and position); not with "
                      "--sample-lines (default: none, every line)")
  g.add_argument("--sample-seed", type=int, default=0, metavar="S",
                 help="seed of the sample; the same seed keeps the same lines with any --workers and either runner")


def _sample(args: argparse.Namespace):   # -> sampling.Sample | None
  from korpat_jax.tokenizer.sampling import make_sample
  return make_sample(args.sample_lines, args.sample_fraction, args.sample_seed)


def build_parser() -> argparse.ArgumentParser:
  from korpat_jax.tokenizer.vocab import DEFAULT_LIMIT_ALPHABET, DEFAULT_MIN_FREQUENCY
  parser = argparse.ArgumentParser(prog="korpat-jax tokenizer",
                                   description="Build and use the MWP tokenizer (Mecab-ko + WordPiece).")
  sub = parser.add_subparsers(dest="command", required=True)
  extract = ExtractOptions()

  p = sub.add_parser("userdic", formatter_class=_HelpFormatter,
                     help="build a mecab-ko user dictionary (nouns, compound nouns) -> DIR/user.dic")
  p.add_argument("--corpus", nargs="+", action="extend", metavar="GLOB",
                 help=CORPUS_HELP + " (default: none; give --corpus and/or --csv)")
  p.add_argument("--csv", nargs="+", action="extend", default=[], metavar="FILE",
                 help="user CSV(s) in mecab-ko format to merge (their rows win); bad rows are reported and skipped "
                      "(default: none)")
  p.add_argument("--out", required=True, metavar="DIR", help="output directory: user.csv, user.dic, userdic.json")
  p.add_argument("--min-count", type=int, default=extract.min_count, metavar="N",
                 help="a candidate must be seen as a whole (followed by a particle, ending or nothing) this often")
  p.add_argument("--min-cohesion", type=float, default=extract.min_cohesion, metavar="X",
                 help="minimum cohesion: (eojeols starting with w / eojeols starting with w[0]) ** (1/(len(w)-1))")
  p.add_argument("--min-branching", type=float, default=extract.min_branching, metavar="NATS",
                 help="minimum entropy (nats) of what follows a candidate in its eojeols; 0 keeps all")
  p.add_argument("--default-cost", type=int, default=DEFAULT_USER_CSV_COST, metavar="COST",
                 help="cost for user CSV rows that leave it empty (below common nouns, so the row wins)")
  p.add_argument("--workers", type=int, default=1, metavar="N",
                 help="Mecab-ko processes for the corpus (1 = in this process); the entries are the same for any N")
  p.add_argument("--max-distinct", type=int, default=extract.max_distinct, metavar="N",
                 help=f"distinct strings (eojeols, candidates) counted exactly, about {BYTES_PER_STRING} bytes each; "
                      f"past it the rarest are forgotten and userdic.json says from which line the counts are lower "
                      f"bounds and by how much; 0 = no bound")
  p.add_argument("--verbose", action="store_true",
                 help="list every kept candidate and the most frequent ones each threshold dropped")
  _add_sample_options(p)
  _add_runner_option(p)
  _add_input_options(p)

  p = sub.add_parser("train", formatter_class=_HelpFormatter,
                     help="train the WordPiece vocabulary on Mecab-ko-segmented text")
  p.add_argument("--corpus", nargs="+", action="extend", required=True, metavar="GLOB", help=CORPUS_HELP)
  p.add_argument("--user-dic", metavar="DIR",
                 help="user dictionary directory (from `userdic`) or .dic file (default: none, the system "
                      "dictionary only)")
  p.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, metavar="N",
                 help="WordPiece vocabulary size, the 5 special tokens included (default: %(default)s, "
                      "KorPatELECTRA's); the trainer may return more to keep the whole alphabet (see --limit-alphabet)")
  p.add_argument("--out", required=True, metavar="DIR", help="output directory: vocab.txt, mwp_tokenizer.json")
  p.add_argument("--limit-alphabet", type=int, default=DEFAULT_LIMIT_ALPHABET, metavar="N",
                 help="most distinct characters kept (the trainer's own 1000 turns rare Hanja into [UNK])")
  p.add_argument("--min-frequency", type=int, default=DEFAULT_MIN_FREQUENCY, metavar="N",
                 help="minimum frequency of a pair to be merged")
  p.add_argument("--workers", type=int, default=None, metavar="N",
                 help="segmentation processes (default: the usable CPUs, at most 8; 1 = in this process)")
  p.add_argument("--hf-out", metavar="DIR", help="also write a transformers AutoTokenizer directory (default: none)")
  p.add_argument("--copy-user-dic", action="store_true", help="copy user.dic into --out (a portable directory)")
  _add_sample_options(p)
  _add_runner_option(p)
  _add_input_options(p)

  p = sub.add_parser("encode", formatter_class=_HelpFormatter, help="encode stdin lines: tokens and ids (a quick look)")
  p.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer directory (from `train`)")
  p.add_argument("--max-length", type=int, default=None, metavar="N",
                 help="truncate to N ids, special tokens included (default: no limit)")
  p.add_argument("--no-special", action="store_true", help="no [CLS]/[SEP]")
  p.add_argument("--json", action="store_true", help="one JSON object a line (text, tokens, ids, offsets)")
  _add_extend_parser(sub)
  return parser


def _beam_module():
  """korpat_jax.tokenizer.beam, imported only for --runner beam (apache-beam is an optional extra)."""
  try:
    return importlib.import_module("korpat_jax.tokenizer.beam")
  except ImportError:
    raise KorpatError("--runner beam: apache-beam is not installed (pip install 'korpat-jax[beam]')") from None


def _add_extend_parser(sub: Any) -> argparse.ArgumentParser:  # sub: parser.add_subparsers()
  """`tokenizer extend`'s options, on the `korpat-jax tokenizer` subparsers."""
  p = sub.add_parser("extend", formatter_class=_HelpFormatter,
                     help="append the N most useful new WordPiece tokens for a corpus to a tokenizer, keeping every "
                          "id (domain adaptation of a pretrained model)")
  p.add_argument("--tokenizer", required=True, metavar="BASE", help="tokenizer directory to extend (from `train`)")
  p.add_argument("--corpus", nargs="+", action="extend", required=True, metavar="GLOB", help=CORPUS_HELP)
  p.add_argument("--add", type=int, required=True, metavar="N", help="new tokens to append")
  p.add_argument("--out", required=True, metavar="DIR",
                 help="output directory: vocab.txt (BASE's + the new tokens), mwp_tokenizer.json, extension.json")
  p.add_argument("--userdic-nouns", action="store_true",
                 help="also take as candidates the nouns of BASE's user dictionary (its user.csv) that occur as "
                      "words of the corpus")
  p.add_argument("--candidate-vocab-size", type=int, default=None, metavar="N",
                 help="size of the WordPiece vocabulary trained on the corpus, whose tokens BASE lacks are the "
                      "candidates (default: BASE's size)")
  from korpat_jax.tokenizer.vocab import DEFAULT_LIMIT_ALPHABET, DEFAULT_MIN_FREQUENCY
  p.add_argument("--limit-alphabet", type=int, default=DEFAULT_LIMIT_ALPHABET, metavar="N",
                 help="most distinct characters of the corpus vocabulary (as `train`)")
  p.add_argument("--min-frequency", type=int, default=DEFAULT_MIN_FREQUENCY, metavar="N",
                 help="minimum frequency of a merge (as `train`) and minimum uses of a new token")
  p.add_argument("--workers", type=int, default=1, metavar="N", help="segmentation processes (1 = in this process)")
  _add_input_options(p)
  return p


def _extend(args: argparse.Namespace, beam_args: list[str]) -> int:
  from korpat_jax.tokenizer.extend import extend_tokenizer
  if args.candidate_vocab_size is not None and args.candidate_vocab_size <= 5:
    raise KorpatError(f"--candidate-vocab-size {args.candidate_vocab_size}: too small")
  if args.workers < 1:
    raise KorpatError(f"--workers {args.workers}: give 1 or more processes")
  extend_tokenizer(args.tokenizer, args.corpus, args.add, args.out, userdic=args.userdic_nouns,
                   candidate_vocab_size=args.candidate_vocab_size, limit_alphabet=args.limit_alphabet,
                   min_frequency=args.min_frequency, workers=args.workers, reader=_reader_config(args), log=_log)
  return 0


def _userdic(args, beam_args: list[str]) -> int:
  from korpat_jax.tokenizer.userdic import build_user_dictionary
  if not args.corpus and not args.csv:
    raise KorpatError("userdic: give --corpus GLOB and/or --csv FILE")
  if args.workers < 1:
    raise KorpatError(f"--workers {args.workers}: give 1 or more processes")
  if args.max_distinct < 0:
    raise KorpatError(f"--max-distinct {args.max_distinct}: give a count of strings, or 0 for no bound")
  sample = _sample(args)
  if sample is not None and not args.corpus:
    raise KorpatError(f"{sample.flag}: samples the corpus; give --corpus GLOB")
  counter = None
  if args.runner == "beam":
    if args.max_distinct != ExtractOptions.max_distinct:
      raise KorpatError("--max-distinct: the Beam runner counts exactly, with no bound (drop the option)")
    args.max_distinct = 0
    counter = _beam_module().BeamNounCounter(os.path.abspath(args.out), beam_args)
  options = ExtractOptions(min_count=args.min_count, min_cohesion=args.min_cohesion,
                           min_branching=args.min_branching, max_distinct=args.max_distinct)
  build_user_dictionary(args.corpus, args.out, args.csv, options, default_cost=args.default_cost, log=_log,
                        reader=_reader_config(args), verbose=args.verbose, workers=args.workers, counter=counter,
                        sample=sample)
  return 0


def _train(args, beam_args: list[str]) -> int:
  from korpat_jax.tokenizer.vocab import train_tokenizer
  sample = _sample(args)
  if args.runner == "beam":
    tok = _beam_module().train_tokenizer_beam(
        args.corpus, args.out, args.vocab_size, user_dic_dir=args.user_dic, limit_alphabet=args.limit_alphabet,
        min_frequency=args.min_frequency, beam_args=beam_args, log=_log, reader=_reader_config(args), sample=sample)
  else:
    tok = train_tokenizer(args.corpus, args.out, args.vocab_size, user_dic_dir=args.user_dic,
                          limit_alphabet=args.limit_alphabet, min_frequency=args.min_frequency,
                          num_workers=args.workers, log=_log, reader=_reader_config(args), sample=sample)
  if args.copy_user_dic and tok.user_dic:
    tok.save(args.out, copy_user_dic=True)
  if args.hf_out:
    tok.save_hf(args.hf_out)
    _log(f"wrote transformers tokenizer directory {args.hf_out} (feed it presegment(text) output)")
  return 0


def _encode(args, beam_args: list[str]) -> int:
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
  argv = list(sys.argv[1:] if argv is None else argv)
  beam_args: list[str] = []
  if "--" in argv:
    cut = argv.index("--")
    argv, beam_args = argv[:cut], argv[cut + 1:]
  args = build_parser().parse_args(argv)
  if beam_args and getattr(args, "runner", "local") != "beam":
    raise KorpatError(f"arguments after `--` ({' '.join(beam_args)}) are for --runner beam")
  return {"userdic": _userdic, "train": _train, "extend": _extend, "encode": _encode}[args.command](args, beam_args)
