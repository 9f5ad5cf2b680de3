"""An export serves RAW Korean text: transformers' pipelines on the exported directory (tokenizer loaded as remote code
that runs Mecab-ko) give the entities, labels and answers of `korpat-jax predict` on the same inputs, and the
tokenizer gives the ids of `MWPTokenizer.encode` with offsets into the raw text.

Runs are built cheaply, as the other export tests do: freshly initialised (perturbed) task heads on a tiny model
with the demo MWP tokenizer, written as a run directory with the run config that `korpat-jax predict` reads.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import pickle
import re
import shutil
import subprocess
import sys
from typing import Sequence

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hf_export_testlib as lib  # noqa: E402
from helpers import DEMO_SETS  # noqa: E402
from korpat_jax import workdir as workdir_lib  # noqa: E402
from korpat_jax import cli, ner  # noqa: E402
from korpat_jax.export import cli as export_cli  # noqa: E402
from korpat_jax.export.to_hf import restore_params  # noqa: E402
from korpat_jax.finetune.predict import predict  # noqa: E402
from korpat_jax.model.config import ElectraConfig  # noqa: E402
from korpat_jax.model.heads import task_model  # noqa: E402
from korpat_jax.tokenizer import MWPTokenizer  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"  # more text where present
SEQ_LEN = 64      # the runs' train.seq_len: the export's model_max_length (the model has POSITIONS)
POSITIONS = 128
NER_LABELS = {0: "O", 1: "B-PS", 2: "I-PS", 3: "B-LC", 4: "I-LC"}
CPC_LABELS = {0: "A61K", 1: "C11D", 2: "H01L"}
QA_HEAD = {"max_query_length": 16, "doc_stride": 24, "max_answer_length": 10}  # several windows per context
EDGE_CASES = ["", "   ", "漢字와 English 혼합, ABC123 [SEP] [CLS]!", "  공백   많은\t\n문장\x00입니다  ", "é café Å",
              "ㄱㄴㄷ 😀 이모지", "가" * 150 + " 긴 낱말", "질화갈륨(GaN) 기판 상에 2~3 ㎛ 두께로 형성한다."]


# -- data ------------------------------------------------------------------------------------------------------------

def _demo_sentences() -> list[str]:
  """Sentences of the packaged fine-tuning demo sets (NER eval markup removed, CPC abstracts, NLI pairs)."""
  out = [re.sub(r"<([^<>:]+):[A-Z]{2}>", r"\1", line.split("\t", 1)[1]).strip()
         for line in (DEMO_SETS / "ner_eval.tsv").read_text(encoding="utf-8").splitlines()
         if line.startswith("## ") and "\t" in line]
  for name, columns in (("cpc_eval.tsv", (1, 2)), ("pair_eval.tsv", (1, 2))):
    rows = (DEMO_SETS / name).read_text(encoding="utf-8").splitlines()[1:]
    out += [row.split("\t")[c] for row in rows for c in columns if len(row.split("\t")) > c]
  return out


def _shared_sentences() -> list[str]:
  """KLUE NER dev sentences and KorQuAD dev contexts from ../shared/data ([] when absent)."""
  out = []
  ner = SHARED_DATA / "klue-ner-v1.1_dev.tsv"
  if ner.is_file():
    out += [re.sub(r"<([^<>:]+):[A-Z]{2}>", r"\1", line.split("\t", 1)[1]).strip()
            for line in open(ner, encoding="utf-8") if line.startswith("## klue-ner")]
  korquad = SHARED_DATA / "KorQuAD_v1.0_dev.json"
  if korquad.is_file():
    with open(korquad, encoding="utf-8") as f:
      out += [p["context"] for a in json.load(f)["data"][:40] for p in a["paragraphs"]]
  return out


def _short(tok: MWPTokenizer, texts: list[str], limit: int) -> list[str]:
  return [t for t in texts if t.strip() and len(tok.encode(t).ids) <= limit]


# -- runs ------------------------------------------------------------------------------------------------------------

def _model_config(vocab_size: int) -> ElectraConfig:
  return lib.mwp_model_config(vocab_size, POSITIONS)


def _run(root, tok_dir, variant: str, task: str, id2label, overrides: dict, seed: int,
         texts: Sequence[str] = ()) -> str:
  """A fine-tuning run directory that `korpat-jax predict` and `korpat-jax export` take."""
  return lib.mwp_task_run(root, tok_dir, variant, task, id2label, overrides, seed, texts, seq_len=SEQ_LEN,
                          positions=POSITIONS)


def _export(workdir: str, out) -> str:
  assert export_cli.main(["--workdir", workdir, "--out", str(out)]) == 0
  return str(out)


def _write_lines(path, rows) -> str:
  path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
  return str(path)


def _read_jsonl(path) -> list[dict]:
  return [json.loads(line) for line in open(path, encoding="utf-8")]


# -- the tokenizer ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ner_export(tmp_path_factory, demo_tok_dir):
  root = tmp_path_factory.mktemp("ner_pipeline")
  workdir = _run(root, demo_tok_dir, "ner_tiny", "token_classification", NER_LABELS, {"data.format": "text"}, 11)
  return workdir, _export(workdir, root / "hf")


def test_export_ships_the_remote_tokenizer_and_no_tokenizer_json(ner_export):
  _, out = ner_export
  names = set(os.listdir(out))
  assert {"tokenization_korpat.py", "vocab.txt", "mwp_tokenizer.json", "tokenizer_config.json"} <= names
  assert "tokenizer.json" not in names  # plain AutoTokenizer would load it as BERT, without Mecab-ko
  with open(os.path.join(out, "tokenizer_config.json"), encoding="utf-8") as f:
    config = json.load(f)
  assert config["tokenizer_class"] == "KorpatMWPTokenizer"
  assert config["auto_map"]["AutoTokenizer"][1] == "tokenization_korpat.KorpatMWPTokenizer"
  assert config["model_max_length"] == SEQ_LEN  # the run's training length, not the model's 128 positions
  source = open(os.path.join(out, "tokenization_korpat.py"), encoding="utf-8").read()
  assert not re.search(r"^\s*(import|from)\s+(jax|korpat_jax)\b", source, re.M)


def test_remote_tokenizer_runs_without_korpat_jax_and_jax(ner_export, demo_tok_dir, tmp_path):
  """A serving environment: transformers, tokenizers, torch and mecab-ko, but no korpat_jax, jax or flax: the
  tokenizer and the NER pipeline run there."""
  text = "기판 상에 질화갈륨을 형성한다."
  result = subprocess.run([sys.executable, "-c", _SERVING_SCRIPT, ner_export[1], text], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads(result.stdout.strip().splitlines()[-1]) == MWPTokenizer.load(demo_tok_dir).encode(text).ids


_SERVING_SCRIPT = """
import json, sys
for name in ("korpat_jax", "jax", "jaxlib", "flax"):
  sys.modules[name] = None  # import fails, find_spec says absent
