"""`korpat-jax predict` on raw documents, streamed: the same predictions as the training-format path, one line per
input line in input order (unusable lines as error lines), in worker processes or not, and an interrupted run
continues where it stopped.

Runs are built cheaply as the export tests build them: a freshly initialised (perturbed) tiny task model with the
demo MWP tokenizer, written as a run directory with the config that predict reads.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "export"))  # the export tests' tiny runs
import hf_export_testlib as lib  # noqa: E402
from helpers import DEMO_SETS  # noqa: E402
from korpat_jax.errors import KorpatError  # noqa: E402
from korpat_jax.finetune import stream  # noqa: E402
from korpat_jax.finetune.predict import predict  # noqa: E402
from korpat_jax.tokenizer import MWPTokenizer  # noqa: E402

SEQ_LEN = 64
NER_LABELS = {0: "O", 1: "B-PS", 2: "I-PS", 3: "B-LC", 4: "I-LC"}
CPC_LABELS = {0: "A61K", 1: "C11D", 2: "H01L"}


def _sentences() -> list[str]:
  """The NER demo eval sentences (markup removed) and CPC demo abstracts: short and long texts."""
  out = [re.sub(r"<([^<>:]+):[A-Z]{2}>", r"\1", line.split("\t", 1)[1]).strip()
         for line in (DEMO_SETS / "ner_eval.tsv").read_text(encoding="utf-8").splitlines()
         if line.startswith("## ") and "\t" in line]
  rows = (DEMO_SETS / "cpc_eval.tsv").read_text(encoding="utf-8").splitlines()[1:]
  return out + [row.split("\t")[1] for row in rows if len(row.split("\t")) > 1]


def _run(root: pathlib.Path, tok_dir, variant: str, task: str, id2label, seed: int, texts=(), **overrides) -> str:
  return lib.mwp_task_run(root / variant, tok_dir, variant, task, id2label, overrides, seed, texts, seq_len=SEQ_LEN)


def _jsonl(path) -> list[dict]:
  return [json.loads(line) for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def cpc_run(tmp_path_factory, demo_tok_dir) -> str:
  return _run(tmp_path_factory.mktemp("stream"), demo_tok_dir, "cpc_tiny", "sequence_classification", CPC_LABELS,
              12, _sentences()[::3][:60], **{"data.cpc_level": "none"})


def test_buckets_pad_to_few_shapes():
  assert [stream.bucket_length(n, 128) for n in (1, 16, 17, 100, 128)] == [16, 16, 32, 128, 128]
  assert stream.bucket_length(130, 512) == 192 and stream.bucket_length(500, 512) == 512
  assert [stream.bucket_rows(n, 64, 16) for n in (1, 16, 17, 40, 64)] == [16, 16, 32, 64, 64]


def test_raw_text_gives_the_training_format_predictions_one_line_per_input_line(cpc_run, tmp_path):
  """A .txt of documents (long ones cut as training cuts them) streamed through a worker process: the labels and
  scores of the training-format path (TSV), in input order, and an error line for each unusable line."""
  texts = _sentences()[::3][:60]
  tsv = tmp_path / "docs.tsv"
  tsv.write_text("id\ttext\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(texts)), encoding="utf-8")
  expected = tmp_path / "expected.jsonl"
  assert predict(cpc_run, str(tsv), str(expected)) == len(texts)
  raw = tmp_path / "docs.txt"
  raw.write_text("".join(t + "\n" for t in texts[:30]) + "   \n" + "".join(t + "\n" for t in texts[30:]),
                 encoding="utf-8")
  out = tmp_path / "out.jsonl"
  assert predict(cpc_run, str(raw), str(out), workers=1) == len(texts) + 1
  lines = _jsonl(out)
  assert lines[30] == {"id": "30", "error": "empty_text", "where": f"{raw}:31", "detail": ""}
  got, want = lines[:30] + lines[31:], _jsonl(expected)
  assert [g["label"] for g in got] == [w["label"] for w in want] and len({w["label"] for w in want}) > 1
  for g, w in zip(got, want):
    assert g["scores"] == pytest.approx(w["scores"], abs=1e-5)
  assert not (tmp_path / "out.jsonl.partial").exists() and not (tmp_path / "out.jsonl.partial.json").exists()


def test_jsonl_documents_name_their_ids_and_bad_lines(cpc_run, tmp_path):
  rows = [json.dumps({"doc_id": "a", "text": "합성세제 조성물"}, ensure_ascii=False), "{broken",
          json.dumps({"title": "제목뿐"}, ensure_ascii=False), json.dumps({"id": "c", "text": "반도체 소자"},
                                                                        ensure_ascii=False)]
  source = tmp_path / "docs.jsonl"
  source.write_text("\n".join(rows) + "\n", encoding="utf-8")
  out = tmp_path / "out.jsonl"
  assert predict(cpc_run, str(source), str(out), workers=0) == 4
  lines = _jsonl(out)
  assert [line["id"] for line in lines] == ["0", "1", "2", "c"]  # the run's id field is "id"
  assert [line.get("error") for line in lines] == [None, "invalid_json", "missing_field", None]
  assert "text" in lines[2]["detail"] and lines[2]["where"] == f"{source}:3"
  assert predict(cpc_run, str(source), str(tmp_path / "b.jsonl"), workers=0, id_field="doc_id") == 4
  assert _jsonl(tmp_path / "b.jsonl")[0]["id"] == "a"


def test_ner_raw_text_gives_the_entities_of_the_klue_format(tmp_path, demo_tok_dir):
  """Raw sentences (with windows: longer than the model) get the entities that the same sentences get in KLUE's
  character format, at the same character offsets."""
  workdir = _run(tmp_path, demo_tok_dir, "ner_tiny", "token_classification", NER_LABELS, 13)
  sentences = [s for s in _sentences() if "\t" not in s and s.strip() == s][:40]
  klue = tmp_path / "sentences.tsv"
  klue.write_text("".join(f"## s{i}\t{s}\n" + "".join(f"{c}\n" for c in s) + "\n" for i, s in enumerate(sentences)),
                  encoding="utf-8")
  expected = tmp_path / "expected.jsonl"
  assert predict(workdir, str(klue), str(expected), input_format="task") == len(sentences)
  raw = tmp_path / "sentences.txt"
  raw.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
  out = tmp_path / "out.jsonl"
  predict(workdir, str(raw), str(out), workers=0)
  got, want = _jsonl(out), _jsonl(expected)
  assert [g["entities"] for g in got] == [w["entities"] for w in want]
  assert sum(len(w["entities"]) for w in want) >= 20
  assert any(len(MWPTokenizer.load(demo_tok_dir).encode(s).ids) > SEQ_LEN for s in sentences)  # windows


def test_qa_jsonl_answers_are_spans_of_the_context(tmp_path, demo_tok_dir):
  workdir = _run(tmp_path, demo_tok_dir, "qa_tiny", "question_answering", None, 13)
  texts = _sentences()
  rows = [{"id": f"q{i}", "question": texts[i][:12] + "은 무엇인가?", "context": " ".join(texts[i:i + 3])}
          for i in range(12)]
  source = tmp_path / "questions.jsonl"
  source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
  out = tmp_path / "answers.jsonl"
  assert predict(workdir, str(source), str(out), workers=0) == 12
  for row, line in zip(rows, _jsonl(out)):
    assert line["id"] == row["id"] and 0 <= line["score"] <= 1
    assert line["answer"] and row["context"][line["start"]:line["end"]] == line["answer"]
  with pytest.raises(KorpatError, match="question.*context"):
    predict(workdir, str(tmp_path / "answers.jsonl"), str(tmp_path / "x.jsonl"), input_format="text")


def test_an_interrupted_prediction_resumes_after_its_last_complete_chunk(cpc_run, tmp_path, monkeypatch):
  texts = [t for t in _sentences() if t.strip()][:50]
  source = tmp_path / "docs.txt"
  source.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
  monkeypatch.setattr(stream, "CHUNK_LINES", 8)  # the same chunks, so the same batches: the same bytes
  whole = tmp_path / "whole.jsonl"
  predict(cpc_run, str(source), str(whole), workers=0)

  calls = {"n": 0}
  real = stream.run_model

  def dies_at_the_fourth_chunk(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == 4:
      raise KeyboardInterrupt
    return real(*args, **kwargs)

  monkeypatch.setattr(stream, "run_model", dies_at_the_fourth_chunk)
  out = tmp_path / "out.jsonl"
  with pytest.raises(KeyboardInterrupt):
    predict(cpc_run, str(source), str(out), workers=0)
  partial = tmp_path / "out.jsonl.partial"
  assert not out.exists() and len(partial.read_text(encoding="utf-8").splitlines()) == 24
  with open(partial, "ab") as f:
    f.write(b'{"id": "24", "label"')  # a torn line after the last state: written again
  monkeypatch.setattr(stream, "run_model", real)
  calls["n"] = 0
  assert predict(cpc_run, str(source), str(out), workers=0) == 50
  assert out.read_text(encoding="utf-8") == whole.read_text(encoding="utf-8")
  assert not partial.exists()

  # A partial file of another input is left alone, in one line.
  monkeypatch.setattr(stream, "run_model", dies_at_the_fourth_chunk)
  with pytest.raises(KeyboardInterrupt):
    predict(cpc_run, str(source), str(out), workers=0)
  other = tmp_path / "other.txt"
  other.write_text("다른 입력\n", encoding="utf-8")
  monkeypatch.setattr(stream, "run_model", real)
  with pytest.raises(KorpatError, match=r"out\.jsonl\.partial: an unfinished prediction of another input"):
    predict(cpc_run, str(other), str(out), workers=0)


def test_progress_names_lines_rate_and_eta(monkeypatch, caplog):
  monkeypatch.setattr(stream, "PROGRESS_SECONDS", 0.0)
  progress = stream._Progress(total=1000, start=100)
  progress.t0 -= 10.0  # 10 s ago
  with caplog.at_level("INFO", logger="korpat_jax"):
    progress.update(300)
    progress.update(1000)  # done: no line
  lines = [r.getMessage() for r in caplog.records]
  assert len(lines) == 1 and lines[0].startswith("predict: 300/1,000 lines (30.0%), 20 docs/s, eta 0m35s"), lines
