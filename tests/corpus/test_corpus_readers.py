from __future__ import annotations

import gzip
import json

import pytest
import zstandard

from korpat_jax.corpus.readers import ReaderConfig, detect_format, expand_corpus, read_documents
from korpat_jax.corpus.report import PrepStats
from korpat_jax.errors import KorpatError


def _read(path, **kwargs):
  stats = PrepStats()
  docs = list(read_documents(str(path), ReaderConfig(**kwargs), stats))
  return docs, stats


def test_text_documents_are_separated_by_blank_lines(tmp_path):
  path = tmp_path / "a.txt"
  path.write_text("\ufeff첫 문서 첫 줄.\n첫 문서 둘째 줄.\n\n  \n둘째 문서.\r\n\n\n셋째 문서.", encoding="utf-8")
  docs, stats = _read(path)
  assert [d.text for d in docs] == ["첫 문서 첫 줄.\n첫 문서 둘째 줄.", "둘째 문서.", "셋째 문서."]
  assert [d.line for d in docs] == [1, 5, 8]
  assert not stats.skipped


def test_jsonl_fields_lists_and_bad_lines(tmp_path):
  path = tmp_path / "p.jsonl"
  rows = [
      json.dumps({"title": "발광 소자", "abstract": "요약이다.", "claims": ["청구 1.", {"text": "청구 2."}],
                  "description": "설명이다.", "id": 7}, ensure_ascii=False),
      "{not json",
      json.dumps({"id": 8}),
      json.dumps(["a list"]),
      "",
      json.dumps({"claims": "단일 청구항."}, ensure_ascii=False),
  ]
  path.write_text("\n".join(rows) + "\n", encoding="utf-8")
  docs, stats = _read(path)
  assert [d.text for d in docs] == ["발광 소자\n요약이다.\n청구 1.\n청구 2.\n설명이다.", "단일 청구항."]
  assert [d.line for d in docs] == [1, 6]
  assert stats.skipped == {"bad_json": 2, "no_text_field": 1}
  assert stats.where["bad_json"][0].startswith(f"{path}:2:")
  only_claims, _ = _read(path, jsonl_fields=("claims",))
  assert only_claims[0].text == "청구 1.\n청구 2."


def test_tsv_by_header_name_and_by_index(tmp_path):
  path = tmp_path / "t.tsv"
  path.write_text("id\ttext\n1\t문서 하나.\n2\n3\t문서 셋.\n", encoding="utf-8")
  docs, stats = _read(path)
  assert [d.text for d in docs] == ["문서 하나.", "문서 셋."]
  assert stats.skipped == {"missing_column": 1}
  docs, _ = _read(path, tsv_column="0")
  assert [d.text for d in docs] == ["id", "1", "2", "3"]
  _, stats = _read(path, tsv_column="body")
  assert stats.skipped == {"missing_column": 1} and "no column 'body'" in stats.where["missing_column"][0]


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_files_with_several_members(tmp_path, suffix):
  text = "".join(f"문서 {i} 이다.\n\n" for i in range(300)).encode()
  compress = gzip.compress if suffix == ".gz" else zstandard.ZstdCompressor().compress
  path = tmp_path / f"c.txt{suffix}"
  path.write_bytes(compress(text[:1000]) + compress(text[1000:]))
  docs, stats = _read(path)
  assert len(docs) == 300 and docs[-1].text == "문서 299 이다." and not stats.skipped


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_truncated_compressed_file_is_counted_not_raised(tmp_path, suffix):
  text = "".join(f"문서 {i} 이다.\n\n" for i in range(20000)).encode()
  compress = gzip.compress if suffix == ".gz" else (lambda b: zstandard.ZstdCompressor(level=1).compress(b))
  blob = compress(text)
  path = tmp_path / f"c.jsonl{suffix}"
  path.write_bytes(blob[: len(blob) * 2 // 3])
  docs, stats = _read(path, format="text")
  assert stats.skipped["truncated_file"] == 1
  assert "compressed" in stats.where["truncated_file"][0]
  assert len(docs) < 20000
  assert [d.text for d in docs] == [f"문서 {i} 이다." for i in range(len(docs))]  # complete documents only


def test_undecodable_lines_and_other_encodings(tmp_path):
  path = tmp_path / "b.txt"
  path.write_bytes("좋은 줄.\n".encode() + b"\xff\xfe bad\n" + "다음 줄.\n".encode())
  docs, stats = _read(path)
  assert [d.text for d in docs] == ["좋은 줄.\n다음 줄."]
  assert stats.skipped == {"undecodable_line": 1} and stats.where["undecodable_line"][0].startswith(f"{path}:2:")
  assert docs[0].notes == ("undecodable_line",) and stats.documents_read == 1 and not stats.documents_skipped
  legacy = tmp_path / "cp949.txt"
  legacy.write_bytes("특허 문서이다.\n".encode("cp949"))
  assert _read(legacy)[1].skipped == {"undecodable_line": 1, "undecodable_file": 1}
  assert _read(legacy, encoding="cp949")[0][0].text == "특허 문서이다."


def test_huge_documents_are_split_not_dropped(tmp_path):
  path = tmp_path / "h.txt"
  lines = [f"{i:03d} " + "가" * 45 for i in range(100)]  # 49 chars a line
  path.write_text("\n".join(lines) + "\n\n" + "나" * 250 + "\n", encoding="utf-8")
  docs, stats = _read(path, max_document_chars=200)
  assert all(len(d.text) <= 200 for d in docs)
  first = [d for d in docs if d.line == 1]
  assert "\n".join(d.text for d in first) == "\n".join(lines)
  assert "".join(d.text for d in docs if d.line == 102) == "나" * 250
  assert stats.adjusted == {"huge_document_split": 2}


def test_unreadable_file_is_counted(tmp_path):
  docs, stats = _read(tmp_path / "missing.txt")
  assert docs == [] and stats.skipped == {"unreadable_file": 1}


def test_expand_corpus_and_formats(tmp_path):
  (tmp_path / "d").mkdir()
  for name in ("d/b.jsonl.zst", "d/a.txt", "c.tsv.gz", "d/.hidden"):
    (tmp_path / name).write_text("x")
  files = expand_corpus([str(tmp_path / "d"), str(tmp_path / "*.gz")])
  assert [f.rsplit("/", 1)[1] for f in files] == ["c.tsv.gz", "a.txt", "b.jsonl.zst"]
  assert [detect_format(f) for f in files] == ["tsv", "text", "jsonl"]
  with pytest.raises(KorpatError, match="no files match"):
    expand_corpus([str(tmp_path / "nothing*.txt")])
