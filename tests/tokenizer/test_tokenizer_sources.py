from __future__ import annotations

import gzip
import json

import zstandard

from korpat_jax.cli import main
from korpat_jax.tokenizer.sources import ReadStats, expand_corpus, iter_lines
from korpat_jax.tokenizer.wordpiece import read_vocab

RECORDS = [
    {"title": "질화갈륨 발광소자", "abstract": "기판 상에 질화갈륨층을 형성한다.",
     "claims": ["상기 질화갈륨층은 실리콘이 도핑된다.", {"text": "상기 기판은 사파이어이다."}],
     "description": "반사방지막을 증착한다.\n\n전해질층을 포함한다."},
    {"title": "이차전지", "claims": "상기 전해질층은 고분자로 이루어진다."},
]
JSONL_LINES = ["질화갈륨 발광소자", "기판 상에 질화갈륨층을 형성한다.", "상기 질화갈륨층은 실리콘이 도핑된다.",
               "상기 기판은 사파이어이다.", "반사방지막을 증착한다.", "전해질층을 포함한다.", "이차전지",
               "상기 전해질층은 고분자로 이루어진다."]


def _write_corpus(root):
  """A directory with the formats `prepare` reads: .jsonl.zst, .txt.gz (in a subdirectory) and .tsv."""
  (root / "sub").mkdir(parents=True)
  jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS).encode("utf-8")
  (root / "patents.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl))
  with gzip.open(root / "sub" / "notes.txt.gz", "wt", encoding="utf-8") as f:
    f.write("구동부는 모터를 포함한다.\n\n제어부는 구동부를 정지시킨다.\n")
  (root / "table.tsv").write_text("id\ttext\n1\t냉각기는 열을 방출한다.\n", encoding="utf-8")


def test_reads_what_prepare_reads(tmp_path):
  _write_corpus(tmp_path / "c")
  files = expand_corpus([str(tmp_path / "c")])
  assert [f.rsplit("/", 1)[1] for f in files] == ["patents.jsonl.zst", "notes.txt.gz", "table.tsv"]
  stats = ReadStats()
  lines = list(iter_lines(files, stats))
  assert lines == JSONL_LINES + ["구동부는 모터를 포함한다.", "제어부는 구동부를 정지시킨다.", "냉각기는 열을 방출한다."]
  assert (stats.files, stats.documents, stats.lines) == (3, 5, 11)


def test_train_on_compressed_jsonl_trains_on_text(tmp_path, capsys):
  _write_corpus(tmp_path / "c")
  rc = main(["tokenizer", "train", "--corpus", str(tmp_path / "c" / "*.jsonl.zst"), "--vocab-size", "200",
             "--out", str(tmp_path / "tok"), "--workers", "1"])
  assert rc == 0, capsys.readouterr().err
  vocab = read_vocab(tmp_path / "tok" / "vocab.txt")
  assert "\ufffd" not in vocab and not any(t.startswith(('{"', '"title')) for t in vocab)
  assert {"질화", "갈륨", "기판"} <= set(vocab)
  config = json.loads((tmp_path / "tok" / "mwp_tokenizer.json").read_text(encoding="utf-8"))
  assert config["training"]["lines"] == len(JSONL_LINES) and config["training"]["documents"] == 2


def test_reader_problems_are_counted_not_fatal(tmp_path):
  (tmp_path / "bad.jsonl").write_text('{"title": "기판"}\nnot json\n{"other": 1}\n', encoding="utf-8")
  (tmp_path / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
  stats = ReadStats()
  assert list(iter_lines(expand_corpus([str(tmp_path)]), stats)) == ["기판"]
  assert stats.reader.skipped["bad_json"] == 1 and stats.reader.skipped["no_text_field"] == 1
  assert stats.reader.skipped["binary_file"] == 1
  assert "skipped 1 bad json" in stats.summary() and "binary file" in stats.summary()
