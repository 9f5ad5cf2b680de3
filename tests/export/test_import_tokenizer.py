"""import-hf of a directory that transformers 5 saved (tokenizer.json, no vocab.txt): the WordPiece vocabulary is
read from tokenizer.json and recorded; a tokenizer.json of another kind stops the import in one line; a directory
without any tokenizer file says that none was recorded."""

from __future__ import annotations

import json
import os
import shutil

import pytest

import hf_export_testlib as lib
from korpat_jax import cli


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp("import_tok")
  cfg = lib.tiny_config()
  tokenizer_dir = lib.write_vocab(str(root / "tok"))
  workdir = lib.make_workdir(str(root / "run"), cfg, lib.pretrainer_params(cfg, seed=5), step=3,
                             tokenizer_dir=tokenizer_dir)
  out = str(root / "hf")
  assert cli.main(["export", "--workdir", workdir, "--out", out]) == 0
  return out, tokenizer_dir


def _without_tokenizer_files(src: str, dst: str) -> str:
  shutil.copytree(src, dst)
  for name in os.listdir(dst):
    if name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                "mwp_tokenizer.json", "user.dic"):
      os.remove(os.path.join(dst, name))
  return dst


def _vocab(path: str) -> list[str]:
  with open(path, encoding="utf-8") as f:
    return [line.rstrip("\n") for line in f]


def test_tokenizer_json_of_transformers_5_gives_the_vocabulary(exported, tmp_path, capsys):
  transformers = pytest.importorskip("transformers")
  hf_dir, tokenizer_dir = exported
  saved = _without_tokenizer_files(hf_dir, str(tmp_path / "hf5"))
  # What transformers 5 writes for a BERT-style WordPiece tokenizer: tokenizer.json (+ its config), no vocab.txt.
  transformers.ElectraTokenizerFast.from_pretrained(tokenizer_dir).save_pretrained(saved)
  assert "tokenizer.json" in os.listdir(saved) and "vocab.txt" not in os.listdir(saved)
  out = tmp_path / "imported"
  capsys.readouterr()
  assert cli.main(["import-hf", "--model", saved, "--out", str(out)]) == 0
  printed = capsys.readouterr().out
  assert "read from tokenizer.json" in printed, printed
  assert _vocab(out / "tokenizer" / "vocab.txt") == _vocab(os.path.join(tokenizer_dir, "vocab.txt"))
  model = json.load(open(out / "model.json"))
  assert model["tokenizer_dir"] == str(out / "tokenizer")
  # What the fine-tune then reads: the recorded tokenizer (it failed with "no tokenizer (vocab.txt) at (none)").
  from helpers import finetune_config
  from korpat_jax import init_run
  cfg, found, special = init_run.resolve_model(finetune_config("ner_tiny", init_from=str(out)))
  assert os.path.isfile(os.path.join(found, "vocab.txt")) and special["cls"] == 2 and special["pad"] == 0


def test_a_tokenizer_json_that_is_not_wordpiece_is_refused_in_one_line(exported, tmp_path, capsys):
  tokenizers = pytest.importorskip("tokenizers")
  saved = _without_tokenizer_files(exported[0], str(tmp_path / "bpe"))
  bpe = tokenizers.Tokenizer(tokenizers.models.BPE(vocab={"[UNK]": 0, "a": 1, "b": 2, "ab": 3},
                                                   merges=[("a", "b")], unk_token="[UNK]"))
  bpe.save(os.path.join(saved, "tokenizer.json"))
  capsys.readouterr()
  assert cli.main(["import-hf", "--model", saved, "--out", str(tmp_path / "w")]) == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1, lines
  assert "tokenizer.json: a BPE tokenizer, not WordPiece" in lines[0] and "vocab.txt" in lines[0], lines[0]
  assert not (tmp_path / "w" / "checkpoints").exists()  # refused before anything was written


def test_a_directory_without_tokenizer_files_says_none_was_recorded(exported, tmp_path, capsys):
  saved = _without_tokenizer_files(exported[0], str(tmp_path / "bare"))
  capsys.readouterr()
  assert cli.main(["import-hf", "--model", saved, "--out", str(tmp_path / "w")]) == 0
  printed = capsys.readouterr().out
  assert "no vocab.txt or tokenizer.json" in printed and "--config.data.tokenizer_dir" in printed, printed
