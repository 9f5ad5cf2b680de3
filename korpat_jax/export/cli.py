"""`korpat-jax export --workdir W [--step N] --out DIR [--part discriminator|generator|both]`."""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

from korpat_jax.export.to_hf import PARTS, export
from korpat_jax.model.heads import HEADS


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="korpat-jax export",
      description="Write a checkpoint of a run directory as a HF transformers directory (config.json, "
                  "model.safetensors, tokenizer files, README). A pretraining run exports ElectraForPreTraining "
                  "and/or ElectraForMaskedLM (--part); a fine-tuned run exports its task model "
                  f"({', '.join(spec.hf_class for spec in HEADS.values())}) "
                  "from its best checkpoint. Runs on one CPU device whatever mesh saved it.",
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
  return parser


def main(argv: Sequence[str]) -> int:
  args = _parser().parse_args(list(argv))
  logging.basicConfig(format="%(levelname)s: %(message)s")  # the exporter's warnings (no tokenizer, no labels)
  for done in export(args.workdir, args.out, step=args.step, part=args.part, overwrite=args.overwrite):
    print(f"wrote {done.directory}: {done.architecture} from step {done.step}, {done.num_tensors} tensors, "
          f"{done.num_bytes / 2**20:.1f} MiB")
  return 0
