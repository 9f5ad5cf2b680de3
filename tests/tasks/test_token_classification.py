"""NER fine-tuning end to end on the shared loop: the bundled demo set and KLUE NER dev (80/20), predict, export
with equal logits, resume."""

from __future__ import annotations

import json
import shutil

import jax
import ml_collections
import numpy as np
import pytest

from helpers import DEMO_SETS, finetune_config
from korpat_jax.train import train

STRICT_KEYS = {"step", "main", "f1", "precision", "recall", "f1_default", "char_macro_f1", "per_type"}


def _ner_config(pretrained, train_file, eval_file, **overrides):
  return finetune_config("ner_tiny", **{"init_from": str(pretrained), "data.train": str(train_file),
                                        "data.eval": str(eval_file), **overrides})


def _lines(path):
  return [json.loads(line) for line in open(path, encoding="utf-8")]


@pytest.fixture(scope="module")
def demo_ner_run(pretrained, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("ner")
  train(_ner_config(pretrained, DEMO_SETS / "ner_train.tsv", DEMO_SETS / "ner_eval.tsv",
                    **{"data.test": str(DEMO_SETS / "ner_eval.tsv"), "train.num_steps": 40,
                       "train.eval_every": 20, "train.keep_checkpoints": 2}), str(workdir))
  return workdir


def test_demo_run_writes_the_files_scripts_rely_on(demo_ner_run):
  metrics = json.load(open(demo_ner_run / "eval" / "metrics.json"))
  assert STRICT_KEYS <= set(metrics) and metrics["main"] == "f1" and metrics["step"] in (20, 40)
  assert all(0.0 <= metrics[k] <= 1.0 for k in ("f1", "precision", "recall", "f1_default", "char_macro_f1"))
  test = json.load(open(demo_ner_run / "test" / "metrics.json"))
  assert test["step"] == metrics["step"] and test["f1"] == pytest.approx(metrics["f1"])  # same file, best ckpt
  predictions = _lines(demo_ner_run / "eval" / "predictions.jsonl")
  ids = [line.split("\t")[0][3:] for line in open(DEMO_SETS / "ner_eval.tsv", encoding="utf-8")
         if line.startswith("## klue-ner")]
  assert [p["id"] for p in predictions] == ids  # one line per input example, in input order
  for p in predictions:
    assert set(p) == {"id", "text", "entities"}
    for e in p["entities"]:
      assert 0 <= e["start"] < e["end"] <= len(p["text"]) and e["label"] in {"PS", "LC", "OG", "DT", "TI", "QT"}
  report = json.load(open(demo_ner_run / "data_report.json"))
  assert report["train"]["read"] == report["train"]["used"] == 1000
  model = json.load(open(demo_ner_run / "model.json"))
  assert model["task"]["type"] == "token_classification" and model["task"]["id2label"]["0"] == "O"


def test_rerun_of_a_finished_run_stops_and_reads_the_cache(demo_ner_run, monkeypatch, caplog):
  from korpat_jax.tokenizer import MWPTokenizer
  monkeypatch.setattr(MWPTokenizer, "encode", lambda *a, **k: pytest.fail("Mecab-ko ran again on a rerun"))
  config = ml_collections.ConfigDict(json.load(open(demo_ner_run / "config.json")))
  with caplog.at_level("INFO", logger="korpat_jax"):
    train(config, str(demo_ner_run))
  assert "nothing to do" in caplog.text and "from the cache" in caplog.text


def test_killed_run_resumes_to_the_same_params(demo_ner_run, tmp_path):
  from korpat_jax.export.to_hf import restore_params
  workdir = tmp_path / "run"
  shutil.copytree(demo_ner_run, workdir)
  shutil.rmtree(workdir / "checkpoints" / "40")
  shutil.rmtree(workdir / "test")
  config = ml_collections.ConfigDict(json.load(open(workdir / "config.json")))
  train(config, str(workdir))
  resumed, reference = restore_params(str(workdir), 40)[1], restore_params(str(demo_ner_run), 40)[1]
  for (path, x), (_, y) in zip(jax.tree_util.tree_leaves_with_path(reference),
                               jax.tree_util.tree_leaves_with_path(resumed)):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))
  assert (workdir / "test" / "metrics.json").exists()


