"""What a pretraining run learnt, on one sentence: the generator's top predictions at masked positions, and the
tokens the discriminator flags once the generator's guesses are put in. The demo prints it when it ends.

    python -m korpat_jax.probe WORKDIR "본 발명은 질화갈륨 기판 상에 형성된 발광다이오드에 관한 것이다."
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Sequence

import jax
import numpy as np

from korpat_jax import files, workdir as workdir_lib
from korpat_jax.special_tokens import SpecialIds

if TYPE_CHECKING:
  from korpat_jax.hooks import StepInfo

SENTENCE = "본 발명은 질화갈륨 기판 상에 형성된 발광다이오드 및 그 제조방법에 관한 것이다."


def probe(workdir: str, text: str = SENTENCE, every: int = 5, top_k: int = 3) -> list[str]:
  """Lines to print: every `every`-th token is masked (ELECTRA masks ~15%)."""
  from korpat_jax.export.to_hf import restore_params
  from korpat_jax.model import ElectraPretrainer
  from korpat_jax.tokenizer import MWPTokenizer
  cfg, tokenizer_dir, special_ids = workdir_lib.read_model_info(workdir)
  special = SpecialIds.from_mapping(special_ids)
  tok = MWPTokenizer.load(files.local_copy(tokenizer_dir, "tokenizer directory"))
  step, params = restore_params(workdir, None)
  model = ElectraPretrainer(cfg)
  enc = tok.encode(text, max_length=cfg.max_position_embeddings)
  ids = np.asarray(enc.ids, np.int32)[None, :]
  positions = np.arange(2, ids.shape[1] - 1, every, dtype=np.int32)[None, :]
  masked = ids.copy()
  masked[0, positions[0]] = special.mask
  types, mask = np.zeros_like(ids), np.ones_like(ids)
  variables = {"params": params}
  logits = model.apply(variables, masked, types, mask, positions, True, method=ElectraPretrainer.generator_logits)
  probs = np.asarray(jax.nn.softmax(logits, axis=-1))[0]
  guesses = probs.argmax(-1)
  replaced = ids.copy()
  replaced[0, positions[0]] = guesses
  flags = np.asarray(jax.nn.sigmoid(model.apply(variables, replaced, types, mask, True,
                                                method=ElectraPretrainer.discriminator_logits)))[0]
  tokens = enc.tokens
  lines = [f"probe of {workdir} (step {step}): {text}",
           "  masked: " + " ".join("[MASK]" if i in set(positions[0]) else t for i, t in enumerate(tokens))]
  for n, position in enumerate(positions[0]):
    best = np.argsort(-probs[n])[:top_k]
    shown = ", ".join(f"{tok.vocab[i]} {probs[n, i]:.2f}" for i in best)
    lines.append(f"  {tokens[position]!r:>12} -> generator: {shown}")
  flagged = [f"{tok.vocab[replaced[0, i]]} ({flags[i]:.2f})" for i in range(1, ids.shape[1] - 1) if flags[i] > 0.5]
  lines.append("  discriminator flags as replaced: " + (", ".join(flagged) if flagged else
               f"nothing (highest p = {float(flags[1:-1].max()):.2f}; it has not learnt to detect replacements yet)"))
  return lines


def print_probe(info: StepInfo) -> None:
  """The pretrain command's end of the demo: a hook (korpat_jax.hooks) for when the run ends, its final checkpoint
  written; prints on process 0."""
  if info.final and info.config.data.get("build_demo") and jax.process_index() == 0:
    print("\n".join(probe(info.workdir)))


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv:
    print(__doc__)
    return 2
  print("\n".join(probe(argv[0], *(argv[1:2] or [SENTENCE]))))
  return 0


if __name__ == "__main__":
  sys.exit(main())
