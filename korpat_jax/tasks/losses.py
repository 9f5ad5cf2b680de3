"""The supervised loss of the fine-tuning heads, as a pure function: one softmax cross-entropy over the last axis,
summed over the positions a mask keeps (tokens, examples, QA start/end positions)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_cross_entropy(logits: jax.Array, labels: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(summed negative log-likelihood, number of correct argmax predictions) over the positions where `valid`.

  `logits` [..., C], `labels` and `valid` [...]; a label outside the mask may be anything (e.g. -100 or -1): it is
  read as class 0 and then masked out, so the result is a plain sum the caller divides by its own denominator
  (the whole batch's, before any micro-batch split)."""
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  nll = -jnp.take_along_axis(log_probs, jnp.maximum(labels, 0)[..., None], axis=-1)[..., 0]
  correct = (jnp.argmax(logits, -1) == labels) & valid
  return (nll * valid).sum(), correct.sum().astype(jnp.float32)