def test_predict_equals_the_eval_predictions(demo_ner_run, tmp_path):
  from korpat_jax.finetune.predict import predict
  # Without labels: only the characters (and the KLUE id comments) of the eval file.
  unlabelled = tmp_path / "new.tsv"
  unlabelled.write_text("".join(line.split("\t")[0] + "\n" if not line.startswith("## ") else line
                                for line in open(DEMO_SETS / "ner_eval.tsv", encoding="utf-8")), encoding="utf-8")
  out = tmp_path / "out" / "predictions.jsonl"
  assert predict(str(demo_ner_run), str(unlabelled), str(out)) == 300
  best = json.load(open(demo_ner_run / "eval" / "metrics.json"))["step"]
  if best == 40:  # eval predictions are those of the best checkpoint
    assert _lines(out) == _lines(demo_ner_run / "eval" / "predictions.jsonl")
  assert len(_lines(out)) == 300


def test_export_gives_equal_logits(demo_ner_run, tmp_path):
  torch = pytest.importorskip("torch")
  from transformers import ElectraForTokenClassification
  from korpat_jax import workdir as workdir_lib
  from korpat_jax.export.to_hf import export, restore_params
  from korpat_jax.model.heads import task_model
  (done,) = export(str(demo_ner_run), str(tmp_path / "hf"))
  best = json.load(open(demo_ner_run / "eval" / "metrics.json"))["step"]
  assert done.step == best and done.architecture == "ElectraForTokenClassification"
  hf = ElectraForTokenClassification.from_pretrained(done.directory).eval()
  assert hf.config.id2label[0] == "O" and hf.config.label2id["B-PS"] > 0
  cfg, _, _ = workdir_lib.read_model_info(str(demo_ner_run))
  params = restore_params(str(demo_ner_run), best)[1]
  ids = np.random.default_rng(0).integers(5, cfg.vocab_size, size=(2, 24)).astype(np.int32)
  ids[:, 0], ids[:, -1] = 2, 3
  ours = np.asarray(task_model("token_classification", cfg, len(hf.config.id2label)).apply(
      {"params": params}, ids, np.zeros_like(ids), np.ones_like(ids)))
  with torch.no_grad():
    theirs = hf(input_ids=torch.tensor(ids, dtype=torch.long)).logits.numpy()
  np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_klue_ner_80_20_beats_the_all_o_baseline(pretrained, shared_data, tmp_path):
  source = (shared_data / "klue-ner-v1.1_dev.tsv").read_text(encoding="utf-8")
  sentences = [b for b in source.split("\n\n") if "\t" in b]
  sentences = ["\n".join(l for l in s.splitlines() if not l.startswith("## ") or l.startswith("## klue-ner"))
               for s in sentences]
  cut = int(0.8 * len(sentences))
  (tmp_path / "train.tsv").write_text("\n\n".join(sentences[:cut]) + "\n", encoding="utf-8")
  (tmp_path / "eval.tsv").write_text("\n\n".join(sentences[cut:cut + 300]) + "\n", encoding="utf-8")
  workdir = tmp_path / "run"
  train(_ner_config(pretrained, tmp_path / "train.tsv", tmp_path / "eval.tsv",
                    **{"train.num_steps": 300, "train.eval_every": 300, "optimizer.learning_rate": 1e-3}),
        str(workdir))
  metrics = json.load(open(workdir / "eval" / "metrics.json"))
  assert json.load(open(workdir / "data_report.json"))["train"]["used"] == cut
  # The all-O baseline finds no entity: F1 0. A model that learnt anything finds some. At 150 steps F1 was
  # 0.00-0.03 (the demo vocab differs from one tokenizer training to the next); at 300, 0.41-0.44.
  assert metrics["f1"] > 0.0 and metrics["recall"] > 0.0, metrics


def test_a_model_that_does_not_fit_the_init_stops_with_one_line(pretrained, tmp_path):
  from korpat_jax.errors import ConfigError
  config = _ner_config(pretrained, DEMO_SETS / "ner_train.tsv", DEMO_SETS / "ner_eval.tsv",
                       **{"model.hidden_size": 256})
  with pytest.raises(ConfigError, match=r"config.model.hidden_size=256: the init model .* has hidden_size 128"):
    train(config, str(tmp_path / "w"))
  config = _ner_config(pretrained, DEMO_SETS / "ner_train.tsv", DEMO_SETS / "ner_eval.tsv",
                       **{"train.seq_len": 512})
  with pytest.raises(ConfigError, match=r"config.train.seq_len=512: the model has max_position_embeddings 128"):
    train(config, str(tmp_path / "w2"))


