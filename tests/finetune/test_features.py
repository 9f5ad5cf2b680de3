"""The fine-tuning feature cache: ArrayRecord of msgpack features, fingerprints, padded batches through Grain."""

from __future__ import annotations

import numpy as np

from korpat_jax.finetune import features
from korpat_jax.finetune.report import DataReport


def _examples(n):
  for i in range(n):
    yield {"id": f"ex{i}"}, [{"input_ids": [2, 10 + i, 3], "labels": [-100, i, -100], "example": [i]}
                             for _ in range(i % 3)]  # 0, 1 or 2 features per example


def test_write_open_and_fingerprint(tmp_path):
  split = features.write_split(str(tmp_path), "train", {"file": "a"}, _examples(7), extra=lambda: {"labels": ["x"]})
  assert (split.num_examples, split.num_features) == (7, 0 + 1 + 2 + 0 + 1 + 2 + 0)
  assert [m["id"] for m in split.examples()] == [f"ex{i}" for i in range(7)]
  np.testing.assert_array_equal(split.feature(0)["input_ids"], [2, 11, 3])
  assert features.open_split(str(tmp_path), "train", {"file": "a"}).info["labels"] == ["x"]
  assert features.open_split(str(tmp_path), "train", {"file": "b"}) is None  # another input: rebuilt
  (tmp_path / "train.json").unlink()  # a killed build leaves no info file
  assert features.open_split(str(tmp_path), "train", {"file": "a"}) is None


def test_padded_batches_mark_padding_rows(tmp_path):
  split = features.write_split(str(tmp_path), "eval", {}, _examples(7))
  decoder = features.PadAndStack(split.reader, 5, {"input_ids": 0, "labels": -100}, {"example": (1, -1)})
  batches = list(features.batches(split, decoder, global_batch_size=4, seed=0, shuffle=False, num_epochs=1))
  assert len(batches) == 2  # 6 features: the last batch has 2 padding rows
  last = batches[-1]
  np.testing.assert_array_equal(last["feature_index"], [4, 5, -1, -1])
  np.testing.assert_array_equal(last["attention_mask"][2], 0)
  np.testing.assert_array_equal(batches[0]["input_ids"][0], [2, 11, 3, 0, 0])
  np.testing.assert_array_equal(batches[0]["labels"][0], [-100, 1, -100, -100, -100])
  np.testing.assert_array_equal(batches[0]["attention_mask"][0], [1, 1, 1, 0, 0])
  np.testing.assert_array_equal(np.concatenate([b["example"] for b in batches])[:6], [1, 2, 2, 4, 5, 5])


def test_data_report_counts_by_reason_with_examples():
  report = DataReport("train")
  report.read = 4
  report.used = 2
  report.skip("malformed_row", "f.tsv:3", "2 columns")
  report.skip("malformed_row", "f.tsv:9")
  report.adjust("entity_starts_inside_a_token", "f.tsv:12", "", count=3)
  d = report.to_dict()
  assert d["read"] == d["used"] + sum(r["count"] for r in d["skipped"].values())
  assert d["skipped"]["malformed_row"] == {"count": 2, "examples": ["f.tsv:3: 2 columns", "f.tsv:9"]}
  assert d["adjusted"]["entity_starts_inside_a_token"]["count"] == 3
