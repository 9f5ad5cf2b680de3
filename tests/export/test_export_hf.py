"""Export to HF transformers: every export loads with transformers and computes what the Flax model computes."""

from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hf_export_testlib as lib  # noqa: E402
from korpat_jax.export import cli as export_cli  # noqa: E402
from korpat_jax.export import import_cli  # noqa: E402
from korpat_jax.export.to_hf import restore_params  # noqa: E402
from korpat_jax import workdir as workdir_lib  # noqa: E402
from korpat_jax.model.heads import task_model  # noqa: E402
from korpat_jax.tokenizer import MWPTokenizer  # noqa: E402

TOL = 1e-4


@pytest.fixture(scope="module", params=[(16, 32), (32, 32)], ids=["E16_H32", "E32_H32"])
def pretrained(request, tmp_path_factory):
  """A pretraining run directory (with tokenizer) and its `--part both` export."""
  embedding_size, hidden = request.param
  root = tmp_path_factory.mktemp(f"pretrained_{embedding_size}")
  cfg = lib.tiny_config(embedding_size, hidden)
  params = lib.pretrainer_params(cfg, seed=embedding_size)
  workdir = lib.make_workdir(str(root / "run"), cfg, params, step=7,
                             tokenizer_dir=lib.write_vocab(str(root / "tokenizer")))
  out = str(root / "hf")
  assert export_cli.main(["--workdir", workdir, "--out", out, "--part", "both"]) == 0
  return cfg, params, workdir, out


def test_discriminator_and_generator_match_flax(pretrained):
  cfg, params, _, out = pretrained
  batch = lib.random_batch(cfg)
  flax = lib.flax_pretrainer_outputs(cfg, params, batch)
  disc = transformers.ElectraForPreTraining.from_pretrained(os.path.join(out, "discriminator")).eval()
  gen = transformers.ElectraForMaskedLM.from_pretrained(os.path.join(out, "generator")).eval()
  diffs = {
      "discriminator_logits": lib.max_abs_diff(flax["discriminator_logits"], lib.torch_outputs(disc, batch).logits),
      "generator_logits": lib.max_abs_diff(flax["generator_logits"], lib.torch_outputs(gen, batch).logits),
  }
  for part, key in (("discriminator", "discriminator_hidden"), ("generator", "generator_hidden")):
    encoder = transformers.ElectraModel.from_pretrained(os.path.join(out, part)).eval()
    diffs[key] = lib.max_abs_diff(flax[key], lib.torch_outputs(encoder, batch).last_hidden_state)
  print(f"max abs diffs E={cfg.embedding_size}: {diffs}")
  assert all(d <= TOL for d in diffs.values()), diffs
  # The generator's lm head is tied to the (shared) word embeddings, in the file and in the loaded model.
  assert gen.generator_lm_head.weight.data_ptr() == gen.electra.embeddings.word_embeddings.weight.data_ptr()
  assert gen.config.tie_word_embeddings and gen.config.hidden_size == cfg.generator.hidden_size


def test_export_files(pretrained):
  cfg, _, _, out = pretrained
  directory = os.path.join(out, "discriminator")
  assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "README.md"} <= set(
      os.listdir(directory))
  with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
    config = json.load(f)
  assert config["model_type"] == "electra" and config["architectures"] == ["ElectraForPreTraining"]
  assert (config["embedding_size"], config["hidden_size"]) == (cfg.embedding_size, cfg.discriminator.hidden_size)
  with open(os.path.join(directory, "README.md"), encoding="utf-8") as f:
    assert "Mecab-ko" in f.read()
  with open(os.path.join(directory, "tokenizer_config.json"), encoding="utf-8") as f:
    tokenizer_config = json.load(f)
  # Raw text goes through Mecab-ko in the shipped remote code (tests/export/test_export_pipelines.py has the rest).
  assert tokenizer_config["tokenizer_class"] == "KorpatMWPTokenizer"
  tokenizer = transformers.AutoTokenizer.from_pretrained(directory, trust_remote_code=True)
  assert tokenizer.model_max_length == cfg.max_position_embeddings  # no run config.json: the model's positions
  text = "합성세제액을 사용한다."
  mwp = MWPTokenizer.load(workdir_lib.read_model_info(pretrained[2])[1])
  assert tokenizer.tokenize(text) == mwp.tokenize(text) and tokenizer(text)["input_ids"] == mwp.encode(text).ids
  encoded = tokenizer("특허 청구 항")["input_ids"]
  assert encoded[0] == lib.SPECIAL_IDS["cls"] and encoded[-1] == lib.SPECIAL_IDS["sep"]
  assert lib.SPECIAL_IDS["unk"] not in encoded


