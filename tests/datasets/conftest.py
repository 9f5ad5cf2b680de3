"""TFDS builder tests: skipped with a reason where tensorflow-datasets is absent (the `pretrained` run they
fine-tune from is tests/conftest.py's)."""

import pytest


@pytest.fixture(autouse=True)
def _needs_tfds():
  pytest.importorskip("tensorflow_datasets", reason="tensorflow-datasets is not installed (pip install "
                      "tensorflow-datasets)")
