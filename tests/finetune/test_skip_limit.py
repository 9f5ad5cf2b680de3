"""data.max_skipped_fraction: a split whose examples were mostly left out stops before training, in one line."""

from __future__ import annotations

import pytest

from helpers import DEMO_SETS, finetune_config
from korpat_jax.errors import KorpatError
from korpat_jax.finetune.features import check_skipped


def _ner_file(path, keep_every: int, sentences: int = 30):
  """The demo NER training sentences with the tag column dropped from all but every `keep_every`-th."""
  blocks = (DEMO_SETS / "ner_train.tsv").read_text(encoding="utf-8").strip("\n").split("\n\n")[:sentences]
  out = []
  for i, block in enumerate(blocks):
    if i % keep_every:
      block = "\n".join(line if line.startswith("##") else line.split("\t")[0] for line in block.split("\n"))
    out.append(block)
  path.write_text("\n\n".join(out) + "\n", encoding="utf-8")


def test_the_limit_names_counts_places_and_the_key():
  report = {"read": 100, "used": 40, "skipped": {"missing_tag": {"count": 50, "examples": ["a.tsv:3"]},
                                                  "bad_label": {"count": 10, "examples": ["a.tsv:9: X"]}}}
  with pytest.raises(KorpatError) as stopped:
    check_skipped(report, 0.05, "train", "a.tsv")
  message = str(stopped.value)
  assert "\n" not in message and "60 of 100 examples skipped (60%" in message
  assert "50 x missing_tag (e.g. a.tsv:3), 10 x bad_label (e.g. a.tsv:9: X)" in message
  assert message.endswith("--config.data.max_skipped_fraction=0.6")
  check_skipped(report, 0.6, "train", "a.tsv")  # accepted when the user says so
  check_skipped({"read": 100, "skipped": {"x": {"count": 5}}}, 0.05, "train", "a.tsv")  # at the limit: fine


def test_a_ner_file_missing_most_tags_stops_before_training(tmp_path, pretrained):
  from korpat_jax.tasks import make_task
  train = tmp_path / "train.tsv"
  _ner_file(train, keep_every=3)
  config = finetune_config("ner_tiny", **{"init_from": str(pretrained), "data.train": str(train), "data.eval": ""})
  task = make_task(config, str(tmp_path / "run"))
  with pytest.raises(KorpatError, match=r"train \(.*train.tsv\): 20 of 30 examples skipped .*max_skipped_fraction"):
    task.make_input(0)
  config.data.max_skipped_fraction = 0.7
  assert make_task(config, str(tmp_path / "run")).make_input(0).num_steps > 0  # the cache is kept and rechecked
