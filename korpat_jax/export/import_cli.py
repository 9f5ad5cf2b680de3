"""`korpat-jax import-hf --model DIR --out W [--generator DIR] [--tokenizer DIR]`."""

from __future__ import annotations

import argparse
from typing import Sequence

from korpat_jax.export.from_hf import import_hf
from korpat_jax.model.heads import HEADS


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="korpat-jax import-hf",
      description="Turn a HF transformers ELECTRA directory (e.g. a KoELECTRA-style checkpoint) into a run "
                  "directory with model.json and an Orbax checkpoint at step 0, to fine-tune or continue "
                  "pretraining from.")
  parser.add_argument("--model", required=True,
                      help="HF directory: ElectraForPreTraining / ElectraModel (discriminator), ElectraForMaskedLM "
                           "(generator) or a fine-tuned " + " / ".join(spec.hf_class for spec in HEADS.values()))
  parser.add_argument("--out", required=True, help="run directory to create (must hold no checkpoints yet)")
  parser.add_argument("--generator", default=None,
                      help="the matching ElectraForMaskedLM directory, to import both sides of a pretrained pair")
  parser.add_argument("--generator-hidden-fraction", type=float, default=None,
                      help="without --generator: generator hidden = this * discriminator hidden, recorded in "
                           "model.json for the generator that pretraining will initialise (default: ELECTRA's, "
                           "1/3 at hidden 768, else 1/4)")
  parser.add_argument("--tokenizer", default=None, metavar="DIR",
                      help="an extension of the model's tokenizer (`korpat-jax tokenizer extend`): the run gets its "
                           "larger vocabulary, the new embedding rows the mean of their base pieces' rows (default: "
                           "the model's own vocabulary)")
  return parser


def main(argv: Sequence[str]) -> int:
  args = _parser().parse_args(list(argv))
  done = import_hf(args.model, args.out, generator_dir=args.generator,
                   generator_hidden_fraction=args.generator_hidden_fraction, tokenizer=args.tokenizer)
  for note in done.notes:
    print(f"note: {note}")
  print(f"wrote {done.workdir}: {' + '.join(done.kinds)}, {done.num_params:,} parameters at checkpoints/0")
  return 0
