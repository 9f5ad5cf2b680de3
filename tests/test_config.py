import pytest

from helpers import REPO, finetune_config, pretrain_config
from korpat_jax import config as config_lib
from korpat_jax.errors import ConfigError
from korpat_jax.tasks.pretraining import validate as validate_pretraining

CONFIG = str(REPO / "configs" / "pretrain.py")


@pytest.mark.parametrize("variant", ["tiny", "demo", "cpu", "small", "base", "large", "korpatelectra"])
def test_every_variant_loads_and_validates(variant):
  config = config_lib.load(f"{CONFIG}:{variant}")
  if config.data.source == "records" and not config.data.records_dir:
    with pytest.raises(ConfigError, match="config.data.records_dir: required"):
      validate_pretraining(config, 16)
    config.data.records_dir = "/data/records"
  devices = config.mesh.data if config.mesh.data > 0 else 16
  validate_pretraining(config, devices)


def test_korpatelectra_is_the_seed_run():
  c = config_lib.load(f"{CONFIG}:korpatelectra")
  assert (c.model.vocab_size, c.model.hidden_size, c.model.num_layers, c.model.embedding_size) == (35000, 768, 12,
                                                                                                     768)
  assert (c.train.seq_len, c.train.batch_size, c.train.num_steps, c.mesh.data) == (512, 128, 1_000_000, 16)


def test_overrides_parse_by_the_existing_type():
  config = pretrain_config("tiny")
  rest, overrides = config_lib.split_overrides(["--workdir", "w", "--config.train.batch_size=64",
                                                "--config.optimizer.learning_rate", "3e-4",
                                                "--config.train.async_checkpoints=false",
                                                "--config.model.dtype=bfloat16",
                                                "--config.optimizer.warmup_steps=0"])
  assert rest == ["--workdir", "w"]
  config_lib.apply_overrides(config, overrides)
  assert config.train.batch_size == 64 and config.optimizer.learning_rate == 3e-4
  assert config.train.async_checkpoints is False and config.model.dtype == "bfloat16"


@pytest.mark.parametrize("override, message", [
    (("train.bach_size", "3"), "unknown key 'bach_size' in train (did you mean train.batch_size?)"),
    (("trian.batch_size", "3"), "unknown key 'trian' in config (did you mean train?)"),
    (("train.batch_size", "3.5"), "expected type int, got float"),
    (("train.async_checkpoints", "maybe"), "expected true or false"),
])
def test_bad_overrides_name_the_key(override, message):
  with pytest.raises(ConfigError, match=".*") as e:
    config_lib.apply_overrides(pretrain_config("tiny"), [override])
  assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("key, value, message", [
    ("model.dtype", "float8", "config.model.dtype='float8'"),
    ("train.seq_len", 1024, "exceeds model.max_position_embeddings"),
    ("objective.mask_prob", 1.5, "config.objective.mask_prob=1.5"),
    ("train.grad_accum_steps", 3, "train.grad_accum_steps (3)"),
    ("data.source", "web", "config.data.source='web'"),
    ("model.attention_impl", "flash", "config.model.attention_impl='flash'"),
    ("model.attention_impl", "cudnn", "needs model.dtype bfloat16 or float16"),
    ("objective.masking", "wwm", "config.objective.masking='wwm': expected one of token, morpheme, eojeol, span"),
])
def test_validate_rejects_bad_values(key, value, message):
  config = pretrain_config("tiny", **{key: value})
  with pytest.raises(ConfigError) as e:
    validate_pretraining(config, 16)
  assert message in str(e.value)


def test_unknown_variant_is_a_config_error():
  with pytest.raises(ConfigError, match="unknown variant 'demoo'"):
    config_lib.load(f"{CONFIG}:demoo")


def test_missing_config_file():
  with pytest.raises(ConfigError, match="no such config file"):
    config_lib.load("configs/nope.py:tiny")


FINETUNE = str(REPO / "configs" / "finetune.py")


FINETUNE_BASES = ("ner", "ner_conll", "cpc", "cpc_multi", "pair", "qa")


@pytest.mark.parametrize("variant", [*FINETUNE_BASES, *(b + "_cpu" for b in FINETUNE_BASES),
                                     *(b + "_tiny" for b in FINETUNE_BASES)])
def test_every_finetune_variant_loads_with_googles_recipe(variant):
  c = config_lib.load(f"{FINETUNE}:{variant}")
  base = variant.removesuffix("_cpu").removesuffix("_tiny")
  assert c.task == config_lib.load(f"{FINETUNE}:{base}").task
  assert c.task in ("token_classification", "sequence_classification", "question_answering")
  assert (c.optimizer.layerwise_lr_decay, c.optimizer.warmup_fraction, c.optimizer.weight_decay) == (0.8, 0.1, 0.01)
  if variant == base:
    assert (c.optimizer.learning_rate, c.train.batch_size, c.train.seq_len) == (1e-4, 32, 512)
  elif variant.endswith("_cpu"):  # the model of configs/pretrain.py:cpu has 128 positions
    assert (c.optimizer.learning_rate, c.train.batch_size, c.train.seq_len) == (3e-4, 32, 128)
  if base == "qa" and variant != base:  # a 128-token window leaves room for the question and overlapping windows
    assert c.head.max_query_length + 3 + c.head.doc_stride < c.train.seq_len


