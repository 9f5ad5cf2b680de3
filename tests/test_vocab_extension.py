"""A model grows onto an extended vocabulary (`korpat-jax tokenizer extend`): korpat_jax.vocab_extension, used by
init_from (korpat_jax.restore), fine-tuning's model sizes (korpat_jax.init_run) and `korpat-jax import-hf --tokenizer`.

The grown model gives the original's outputs on old-vocabulary input (discriminator logits; generator logits over
the old columns), its new rows are the mean of their pieces' rows, a delta table's new rows are zero, and a size
mismatch that no extension.json explains is refused in one line. End to end: continued pretraining from a general
run on records of the extended tokenizer, its export (the extended vocab.txt), and import-hf of the general model
with the extended tokenizer."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import finetune_config, pretrain_config, run_params
from korpat_jax import cli, init_run, workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.errors import ConfigError
from korpat_jax.model.config import ElectraConfig
from korpat_jax.model.electra import ElectraPretrainer
from korpat_jax.vocab_extension import EXTENSION_JSON, grow_params, grow_rows, read_extension, vocab_key

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `benchmarks` is a package at the repository root
  sys.path.insert(0, str(REPO))
from benchmarks.speed.patent_sentences import patent_sentences  # noqa: E402

WORDS = "['embeddings']['word_embeddings']['embedding']"
BIAS = "['generator_lm_head']['bias']"
DELTA = "['discriminator_embeddings_delta']['word_embeddings']['embedding']"
SPECIAL_IDS = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}


def _tiny(vocab_size: int) -> ElectraConfig:
  return ElectraConfig.from_config({"vocab_size": vocab_size, "embedding_size": 16, "hidden_size": 32,
                                    "num_layers": 2, "num_heads": 4, "intermediate_size": 64,
                                    "generator_hidden_fraction": 0.5, "max_position_embeddings": 64})


def _flat(params) -> dict:
  return {jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_leaves_with_path(params)}


def _nested(like, flat: dict):
  return jax.tree_util.tree_map_with_path(lambda p, _: flat[jax.tree_util.keystr(p)], like)


def _init(cfg: ElectraConfig, seed: int):
  ids = jnp.ones((1, 8), jnp.int32)
  params = jax.jit(ElectraPretrainer(cfg).init)(jax.random.PRNGKey(seed), ids, jnp.zeros_like(ids), ids)["params"]
  rng = np.random.default_rng(seed)  # every leaf off its init (the bias starts at zero)
  return jax.tree_util.tree_map(lambda x: np.asarray(x) + 0.3 * rng.standard_normal(x.shape).astype(np.float32),
                                params)


def write_record(directory: Path, base_size: int, pieces: list[list[int]], vocab: list[str] | None = None) -> Path:
  """A tokenizer directory holding only what the growing reads: extension.json (and vocab.txt when given)."""
  directory.mkdir(parents=True, exist_ok=True)
  record = {"base_vocab_size": base_size, "vocab_size": base_size + len(pieces), "base_vocab_sha256": "",
            "added": [{"token": f"new{i}", "pieces": p} for i, p in enumerate(pieces)]}
  (directory / EXTENSION_JSON).write_text(json.dumps(record), encoding="utf-8")
  if vocab is not None:
    (directory / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
  return directory


PIECES = [[7, 8], [9], [1], [20, 21, 22, 23], [40, 5]]


def test_grow_rows_appends_the_mean_of_the_pieces_or_zeros():
  table = np.arange(12, dtype=np.float32).reshape(6, 2)
  grown = grow_rows(table, [[0, 2], [5]])
  np.testing.assert_array_equal(grown[:6], table)
  np.testing.assert_allclose(grown[6:], [[2, 3], [10, 11]])
  np.testing.assert_array_equal(grow_rows(table, [[0, 2]], zero=True)[6:], [[0, 0]])
  assert grown.dtype == table.dtype
  assert [vocab_key(k) for k in (WORDS, BIAS, DELTA, "['discriminator']['layer_0']['output']['dense']['bias']")] \
      == ["mean", "mean", "zero", None]


def test_grown_model_gives_the_original_outputs_on_old_vocabulary(tmp_path):
  old_cfg = _tiny(50)
  new_cfg = dataclasses.replace(old_cfg, vocab_size=50 + len(PIECES))
  old = _init(old_cfg, seed=1)
  fresh = _init(new_cfg, seed=2)
  grown = grow_params(_flat(old), _flat(fresh), "config.init_from=/general", str(write_record(tmp_path, 50, PIECES)))
  new = _nested(fresh, grown)
  words, bias = grown[WORDS], grown[BIAS]
  assert words.shape == (55, 16) and bias.shape == (55,)
  for i, pieces in enumerate(PIECES):
    np.testing.assert_allclose(words[50 + i], _flat(old)[WORDS][pieces].mean(0), rtol=1e-6)
    np.testing.assert_allclose(bias[50 + i], _flat(old)[BIAS][pieces].mean(), rtol=1e-6)
  np.testing.assert_array_equal(words[:50], _flat(old)[WORDS])

  rng = np.random.default_rng(0)
  ids = jnp.asarray(rng.integers(5, 50, size=(3, 12)), jnp.int32)
  types, mask = jnp.zeros_like(ids), jnp.ones_like(ids).at[1, 9:].set(0)

  def outputs(cfg, params):
    model = ElectraPretrainer(cfg)

    @jax.jit
    def run(params):
      return (model.apply({"params": params}, ids, types, mask, method=ElectraPretrainer.discriminator_logits),
              model.apply({"params": params}, ids, types, mask, None, method=ElectraPretrainer.generator_logits))

    return tuple(map(np.asarray, run(params)))

  (disc_old, gen_old), (disc_new, gen_new) = outputs(old_cfg, old), outputs(new_cfg, new)
  np.testing.assert_array_equal(disc_new, disc_old)
  assert gen_new.shape[-1] == 55
  np.testing.assert_allclose(gen_new[..., :50], gen_old, rtol=1e-5, atol=1e-5)  # the old columns; softmax differs


def test_a_delta_table_grows_with_zero_rows_and_other_arrays_pass(tmp_path):
  given = {DELTA: np.ones((50, 4), np.float32), WORDS: np.ones((50, 4), np.float32),
           "['discriminator']['x']": np.ones((3,), np.float32)}
  fresh = {DELTA: np.zeros((52, 4)), WORDS: np.zeros((52, 4)), "['discriminator']['x']": np.zeros((3,))}
  grown = grow_params(given, fresh, "config.init_from=/g", str(write_record(tmp_path, 50, [[5], [6, 7]])))
  np.testing.assert_array_equal(grown[DELTA][50:], 0)
  np.testing.assert_array_equal(grown[WORDS][50:], 1)
  assert grown["['discriminator']['x']"] is given["['discriminator']['x']"]
  assert grow_params(given, {k: np.zeros(np.shape(v)) for k, v in given.items()}, "x", None) == given


def _one_line(excinfo) -> str:
  text = str(excinfo.value)
  assert "\n" not in text, text
  return text


def test_a_mismatch_without_a_record_is_refused_in_one_line(tmp_path):
  given, fresh = {WORDS: np.ones((50, 4))}, {WORDS: np.zeros((55, 4))}
  tok = tmp_path / "tok"
  tok.mkdir()
  with pytest.raises(ConfigError) as e:
    grow_params(given, fresh, "config.init_from=/general", str(tok))
  assert "config.init_from=/general" in _one_line(e) and str(tok) in str(e.value) and EXTENSION_JSON in str(e.value)
  with pytest.raises(ConfigError) as e:  # a record of other sizes
    grow_params(given, fresh, "config.init_from=/general", str(write_record(tmp_path / "other", 40, [[1]] * 15)))
  assert "grows a vocabulary of 40 tokens to 55" in _one_line(e)
  base = tmp_path / "base_vocab.txt"
  base.write_text("a\n", encoding="utf-8")
  record = write_record(tmp_path / "sha", 50, [[1]] * 5)
  raw = json.loads((record / EXTENSION_JSON).read_text())
  (record / EXTENSION_JSON).write_text(json.dumps({**raw, "base_vocab_sha256": "0" * 64}))
  with pytest.raises(ConfigError) as e:  # the record extends another vocabulary than the init model's
    grow_params(given, fresh, "config.init_from=/general", str(record), base_vocab=str(base))
  assert "extends another vocabulary" in _one_line(e)


def test_fine_tuning_takes_the_extended_vocab_size(tmp_path):
  base_vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"t{i}" for i in range(45)]
  general = tmp_path / "general"
  base = write_record(tmp_path / "base", 0, [], base_vocab)
  (base / EXTENSION_JSON).unlink()
  workdir_lib.write_model_info(str(general), _tiny(50), str(base), SPECIAL_IDS)
  ext = write_record(tmp_path / "ext", 50, PIECES, base_vocab + [f"new{i}" for i in range(5)])
  cfg, tokenizer_dir, _ = init_run.resolve_model(finetune_config(
      "ner_tiny", **{"init_from": str(general), "data.tokenizer_dir": str(ext)}))
  assert cfg.vocab_size == 55 and tokenizer_dir == str(ext)
  cfg, _, _ = init_run.resolve_model(finetune_config(
      "ner_tiny", **{"init_from": str(general), "data.tokenizer_dir": str(ext), "model.vocab_size": 55}))
  assert cfg.vocab_size == 55
  assert init_run.resolve_model(finetune_config("ner_tiny", init_from=str(general)))[0].vocab_size == 50
  (ext / EXTENSION_JSON).unlink()
  with pytest.raises(ConfigError) as e:
    init_run.resolve_model(finetune_config("ner_tiny", **{"init_from": str(general), "data.tokenizer_dir": str(ext)}))
  assert f"config.init_from={general}" in _one_line(e) and f"config.data.tokenizer_dir={ext}" in str(e.value)


def test_the_run_tokenizer_is_found_on_either_task():
  from types import SimpleNamespace
  from korpat_jax.restore import run_tokenizer_dir
  assert run_tokenizer_dir(SimpleNamespace(tokenizer_dir="/tok")) == "/tok"  # fine-tuning
  assert run_tokenizer_dir(SimpleNamespace(_data=SimpleNamespace(tokenizer_dir="/rec_tok"))) == "/rec_tok"  # pretraining
  assert run_tokenizer_dir(SimpleNamespace(_data=SimpleNamespace(tokenizer_dir=None))) is None  # synthetic data


# -- end to end, with real MWP tokenizers ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def general(tmp_path_factory):
  """A general tokenizer (KLUE NLI premises), its extension on patent-like text, and a 'general' pretraining run
  directory of the base vocabulary (perturbed fresh params, embeddings scaled up so that rows are far apart)."""
  from korpat_jax.tokenizer import train_tokenizer
  root = tmp_path_factory.mktemp("vocab_growth")
  train_tokenizer([str(REPO / "korpat_jax" / "demo" / "corpus" / "klue_nli_dev.txt")], str(root / "base"),
                  vocab_size=1200, limit_alphabet=600, num_workers=1, show_progress=False, log=lambda m: None)
  corpus = root / "patents.txt"
  corpus.write_text("\n".join(patent_sentences(300, seed=5)) + "\n", encoding="utf-8")
  assert cli.main(["tokenizer", "extend", "--tokenizer", str(root / "base"), "--corpus", str(corpus), "--add", "80",
                   "--out", str(root / "ext")]) == 0
  base_size = len((root / "base" / "vocab.txt").read_text(encoding="utf-8").splitlines())
  config = pretrain_config("tiny", **{"model.vocab_size": base_size})
  cfg = ElectraConfig.from_config(config.model)
  params = _init(cfg, seed=3)
  params["embeddings"]["word_embeddings"]["embedding"] *= 10
  run = root / "general"
  workdir_lib.write_model_info(str(run), cfg, str(root / "base"), SPECIAL_IDS)
  state = {"params": params, "opt_state": {"mu": jax.tree_util.tree_map(np.zeros_like, params)},
           "step": np.asarray(5, np.int32), "rng": np.array([0, 3], np.uint32)}
  checkpointer = Checkpointer(workdir_lib.checkpoint_dir(str(run)), interval=1, keep=1, async_save=False)
  checkpointer.save(5, state, force=True)
  checkpointer.close()
  return root


def _vocab(d: Path) -> list[str]:
  return (d / "vocab.txt").read_text(encoding="utf-8").splitlines()


def _records(root: Path, tokenizer: Path, name: str) -> Path:
  from korpat_jax.corpus.examples import PackingConfig
  from korpat_jax.corpus.local import run_local
  from korpat_jax.corpus.pipeline import PrepConfig
  from korpat_jax.corpus.tokenizing import MWPTokenizerFactory
  out = root / name
  if not out.exists():
    run_local([str(root / "patents.txt")], PrepConfig(packing=PackingConfig(seq_len=64), records_per_shard=1000),
              MWPTokenizerFactory(str(tokenizer)), str(out), workers=0, quiet=True)
  return out


def _continued(general: Path, records: Path, **overrides):
  return pretrain_config("tiny", **{
      "init_from": str(general / "general"), "data.source": "records", "data.records_dir": str(records),
      "model.vocab_size": -1, "train.seq_len": 64, "train.batch_size": 16, "train.num_steps": 1,
      "train.log_every": 1, "train.checkpoint_every": 1, "train.eval_every": 0, **overrides})


def test_continued_pretraining_on_extended_records_grows_and_exports_the_extended_vocab(general, tmp_path, caplog):
  from korpat_jax.train import train
  ext = general / "ext"
  run = tmp_path / "patent_run"
  with caplog.at_level(logging.INFO, logger="korpat_jax"):
    train(_continued(general, _records(general, ext, "records_ext")), str(run))
  assert any("grew" in r.getMessage() and EXTENSION_JSON in r.getMessage() for r in caplog.records)
  cfg, tokenizer_dir, _ = workdir_lib.read_model_info(str(run))
  assert cfg.vocab_size == len(_vocab(ext)) and tokenizer_dir == str(ext)
  _, before = run_params(general / "general")
  _, after = run_params(run)
  old, new = before["embeddings"]["word_embeddings"]["embedding"], after["embeddings"]["word_embeddings"]["embedding"]
  record = read_extension(str(ext))
  assert new.shape[0] == record.vocab_size
  means = np.stack([old[list(p)].mean(0) for p in record.pieces])
  np.testing.assert_allclose(new[record.base_vocab_size:], means, atol=0.02)  # one step of Adam at lr <= 1e-3
  assert np.abs(means).mean() > 0.5  # the rows are far apart (x10): the tolerance tells them apart

  hf = tmp_path / "hf"
  assert cli.main(["export", "--workdir", str(run), "--out", str(hf)]) == 0
  assert (hf / "vocab.txt").read_bytes() == (ext / "vocab.txt").read_bytes()
  assert json.loads((hf / "config.json").read_text())["vocab_size"] == record.vocab_size


def test_continued_pretraining_without_the_record_is_refused_in_one_line(general, tmp_path):
  from korpat_jax.train import train
  bare = tmp_path / "ext_without_record"
  shutil.copytree(general / "ext", bare)
  (bare / EXTENSION_JSON).unlink()
  with pytest.raises(ConfigError) as e:
    train(_continued(general, _records(general, general / "ext", "records_ext"),
                     **{"data.tokenizer_dir": str(bare)}), str(tmp_path / "run"))
  assert f"config.init_from={general / 'general'}" in _one_line(e) and str(bare) in str(e.value)


def test_import_hf_with_an_extended_tokenizer_grows_the_model(general, tmp_path):
  hf = tmp_path / "general_hf"
  assert cli.main(["export", "--workdir", str(general / "general"), "--out", str(hf)]) == 0
  ext = general / "ext"
  imported = tmp_path / "imported"
  assert cli.main(["import-hf", "--model", str(hf), "--out", str(imported), "--tokenizer", str(ext)]) == 0
  cfg, tokenizer_dir, _ = workdir_lib.read_model_info(str(imported))
  record = read_extension(str(ext))
  assert cfg.vocab_size == record.vocab_size and tokenizer_dir == str(imported / "tokenizer")
  for name in ("vocab.txt", EXTENSION_JSON):
    assert (imported / "tokenizer" / name).read_bytes() == (ext / name).read_bytes()
  _, before = run_params(general / "general")
  _, after = run_params(imported)
  old = np.asarray(before["embeddings"]["word_embeddings"]["embedding"])
  new = np.asarray(after["embeddings"]["word_embeddings"]["embedding"])
  np.testing.assert_allclose(new[:record.base_vocab_size], old, rtol=1e-6)
  np.testing.assert_allclose(new[record.base_vocab_size:], [old[list(p)].mean(0) for p in record.pieces], rtol=1e-5)
  again = tmp_path / "again_hf"
  assert cli.main(["export", "--workdir", str(imported), "--out", str(again)]) == 0
  assert (again / "vocab.txt").read_bytes() == (ext / "vocab.txt").read_bytes()

  (tmp_path / "other").mkdir()
  shutil.copy(ext / "vocab.txt", tmp_path / "other" / "vocab.txt")
  assert cli.main(["import-hf", "--model", str(hf), "--out", str(tmp_path / "refused"), "--tokenizer",
                   str(tmp_path / "other")]) == 2
  assert not (tmp_path / "refused" / "checkpoints").exists()
