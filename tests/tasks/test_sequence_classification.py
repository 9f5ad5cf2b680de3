"""Sequence classification on the shared loop: sentence pairs (demo set, KLUE NLI), CPC single- and multi-label
(demo set), long documents in windows, predict, export with equal logits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import DEMO_SETS, finetune_config
from korpat_jax.train import train

CLASSIFICATION_KEYS = {"step", "main", "accuracy", "top3", "top5", "macro_f1", "micro_f1"}
PAIR_KEYS = CLASSIFICATION_KEYS - {"top3", "top5"}  # 3 labels: every label is in the top 3 and top 5


def _run(pretrained, workdir, variant, train_file, eval_file, **overrides):
  config = finetune_config(variant, **{"init_from": str(pretrained), "data.train": str(train_file),
                                       "data.eval": str(eval_file), **overrides})
  train(config, str(workdir))
  return json.load(open(workdir / "eval" / "metrics.json"))


def _predictions(workdir):
  return [json.loads(line) for line in open(workdir / "eval" / "predictions.jsonl", encoding="utf-8")]


def _tsv_column(path, name):
  lines = open(path, encoding="utf-8").read().splitlines()
  column = lines[0].split("\t").index(name)
  return [line.split("\t")[column] for line in lines[1:] if line.strip()]


@pytest.fixture(scope="module")
def pair_run(pretrained, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("pair")
  metrics = _run(pretrained, workdir, "pair_tiny", DEMO_SETS / "pair_train.tsv", DEMO_SETS / "pair_eval.tsv",
                 **{"train.num_steps": 30, "train.eval_every": 30})
  return workdir, metrics


def test_pair_run_writes_metrics_and_predictions_in_input_order(pair_run):
  workdir, metrics = pair_run
  assert PAIR_KEYS <= set(metrics) and metrics["main"] == "accuracy"
  assert "top3" not in metrics and "top5" not in metrics  # they would say 1 with 3 labels
  assert all(0.0 <= metrics[k] <= 1.0 for k in PAIR_KEYS - {"step", "main"})
  predictions = _predictions(workdir)
  assert [p["id"] for p in predictions] == _tsv_column(DEMO_SETS / "pair_eval.tsv", "id")
  labels = {"entailment", "neutral", "contradiction"}
  assert all(p["label"] in labels and set(p["scores"]) == labels for p in predictions)
  gold = _tsv_column(DEMO_SETS / "pair_eval.tsv", "label")
  assert metrics["accuracy"] == pytest.approx(np.mean([p["label"] == g for p, g in zip(predictions, gold)]))


def test_pair_export_gives_equal_logits(pair_run, tmp_path):
  torch = pytest.importorskip("torch")
  from transformers import ElectraForSequenceClassification
  from korpat_jax import workdir as workdir_lib
  from korpat_jax.export.to_hf import export, restore_params
  from korpat_jax.model.heads import task_model
  workdir, metrics = pair_run
  (done,) = export(str(workdir), str(tmp_path / "hf"))
  hf = ElectraForSequenceClassification.from_pretrained(done.directory).eval()
  assert hf.config.problem_type == "single_label_classification" and len(hf.config.id2label) == 3
  cfg, _, _ = workdir_lib.read_model_info(str(workdir))
  params = restore_params(str(workdir), done.step)[1]
  ids = np.random.default_rng(1).integers(5, cfg.vocab_size, size=(3, 20)).astype(np.int32)
  types = (np.arange(20)[None, :] >= 9).astype(np.int32).repeat(3, 0)
  ours = np.asarray(task_model("sequence_classification", cfg, 3).apply({"params": params}, ids, types,
                                                                          np.ones_like(ids)))
  with torch.no_grad():
    theirs = hf(input_ids=torch.tensor(ids, dtype=torch.long), token_type_ids=torch.tensor(types, dtype=torch.long)
                ).logits.numpy()
  np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_cpc_single_label_on_the_demo_set(pretrained, tmp_path):
  metrics = _run(pretrained, tmp_path, "cpc_tiny", DEMO_SETS / "cpc_train.tsv", DEMO_SETS / "cpc_eval.tsv",
                 **{"data.text_fields": "title,abstract", "train.num_steps": 60, "train.eval_every": 30,
                    "optimizer.learning_rate": 1e-3})
  assert CLASSIFICATION_KEYS <= set(metrics)
  predictions = _predictions(tmp_path)
  assert len(predictions) == len(_tsv_column(DEMO_SETS / "cpc_eval.tsv", "id"))
  subclasses = {p["label"] for p in predictions} | set(predictions[0]["scores"])
  assert all(len(code) == 4 for code in subclasses), subclasses  # cut to the subclass level, e.g. H01L
  assert metrics["top5"] >= metrics["top3"] >= metrics["accuracy"]


def test_cpc_multi_label_exports_as_multi_label(pretrained, tmp_path):
  pytest.importorskip("torch")
  from transformers import ElectraForSequenceClassification
  from korpat_jax.export.to_hf import export
  metrics = _run(pretrained, tmp_path / "run", "cpc_multi_tiny", DEMO_SETS / "cpc_train.tsv",
                 DEMO_SETS / "cpc_eval.tsv", **{"data.text_fields": "title,abstract", "train.num_steps": 20,
                                                "train.eval_every": 20, "data.cpc_level": "group"})
  assert {"micro_f1", "macro_f1", "p_at_1", "p_at_3", "accuracy", "top3", "top5"} <= set(metrics)
  assert metrics["main"] == "micro_f1"
  first = _predictions(tmp_path / "run")[0]
  assert set(first) == {"id", "labels", "scores"} and all("/" in code for code in first["scores"])
  (done,) = export(str(tmp_path / "run"), str(tmp_path / "hf"))
  hf = ElectraForSequenceClassification.from_pretrained(done.directory)
  assert hf.config.problem_type == "multi_label_classification"


def test_long_documents_in_windows_average_their_logits(pretrained, tmp_path):
  metrics = _run(pretrained, tmp_path, "cpc_tiny", DEMO_SETS / "cpc_train.tsv", DEMO_SETS / "cpc_eval.tsv",
                 **{"data.text_fields": "title,abstract", "train.num_steps": 10, "train.eval_every": 10,
                    "train.seq_len": 16, "data.long_text": "windows", "data.window_stride": 7})
  report = json.load(open(tmp_path / "data_report.json"))
  windows = report["eval"]["adjusted"]["long_text_windows"]["count"]
  info = json.load(open(tmp_path / "data" / "eval.json"))
  assert windows > 0 and info["num_features"] > info["num_examples"]  # several windows per document
  assert len(_predictions(tmp_path)) == info["num_examples"] and "accuracy" in metrics


def test_klue_nli_json_pairs(pretrained, shared_data, tmp_path):
  data = json.load(open(shared_data / "klue-nli-v1.1_dev.json", encoding="utf-8"))
  (tmp_path / "train.json").write_text(json.dumps(data[:2400], ensure_ascii=False), encoding="utf-8")
  (tmp_path / "eval.json").write_text(json.dumps(data[2400:], ensure_ascii=False), encoding="utf-8")
  metrics = _run(pretrained, tmp_path / "run", "pair_tiny", tmp_path / "train.json", tmp_path / "eval.json",
                 **{"data.text_fields": "premise,hypothesis", "data.label_field": "gold_label",
                    "train.num_steps": 20, "train.eval_every": 20})
  predictions = _predictions(tmp_path / "run")
  assert [p["id"] for p in predictions] == [d["guid"] for d in data[2400:]]
  assert 0.0 <= metrics["accuracy"] <= 1.0


def test_bad_rows_are_counted_not_fatal(pretrained, tmp_path):
  rows = ["id\tsentence1\tsentence2\tlabel", "a\t문장 하나\t문장 둘\tyes", "b\t\t\tno", "c\t하나\t둘", "d\t셋\t넷\tno",
          "e\t다섯\t여섯\tyes"]
  (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
  (tmp_path / "train.tsv").open("ab").write(b"f\t\xff\xfe\t\xc3\tyes\n")
  _run(pretrained, tmp_path / "run", "pair_tiny", tmp_path / "train.tsv", tmp_path / "train.tsv",
       **{"train.num_steps": 2, "train.eval_every": 2, "data.max_skipped_fraction": 1.0})  # 3 of 6 rows bad
  report = json.load(open(tmp_path / "run" / "data_report.json"))["train"]
  assert report["read"] == report["used"] + sum(r["count"] for r in report["skipped"].values())
  assert set(report["skipped"]) == {"empty_text", "malformed_row", "invalid_utf8"}
  assert "train.tsv:4: 3 columns" in report["skipped"]["malformed_row"]["examples"][0]


def test_sentence_pairs_are_chosen_by_data_pair():
  import ml_collections
  from korpat_jax.tasks.sequence_classification import is_pair
  assert is_pair(finetune_config("pair_tiny")) and not is_pair(finetune_config("cpc_tiny"))
  assert is_pair(finetune_config("cpc_tiny", **{"data.pair": True, "data.text_fields": "a,b"}))
  saved = finetune_config("pair_tiny").to_dict()
  del saved["data"]["pair"]  # the config.json of a run directory written before data.pair
  assert is_pair(ml_collections.ConfigDict(saved))


def test_labels_that_are_not_cpc_codes_stop_with_one_line_naming_cpc_level_none(tmp_path):
  from korpat_jax.errors import ConfigError
  from korpat_jax.finetune.report import DataReport
  from korpat_jax.tasks import make_task
  path = tmp_path / "sentiment.tsv"
  path.write_text("id\ttext\tlabel\n" + "".join(f"{i}\t문장 {i}\t{'positive' if i % 2 else 'negative'}\n"
                                                 for i in range(6)), encoding="utf-8")
  task = make_task(finetune_config("cpc_tiny", **{"data.train": str(path)}), str(tmp_path / "w"))
  with pytest.raises(ConfigError) as raised:
    task.read(str(path), DataReport(), labelled=True)
  message = str(raised.value)
  assert "\n" not in message and message.startswith(f"{path}: the labels of 6 of 6 rows do not parse as CPC codes")
  assert "config.data.cpc_level=subclass" in message and "--config.data.cpc_level=none" in message
  assert "'negative'" in message  # the first label that did not parse
  task = make_task(finetune_config("cpc_tiny", **{"data.train": str(path), "data.cpc_level": "none"}),
                   str(tmp_path / "w"))
  assert {e.labels[0] for e in task.read(str(path), DataReport(), labelled=True)} == {"positive", "negative"}
  # A CPC file with a few bad codes still reads (they are skipped rows, counted in the report).
  cpc = tmp_path / "cpc.tsv"
  cpc.write_text("id\ttext\tlabel\n0\t가\tH01L 21/02\n1\t나\tG06F 3/01\n2\t다\tpositive\n", encoding="utf-8")
  task = make_task(finetune_config("cpc_tiny", **{"data.train": str(cpc)}), str(tmp_path / "w"))
  report = DataReport()
  assert [e.labels[0] for e in task.read(str(cpc), report, labelled=True)] == ["H01L", "G06F"]
  assert report.skipped["unparseable_label"] == 1


def _pair_rows(header, rows):
  return "\n".join(["\t".join(header)] + ["\t".join(r) for r in rows]) + "\n"


def test_predict_writes_an_error_line_for_each_row_it_cannot_read(pair_run, tmp_path):
  from korpat_jax.finetune.predict import predict
  workdir, _ = pair_run
  rows = [("p1", "문장 하나", "문장 둘"), ("p2", "", ""), ("p3", "셋", "넷", "여분"), ("p4", "다섯", "여섯")]
  (tmp_path / "new.tsv").write_text(_pair_rows(("id", "sentence1", "sentence2"), rows), encoding="utf-8")
  out = tmp_path / "out.jsonl"
  assert predict(str(workdir), str(tmp_path / "new.tsv"), str(out)) == 2
  lines = [json.loads(line) for line in open(out, encoding="utf-8")]
  assert [line["id"] for line in lines] == ["p1", "p2", "2", "p4"]  # one line per input row, in input order
  assert [line.get("error") for line in lines] == [None, "empty_text", "malformed_row", None]
  assert lines[2]["where"] == f"{tmp_path / 'new.tsv'}:4" and "4 columns" in lines[2]["detail"]
  assert "label" in lines[0] and "label" not in lines[1]


def test_predict_on_other_column_names_names_its_own_option(pair_run, tmp_path, capsys):
  from korpat_jax import cli
  workdir, _ = pair_run
  rows = [("p1", "문장 하나", "문장 둘"), ("p2", "셋", "넷")]
  (tmp_path / "new.tsv").write_text(_pair_rows(("key", "premise", "hypothesis"), rows), encoding="utf-8")
  capsys.readouterr()
  argv = ["predict", "--workdir", str(workdir), "--input", str(tmp_path / "new.tsv"), "--output",
          str(tmp_path / "out.jsonl")]
  assert cli.main(argv) == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1, lines
  assert "no column 'sentence1'" in lines[0] and "--text-fields" in lines[0] and "--config." not in lines[0]
  assert "sentence1,sentence2" in lines[0]  # the run's names, in the order to give them
  assert cli.main(argv + ["--text-fields", "premise"]) == 2
  assert "1 fields, the run was trained on 2" in capsys.readouterr().err
  assert cli.main(argv + ["--text-fields", "premise,hypothesis", "--id-field", "key"]) == 0
  lines = [json.loads(line) for line in open(tmp_path / "out.jsonl", encoding="utf-8")]
  assert [line["id"] for line in lines] == ["p1", "p2"]
