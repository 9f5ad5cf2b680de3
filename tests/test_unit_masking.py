"""korpat_jax.unit_masking: the whole-unit choice is BERT's greedy whole-word choice, spans follow SpanBERT's length
distribution and spend the budget exactly; fixed shapes under jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from korpat_jax import boundaries, objective, unit_masking
from korpat_jax.special_tokens import SpecialIds

SPECIAL = SpecialIds()
MORPHEME, EOJEOL = boundaries.UNIT, boundaries.EOJEOL_START


def _batch(seed: int, batch: int = 128, seq: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """ids, attention mask and flags of [CLS] A [SEP] B [SEP] rows (some [MASK] ids inside), morphemes of ~1.7
  tokens, eojeols of ~2 morphemes."""
  rng = np.random.default_rng(seed)
  lengths = rng.integers(seq // 4, seq + 1, size=batch)
  valid = np.arange(seq)[None] < lengths[:, None]
  ids = np.where(valid, rng.integers(5, 300, size=(batch, seq)), SPECIAL.pad)
  ids[rng.random((batch, seq)) < 0.01] = SPECIAL.mask
  ids[:, 0] = SPECIAL.cls
  ids[np.arange(batch), lengths - 1] = SPECIAL.sep
  ids[np.arange(batch), lengths // 2] = SPECIAL.sep
  morpheme = rng.random((batch, seq)) < 0.6
  flags = morpheme * boundaries.MORPHEME_START + (morpheme & (rng.random((batch, seq)) < 0.5)) * EOJEOL
  flags = np.where(ids < 5, boundaries.UNIT, flags) * valid
  return ids, valid.astype(np.int32), flags.astype(np.uint8)


def _units(candidates: np.ndarray, flags: np.ndarray, bits: int) -> list[list[int]]:
  """The units of one row: a unit starts at a candidate whose flag has `bits` or after a non-candidate."""
  units: list[list[int]] = []
  for t in np.flatnonzero(candidates).tolist():
    if flags[t] & bits or not candidates[t - 1]:
      units.append([t])
    else:
      units[-1].append(t)
  return units


def _greedy(units: list[list[int]], order: np.ndarray, budget: int, seq: int) -> np.ndarray:
  """google-research/bert's whole-word choice: units in `order`, each taken when it fits what is left."""
  chosen, left = np.zeros(seq, bool), budget
  for u in order:
    if len(units[u]) <= left:
      chosen[units[u]] = True
      left -= len(units[u])
  return chosen


@pytest.mark.parametrize("bits", [MORPHEME, EOJEOL], ids=["morpheme", "eojeol"])
@pytest.mark.parametrize("mask_prob", [0.15, 0.4])
def test_whole_units_are_berts_greedy_choice(bits, mask_prob):
  ids, valid, flags = _batch(0)
  n = objective.max_predictions_per_seq(ids.shape[1], mask_prob)
  candidates = objective.candidates(jnp.asarray(ids), jnp.asarray(valid), SPECIAL)
  starts = unit_masking.unit_starts(candidates, jnp.asarray(flags), bits)
  budget = objective.num_to_predict(jnp.asarray(valid), mask_prob, n)
  chosen = np.asarray(jax.jit(unit_masking.choose_whole_units)(jax.random.key(1), candidates, starts, budget))
  noise = np.asarray(jax.random.uniform(jax.random.key(1), ids.shape))  # the unit order choose_whole_units draws
  same = 0
  for row in range(ids.shape[0]):
    units = _units(np.asarray(candidates)[row], flags[row], bits)
    want = _greedy(units, _order(noise[row], len(units)), int(budget[row]), ids.shape[1])
    same += (chosen[row] == want).all()
    for unit in units:
      assert chosen[row, unit].all() or not chosen[row, unit].any(), (row, unit)  # never a part of a unit
    assert chosen[row].sum() <= budget[row]
  assert same >= 0.98 * ids.shape[0], same  # the 4 rounds are the greedy pass up to its 4th skip


def _order(noise: np.ndarray, count: int) -> np.ndarray:
  """The units' order: argsort of the noise over all unit slots, the empty slots (>= count) left out."""
  order = np.argsort(noise, kind="stable")
  return order[order < count]


def test_units_never_cross_special_tokens():
  ids = jnp.asarray([[SPECIAL.cls, 10, 11, SPECIAL.sep, 12, 13, SPECIAL.mask, 14, SPECIAL.sep, 0]])
  flags = jnp.asarray([[3, 3, 0, 3, 0, 0, 0, 0, 3, 0]], jnp.uint8)  # 12 claims to continue 11's unit
  valid = (ids != SPECIAL.pad).astype(jnp.int32)
  candidates = objective.candidates(ids, valid, SPECIAL)
  starts = unit_masking.unit_starts(candidates, flags, MORPHEME)
  assert np.asarray(starts)[0].tolist() == [False, True, False, False, True, False, False, True, False, False]


def test_spans_have_the_spanbert_length_distribution():
  probs = unit_masking.span_length_probs()
  assert len(probs) == 10 and probs.sum() == pytest.approx(1.0)
  assert (probs * np.arange(1, 11)).sum() == pytest.approx(3.797, abs=1e-3)  # SpanBERT's mean of 3.8
  lengths = np.asarray(unit_masking.sample_span_lengths(jax.random.key(0), (200_000,)))
  assert lengths.min() == 1 and lengths.max() == 10
  np.testing.assert_allclose(np.bincount(lengths, minlength=11)[1:] / len(lengths), probs, atol=0.004)
  assert lengths.mean() == pytest.approx(3.8, abs=0.03)


def test_spans_spend_the_budget_inside_runs_of_candidates():
  ids, valid, _ = _batch(1)
  n = objective.max_predictions_per_seq(ids.shape[1], 0.15)
  candidates = objective.candidates(jnp.asarray(ids), jnp.asarray(valid), SPECIAL)
  budget = objective.num_to_predict(jnp.asarray(valid), 0.15, n)
  positions, weights = jax.jit(unit_masking.choose_spans, static_argnums=3)(jax.random.key(2), candidates, budget, n)
  assert positions.shape == weights.shape == (ids.shape[0], n)
  positions, weights, candidates = np.asarray(positions), np.asarray(weights), np.asarray(candidates)
  runs = []
  for row in range(ids.shape[0]):
    chosen = positions[row][weights[row]]
    assert len(chosen) == budget[row] and len(set(chosen.tolist())) == len(chosen)  # exactly the budget
    assert candidates[row, chosen].all()
    mask = np.zeros(ids.shape[1] + 2, int)
    mask[chosen + 1] = 1
    edges = np.diff(mask)
    runs += (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()
  # Contiguous masked runs: spans of mean 3.8, some merged, some cut by the budget or a [SEP].
  assert 2.8 < np.mean(runs) < 4.8, np.mean(runs)


def test_first_positions_lists_the_chosen_tokens_in_order():
  chosen = jnp.asarray([[False, True, False, True, True], [False] * 5])
  positions, weights = unit_masking.first_positions(chosen, 4)
  assert np.asarray(positions)[0, :3].tolist() == [1, 3, 4]
  assert np.asarray(weights).tolist() == [[True, True, True, False], [False] * 4]