def test_an_unknown_finetune_variant_lists_the_known_ones():
  with pytest.raises(ConfigError, match=r"unknown variant 'ner_gpu'; expected one of \[.*'ner_cpu'.*'qa_tiny'"):
    config_lib.load(f"{FINETUNE}:ner_gpu")


def test_finetune_config_errors_name_the_key(tmp_path):
  from korpat_jax.tasks import make_task
  config = config_lib.load(f"{FINETUNE}:ner_tiny")
  with pytest.raises(ConfigError, match="config.data.train: required"):
    make_task(config, str(tmp_path)).validate(16)
  config.data.train = str(tmp_path / "missing.tsv")
  with pytest.raises(ConfigError, match="config.data.train=.*missing.tsv: no such file"):
    make_task(config, str(tmp_path)).validate(16)
  (tmp_path / "t.tsv").write_text("가\tO\n")
  config.data.train = str(tmp_path / "t.tsv")
  config.optimizer.learning_rate = float("inf")
  with pytest.raises(ConfigError, match="config.optimizer.learning_rate=inf: must be a finite number"):
    make_task(config, str(tmp_path)).validate(16)
  config.optimizer.learning_rate = 1e-4
  with pytest.raises(ConfigError, match="config.init_from: empty, so config.model"):
    make_task(config, str(tmp_path)).validate(16)
  config.init_from = str(tmp_path / "nope")
  with pytest.raises(ConfigError, match="config.init_from=.*nope: no such run directory"):
    make_task(config, str(tmp_path)).validate(16)
  with pytest.raises(ConfigError, match="unknown variant 'nerr'"):
    config_lib.load(f"{FINETUNE}:nerr")


def test_print_config_lists_every_key_with_default_and_help(capsys):
  from korpat_jax.pretrain.cli import main
  assert main(["--config", f"{CONFIG}:demo", "--print-config", "--config.train.batch_size=64"]) == 0
  out = capsys.readouterr().out.splitlines()
  assert any(line.startswith("train.batch_size = 64") and "(default 32)" in line for line in out)
  assert any(line.startswith("data.source = 'records'") and "# records (korpat-jax prepare output)" in line for line in out)
  assert len(out) == len(config_lib._flat(config_lib.load(f"{CONFIG}:demo")))


def test_finetuning_refuses_cudnn_attention_in_float32(tmp_path):
  """The model checks live with the model config, so fine-tuning gets them too (it used to fail inside JAX)."""
  from korpat_jax.tasks import make_task
  config = finetune_config("ner_tiny", **{"model.attention_impl": "cudnn"})  # model.dtype float32
  with pytest.raises(ConfigError) as e:
    make_task(config, str(tmp_path)).validate(16)
  assert str(e.value) == ("config.model.attention_impl='cudnn': needs model.dtype bfloat16 or float16, not "
                          "'float32'")
  config.model.dtype = "bfloat16"
  config.model.attention_dropout_rate = 0.1
  with pytest.raises(ConfigError, match=r"^config.model.attention_impl='cudnn': fused attention has no dropout; "
                                        r"set model.attention_dropout_rate=0 \(is 0.1\)$"):
    make_task(config, str(tmp_path)).validate(16)


def test_a_resolved_model_is_checked_where_it_is_built():
  """Fine-tuning's attention_dropout_rate -1 is the init model's: checked when the ElectraConfig is built."""
  import dataclasses
  from korpat_jax.model import ElectraConfig
  base = ElectraConfig.from_config(pretrain_config("tiny").model)
  assert base.attention_dropout_rate == 0.1
  with pytest.raises(ConfigError, match=r"^config.model.attention_impl='cudnn': fused attention has no dropout"):
    dataclasses.replace(base, dtype="bfloat16", attention_impl="cudnn")
  dataclasses.replace(base, dtype="bfloat16", attention_impl="cudnn", attention_dropout_rate=0.0)
  with pytest.raises(ConfigError, match=r"^config.model.num_heads=3: must divide model.hidden_size=32$"):
    ElectraConfig.from_config(dict(pretrain_config("tiny").model, num_heads=3))


@pytest.mark.parametrize("key, value, message", [
    ("train.grad_accum_steps", 3,
     "config.train.batch_size=16: must divide by devices (16) x train.grad_accum_steps (3)"),
    ("train.log_every", 0, "config.train.log_every=0: must be > 0"),
    ("train.on_nonfinite", "ignore", "config.train.on_nonfinite='ignore': expected stop or skip"),
    ("profile.num_steps", -1, "config.profile.num_steps=-1: must be >= 0"),
    ("model.dtype", "float8", "config.model.dtype='float8': expected float32, bfloat16 or float16"),
])
def test_the_shared_checks_are_the_same_for_every_task(tmp_path, key, value, message):
  from korpat_jax.tasks import make_task
  finetune = finetune_config("ner_tiny", **{key: value, "train.batch_size": 16})
  pretrain = pretrain_config("tiny", **{key: value, "train.batch_size": 16})
  for config in (finetune, pretrain):
    with pytest.raises(ConfigError) as e:
      make_task(config, str(tmp_path)).validate(16)
    assert str(e.value) == message
