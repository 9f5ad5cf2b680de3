"""Which positions the whole-unit and span strategies of korpat_jax.masking predict: pure jittable functions with
fixed shapes (no host syncs), [B, S] in, positions and weights [B, N] out.

Both spend each sequence's budget of objective.num_to_predict tokens (round(mask_prob * non-pad tokens), at most N)
over the candidates (objective.candidates: not [CLS], [SEP], [MASK] or padding).

- Whole units (BERT's whole-word masking; Cui et al. 2019 for Chinese): the units (morphemes or eojeols, from the
  records' boundary flags) in a random order, each taken whole when it fits in what is left of the budget, else
  skipped, until nothing more fits (google-research/bert create_pretraining_data.py). No unit is ever partly masked,
  so a unit longer than the budget is never masked. That greedy pass is sequential; here it is ROUNDS prefix passes
  over the shuffled units (each a cumsum): a pass takes units up to the first one that does not fit, the next goes on
  among those that still fit. That is the greedy choice up to its ROUNDS-th skip, after which a sequence stops a
  little under its budget.
- Spans (SpanBERT, Joshi et al. 2020): span lengths in tokens from a geometric distribution (p = SPAN_P) on 1..SPAN_MAX,
  renormalised as SpanBERT's (mean 3.8); spans start at distinct random candidates and end early at a non-candidate;
  tokens are taken span by span, each left to right (a token of an earlier span counts once), until the budget is
  spent: the last span is cut there, as SpanBERT's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

ROUNDS = 4
SPAN_P, SPAN_MAX = 0.2, 10


def unit_starts(candidates: jax.Array, flags: jax.Array, bits: int) -> jax.Array:
  """[B, S] bool: candidates that start a unit: their flag has one of `bits`, or the token before is no candidate
  (a unit never spans [CLS], [SEP] or [MASK])."""
  previous = jnp.pad(candidates[:, :-1], ((0, 0), (1, 0)))
  return candidates & (((flags.astype(jnp.int32) & bits) != 0) | ~previous)


def choose_whole_units(rng: jax.Array, candidates: jax.Array, starts: jax.Array, budget: jax.Array,
                       rounds: int = ROUNDS) -> jax.Array:
  """[B, S] bool: whole units (a unit = a start and the candidates up to the next start) of at most `budget` [B]
  tokens in all, chosen greedily in a random order (module docstring)."""
  b, s = candidates.shape
  rows = jnp.arange(b)[:, None]
  unit = jnp.where(candidates, jnp.cumsum(starts, axis=1) - 1, s)  # each candidate's unit; s: none (dropped)
  length = jnp.zeros((b, s), jnp.int32).at[rows, unit].add(1, mode="drop")
  order = jnp.argsort(jax.random.uniform(rng, (b, s)), axis=1)  # a random order of the unit slots
  lengths = jnp.take_along_axis(length, order, axis=1)
  taken, left = jnp.zeros((b, s), bool), budget.astype(jnp.int32)
  for _ in range(rounds):
    fits = ~taken & (lengths > 0) & (lengths <= left[:, None])
    take = fits & (jnp.cumsum(jnp.where(fits, lengths, 0), axis=1) <= left[:, None])
    taken |= take
    left = left - jnp.where(take, lengths, 0).sum(axis=1)
  unit_taken = jnp.zeros((b, s), bool).at[rows, order].set(taken)
  return candidates & jnp.take_along_axis(unit_taken, jnp.minimum(unit, s - 1), axis=1)


def first_positions(chosen: jax.Array, max_predictions: int) -> tuple[jax.Array, jax.Array]:
  """(positions, weights) [B, N] of the chosen tokens, in order (at most N of them are chosen)."""
  order = jnp.arange(chosen.shape[1], dtype=jnp.float32)
  scores, positions = jax.lax.top_k(jnp.where(chosen, -order, -jnp.inf), max_predictions)
  return positions, jnp.isfinite(scores)


def span_length_probs() -> np.ndarray:
  """P(length = 1..SPAN_MAX): geometric with p = SPAN_P, renormalised over 1..SPAN_MAX (SpanBERT's)."""
  probs = SPAN_P * (1 - SPAN_P) ** np.arange(SPAN_MAX)
  return probs / probs.sum()


def sample_span_lengths(rng: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """int32 span lengths in 1..SPAN_MAX of `shape`, drawn from `span_length_probs`."""
  return 1 + jax.random.categorical(rng, jnp.log(jnp.asarray(span_length_probs(), jnp.float32)), shape=shape)


def choose_spans(rng: jax.Array, candidates: jax.Array, budget: jax.Array,
                 max_predictions: int) -> tuple[jax.Array, jax.Array]:
  """(positions, weights) [B, N]: the first `budget` [B] tokens covered by N random spans (module docstring). N
  spans with distinct starts cover at least min(N, candidates) >= budget tokens."""
  start_rng, length_rng = jax.random.split(rng)
  b, s = candidates.shape
  k = max_predictions
  scores, starts = jax.lax.top_k(jnp.where(candidates, jax.random.gumbel(start_rng, (b, s)), -jnp.inf), k)
  lengths = sample_span_lengths(length_rng, (b, k))
  run = jnp.cumsum(~candidates, axis=1)  # a span stays in its run of candidates
  offsets = jnp.arange(SPAN_MAX)
  at = (starts[:, :, None] + offsets).reshape(b, k * SPAN_MAX)
  inside = (jnp.isfinite(scores)[:, :, None] & (offsets < lengths[:, :, None])).reshape(b, k * SPAN_MAX)
  same_run = jnp.take_along_axis(run, jnp.minimum(at, s - 1), axis=1) == jnp.repeat(
      jnp.take_along_axis(run, starts, axis=1), SPAN_MAX, axis=1)
  span = jnp.repeat(jnp.arange(k), SPAN_MAX)[None, :]
  first = jnp.full((b, s), k, jnp.int32).at[jnp.arange(b)[:, None], jnp.where(inside & same_run, at, s)].min(
      jnp.broadcast_to(span, at.shape), mode="drop")  # the first span that covers each token
  arrival = (first * s + jnp.arange(s)).astype(jnp.float32)  # span by span, left to right
  scores, positions = jax.lax.top_k(jnp.where(first < k, -arrival, -jnp.inf), max_predictions)
  return positions, jnp.isfinite(scores) & (jnp.arange(max_predictions)[None, :] < budget[:, None])
