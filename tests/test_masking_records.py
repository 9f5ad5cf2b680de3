"""The masking strategies on real records: `korpat-jax prepare` (real Mecab-ko, the MWP tokenizer) of the bundled demo
corpus, read by the input pipeline with its boundary flags. Whole morphemes and eojeols, the masked share, span
lengths, records of the schema before the flags, and a tiny pretraining run with each strategy."""

from __future__ import annotations

import functools
import json
import math
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import pretrain_config, train_losses
from korpat_jax import boundaries, input_pipeline, masking
from korpat_jax.corpus import records, verify, writer
from korpat_jax.errors import KorpatError
from korpat_jax.pretraining_input import make_input
from korpat_jax.special_tokens import SpecialIds

SEQ_LEN = 128
SPECIAL = SpecialIds()


@pytest.fixture(scope="module")
def prepared(unit_records) -> str:
  return str(unit_records / "records")


@pytest.fixture(scope="module")
def batches(prepared) -> list[dict[str, np.ndarray]]:
  it = input_pipeline.make_iterator(prepared, global_batch_size=64, seed=0, process_index=0, process_count=1,
                                    with_boundaries=True)
  return [next(it) for _ in range(12)]


@functools.lru_cache(maxsize=None)
def _strategy(name: str, mask_prob: float = 0.15):
  """The strategy's `mask`, compiled once."""
  return jax.jit(masking.make_masking({"masking": name, "mask_prob": mask_prob, "max_predictions": -1}, SPECIAL,
                                      SEQ_LEN).mask)


def _chosen(mask, batch, seed: int) -> np.ndarray:
  """[B, S] bool: the positions the compiled `mask` predicts in `batch`."""
  m = mask(jax.random.key(seed), {k: jnp.asarray(v) for k, v in batch.items()})
  chosen = np.zeros(batch["input_ids"].shape, bool)
  rows, slots = np.nonzero(np.asarray(m.weights) > 0)
  chosen[rows, np.asarray(m.positions)[rows, slots]] = True
  return chosen


def _unit_ids(batch, row: int, bits: int) -> np.ndarray:
  """Each candidate token's unit number (-1 elsewhere), from the records' flags."""
  ids, flags = batch["input_ids"][row], batch[boundaries.FIELD][row]
  candidate = (batch["attention_mask"][row] == 1) & (ids >= 5)
  unit, out = -1, np.full(len(ids), -1)
  for t in range(len(ids)):
    if candidate[t]:
      unit += bool(flags[t] & bits) or not candidate[t - 1]
      out[t] = unit
  return out


def test_the_records_carry_morpheme_and_eojeol_starts(batches):
  flags, valid = batches[0][boundaries.FIELD], batches[0]["attention_mask"] == 1
  assert set(np.unique(flags[valid]).tolist()) <= {0, boundaries.MORPHEME_START, boundaries.UNIT}
  assert (flags[~valid] == 0).all() and (flags[:, 0] == boundaries.UNIT).all()  # [CLS]
  per_morpheme = valid.sum() / (flags & boundaries.MORPHEME_START).astype(bool).sum()
  per_eojeol = valid.sum() / (flags & boundaries.EOJEOL_START).astype(bool).sum()
  assert 1.2 < per_morpheme < 2.5 and 2 < per_eojeol < 5, (per_morpheme, per_eojeol)


@pytest.mark.parametrize("name,bits", [("morpheme", boundaries.UNIT), ("eojeol", boundaries.EOJEOL_START)])
def test_masks_cover_whole_units(batches, name, bits):
  whole = longer = 0
  for seed, batch in enumerate(batches[:4]):
    chosen = _chosen(_strategy(name), batch, seed)
    for row in range(len(chosen)):
      units = _unit_ids(batch, row, bits)
      for unit in np.unique(units[chosen[row]]).tolist():
        members = units == unit
        assert chosen[row, members].all(), (name, row, np.flatnonzero(members), np.flatnonzero(chosen[row]))
        whole += 1
        longer += members.sum() > 1
      assert not chosen[row, units < 0].any()
  assert whole > 1000 and longer > 100, (whole, longer)  # many units masked, many of them of several tokens