def test_a_checkpoint_without_its_data_iterator_is_moved_aside(demo_ner_run, tmp_path, caplog):
  workdir = tmp_path / "run"
  shutil.copytree(demo_ner_run, workdir)
  shutil.rmtree(workdir / "checkpoints" / "40" / "data")  # the Grain position: resuming without it would silently
  shutil.rmtree(workdir / "test")                          # restart the data stream
  config = ml_collections.ConfigDict(json.load(open(workdir / "config.json")))
  with caplog.at_level("WARNING", logger="korpat_jax"):
    train(config, str(workdir))
  assert "'data' item is missing" in caplog.text and (workdir / "checkpoints" / "_broken" / "40").is_dir()
  assert (workdir / "checkpoints" / "40" / "data").is_dir()  # retrained from step 20 and saved again


# -- outputs that agree with their scores ---------------------------------------------------------------------


def _strict_spans(units, tags):
  """Gold entities of one sentence read by hand (IOB2, strict): {(label, start char, end char)}."""
  found, open_ = set(), None
  for (start, end), tag in list(zip(units, tags)) + [((None, None), "O")]:
    if open_ and tag == f"I-{open_[0]}":
      open_ = (open_[0], open_[1], end)
      continue
    if open_:
      found.add(open_)
    open_ = (tag[2:], start, end) if tag.startswith("B-") else None
  return found


def _klue_gold(path):
  """id -> gold entities of a KLUE char-format file (one character + tag a line)."""
  gold = {}
  for block in open(path, encoding="utf-8").read().split("\n\n"):
    lines = [l for l in block.split("\n") if l]
    ids = [l.split("\t")[0][3:] for l in lines if l.startswith("## klue-ner")]
    data = [l.split("\t") for l in lines if not l.startswith("## ")]
    if data:
      gold[ids[0]] = _strict_spans([(i, i + 1) for i in range(len(data))], [tag for _, tag in data])
  return gold


def _conll_gold(path):
  """position -> (text, gold entities, word spans) of a word-level CoNLL file (one word + tag a line)."""
  gold = {}
  for index, block in enumerate(b for b in open(path, encoding="utf-8").read().split("\n\n") if b.strip()):
    words, tags = zip(*(line.split(" ") for line in block.strip().split("\n")))
    spans, at = [], 0
    for word in words:
      spans.append((at, at + len(word)))
      at += len(word) + 1
    gold[str(index)] = (" ".join(words), _strict_spans(spans, tags), spans)
  return gold


def _f1_of(predictions, gold):
  """Micro F1 of the predictions file's entities against the gold entities, by (sentence id, label, start, end)."""
  predicted = {(p["id"], e["label"], e["start"], e["end"]) for p in predictions if "error" not in p
               for e in p["entities"]}
  expected = {(i, *entity) for i, entities in gold.items() for entity in entities}
  tp = len(predicted & expected)
  precision, recall = tp / max(len(predicted), 1), tp / max(len(expected), 1)
  return (2 * precision * recall / (precision + recall) if tp else 0.0), len(predicted), len(expected)


@pytest.fixture(scope="module")
def barely_trained_ner_run(pretrained, tmp_path_factory):
  """Two steps from the pretrained encoder: the head is still near its init, so the predictions are many entities
  of every kind, B- and I- mixed (what the strict and lenient rules read differently), not the all-O of a model
  that learnt the majority tag."""
  workdir = tmp_path_factory.mktemp("ner_2steps")
  eval_file = DEMO_SETS / "ner_eval.tsv"
  train(_ner_config(pretrained, eval_file, eval_file, **{"data.test": str(eval_file), "train.num_steps": 2,
                                                         "train.eval_every": 2}), str(workdir))
  return workdir


