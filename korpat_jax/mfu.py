"""Analytic training FLOPs of ELECTRA and model FLOPs utilisation (MFU), the way MaxText and Levanter count them.

Training FLOPs = 3 x forward FLOPs (backward costs two forwards) of the matmuls and attention of both networks;
rematerialisation is not counted. MFU = FLOPs per step / step time / (devices x peak bf16 dense FLOP/s).
"""

from __future__ import annotations

from typing import Optional

from korpat_jax.model.config import ElectraConfig, EncoderConfig

# bf16 dense peak FLOP/s per device, matched against jax's `device_kind` (lower-cased substring).
PEAK_FLOPS = (
    ("h200", 989e12), ("h100", 989e12), ("a100", 312e12), ("v100", 125e12),
    ("tpu v5p", 459e12), ("tpu v5 lite", 197e12), ("tpu v5e", 197e12), ("tpu v4", 275e12),
)


def peak_flops_per_device(device_kind: str) -> Optional[float]:
  """None where MFU is not defined (CPU, unknown accelerators)."""
  kind = device_kind.lower()
  return next((peak for name, peak in PEAK_FLOPS if name in kind), None)


def _encoder_forward_flops(enc: EncoderConfig, tokens: int, seq_len: int) -> float:
  h, f = enc.hidden_size, enc.intermediate_size
  per_token_matmuls = 2 * (4 * h * h + 2 * h * f)  # q, k, v, attention output; FFN in and out
  attention = 2 * 2 * seq_len * h                  # scores and weighted sum, per token
  return enc.num_layers * tokens * (per_token_matmuls + attention)


def training_flops_per_step(cfg: ElectraConfig, batch_size: int, seq_len: int, num_predictions: int) -> float:
  """Generator (with the vocab projection only at the masked positions) + discriminator, forward x 3."""
  tokens = batch_size * seq_len
  e, v = cfg.embedding_size, cfg.vocab_size
  gen, disc = cfg.generator, cfg.discriminator
  forward = _encoder_forward_flops(gen, tokens, seq_len) + _encoder_forward_flops(disc, tokens, seq_len)
  for enc in (gen, disc):
    if enc.hidden_size != e:
      forward += 2 * tokens * e * enc.hidden_size  # embeddings_project
  masked = batch_size * num_predictions
  forward += 2 * masked * (gen.hidden_size * e + e * v)  # generator head and vocab projection
  forward += 2 * tokens * (disc.hidden_size * disc.hidden_size + disc.hidden_size)  # discriminator head
  return 3.0 * forward


def finetuning_flops_per_step(cfg: ElectraConfig, batch_size: int, seq_len: int, head_outputs: int) -> float:
  """The discriminator encoder and a task head on every position (an upper bound for a [CLS] head), forward x 3."""
  tokens = batch_size * seq_len
  disc = cfg.discriminator
  forward = _encoder_forward_flops(disc, tokens, seq_len)
  if disc.hidden_size != cfg.embedding_size:
    forward += 2 * tokens * cfg.embedding_size * disc.hidden_size
  forward += 2 * tokens * disc.hidden_size * head_outputs
  return 3.0 * forward


def mfu(flops_per_step: float, step_time: float, num_devices: int, device_kind: str) -> Optional[float]:
  peak = peak_flops_per_device(device_kind)
  if peak is None or step_time <= 0:
    return None
  return flops_per_step / step_time / (num_devices * peak)
