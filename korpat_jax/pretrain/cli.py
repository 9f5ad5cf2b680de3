"""`korpat-jax pretrain --config configs/pretrain.py:VARIANT --workdir W [--config.KEY=VALUE ...]`: on the shared
trainer. The demo variant builds its tokenizer and records under W first and prints a probe of what the run learnt
when it ends."""

from __future__ import annotations

from typing import Optional, Sequence

from korpat_jax.hooks import Hooks
from korpat_jax.train_cli import run_command


def main(argv: Optional[Sequence[str]] = None) -> int:
  from korpat_jax.corpus.demo import build_demo_if_absent
  from korpat_jax.probe import print_probe
  return run_command(argv, "korpat-jax pretrain", "Pretrain (or resume pretraining) ELECTRA from a config.",
                     "Variants of configs/pretrain.py: demo, cpu, tiny, small, base, large, korpatelectra.",
                     prepare=build_demo_if_absent, hooks=Hooks().add(print_probe, every=0))
