"""Run directories on a non-local file system: metrics writers, model.json and run identity, eval outputs, the
checkpoint bookkeeping around Orbax, tokenizers and records, on an in-memory gs:// bucket through etils.epath.
Orbax itself cannot save there (see README, Cloud paths): its CheckpointManager imports google-cloud-storage for a
gs:// directory and TensorStore writes the arrays through its own GCS driver."""

from __future__ import annotations

import json
import struct
import types

import pytest

from cloud_fs import fake_gs, stored_files  # noqa: F401 - the fixture
from helpers import REPO, pretrain_config
from korpat_jax import checkpoint, files, train as train_lib, workdir as workdir_lib
from korpat_jax.errors import ConfigError, KorpatError
from korpat_jax.evaluation import BestEval
from korpat_jax.metrics import MetricWriter
from korpat_jax.model import ElectraConfig
from korpat_jax.tasks.base import EvalResult
from korpat_jax.train import train
from korpat_jax.train_cli import run_command

MODEL = ElectraConfig.from_config(dict(vocab_size=100, embedding_size=16, hidden_size=32, num_layers=2,
                                       num_heads=2, intermediate_size=64, generator_hidden_fraction=0.5))


def _event_scalars(data: bytes) -> list[tuple[str, int, float]]:
  """(tag, step, value) of every scalar in a TensorBoard event file (length-prefixed Event protos)."""
  from tensorboardX.proto import event_pb2
  found, offset = [], 0
  while offset < len(data):
    (length,) = struct.unpack("<Q", data[offset:offset + 8])
    event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
    offset += 12 + length + 4
    found += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
  return found


def _jsonl(path: str) -> list[dict]:
  return [json.loads(line) for line in files.read_text(path).splitlines()]


# -- metrics.jsonl and TensorBoard ------------------------------------------------------------------------------

def test_metric_writers_upload_jsonl_and_tensorboard_and_resume_truncates(fake_gs):
  run = f"{fake_gs}/run"
  writer = MetricWriter(run, sync_every_s=0)
  for step in (1, 2, 3, 4):
    writer.write(step, {"loss": 10.0 - step})
  writer.write(4, {"accuracy": 0.5}, prefix="eval")
  writer.close()
  assert [(r["split"], r["step"]) for r in _jsonl(f"{run}/metrics.jsonl")] == \
      [("train", 1), ("train", 2), ("train", 3), ("train", 4), ("eval", 4)]
  (events,) = [f for f in stored_files() if "/tensorboard/events.out.tfevents." in f]
  assert _event_scalars(files.read_bytes(events)) == [("train/loss", s, 10.0 - s) for s in (1, 2, 3, 4)] + \
      [("eval/accuracy", 4, 0.5)]

  # A run resumed from step 2 drops what was logged after it, in the bucket too (before it logs anything).
  resumed = MetricWriter(run, resume_step=2, sync_every_s=3600)
  assert [r["step"] for r in _jsonl(f"{run}/metrics.jsonl")] == [1, 2]
  resumed.write(3, {"loss": 0.5})
  assert [r["step"] for r in _jsonl(f"{run}/metrics.jsonl")] == [1, 2]  # not synced yet (interval)
  resumed.close()
  assert [(r["step"], r["loss"]) for r in _jsonl(f"{run}/metrics.jsonl")] == [(1, 9.0), (2, 8.0), (3, 0.5)]
  assert len([f for f in stored_files() if "/tensorboard/" in f]) == 2  # a new event file with purge_step


def test_a_partial_last_line_in_a_remote_metrics_jsonl_is_dropped(fake_gs, caplog):
  run = f"{fake_gs}/run"
  files.write_text(f"{run}/metrics.jsonl", '{"split": "train", "step": 1, "loss": 2.0}\n{"split": "tr')
  MetricWriter(run, resume_step=1, sync_every_s=0).close()
  assert _jsonl(f"{run}/metrics.jsonl") == [{"split": "train", "step": 1, "loss": 2.0}]
  assert f"{run}/metrics.jsonl:2: not a JSON object" in caplog.text


# -- model.json, identity, eval outputs ------------------------------------------------------------------------