def test_char_level_predictions_are_what_the_metric_scored(barely_trained_ner_run):
  gold = _klue_gold(DEMO_SETS / "ner_eval.tsv")
  for split in ("eval", "test"):
    metrics = json.load(open(barely_trained_ner_run / split / "metrics.json"))
    predictions = _lines(barely_trained_ner_run / split / "predictions.jsonl")
    assert [p["id"] for p in predictions] == list(gold)  # one line per sentence, in input order
    f1, n_predicted, n_gold = _f1_of(predictions, gold)
    assert n_gold > 0 and n_predicted > 0, (n_predicted, n_gold)
    assert f1 == pytest.approx(metrics["f1"], abs=1e-12), (split, f1, metrics["f1"])


def _to_conll(source, target):
  """A KLUE char-format file as word-level CoNLL: words split at spaces, a word's tag is its first character's."""
  out = []
  for block in open(source, encoding="utf-8").read().split("\n\n"):
    data = [l.split("\t") for l in block.split("\n") if l and not l.startswith("## ")]
    if not data:
      continue
    words, word = [], None
    for char, tag in data:
      if char == " ":
        word = None
        continue
      if word is None:
        word = [char, tag]
        words.append(word)
      else:
        word[0] += char
    out.append("\n".join(f"{w} {t}" for w, t in words))
  target.write_text("\n\n".join(out) + "\n", encoding="utf-8")
  return target


@pytest.fixture(scope="module")
def conll_ner_run(pretrained, tmp_path_factory):
  """Word-level CoNLL made from the demo set, two steps (see barely_trained_ner_run): sub-word tokens of one word
  get different tags, which the predictions file must not turn into cut words."""
  root = tmp_path_factory.mktemp("ner_conll")
  eval_file = _to_conll(DEMO_SETS / "ner_eval.tsv", root / "eval.conll")
  workdir = root / "run"
  train(finetune_config("ner_conll_tiny", **{"init_from": str(pretrained), "data.train": str(eval_file),
                                             "data.eval": str(eval_file), "train.num_steps": 2,
                                             "train.eval_every": 2}), str(workdir))
  return workdir, eval_file


def test_word_level_predictions_are_whole_words_and_what_the_metric_scored(conll_ner_run):
  workdir, eval_file = conll_ner_run
  metrics = json.load(open(workdir / "eval" / "metrics.json"))
  predictions = _lines(workdir / "eval" / "predictions.jsonl")
  gold = _conll_gold(eval_file)
  assert [p["id"] for p in predictions] == list(gold)  # one line per sentence, in input order
  for p in predictions:
    text, _, spans = gold[p["id"]]
    starts, ends = {s for s, _ in spans}, {e for _, e in spans}
    assert p["text"] == text
    for e in p["entities"]:
      assert e["start"] in starts and e["end"] in ends, (p["id"], e, text)  # whole words, never cut
  f1, n_predicted, n_gold = _f1_of(predictions, {i: entities for i, (_, entities, _) in gold.items()})
  assert n_gold > 0 and n_predicted > 0, (n_predicted, n_gold)
  assert f1 == pytest.approx(metrics["f1"], abs=1e-12), (f1, metrics["f1"])


def test_predict_writes_an_error_line_for_each_sentence_it_cannot_read(demo_ner_run, tmp_path):
  from korpat_jax.finetune.predict import predict
  blocks = [b for b in open(DEMO_SETS / "ner_eval.tsv", encoding="utf-8").read().split("\n\n") if b.strip()][:4]
  unlabelled = ["\n".join(l if l.startswith("## ") else l.split("\t")[0] for l in b.split("\n") if l)
                for b in blocks]
  unlabelled.insert(2, "## bad-sentence\tx\n두 글자\n")  # a line of more than one character: malformed
  (tmp_path / "new.tsv").write_text("\n\n".join(unlabelled) + "\n", encoding="utf-8")
  out = tmp_path / "predictions.jsonl"
  assert predict(str(demo_ner_run), str(tmp_path / "new.tsv"), str(out)) == 4
  lines = _lines(out)
  assert len(lines) == 5 and [line["id"] for line in lines][2] == "bad-sentence"
  assert lines[2]["error"] == "malformed_line" and "entities" not in lines[2]
  assert lines[2]["where"].startswith(f"{tmp_path / 'new.tsv'}:") and "one character" in lines[2]["detail"]
  assert all("entities" in line for i, line in enumerate(lines) if i != 2)
