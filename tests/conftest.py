"""Test-wide setup: 16 fake CPU devices, set before anything imports jax."""

import os

os.environ["JAX_PLATFORMS"] = "cpu"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=16").strip()

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
