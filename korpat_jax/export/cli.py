"""`korpat-jax export --workdir W [--step N] --out DIR [--part discriminator|generator|both] [--format hf|onnx]`."""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

from korpat_jax.errors import KorpatError
from korpat_jax.export.to_hf import PARTS, Exported, export
from korpat_jax.model.heads import HEADS

FORMATS = ("hf", "onnx")


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="korpat-jax export",
      description="Write a checkpoint of a run directory as a HF transformers directory (config.json, "
                  "model.safetensors, tokenizer files, README). A pretraining run exports ElectraForPreTraining "
                  "and/or ElectraForMaskedLM (--part); a fine-tuned run exports its task model "
                  f"({', '.join(spec.hf_class for spec in HEADS.values())}) "
                  "from its best checkpoint. Runs on one CPU device whatever mesh saved it. --format onnx adds "
                  "model.onnx for onnxruntime to each directory.",
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument("--workdir", required=True, help="run directory (model.json + checkpoints/)")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the best one of a fine-tuned run, "
                      "else the latest)")
  parser.add_argument("--out", required=True, help="output directory")
  parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (default: refuse it)")
  parser.add_argument("--part", choices=PARTS, default=None,
                      help="pretraining checkpoints: discriminator (ElectraForPreTraining, default), generator "
                           "(ElectraForMaskedLM) or both (OUT/discriminator, OUT/generator). Fine-tuned "
                           "checkpoints export their task model and take no --part.")
  parser.add_argument("--format", choices=FORMATS, default="hf",
                      help="hf: the transformers directory; onnx: the same directory plus model.onnx (dynamic "
                           "batch and sequence axes, checked under onnxruntime; needs pip install "
                           "'korpat-jax[onnx]')")
  parser.add_argument("--quantize", choices=("none", "int8"), default="none",
                      help="with --format onnx: int8 also writes model.int8.onnx (onnxruntime's dynamic int8 "
                           "quantization: faster on CPUs with VNNI, outputs approximate; checked for agreement)")
  return parser


def main(argv: Sequence[str]) -> int:
  args = _parser().parse_args(list(argv))
  logging.basicConfig(format="%(levelname)s: %(message)s")  # the exporter's warnings (no tokenizer, no labels)
  if args.quantize != "none" and args.format != "onnx":
    raise KorpatError(f"--quantize {args.quantize}: quantizes the ONNX model; add --format onnx")
  if args.format == "onnx":
    return _export_onnx(args)
  for done in export(args.workdir, args.out, step=args.step, part=args.part, overwrite=args.overwrite):
    _print_hf(done)
  return 0


def _export_onnx(args: argparse.Namespace) -> int:
  from korpat_jax.export.onnx_export import export_onnx  # imports nothing heavy; torch and onnx load on use
  for done in export_onnx(args.workdir, args.out, step=args.step, part=args.part, overwrite=args.overwrite,
                          quantize=args.quantize):
    _print_hf(done.hf)
    print(f"wrote {done.path}: outputs {', '.join(done.outputs)}, {done.num_bytes / 2**20:.1f} MiB; onnxruntime "
          f"vs PyTorch max abs diff {done.max_abs_diff:.1e}")
    if done.int8 is not None:
      print(f"wrote {done.int8.path}: {done.int8.num_bytes / 2**20:.1f} MiB, int8 weights (approximate: max abs diff "
            f"{done.int8.max_abs_diff:.1e} from model.onnx, {done.int8.agreement:.1%} of decisions agree on the "
            "check batches)")
  return 0


def _print_hf(done: Exported) -> None:
  print(f"wrote {done.directory}: {done.architecture} from step {done.step}, {done.num_tensors} tensors, "
        f"{done.num_bytes / 2**20:.1f} MiB")
