"""Orbax's "Requested `tracked_metric`; did not provide metrics." never reaches the console or the log of a
fine-tuning run (its saves without metrics are by design: only a new best eval carries them); other absl warnings
still do."""

from __future__ import annotations

import logging

import numpy as np

from korpat_jax.checkpoint import Checkpointer

MESSAGE = "Requested `tracked_metric`; did not provide metrics."


def test_saves_without_metrics_do_not_warn(tmp_path, capfd, caplog):
  state = {"params": {"w": np.arange(4, dtype=np.float32)}, "step": np.asarray(0, np.int32)}
  ckpt = Checkpointer(str(tmp_path / "checkpoints"), interval=1, keep=1, async_save=False, best_metric="f1")
  with caplog.at_level(logging.DEBUG):
    ckpt.save(1, state, force=True)                     # between evaluations: no metrics
    ckpt.save(2, state, force=True, metrics={"f1": 0.5})  # a new best
    ckpt.save(3, state, force=True)                     # the last step, no new best
    logging.getLogger("absl").warning("another absl warning")
    ckpt.close()
  captured = capfd.readouterr()
  assert MESSAGE not in captured.err + captured.out and MESSAGE not in caplog.text
  assert "another absl warning" in caplog.text  # the filter drops that one message only
  assert sorted(ckpt.all_steps()) == [2, 3]     # the best and the latest are kept, as before
