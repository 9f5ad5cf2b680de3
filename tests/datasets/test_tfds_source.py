"""Choosing a run's input (korpat_jax.datasets.source): the data.tfds keys' one-line errors, a dataset prepared
once and then read without its manual files, changed manual files refused, split mapping and slicing."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from helpers import finetune_config
from tfds_helpers import read_inputs, tfds_config, write

NER = "## klue-ner-v1.1_{split}_0000{i}\t<서울:LC>\n서\tB-LC\n울\tI-LC\n에\tO\n\n"


def _manual(tmp_path, name="manual"):
  for split in ("train", "dev"):
    write(tmp_path / name / f"klue-ner-v1.1_{split}.tsv", "".join(NER.format(split=split, i=i) for i in range(5)))
  return tmp_path / name


def test_without_tensorflow():
  import korpat_jax.datasets.source
  assert korpat_jax.datasets.source.inputs
  assert importlib.util.find_spec("tensorflow") is None and "tensorflow" not in sys.modules


@pytest.mark.parametrize("overrides,message", [
    ({"data.tfds": "klue_ner", "data.train": "x.tsv"},
     r"^config.data.tfds=klue_ner and config.data.train=x.tsv: give one of them"),
    ({"data.tfds_manual_dir": "somewhere"}, r"^config.data.tfds_manual_dir=somewhere: only used with config.data.tfds"),
    ({"data.tfds": "klue_nre"}, r"^config.data.tfds=klue_nre: unknown dataset 'klue_nre' \(one of klue_ner, "),
    ({"data.tfds": "klue_nli"}, r"^config.data.tfds=klue_nli: a sequence_classification dataset; this config "
                                r"\(ner_tiny\) is token_classification"),
    ({"data.tfds": "klue_ner", "data.tfds_splits": "train=train,dev=validation"},
     r"^config.data.tfds_splits='train=train,dev=validation': expected train=SPLIT,eval=SPLIT,test=SPLIT"),
    ({"data.tfds": "klue_ner", "data.tfds_splits": "eval=validation"},
     r"^config.data.tfds_splits='eval=validation': names no train split"),
    ({"data.tfds": "klue_ner", "data.tfds_manual_dir": "/nonexistent/dir"},
     r"^config.data.tfds_manual_dir=/nonexistent/dir: no such directory"),
])
def test_config_errors(overrides, message):
  from korpat_jax.datasets import source
  from korpat_jax.errors import ConfigError
  with pytest.raises(ConfigError, match=message):
    source.check_keys(finetune_config("ner_tiny", **overrides))


def test_task_validation_checks_the_keys(tmp_path):
  from korpat_jax.errors import ConfigError
  from korpat_jax.tasks import make_task
  task = make_task(finetune_config("ner_tiny", **{"data.tfds": "klue_ner", "data.eval": "e.tsv"}), str(tmp_path))
  with pytest.raises(ConfigError, match=r"config.data.tfds=klue_ner and config.data.eval=e.tsv"):
    task.validate(16)


def test_prepared_once_then_read_without_manual_files(tmp_path):
  from korpat_jax.errors import ConfigError
  data_dir = tmp_path / "tfds"
  with pytest.raises(ConfigError, match=r"config.data.tfds=klue_ner: not prepared in .*tfds; set "
                                        r"config.data.tfds_manual_dir \(Put KLUE's NER files"):
    read_inputs(tfds_config("ner_tiny", None, data_dir, **{"data.tfds": "klue_ner"}))
  manual = _manual(tmp_path)
  first = read_inputs(tfds_config("ner_tiny", manual, data_dir, **{"data.tfds": "klue_ner:1.0.0"}))
  again = read_inputs(tfds_config("ner_tiny", None, data_dir, **{"data.tfds": "klue_ner"}))
  assert [e.id for e in again["train"][1]] == [e.id for e in first["train"][1]] == [
      f"klue-ner-v1.1_train_0000{i}" for i in range(5)]
  assert again["train"][2].to_dict() == first["train"][2].to_dict()
  assert again["train"][0].fingerprint() == first["train"][0].fingerprint()
  with pytest.raises(ConfigError, match=r"config.data.tfds=klue_ner:2.0.0: version 2.0.0 is not one of 1.0.0"):
    read_inputs(tfds_config("ner_tiny", None, data_dir, **{"data.tfds": "klue_ner:2.0.0"}))


def test_changed_manual_files_are_refused(tmp_path):
  from korpat_jax.errors import ConfigError
  manual = _manual(tmp_path)
  read_inputs(tfds_config("ner_tiny", manual, tmp_path / "tfds", **{"data.tfds": "klue_ner"}))
  with open(manual / "klue-ner-v1.1_train.tsv", "a", encoding="utf-8") as f:
    f.write(NER.format(split="train", i=9))
  with pytest.raises(ConfigError, match=r"config.data.tfds_manual_dir=.*manual: its files differ from the ones "
                                        r"klue_ner in .*klue_ner/1.0.0 was prepared from"):
    read_inputs(tfds_config("ner_tiny", manual, tmp_path / "tfds", **{"data.tfds": "klue_ner"}))


def test_split_mapping_and_slices(tmp_path):
  from korpat_jax.errors import ConfigError
  manual = _manual(tmp_path)
  sliced = read_inputs(tfds_config("ner_tiny", manual, tmp_path / "tfds", **{
      "data.tfds": "klue_ner", "data.tfds_splits": "train=train[:60%],eval=train[60%:],test=validation"}))
  assert [len(sliced[s][1]) for s in ("train", "eval", "test")] == [3, 2, 5]
  assert sliced["train"][2].read == sliced["train"][2].used == 3
  assert sliced["train"][0].fingerprint() != sliced["eval"][0].fingerprint()
  with pytest.raises(ConfigError, match=r"config.data.tfds_splits: the test split 'test' is not in the prepared "
                                        r"dataset \(it has train, validation\)"):
    read_inputs(tfds_config("ner_tiny", manual, tmp_path / "tfds", **{
        "data.tfds": "klue_ner", "data.tfds_splits": "train=train,test=test"}))


def test_no_manual_file_names_what_is_expected(tmp_path):
  from korpat_jax.errors import KorpatError
  (tmp_path / "empty").mkdir()
  with pytest.raises(KorpatError, match=r"empty: no klue_ner file \(expected train: klue-ner-v\*_train.tsv; "):
    read_inputs(tfds_config("ner_tiny", tmp_path / "empty", tmp_path / "tfds", **{"data.tfds": "klue_ner"}))