def test_model_json_and_identity_on_a_bucket(fake_gs):
  run = f"{fake_gs}/run"
  workdir_lib.write_model_info(run, MODEL, f"{fake_gs}/tok", {"pad": 0, "mask": 4})
  workdir_lib.write_run_config(run, {"seed": 1})
  model, tokenizer_dir, special = workdir_lib.read_model_info(run)
  assert model == MODEL and tokenizer_dir == f"{fake_gs}/tok" and special == {"pad": 0, "mask": 4}
  bigger = ElectraConfig.from_config(dict(vocab_size=200, embedding_size=16, hidden_size=32, num_layers=2,
                                          num_heads=2, intermediate_size=64, generator_hidden_fraction=0.5))
  with pytest.raises(ConfigError, match=rf"^{run}/model.json: this run directory holds another model \(vocab_size"):
    workdir_lib.check_same_model(run, bigger)
  workdir_lib.record_identity(run, {"vocab_sha256": "a" * 64, "schedule": {"num_steps": 10}})
  workdir_lib.check_identity(run, {"vocab_sha256": "a" * 64, "schedule": {"num_steps": 10}}, False, resuming=True)
  with pytest.raises(ConfigError, match=rf"^{run}/model.json: this run was trained on .*another tokenizer"):
    workdir_lib.check_identity(run, {"vocab_sha256": "b" * 64}, False, resuming=True)
  with pytest.raises(KorpatError, match=rf"^{fake_gs}/other/model.json: missing"):
    workdir_lib.read_model_info(f"{fake_gs}/other")


def test_best_eval_writes_metrics_and_predictions_to_the_bucket(fake_gs):
  run = f"{fake_gs}/run"
  rows = [{"id": 0, "label": "H01L"}, {"id": 1, "label": "G06F"}]

  def result(f1):
    return EvalResult({"f1": f1, "per_type": {"PER": f1}},
                      write=lambda d: files.write_jsonl(files.join(d, "predictions.jsonl"), rows))

  best = BestEval(run, "f1", start_step=0)
  assert best.offer(10, result(0.5)) == {"f1": 0.5}
  best.saved(10)  # written once the checkpoint of step 10 is complete
  assert best.offer(20, result(0.4)) is None
  assert files.read_json(f"{run}/eval/metrics.json") == {"step": 10, "main": "f1", "f1": 0.5, "per_type": {"PER": 0.5}}
  assert _jsonl(f"{run}/eval/predictions.jsonl") == rows
  assert workdir_lib.best_step(run) is None  # its checkpoint is not there
  files.write_text(f"{run}/checkpoints/10/state/_METADATA", "{}")
  assert workdir_lib.best_step(run) == 10
  resumed = BestEval(run, "f1", start_step=20)
  assert (resumed.step, resumed.value) == (10, 0.5) and not resumed.has_scores("test")
  resumed.write("test", 10, result(0.45))
  assert resumed.has_scores("test") and files.read_json(f"{run}/test/metrics.json")["f1"] == 0.45


# -- checkpoint bookkeeping ------------------------------------------------------------------------------------

def _fake_step(directory: str, step: int) -> None:
  files.write_text(f"{directory}/{step}/state/_METADATA", '{"tree": 1}')
  files.write_text(f"{directory}/{step}/state/d/0", "bytes")


def test_checkpoint_listing_checksums_and_move_aside_on_a_bucket(fake_gs, monkeypatch):
  directory = f"{fake_gs}/run/checkpoints"
  assert checkpoint.Checkpointer.latest_in(directory) is None
  for step in (3, 10):
    _fake_step(directory, step)
  files.write_text(f"{directory}/12.orbax-checkpoint-tmp-99/state/_METADATA", "{}")  # not finalised
  assert checkpoint.Checkpointer.latest_in(directory) == 10
  assert checkpoint.file_checksums(f"{directory}/10") == {"state/_METADATA": "size:11", "state/d/0": "size:5"}
  assert "object store" in files.free_space(directory)

  # Orbax's manager stays out (it needs google-cloud-storage for gs://): the bookkeeping around it is the test.
  monkeypatch.setattr(checkpoint.ocp, "CheckpointManager", lambda *a, **k: types.SimpleNamespace(reload=lambda: 0))
  ckpt = checkpoint.Checkpointer(directory, interval=1, keep=2)
  assert ckpt.directory == directory
  ckpt._unhashed = [10]  # pylint: disable=protected-access
  ckpt._write_checksums()  # pylint: disable=protected-access
  assert files.read_json(f"{directory}/10/{checkpoint.CHECKSUMS}") == {"state/_METADATA": "size:11",
                                                                       "state/d/0": "size:5"}
  assert ckpt.verify(10, needs_data=False) is None
  assert ckpt.verify(10, needs_data=True) == "its 'data' item is missing (the data iterator's position)"
  files.write_text(f"{directory}/10/state/d/0", "truncated bytes")
  assert ckpt.verify(10, needs_data=False) == "state/d/0 has changed since it was saved (size mismatch)"
  assert ckpt.move_aside(10, "size mismatch") == f"{directory}/_broken/10"
  _fake_step(directory, 10)
  assert ckpt.move_aside(10, "again") == f"{directory}/_broken/10.1"
  assert checkpoint.Checkpointer.latest_in(directory) == 3
  assert files.listdir(f"{directory}/_broken") == ["10", "10.1"]