from transformers import AutoTokenizer, pipeline
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
ner = pipeline("token-classification", model=sys.argv[1], trust_remote_code=True, aggregation_strategy="simple")
assert type(ner).__name__ == "KorpatTokenClassificationPipeline" and isinstance(ner(sys.argv[2] * 20), list)
assert not any(m in sys.modules and sys.modules[m] for m in ("korpat_jax", "jax"))
print(json.dumps(tokenizer(sys.argv[2])["input_ids"]))
"""


def test_remote_tokenizer_equals_mwp_encode_with_raw_offsets(ner_export, demo_tok_dir):
  _, out = ner_export
  hf = transformers.AutoTokenizer.from_pretrained(out, trust_remote_code=True)
  assert hf.is_fast and hf.model_max_length == SEQ_LEN
  mwp = MWPTokenizer.load(demo_tok_dir)
  texts = _demo_sentences() + EDGE_CASES + _shared_sentences()
  texts.append(" ".join(texts[:400]))  # over 20,000 characters: Mecab-ko sees it in chunks, in both
  assert len(texts[-1]) > 20_000
  batch = hf(texts, return_offsets_mapping=True, verbose=False)
  for text, ids, offsets in zip(texts, batch["input_ids"], batch["offset_mapping"]):
    expected = mwp.encode(text)
    assert ids == expected.ids, text[:80]
    assert [tuple(o) for o in offsets] == expected.offsets, text[:80]
  print(f"{len(texts)} texts: equal ids and offsets")
  for text in texts[:200] + EDGE_CASES:
    truncated = hf(text, truncation=True)["input_ids"]
    assert truncated == mwp.encode(text, max_length=SEQ_LEN).ids and len(truncated) <= SEQ_LEN


def test_offsets_index_the_raw_text(ner_export):
  hf = transformers.AutoTokenizer.from_pretrained(ner_export[1], trust_remote_code=True)
  text = "  질화갈륨(GaN) 기판 상에\t발광다이오드를 형성한다. "
  enc = hf(text, return_offsets_mapping=True)
  for token, (start, end) in zip(hf.convert_ids_to_tokens(enc["input_ids"]), enc["offset_mapping"]):
    if token in ("[CLS]", "[SEP]"):
      assert (start, end) == (0, 0)
    elif token != "[UNK]":
      assert text[start:end] == token.removeprefix("##"), (token, start, end)


def test_tokenizer_pickles_and_saves_without_tokenizer_json(ner_export, tmp_path):
  """The Mecab-ko pre-tokenizer is Python: pickling and save_pretrained work around it, never writing tokenizer.json."""
  hf = transformers.AutoTokenizer.from_pretrained(ner_export[1], trust_remote_code=True)
  text = "질화갈륨 기판 상에 발광다이오드를 형성한다."
  ids = hf(text)["input_ids"]
  assert pickle.loads(pickle.dumps(hf))(text)["input_ids"] == ids
  assert copy.deepcopy(hf)(text)["input_ids"] == ids and hf(text)["input_ids"] == ids
  saved = tmp_path / "saved"
  hf.save_pretrained(saved)
  assert {"vocab.txt", "mwp_tokenizer.json", "tokenization_korpat.py"} <= set(os.listdir(saved))
  assert "tokenizer.json" not in os.listdir(saved)
  assert transformers.AutoTokenizer.from_pretrained(str(saved), trust_remote_code=True)(text)["input_ids"] == ids


def test_loading_without_trust_remote_code_fails_loudly(ner_export):
  """transformers 5 resolves an electra config without trust_remote_code to its fallback backend, which finds
  no tokenizer.json to build from: an error, never a BERT tokenizer that skips Mecab-ko; the NER pipeline is the
  export's own (config.json custom_pipelines), which transformers refuses to run without trust_remote_code."""
  _, out = ner_export
  with pytest.raises(ValueError, match="backend tokenizer"):
    transformers.AutoTokenizer.from_pretrained(out)
  with pytest.raises(ValueError, match="trust_remote_code"):  # the export's own pipeline is remote code too
    transformers.pipeline("token-classification", model=out)


