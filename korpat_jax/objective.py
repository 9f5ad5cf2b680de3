"""ELECTRA's replaced-token-detection objective as pure functions (google-research/electra semantics).

mask_tokens -> (generator) -> sample_tokens -> replace_tokens -> (discriminator) -> losses and metrics.
None of these functions touch parameters; `korpat_jax.pretraining_step` wires them to the model, and
`korpat_jax.masking` wraps the masking as the strategy `config.objective.masking` names.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from korpat_jax.special_tokens import SpecialIds  # noqa: F401 - part of this module's API


class Masked(NamedTuple):
  input_ids: jax.Array  # [B, S] ids with 85% of the chosen positions set to [MASK]
  positions: jax.Array  # [B, N] chosen positions (arbitrary where weights == 0)
  weights: jax.Array    # [B, N] float32: 1 for a real prediction, 0 for padding of the N slots
  labels: jax.Array     # [B, N] original ids at positions


def max_predictions_per_seq(seq_len: int, mask_prob: float) -> int:
  """google's N = int((mask_prob + 0.005) * seq_len): 19 at 128, 79 at 512 for mask_prob 0.15."""
  return int((mask_prob + 0.005) * seq_len)


def candidates(input_ids: jax.Array, attention_mask: jax.Array, special: SpecialIds) -> jax.Array:
  """[B, S] bool: the tokens a masking may choose (not [CLS], [SEP], [MASK] or padding)."""
  return attention_mask.astype(bool) & (input_ids != special.cls) & (input_ids != special.sep) \
      & (input_ids != special.mask) & (input_ids != special.pad)


def num_to_predict(attention_mask: jax.Array, mask_prob: float, max_predictions: int) -> jax.Array:
  """[B] int32: each sequence's budget, max(1, min(N, round(mask_prob * non_pad_tokens))) as google's."""
  num_tokens = attention_mask.astype(bool).sum(-1).astype(jnp.float32)
  return jnp.clip(jnp.round(num_tokens * mask_prob).astype(jnp.int32), 1, max_predictions)


def mask_tokens(rng: jax.Array, input_ids: jax.Array, attention_mask: jax.Array, special: SpecialIds, *,
                mask_prob: float = 0.15, max_predictions: int, mask_token_fraction: float = 0.85) -> Masked:
  """Dynamic (not whole-word) masking.

  Per sequence, max(1, min(N, round(mask_prob * non_pad_tokens))) positions are chosen uniformly without
  replacement among the candidates (not [CLS], [SEP], [MASK] or padding). Of those, `mask_token_fraction` become
  [MASK] and the rest keep their token. ELECTRA never inserts a random token.
  """
  choose_rng, replace_rng = jax.random.split(rng)
  budget = num_to_predict(attention_mask, mask_prob, max_predictions)
  # Uniform sampling without replacement = top-k of Gumbel noise over the candidates.
  noise = jax.random.gumbel(choose_rng, input_ids.shape)
  scores, positions = jax.lax.top_k(jnp.where(candidates(input_ids, attention_mask, special), noise, -jnp.inf),
                                    max_predictions)
  weights = (jnp.arange(max_predictions)[None, :] < budget[:, None]) & jnp.isfinite(scores)
  return mask_positions(replace_rng, input_ids, positions, weights, special, mask_token_fraction)


def mask_positions(rng: jax.Array, input_ids: jax.Array, positions: jax.Array, weights: jax.Array,
                   special: SpecialIds, mask_token_fraction: float = 0.85) -> Masked:
  """The Masked of chosen `positions` [B, N] (distinct per row where `weights`): each chosen token becomes [MASK]
  with probability `mask_token_fraction` and keeps its id otherwise, decided per token as ELECTRA does."""
  labels = jnp.take_along_axis(input_ids, positions, axis=1)
  use_mask_token = weights & (jax.random.uniform(rng, weights.shape) < mask_token_fraction)
  masked_ids = scatter(input_ids, positions, jnp.full_like(labels, special.mask), use_mask_token)
  return Masked(masked_ids, positions, weights.astype(jnp.float32), labels)


def scatter(ids: jax.Array, positions: jax.Array, values: jax.Array, where: jax.Array) -> jax.Array:
  """ids[b, positions[b, n]] = values[b, n] where `where[b, n]`; positions must be distinct per row."""
  rows = jnp.arange(ids.shape[0])[:, None]
  current = jnp.take_along_axis(ids, positions, axis=1)
  return ids.at[rows, positions].set(jnp.where(where, values, current), unique_indices=True)


