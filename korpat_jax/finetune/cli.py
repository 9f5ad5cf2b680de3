"""`korpat-jax finetune --config configs/finetune.py:VARIANT --workdir W --config.init_from=DIR
--config.data.train=FILE --config.data.eval=FILE [--config.data.test=FILE]`: on the shared trainer."""

from __future__ import annotations

from typing import Optional, Sequence

from korpat_jax.train_cli import run_command


def main(argv: Optional[Sequence[str]] = None) -> int:
  return run_command(
      argv, "korpat-jax finetune",
      "Fine-tune (or resume fine-tuning) a pretrained ELECTRA on NER, CPC classification, sentence pairs or QA. "
      "Writes W/eval/metrics.json and W/eval/predictions.* for the best checkpoint (and W/test/ for data.test).",
      "Variants of configs/finetune.py: ner, ner_conll, cpc, cpc_multi, pair, qa, their *_cpu recipes (a "
      "small model on a CPU) and *_tiny twins (tests).")