def test_user_dictionary_ships_and_is_used(tmp_path, demo_tok_dir, capsys):
  from korpat_jax.tokenizer.userdic import build_user_dictionary
  csv = tmp_path / "mine.csv"
  csv.write_text("질화갈륨기판,,,,NNG,*,T,질화갈륨기판,*,*,*,*\n발광다이오드,,,,NNG,*,F,발광다이오드,*,*,*,*\n",
                 encoding="utf-8")
  dic = build_user_dictionary(None, str(tmp_path / "dic"), [str(csv)], log=lambda m: None, quiet_compile=True)
  plain = MWPTokenizer.load(demo_tok_dir)
  MWPTokenizer(plain.vocab, dic.user_dic, plain.config).save(tmp_path / "tok")  # references the .dic by path
  mwp = MWPTokenizer.load(tmp_path / "tok")
  cfg = _model_config(mwp.vocab_size)
  workdir = lib.make_workdir(str(tmp_path / "run"), cfg, lib.pretrainer_params(cfg),
                             tokenizer_dir=str(tmp_path / "tok"))
  out = _export(workdir, tmp_path / "hf")
  assert os.path.isfile(os.path.join(out, "user.dic"))
  hf = transformers.AutoTokenizer.from_pretrained(out, trust_remote_code=True)
  text = "질화갈륨기판 상에 발광다이오드를 형성한다."
  assert hf.morphemes(text)[:1] == ["질화갈륨기판"]
  for sentence in [text] + _demo_sentences()[:300]:
    assert hf(sentence)["input_ids"] == mwp.encode(sentence).ids
  assert mwp.encode(text).ids != plain.encode(text).ids  # the dictionary changes this sentence's ids

  changed = tmp_path / "changed"
  shutil.copytree(out, changed)
  (changed / "user.dic").write_bytes(b"not the dictionary")
  with pytest.raises(ValueError, match="user dictionary"):
    transformers.AutoTokenizer.from_pretrained(str(changed), trust_remote_code=True)

  os.remove(dic.user_dic)  # the run's dictionary is gone: exporting without it would segment differently
  capsys.readouterr()
  assert cli.main(["export", "--workdir", workdir, "--out", str(tmp_path / "again")]) == 2
  error = capsys.readouterr().err.strip().splitlines()
  assert len(error) == 1 and "user_dic" in error[0], error


# -- pipelines against `korpat-jax predict` ---------------------------------------------------------------------------