def sample_tokens(rng: jax.Array, logits: jax.Array, temperature: float = 1.0) -> jax.Array:
  """A sample from softmax(logits / temperature) under stop_gradient: [..., V] -> [...] int32.

  Exact, in two Gumbel-max stages: the vocab is cut into ~sqrt(V) blocks, a block is drawn by its total probability
  (the logsumexp of its logits), then a token within it by its logits. P(token) = P(block) P(token | block) =
  softmax(logits)[token], as one Gumbel-max over all V would give, but it draws ~2 sqrt(V) Gumbel variates instead of
  V: at V = 35,000 the one-stage draw (two logarithms and a threefry word a logit) was ~8% of ELECTRA-Small's CPU
  step. The random numbers differ from a one-stage draw's; the distribution does not.
  """
  logits = jax.lax.stop_gradient(logits.astype(jnp.float32)) / temperature
  vocab = logits.shape[-1]
  block = _block_size(vocab)
  num_blocks = -(-vocab // block)
  if num_blocks * block != vocab:
    logits = jnp.pad(logits, [(0, 0)] * (logits.ndim - 1) + [(0, num_blocks * block - vocab)],
                     constant_values=-jnp.inf)
  blocks = logits.reshape(*logits.shape[:-1], num_blocks, block)
  block_rng, token_rng = jax.random.split(rng)
  block_scores = jax.nn.logsumexp(blocks, axis=-1)
  chosen_block = jnp.argmax(block_scores + jax.random.gumbel(block_rng, block_scores.shape), axis=-1)
  within = jnp.take_along_axis(blocks, chosen_block[..., None, None], axis=-2)[..., 0, :]
  token = jnp.argmax(within + jax.random.gumbel(token_rng, within.shape), axis=-1)
  return (chosen_block * block + token).astype(jnp.int32)


def _block_size(vocab: int) -> int:
  """A divisor of `vocab` near sqrt(vocab) when there is one (the blocks are then a free reshape, no padded copy;
  35,000 = 200 x 175), else ceil(sqrt(vocab)) with the last block padded."""
  root = math.isqrt(vocab - 1) + 1 if vocab > 1 else 1
  for d in sorted(range(max(1, root // 2), 2 * root + 1), key=lambda d: abs(d - root)):
    if vocab % d == 0:
      return d
  return root


def replace_tokens(input_ids: jax.Array, masked: Masked, sampled: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The discriminator's input and its labels.

  Every chosen position (also the ones that kept their token) takes the sample; is_fake is true where the result
  differs from the original, so a sample that equals the original is "real".
  """
  chosen = masked.weights > 0
  fake_ids = scatter(input_ids, masked.positions, sampled, chosen)
  return fake_ids, (fake_ids != input_ids)


def mlm_loss_sum(logits: jax.Array, labels: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(sum of cross-entropy over chosen positions, number of correct argmax predictions among them)."""
  logits = logits.astype(jnp.float32)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  nll = -jnp.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]
  # "Correct" = the label's logit is the largest (a tie counts as correct): a max and a compare, where XLA:CPU's
  # variadic argmax over a 35,000-wide vocab cost ~25x more.
  label_logit = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
  correct = jax.lax.stop_gradient(label_logit >= logits.max(axis=-1)).astype(jnp.float32)
  return (nll * weights).sum(), (correct * weights).sum()


def discriminator_loss_sum(logits: jax.Array, is_fake: jax.Array, attention_mask: jax.Array) -> jax.Array:
  """Sum of sigmoid cross-entropy over all non-pad tokens ([CLS]/[SEP] included)."""
  labels = is_fake.astype(jnp.float32)
  losses = jnp.logaddexp(0.0, logits) - logits * labels  # log(1 + e^x) - x*y, stable
  return (losses * attention_mask.astype(jnp.float32)).sum()


def discriminator_counts(logits: jax.Array, is_fake: jax.Array, attention_mask: jax.Array) -> dict[str, jax.Array]:
  """Confusion counts over non-pad tokens, summable across micro-batches and devices."""
  valid = attention_mask.astype(bool)
  predicted = (logits > 0) & valid
  actual = is_fake & valid
  return {
      "disc_correct": ((predicted == actual) & valid).sum().astype(jnp.float32),
      "disc_true_positive": (predicted & actual).sum().astype(jnp.float32),
      "disc_predicted_positive": predicted.sum().astype(jnp.float32),
      "disc_actual_positive": actual.sum().astype(jnp.float32),
  }


def finalize_metrics(sums: dict[str, jax.Array], disc_weight: float) -> dict[str, jax.Array]:
  """Ratios from the summed counts of a (possibly accumulated) batch."""
  masked = jnp.maximum(sums["num_masked"], 1.0)
  tokens = jnp.maximum(sums["num_tokens"], 1.0)
  gen_loss = sums["gen_loss_sum"] / masked
  disc_loss = sums["disc_loss_sum"] / tokens
  return {
      "loss": gen_loss + disc_weight * disc_loss,
      "gen_loss": gen_loss,
      "disc_loss": disc_loss,
      "gen_accuracy": sums["gen_correct"] / masked,
      "disc_accuracy": sums["disc_correct"] / tokens,
      "disc_precision": sums["disc_true_positive"] / jnp.maximum(sums["disc_predicted_positive"], 1.0),
      "disc_recall": sums["disc_true_positive"] / jnp.maximum(sums["disc_actual_positive"], 1.0),
      "replaced_fraction": sums["disc_actual_positive"] / masked,
  }
