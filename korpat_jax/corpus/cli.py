"""`korpat-jax prepare`: corpus glob -> pre-tokenized ELECTRA examples in ArrayRecord shards + manifest.json."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Sequence

from korpat_jax import run_lock
from korpat_jax.corpus import writer
from korpat_jax.corpus.cleaning import CleanConfig
from korpat_jax.corpus.examples import PackingConfig
from korpat_jax.corpus.pipeline import PrepConfig
from korpat_jax.corpus.readers import DEFAULT_JSONL_FIELDS, FORMATS, ReaderConfig, expand_corpus
from korpat_jax.corpus.report import FILE_WARNINGS
from korpat_jax.corpus.sentences import DEFAULT_MAX_SENTENCE_CHARS
from korpat_jax.corpus.tokenizing import MWPTokenizerFactory
from korpat_jax.errors import KorpatError


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """Appends "(default: ...)" to every option that has a default its help does not already state (flags aside)."""

  def _get_help_string(self, action: argparse.Action) -> str | None:
    if action.default is None or action.nargs == 0 or "default" in (action.help or ""):
      return action.help
    return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="korpat-jax prepare", description=__doc__, formatter_class=_HelpFormatter,
      epilog="Arguments after `--` go to Apache Beam with --runner beam, e.g. "
             "`-- --runner=DataflowRunner --project=P --region=R` or `-- --direct_num_workers=8`.")
  p.add_argument("--corpus", action="append", required=True, metavar="GLOB",
                 help="input files: glob (** allowed) or directory; repeatable; .gz and .zst files are decompressed")
  p.add_argument("--tokenizer", required=True, metavar="DIR", help="MWP tokenizer directory")
  p.add_argument("--out", required=True, metavar="DIR", help="output directory (created; a rerun resumes)")
  p.add_argument("--seq-len", type=int, default=512,
                 help="ids per example, [CLS] and [SEP]s included (pretraining must use the same)")
  p.add_argument("--runner", choices=("local", "beam"), default="local",
                 help="local: process pool on this machine; beam: Apache Beam (DirectRunner unless set after --)")
  p.add_argument("--workers", type=int, default=None, help="local processes (default: all cores; 0 = in-process)")
  p.add_argument("--records-per-shard", type=int, default=10_000, help="shard size cap (Grain reads small shards fast)")
  p.add_argument("--eval-fraction", type=float, default=0.01,
                 help="share of documents (by content hash) in the eval split; 0 disables")
  p.add_argument("--seed", type=int, default=0, help="packing randomness (the eval split does not depend on it)")
  p.add_argument("--overwrite", action="store_true", help="replace records of a different run in --out")
  p.add_argument("--quiet", action="store_true", help="no progress bar or log lines; the summary is still printed")
  g = p.add_argument_group("input")
  g.add_argument("--format", choices=FORMATS, default="auto",
                 help="text: documents separated by blank lines; jsonl: one JSON object a line (--jsonl-fields); "
                      "tsv: one document a row (--tsv-column); auto: by extension (.jsonl/.json/.ndjson, .tsv, "
                      "else text; after .gz/.zst)")
  g.add_argument("--encoding", default="utf-8",
                 help="input encoding, e.g. cp949 for legacy Korean files; lines that do not decode are skipped and "
                      "counted (UTF-16/32 files are not read: convert them to UTF-8)")
  g.add_argument("--jsonl-fields", default=",".join(DEFAULT_JSONL_FIELDS),
                 help="JSONL fields joined into a document, in order (a field may be a list, e.g. claims)")
  g.add_argument("--tsv-column", default="text", help="TSV text column: header name, or 0-based index (no header)")
  g.add_argument("--max-document-chars", type=int, default=ReaderConfig.max_document_chars,
                 help="a longer document is split into parts at line boundaries; each part is packed on its own")
  g.add_argument("--max-sentence-chars", type=int, default=DEFAULT_MAX_SENTENCE_CHARS,
                 help="a longer sentence is cut at spaces into pieces")
  c = p.add_argument_group("cleaning")
  c.add_argument("--normalize", choices=("NFC", "NFKC", "none"), default="NFC",
                 help="Unicode normalization of every line (NFKC also folds full-width letters and digits)")
  keep = {"strip_markup": "<tags>", "strip_paragraph_tags": "【0001】 [0001] 【기술분야】 markers",
          "strip_claim_headers": "claim headers (청구항 1)", "strip_drawing_refs": "drawing references: 기판(110)"}
  for field, what in keep.items():
    c.add_argument(f"--keep-{field.removeprefix('strip_').replace('_', '-')}", dest=field, action="store_false",
                   help=f"keep {what} (removed by default)")
  k = p.add_argument_group("packing (google-research/electra defaults)")
  k.add_argument("--single-segment-prob", type=float, default=PackingConfig.single_segment_prob,
                 help="chance that an example is one segment, [CLS] A [SEP], rather than A and B")
  k.add_argument("--short-seq-prob", type=float, default=PackingConfig.short_seq_prob,
                 help="chance that an example aims at a random length under --seq-len")
  return p


def config_from_args(args: argparse.Namespace) -> PrepConfig:
  if args.seq_len < 8:
    raise KorpatError(f"--seq-len {args.seq_len}: must be at least 8")
  if not 0 <= args.eval_fraction < 1:
    raise KorpatError(f"--eval-fraction {args.eval_fraction}: must be in [0, 1)")
  if args.records_per_shard < 1:
    raise KorpatError(f"--records-per-shard {args.records_per_shard}: must be positive")
  fields = tuple(f.strip() for f in args.jsonl_fields.split(",") if f.strip())
  if not fields:
    raise KorpatError("--jsonl-fields: no field names")
  return PrepConfig(
      packing=PackingConfig(seq_len=args.seq_len, single_segment_prob=args.single_segment_prob,
                            short_seq_prob=args.short_seq_prob),
      reader=ReaderConfig(format=args.format, encoding=args.encoding, jsonl_fields=fields,
                          tsv_column=args.tsv_column, max_document_chars=args.max_document_chars),
      clean=CleanConfig(normalize="" if args.normalize == "none" else args.normalize,
                        **{f.name: getattr(args, f.name) for f in dataclasses.fields(CleanConfig)
                           if f.name.startswith("strip_")}),
      max_sentence_chars=args.max_sentence_chars,
      seed=args.seed,
      eval_fraction=args.eval_fraction,
      records_per_shard=args.records_per_shard,
  )


def main(argv: Sequence[str]) -> int:
  argv = list(argv)
  beam_args: list[str] = []
  if "--" in argv:
    cut = argv.index("--")
    argv, beam_args = argv[:cut], argv[cut + 1:]
  args = build_parser().parse_args(argv)
  config = config_from_args(args)
  if not os.path.isdir(args.tokenizer):
    raise KorpatError(f"--tokenizer {args.tokenizer}: not a directory")
  try:
    "".encode(args.encoding)
  except LookupError:
    raise KorpatError(f"--encoding {args.encoding}: unknown encoding") from None
  files = expand_corpus(args.corpus)
  factory = MWPTokenizerFactory(os.path.abspath(args.tokenizer))
  # One prepare per --out; a failed write (a full disk) is one line naming the file and the free space.
  with writer.write_errors(args.out), run_lock.hold(args.out, "prepare"):
    manifest = _run(args, files, config, factory, beam_args)
  _print_summary(manifest, args.out)
  return 0


def _run(args: argparse.Namespace, files: list[str], config: PrepConfig, factory: MWPTokenizerFactory,
         beam_args: list[str]) -> dict:
  if args.runner == "beam":
    try:
      from korpat_jax.corpus.beam import run_beam  # pylint: disable=import-outside-toplevel
    except ImportError:
      raise KorpatError("--runner beam: apache-beam is not installed (pip install 'korpat-jax[beam]')") from None
    manifest = run_beam(files, config, factory, args.out, beam_args=beam_args, overwrite=args.overwrite)
  else:
    if beam_args:
      raise KorpatError(f"arguments after `--` ({' '.join(beam_args)}) are for --runner beam")
    from korpat_jax.corpus.local import run_local  # pylint: disable=import-outside-toplevel
    manifest = run_local(files, config, factory, args.out, workers=args.workers, overwrite=args.overwrite,
                         quiet=args.quiet)
  return manifest


def _print_summary(manifest: dict, out_dir: str) -> None:
  """What was written (stdout), then what was skipped or changed (stderr); every figure says what it counts."""
  # A directory prepared by an older version lacks the newer counts.
  manifest = {"documents_written": manifest["documents"], "documents_read": "?", "tokens_read": "?",
              "special_tokens": "?", "documents_skipped": {}, "documents_adjusted": {}, **manifest}
  splits = manifest["splits"]
  listing = ", ".join(f"{name}: {s['examples']} examples in {len(s['shards'])} shard(s)" for name, s in splits.items())
  print(f"{out_dir}: {manifest['documents_written']} of {manifest['documents_read']} documents written -> "
        f"{listing or 'no examples'}")
  per_split = ", ".join(f"{name} {s['tokens']}" for name, s in splits.items())
  print(f"  tokens: {manifest['tokens']} ids in the records{f' ({per_split})' if per_split else ''} = "
        f"{manifest['tokens_read']} read - {manifest['tokens_truncated']} truncated + "
        f"{manifest['special_tokens']} [CLS]/[SEP]")
  config, adjusted = manifest["prep"]["config"], manifest["documents_adjusted"]
  cuts = [f"at seq-len {manifest['seq_len']}: {adjusted.get('truncated_at_seq_len', 0)} document(s) lost "
          f"{manifest['tokens_truncated']} tokens"]
  if "huge_document_split" in manifest["adjusted"]:
    cuts.append(f"{manifest['adjusted']['huge_document_split']['count']} document(s) over --max-document-chars "
                f"{config['reader']['max_document_chars']} split into {adjusted.get('huge_document_split', 0)} parts")
  if "long_sentence_cut" in manifest["adjusted"]:
    cuts.append(f"{manifest['adjusted']['long_sentence_cut']['count']} sentence(s) over --max-sentence-chars "
                f"{config['max_sentence_chars']} cut")
  print(f"  truncated {'; '.join(cuts)}")
  for kind in ("skipped", "adjusted"):
    counts = manifest[f"documents_{kind}"]
    if counts:
      print(f"  documents {kind}: " + ", ".join(f"{reason} {n}" for reason, n in counts.items()), file=sys.stderr)
  for kind in ("skipped", "adjusted"):
    for reason, entry in manifest[kind].items():
      places = entry["examples"] if reason in FILE_WARNINGS else entry["examples"][:1]
      first = f" (e.g. {places[0]})" if places and reason not in FILE_WARNINGS else ""
      print(f"  {kind} {reason}: {entry['count']}{first}", file=sys.stderr)
      if reason in FILE_WARNINGS:
        for place in places:
          print(f"    {place}", file=sys.stderr)
