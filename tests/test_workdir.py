import dataclasses

import pytest

from korpat_jax import workdir as workdir_lib
from korpat_jax.errors import ConfigError
from korpat_jax.model import ElectraConfig

MODEL = ElectraConfig.from_config(dict(vocab_size=100, embedding_size=16, hidden_size=32, num_layers=2,
                                       num_heads=2, intermediate_size=64, generator_hidden_fraction=0.5))


def test_model_info_round_trip(tmp_path):
  workdir_lib.write_model_info(str(tmp_path), MODEL, str(tmp_path / "tok"), {"pad": 0, "mask": 4})
  model, tokenizer_dir, special = workdir_lib.read_model_info(str(tmp_path))
  assert model == MODEL and tokenizer_dir == str(tmp_path / "tok") and special["mask"] == 4


def test_a_run_directory_refuses_another_model_in_one_line(tmp_path):
  workdir_lib.write_model_info(str(tmp_path), MODEL, None, {})
  workdir_lib.check_same_model(str(tmp_path), dataclasses.replace(MODEL, dtype="bfloat16", remat=True))
  bigger = ElectraConfig.from_config(dict(vocab_size=100, embedding_size=16, hidden_size=64, num_layers=2,
                                          num_heads=2, intermediate_size=64, generator_hidden_fraction=0.5))
  with pytest.raises(ConfigError) as e:
    workdir_lib.check_same_model(str(tmp_path), bigger)
  assert "model.json: this run directory holds another model (discriminator:" in str(e.value)
  assert "\n" not in str(e.value)


def test_missing_model_info_names_the_file(tmp_path):
  with pytest.raises(Exception, match="model.json: missing"):
    workdir_lib.read_model_info(str(tmp_path))