def test_token_classification_pipeline_equals_predict(ner_export, demo_tok_dir, tmp_path):
  """`korpat-jax predict` covers a sentence longer than the model with overlapping windows (each token tagged from
  the window where it is most central) and reads entities from the characters of raw text with the strict IOB2
  rule. The export registers its own pipeline (pipeline_korpat.py) doing the same, so the entities are predict's on
  EVERY sentence: short or several windows long, with well-formed tags or stray I- tags (which transformers' own
  "simple" aggregation, the project's lenient reading, would start entities at)."""
  workdir, out = ner_export
  with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
    config = json.load(f)
  assert config["korpat_token_classification"] == {"max_seq_length": SEQ_LEN, "window_stride": (SEQ_LEN - 2) // 2}
  assert config["custom_pipelines"]["token-classification"]["impl"] == \
      "pipeline_korpat.KorpatTokenClassificationPipeline"
  mwp = MWPTokenizer.load(demo_tok_dir)
  demo = [s.strip() for s in _demo_sentences() if s.strip()]
  short = _short(mwp, demo, SEQ_LEN - 2)[:300]
  long = [t for t in demo if len(mwp.encode(t, add_special_tokens=False).ids) > SEQ_LEN - 2][:30]
  long += [" ".join(demo[i:i + 6]) for i in range(0, 120, 6)]  # several windows each
  sentences = short + long + [e for e in EDGE_CASES if e.strip()]
  predicted = tmp_path / "predictions.jsonl"
  rows = [{"id": str(i), "text": s} for i, s in enumerate(sentences)]
  assert predict(workdir, _write_lines(tmp_path / "sentences.jsonl", rows), str(predicted)) == len(sentences)
  lines = _read_jsonl(predicted)
  assert [row["id"] for row in lines] == [r["id"] for r in rows] and not any("error" in row for row in lines)
  strict = [_entity_set(row["entities"], "label") for row in lines]

  pipe = transformers.pipeline("token-classification", model=out, trust_remote_code=True,
                               aggregation_strategy="simple")
  results = pipe(sentences)
  assert [_entity_set(entities, "entity_group") for entities in results] == strict
  assert all(e["word"] == s[e["start"]:e["end"]] and 0 < e["score"] <= 1 for s, r in zip(sentences, results)
             for e in r)
  one_by_one = pipe(long, batch_size=1)  # windows unpadded, one a model call
  assert [_entity_set(r, "entity_group") for r in one_by_one] == strict[len(short):len(short) + len(long)]
  assert [e["score"] for r in one_by_one for e in r] == pytest.approx(
      [e["score"] for r in results[len(short):len(short) + len(long)] for e in r], abs=1e-5)
  assert _entity_set(pipe(long[0]), "entity_group") == strict[len(short)]

  # the short sentences: tags with stray I- tags, where the strict and lenient readings differ
  tags = _flax_token_tags(workdir, mwp, short)
  lenient = [_entity_set(ner.decode_entities(s, mwp.encode(s, add_special_tokens=False).offsets, t), "label")
             for s, t in zip(short, tags)]
  ill_formed = [i for i, t in enumerate(tags) if not _well_formed(t)]
  print(f"{len(ill_formed)} of {len(short)} short sentences with ill-formed tags")
  assert len(ill_formed) >= 20 and sum(lenient[i] != strict[i] for i in ill_formed) >= 20
  assert sum(len(strict[i]) for i in range(len(short))) >= 20
  tokens = pipe(short, aggregation_strategy="none", ignore_labels=[])
  assert [[t["entity"] for t in sentence] for sentence in tokens] == tags
  assert all([t["index"] for t in sentence] == list(range(1, len(sentence) + 1)) for sentence in tokens)

  # the long ones: entities past the training length, which truncation would lose
  encoded = [mwp.encode(s, add_special_tokens=False) for s in long]
  cut = [e.offsets[SEQ_LEN - 2][0] for e in encoded]  # where truncation at SEQ_LEN would end the text
  beyond = sum(any(start >= c for start, _, _ in strict[len(short) + i]) for i, c in enumerate(cut))
  print(f"{len(long)} long sentences of up to {max(len(e.ids) for e in encoded)} tokens, {beyond} with entities "
        f"past {SEQ_LEN} tokens")
  assert len(long) >= 40 and max(len(e.ids) for e in encoded) > 2 * SEQ_LEN and beyond >= 20


def _entity_set(entities: list[dict], label_key: str) -> set[tuple[int, int, str]]:
  return {(int(e["start"]), int(e["end"]), e[label_key]) for e in entities}


def _well_formed(tags: list[str]) -> bool:
  """IOB2 where every I-X continues an X (the strict and lenient readings agree)."""
  previous = "O"
  for tag in tags:
    if tag.startswith("I-") and previous[2:] != tag[2:]:
      return False
    previous = tag
  return True


def _flax_token_tags(workdir: str, mwp: MWPTokenizer, sentences: list[str]) -> list[list[str]]:
  """The run's JAX model on MWPTokenizer ids (padded to SEQ_LEN): each sentence's predicted tag per token."""
  cfg, _, _ = workdir_lib.read_model_info(workdir)
  _, params = restore_params(workdir, None)
  encoded = [mwp.encode(s).ids for s in sentences]
  ids = np.zeros((len(encoded), SEQ_LEN), np.int32)
  for row, e in enumerate(encoded):
    ids[row, :len(e)] = e
  logits = jax.jit(task_model("token_classification", cfg, len(NER_LABELS)).apply)(
      {"params": params}, ids, np.zeros_like(ids), (ids != 0).astype(np.int32))
  predicted = np.asarray(logits).argmax(-1)
  return [[NER_LABELS[int(i)] for i in predicted[row, 1:len(e) - 1]] for row, e in enumerate(encoded)]


def test_text_classification_pipeline_equals_predict(tmp_path, demo_tok_dir):
  """Labels and probabilities; texts longer than the training length are cut as predict cuts them
  (data.long_text=head: the first seq_len - 2 tokens) when the pipeline is called with truncation=True."""
  texts = _demo_sentences()[::7][:40]
  workdir = _run(tmp_path, demo_tok_dir, "cpc_tiny", "sequence_classification", CPC_LABELS,
                 {"data.cpc_level": "none"}, 12, texts)
  out = _export(workdir, tmp_path / "hf")
  mwp = MWPTokenizer.load(demo_tok_dir)
  assert any(len(mwp.encode(t).ids) > SEQ_LEN for t in texts)  # some are cut to the training length
  rows = [{"id": str(i), "text": t} for i, t in enumerate(texts)]
  predicted = tmp_path / "predictions.jsonl"
  assert predict(workdir, _write_lines(tmp_path / "texts.jsonl", rows), str(predicted)) == len(texts)
  expected = _read_jsonl(predicted)

  classify = transformers.pipeline("text-classification", model=out, trust_remote_code=True)
  found = classify(texts, truncation=True)
  assert [f["label"] for f in found] == [e["label"] for e in expected]
  assert [f["score"] for f in found] == pytest.approx([e["scores"][e["label"]] for e in expected], abs=1e-4)
  assert len({e["label"] for e in expected}) > 1


def test_question_answering_pipeline_equals_predict(tmp_path, demo_tok_dir):
  """transformers 5 has no question-answering pipeline: the export registers its own (pipeline_korpat.py), with
  the run's window settings; contexts span several windows."""
  workdir = _run(tmp_path, demo_tok_dir, "qa_tiny", "question_answering", None,
                 {f"head.{k}": v for k, v in QA_HEAD.items()}, 13)
  out = _export(workdir, tmp_path / "hf")
  with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
    assert json.load(f)["korpat_question_answering"] == {"max_seq_length": SEQ_LEN, "n_best_size": 20, **QA_HEAD}
  lines = [s for s in _demo_sentences() if len(s) > 20]
  contexts = [" ".join(lines[i:i + 4]) for i in range(0, 48, 4)]
  questions = [(f"q{i}", f"{lines[(i * 5 + 2) % len(lines)][:15]}은 무엇인가?", contexts[i % len(contexts)])
               for i in range(16)]
  data = {"version": "demo", "data": [{"title": "demo", "paragraphs": [
      {"context": c, "qas": [{"id": qid, "question": q, "answers": []}]} for qid, q, c in questions]}]}
  source = tmp_path / "questions.json"
  source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
  predict(workdir, str(source), str(tmp_path / "predictions.json"))
  with open(tmp_path / "predictions.json", encoding="utf-8") as f:
    expected = json.load(f)

  qa = transformers.pipeline("question-answering", model=out, trust_remote_code=True)
  found = qa([{"question": q, "context": c} for _, q, c in questions])
  mwp = MWPTokenizer.load(demo_tok_dir)
  assert any(len(mwp.encode(c).ids) > SEQ_LEN for _, _, c in questions)  # several windows per context
  assert [f["answer"] for f in found] == [expected[qid] for qid, _, _ in questions]
  assert len({f["answer"] for f in found}) > 3
  assert all(c[f["start"]:f["end"]] == f["answer"] for f, (_, _, c) in zip(found, questions))
  single = qa(question=questions[0][1], context=questions[0][2])
  assert single["answer"] == expected["q0"]
  with pytest.raises(ValueError, match="trust_remote_code"):
    transformers.pipeline("question-answering", model=out)
