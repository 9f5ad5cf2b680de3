"""benchmarks/parity/torch_electra_step.py --quick: both pretraining steps (korpat-jax and the PyTorch peer) run and
the ratio is printed, so the CPU comparison of issue 11 cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import REPO


def test_quick_comparison_prints_a_ratio():
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([sys.executable, "-m", "benchmarks.parity.torch_electra_step", "--quick"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert re.search(r"korpat-jax / PyTorch .* \*\*\d+\.\d+x\*\*", result.stdout), result.stdout[-2000:]


def test_peer_optimizer_slows_only_the_shared_word_table():
  """korpat's optimizer.word_embedding_lr_scale on the peer: the tied word table (generator input and output,
  discriminator input: one tensor) in a group of its own at the scaled learning rate; the rest unchanged."""
  import pytest
  pytest.importorskip("torch")
  pytest.importorskip("transformers")
  from benchmarks.parity.torch_electra_step import build_torch_electra, make_torch_optimizer
  from korpat_jax.model import ElectraConfig
  cfg = ElectraConfig.from_config(dict(vocab_size=50, embedding_size=8, hidden_size=16, num_layers=1, num_heads=2,
                                       intermediate_size=32, max_position_embeddings=16, generator_hidden_fraction=0.5,
                                       generator_layers_fraction=1.0))
  generator, discriminator = build_torch_electra(cfg)
  opt = dict(learning_rate=1e-3, weight_decay=0.01, b1=0.9, b2=0.999, eps=1e-6, warmup_steps=1)
  word = discriminator.electra.embeddings.word_embeddings.weight
  assert generator.generator_lm_head.weight is word
  plain, _, params, _ = make_torch_optimizer((generator, discriminator), opt, 10)
  slow, _, slow_params, _ = make_torch_optimizer((generator, discriminator), {**opt, "word_embedding_lr_scale": 0.1},
                                                 10)
  assert len(plain.param_groups) == 2 and len(slow.param_groups) == 3
  table = slow.param_groups[2]
  assert len(table["params"]) == 1 and table["params"][0] is word
  assert table["initial_lr"] == pytest.approx(1e-4) and table["weight_decay"] == 0.01
  others = [p for g in slow.param_groups[:2] for p in g["params"]]
  assert not any(p is word for p in others) and len(others) + 1 == len(slow_params) == len(params)