@pytest.mark.parametrize("mask_prob", [0.15, 0.3])
def test_masked_share_is_mask_prob_for_every_strategy(batches, mask_prob):
  tokens = sum(int(b["attention_mask"].sum()) for b in batches)
  shares = {name: sum(_chosen(_strategy(name, mask_prob), b, seed).sum() for seed, b in enumerate(batches)) / tokens
            for name in masking.STRATEGIES}
  for name, share in shares.items():  # token masking rounds each row's count (and google's N caps it)
    assert abs(share - mask_prob) < 0.01 * mask_prob / 0.15, shares
    assert share >= shares["token"] - 0.005, shares


def test_span_masks_are_runs_of_spanbert_length(batches):
  runs = []
  for seed, batch in enumerate(batches):
    chosen = np.pad(_chosen(_strategy("span"), batch, seed), ((0, 0), (1, 1))).astype(int)
    edges = np.diff(chosen, axis=1)
    runs += (np.nonzero(edges == -1)[1] - np.nonzero(edges == 1)[1]).tolist()
  # Spans of mean 3.8 tokens; neighbours merge, the budget and [SEP] cut some.
  assert 3.0 < np.mean(runs) < 4.6 and max(runs) >= 10, (np.mean(runs), max(runs))


def _as_schema_2(directory: str, out) -> str:
  """A copy of prepared records as the schema before the boundaries wrote them (input_ids only)."""
  shutil.copytree(directory, out)
  manifest = json.loads((out / records.MANIFEST).read_text())
  new = records.RecordFormat(np.dtype(manifest["id_dtype"]))
  old = records.RecordFormat(np.dtype(manifest["id_dtype"]), boundaries=False)
  for split in manifest["splits"].values():
    for shard in split["shards"]:
      path = str(out / shard["file"])
      data = [old.encode(new.decode(r)[0]) for r in writer.read_records(path)]
      writer.write_records(path, data, writer.SHARD_OPTIONS)
      shard["sha256"] = writer.sha256_file(path)
  manifest["schema"] = records.SCHEMA_WITHOUT_BOUNDARIES
  (out / records.MANIFEST).write_text(json.dumps(manifest))
  return str(out)


def _config(records_dir: str, name: str, **overrides):
  return pretrain_config("tiny", **{"data.source": "records", "data.records_dir": records_dir,
                                    "model.vocab_size": -1, "train.seq_len": SEQ_LEN, "objective.masking": name,
                                    **overrides})


def test_old_records_are_refused_for_whole_unit_masking_and_read_with_token_masking(prepared, tmp_path):
  old = _as_schema_2(prepared, tmp_path / "old")
  assert not verify.verify_records(old).bad  # still a valid records directory
  for name in ("morpheme", "eojeol"):
    with pytest.raises(KorpatError) as error:
      make_input(_config(old, name), str(tmp_path), 0)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"config.objective.masking={name!r} needs the morpheme and "
                                                      "eojeol boundaries of korpat-electra-records/3 records")
    assert "re-run `korpat-jax prepare`" in message
  for name in ("token", "span"):  # span is measured in tokens: it needs no boundaries
    batch = next(make_input(_config(old, name), str(tmp_path), 0).train)
    want = next(make_input(_config(prepared, name), str(tmp_path), 0).train)
    assert boundaries.FIELD not in batch and boundaries.FIELD not in want
    for key, value in want.items():
      np.testing.assert_array_equal(batch[key], value)


@pytest.mark.parametrize("name", list(masking.STRATEGIES))
def test_a_tiny_pretraining_run_with_each_strategy(prepared, tmp_path, name):
  from korpat_jax.train import train
  train(_config(prepared, name, **{"train.num_steps": 3, "train.log_every": 1, "train.eval_every": 3,
                                   "train.eval_steps": 1}), str(tmp_path))
  losses = train_losses(tmp_path)
  assert sorted(losses) == [1, 2, 3] and all(math.isfinite(v) for v in losses.values()), losses
  with open(tmp_path / "metrics.jsonl") as f:
    evals = [r for r in map(json.loads, f) if r["split"] == "eval"]
  assert evals and math.isfinite(evals[-1]["gen_loss"]), evals