def test_tokenizer_files_from_a_foreign_vocab(tmp_path):
  """A vocab that MWPTokenizer does not load (specials elsewhere, as in some BERT vocabs) still exports."""
  from korpat_jax.export.hf_tokenizer import write_tokenizer_files
  source = tmp_path / "tok"
  source.mkdir()
  vocab = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + lib.KOREAN
  (source / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
  out = tmp_path / "hf"
  out.mkdir()
  special_ids = {"pad": 0, "unk": 2, "cls": 3, "sep": 4, "mask": 5}
  assert write_tokenizer_files(str(source), str(out), special_ids, 64) is None
  tokenizer = transformers.AutoTokenizer.from_pretrained(str(out), trust_remote_code=True)
  assert tokenizer.model_max_length == 64 and tokenizer.unk_token_id == 2
  assert tokenizer("특허 청구항 ABC")["input_ids"] == [3, 13, 14, 15, 2, 4]  # Mecab-ko: 특허 청구 항 ABC


def test_round_trip_pretrainer(pretrained, tmp_path):
  _, params, workdir, out = pretrained
  imported = str(tmp_path / "imported")
  assert import_cli.main(["--model", os.path.join(out, "discriminator"), "--generator",
                          os.path.join(out, "generator"), "--out", imported]) == 0
  _, original = restore_params(workdir, None)
  _, restored = restore_params(imported, 0)
  a, b = lib.flat_params(original), lib.flat_params(restored)
  assert sorted(a) == sorted(b)
  assert all(np.array_equal(a[k], b[k]) for k in a)
  # The imported run directory carries the tokenizer and exports again.
  assert os.path.isfile(os.path.join(imported, "tokenizer", "vocab.txt"))
  again = str(tmp_path / "again")
  assert export_cli.main(["--workdir", imported, "--out", again]) == 0
  assert os.path.isfile(os.path.join(again, "vocab.txt"))


def test_round_trip_discriminator_only_and_bare_model(pretrained, tmp_path):
  cfg, _, workdir, out = pretrained
  _, original = restore_params(workdir, None)
  expected = {k: v for k, v in lib.flat_params(original).items()
              if k[0] in ("embeddings", "discriminator", "discriminator_predictions")}
  imported = str(tmp_path / "disc")
  assert import_cli.main(["--model", os.path.join(out, "discriminator"), "--out", imported]) == 0
  restored = lib.flat_params(restore_params(imported, 0)[1])
  assert sorted(restored) == sorted(expected) and all(np.array_equal(restored[k], expected[k]) for k in expected)

  bare = str(tmp_path / "bare")
  transformers.ElectraModel.from_pretrained(os.path.join(out, "discriminator")).save_pretrained(bare)
  imported_bare = str(tmp_path / "bare_run")
  assert import_cli.main(["--model", bare, "--out", imported_bare]) == 0
  restored = lib.flat_params(restore_params(imported_bare, 0)[1])
  assert sorted(restored) == sorted(k for k in expected if k[0] != "discriminator_predictions")
  assert all(np.array_equal(restored[k], expected[k]) for k in restored)


def test_import_koelectra_style_bin(pretrained, tmp_path):
  """A pytorch_model.bin with the old position_ids buffer, as KoELECTRA ships it, imports to the same params."""
  _, _, workdir, out = pretrained
  source = os.path.join(out, "discriminator")
  hf_dir = tmp_path / "koelectra_style"
  hf_dir.mkdir()
  model = transformers.ElectraForPreTraining.from_pretrained(source)
  state = dict(model.state_dict())
  state["electra.embeddings.position_ids"] = torch.arange(model.config.max_position_embeddings)[None]
  torch.save(state, hf_dir / "pytorch_model.bin")
  for name in ("config.json", "vocab.txt"):
    shutil.copy(os.path.join(source, name), hf_dir / name)
  imported = str(tmp_path / "imported")
  assert import_cli.main(["--model", str(hf_dir), "--out", imported]) == 0
  original = lib.flat_params(restore_params(workdir, None)[1])
  restored = lib.flat_params(restore_params(imported, 0)[1])
  assert sorted(restored) == sorted(k for k in original if k[0] in ("embeddings", "discriminator",
                                                                    "discriminator_predictions"))
  assert all(np.array_equal(restored[k], original[k]) for k in restored)


TASKS = [("token_classification", {0: "O", 1: "B-PS", 2: "I-PS", 3: "B-LC", 4: "I-LC"}),
         ("sequence_classification", {0: "entailment", 1: "neutral", 2: "contradiction"}),
         ("question_answering", None)]


@pytest.mark.parametrize("task,id2label", TASKS, ids=[t for t, _ in TASKS])
def test_task_heads_match_flax_and_round_trip(task, id2label, tmp_path):
  cfg = lib.tiny_config(16, 32)
  num_labels = len(id2label) if id2label else 2
  params = lib.task_params(cfg, task, num_labels, seed=5)
  workdir = lib.make_workdir(str(tmp_path / "run"), cfg, params, step=3, task=task, id2label=id2label)
  out = str(tmp_path / "hf")
  assert export_cli.main(["--workdir", workdir, "--out", out]) == 0

  batch = lib.random_batch(cfg, seed=1)
  flax_model = task_model(task, cfg, num_labels)
  flax = jax.jit(flax_model.apply)({"params": params}, batch["input_ids"], batch["token_type_ids"],
                              batch["attention_mask"])
  arch = {"token_classification": transformers.ElectraForTokenClassification,
          "sequence_classification": transformers.ElectraForSequenceClassification,
          "question_answering": transformers.ElectraForQuestionAnswering}[task]
  model = arch.from_pretrained(out).eval()
  result = lib.torch_outputs(model, batch)
  if task == "question_answering":
    diff = max(lib.max_abs_diff(flax[0], result.start_logits), lib.max_abs_diff(flax[1], result.end_logits))
  else:
    diff = lib.max_abs_diff(flax, result.logits)
    assert model.config.id2label == id2label
  print(f"max abs diff {task}: {diff}")
  assert diff <= TOL

  imported = str(tmp_path / "imported")
  assert import_cli.main(["--model", out, "--out", imported]) == 0
  a, b = lib.flat_params(params), lib.flat_params(restore_params(imported, 0)[1])
  assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
  again = str(tmp_path / "again")
  assert export_cli.main(["--workdir", imported, "--out", again]) == 0
  with open(os.path.join(again, "config.json"), encoding="utf-8") as f:
    assert json.load(f)["architectures"] == [arch.__name__]
