"""Test-wide setup: 16 fake CPU devices, set before anything imports jax."""

import os

from helpers import xla_flags  # noqa: E402 - no jax import there

os.environ["JAX_PLATFORMS"] = "cpu"
# The suite's one process runs hundreds of jobs: it gives freed memory back (glibc's default) rather than keep it
# for the next step as a `korpat-jax` run does (tests/test_host_memory.py runs both in their own processes).
os.environ.setdefault("KORPAT_JAX_MALLOC", "system")
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = xla_flags(16, os.environ.get("XLA_FLAGS", ""))

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """../shared/data beside the checkout; tests that need it skip where it is absent (a fresh clone)."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"{SHARED_DATA} is absent")
  return SHARED_DATA


@pytest.fixture(scope="session")
def demo_tok_dir(tmp_path_factory) -> pathlib.Path:
  """An MWP tokenizer (vocab 8000) trained on the bundled demo corpus, once per test session."""
  from korpat_jax.tokenizer import demo_corpus_files, train_tokenizer
  out = tmp_path_factory.mktemp("demo_tok")
  train_tokenizer(demo_corpus_files(), str(out), vocab_size=8000, show_progress=False, log=lambda m: None)
  return out


@pytest.fixture(scope="session")
def demo_tok(demo_tok_dir):
  from korpat_jax.tokenizer import MWPTokenizer
  return MWPTokenizer.load(demo_tok_dir)


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory) -> pathlib.Path:
  """The demo variant trained for 30 steps on the 16 fake devices: a real run directory with checkpoints, that the
  fine-tuning tests (tests/tasks, tests/datasets) start from; built once per session."""
  from helpers import pretrain_config
  from korpat_jax.corpus.demo import build_demo_if_absent
  from korpat_jax.train import train
  workdir = tmp_path_factory.mktemp("pretrained")
  config = pretrain_config("demo", **{"train.num_steps": 30, "train.eval_every": 0, "train.log_every": 10})
  build_demo_if_absent(config, str(workdir))
  train(config, str(workdir))
  return workdir


@pytest.fixture(scope="session")
def unit_records(tmp_path_factory) -> pathlib.Path:
  """`korpat-jax prepare` of the bundled demo corpus at seq_len 128 with a small MWP tokenizer (vocab 800, real
  Mecab-ko): records of the current schema, with morpheme and eojeol boundaries. Returns the root: records/,
  tokenizer/."""
  from korpat_jax.corpus.demo import build_demo_data
  root = tmp_path_factory.mktemp("unit_records")
  build_demo_data(str(root / "records"), str(root / "tokenizer"), vocab_size=800, seq_len=128)
  return root