def test_local_checksums_stay_sha256(tmp_path):
  (tmp_path / "state").mkdir()
  (tmp_path / "state" / "_METADATA").write_bytes(b"abc")
  assert checkpoint.file_checksums(str(tmp_path)) == {
      "state/_METADATA": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}


def test_a_failed_first_run_leaves_no_checkpoints_directory_and_closes_its_metrics(tmp_path, monkeypatch):
  closed = []

  class Writer(MetricWriter):
    def close(self):
      closed.append(True)  # on a remote workdir closing is what uploads the last metrics
      super().close()

  monkeypatch.setattr(train_lib, "MetricWriter", Writer)
  config = pretrain_config("tiny", **{"train.num_steps": 40, "train.checkpoint_every": 100, "train.log_every": 100,
                                      "optimizer.learning_rate": 1e30, "optimizer.grad_clip_norm": 1e30})
  with pytest.raises(KorpatError, match="is not finite"):
    train(config, str(tmp_path))
  assert closed == [True]
  assert (tmp_path / "model.json").exists() and not (tmp_path / "checkpoints").exists()
  from korpat_jax.export.to_hf import restore_params
  with pytest.raises(KorpatError, match=r"checkpoints: no checkpoints directory; is .* a korpat-jax run directory"):
    restore_params(str(tmp_path), None)


# -- records and tokenizers -------------------------------------------------------------------------------------

def test_records_on_a_bucket_are_refused_in_one_line(fake_gs, tmp_path):
  from korpat_jax.pretraining_input import make_input
  config = pretrain_config("tiny", **{"data.source": "records", "data.records_dir": f"{fake_gs}/records"})
  with pytest.raises(ConfigError, match=rf"^config.data.records_dir={fake_gs}/records: ArrayRecord shards are read "
                                        "from local files only; copy them"):
    make_input(config, str(tmp_path), 0)
  demo = ["--config", f"{REPO}/configs/pretrain.py:demo", "--workdir", f"{fake_gs}/demo"]
  with pytest.raises(ConfigError, match=rf"^--workdir {fake_gs}/demo: the demo builds its records under the workdir"):
    run_command(demo, "korpat-jax pretrain", "", "")


def test_a_tokenizer_on_a_bucket_loads_from_a_local_copy(fake_gs, demo_tok_dir, tmp_path, monkeypatch):
  from korpat_jax.pretraining_input import _check_vocab
  from korpat_jax.tokenizer import MWPTokenizer
  monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "cache"))
  remote = f"{fake_gs}/tok"
  files.upload_tree(str(demo_tok_dir), remote)
  local = MWPTokenizer.load(demo_tok_dir)
  copied = MWPTokenizer.load(files.local_copy(remote, "tokenizer directory"))
  text = "본 발명은 질화갈륨 기판 상에 형성된 발광다이오드에 관한 것이다."
  assert copied.encode(text).ids == local.encode(text).ids and copied.vocab_hash == local.vocab_hash
  _check_vocab(remote, local.vocab_hash, "records")
  with pytest.raises(ConfigError, match=rf"^config.data.tokenizer_dir={remote}: its vocab.txt is not the one"):
    _check_vocab(remote, "0" * 64, "records")
