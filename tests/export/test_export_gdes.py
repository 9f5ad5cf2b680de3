"""A gdes pretraining run exports as a plain HF ELECTRA: the discriminator with the folded word table E_G + delta,
the generator with E_G alone."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hf_export_testlib as lib  # noqa: E402
from korpat_jax.export import cli as export_cli  # noqa: E402
from korpat_jax.model.embedding_sharing import EMBEDDING_DELTA_PATH, WORD_EMBEDDINGS_PATH  # noqa: E402

TOL = 1e-4  # test_export_hf's


def _get(tree, path):
  for name in path:
    tree = tree[name]
  return tree


@pytest.fixture(scope="module")
def gdes_export(tmp_path_factory):
  """A gdes run directory whose every parameter, the delta included, is moved off its init, exported as both."""
  root = tmp_path_factory.mktemp("gdes")
  cfg = dataclasses.replace(lib.tiny_config(16, 32), embedding_sharing="gdes")
  params = lib.pretrainer_params(cfg, seed=3)
  assert np.any(_get(params, EMBEDDING_DELTA_PATH) != 0)
  workdir = lib.make_workdir(str(root / "run"), cfg, params, tokenizer_dir=lib.write_vocab(str(root / "tokenizer")))
  out = str(root / "hf")
  assert export_cli.main(["--workdir", workdir, "--out", out, "--part", "both"]) == 0
  return cfg, params, out


def test_gdes_discriminator_exports_as_plain_electra_for_pretraining(gdes_export):
  cfg, params, out = gdes_export
  batch = lib.random_batch(cfg)
  flax = lib.flax_pretrainer_outputs(cfg, params, batch)
  disc = transformers.ElectraForPreTraining.from_pretrained(os.path.join(out, "discriminator")).eval()
  diff = lib.max_abs_diff(flax["discriminator_logits"], lib.torch_outputs(disc, batch).logits)
  assert diff <= TOL, diff
  np.testing.assert_allclose(disc.electra.embeddings.word_embeddings.weight.detach().numpy(),
                             _get(params, WORD_EMBEDDINGS_PATH) + _get(params, EMBEDDING_DELTA_PATH), atol=1e-7)


def test_gdes_generator_exports_with_the_shared_table_alone(gdes_export):
  cfg, params, out = gdes_export
  batch = lib.random_batch(cfg)
  flax = lib.flax_pretrainer_outputs(cfg, params, batch)
  gen = transformers.ElectraForMaskedLM.from_pretrained(os.path.join(out, "generator")).eval()
  diff = lib.max_abs_diff(flax["generator_logits"], lib.torch_outputs(gen, batch).logits)
  assert diff <= TOL, diff
  np.testing.assert_array_equal(gen.electra.embeddings.word_embeddings.weight.detach().numpy(),
                                _get(params, WORD_EMBEDDINGS_PATH))
