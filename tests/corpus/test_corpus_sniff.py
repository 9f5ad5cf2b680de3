from __future__ import annotations

import gzip
import json
import random

import pytest

from corpus_fakes import elf_like, tiny_png
from korpat_jax.corpus import sniff
from korpat_jax.corpus.readers import ReaderConfig, read_documents
from korpat_jax.corpus.report import PrepStats

KOREAN = "본 발명은 질화갈륨 기판 상에 형성된 발광다이오드에 관한 것이다.\n"


def _read(path, **kwargs):
  stats = PrepStats()
  docs = list(read_documents(str(path), ReaderConfig(**kwargs), stats))
  return docs, stats


@pytest.mark.parametrize("name, make", [
    ("program", elf_like),
    ("image.png", tiny_png),
    ("noise.txt", lambda rng: rng.randbytes(4096)),
    ("nul_heavy.txt", lambda rng: KOREAN.encode().replace(b" ", b"\x00") * 20),
    ("utf16.txt", lambda rng: (KOREAN * 5).encode("utf-16")),
    ("packed.jsonl.gz", lambda rng: gzip.compress(elf_like(rng))),  # judged after decompression
])
def test_binary_files_are_skipped_and_counted(tmp_path, name, make):
  path = tmp_path / name
  path.write_bytes(make(random.Random(0)))
  docs, stats = _read(path)
  assert docs == [] and stats.documents_read == 0
  assert stats.skipped == {"binary_file": 1}
  assert stats.where["binary_file"][0].startswith(f"{path}: ") and "not text" in stats.where["binary_file"][0]


@pytest.mark.parametrize("data", [
    (KOREAN * 50).encode(),
    (KOREAN * 50).encode("cp949"),  # another encoding is not binary: it gets an encoding hint instead
    ("\x1b[1m" + KOREAN + "\x1b[0m\f\v") .encode() * 20,  # escape, form feed, vertical tab are text
    b"".join(KOREAN.encode() + (b"\x00\x07" if i % 10 == 0 else b"") for i in range(100)),  # a few stray controls
    b"",
])
def test_text_is_not_binary(data):
  assert sniff.binary_reason(data[:sniff.SAMPLE_BYTES]) is None


def test_stray_nul_and_control_characters_are_cleaned_not_fatal(tmp_path):
  path = tmp_path / "a.txt"
  path.write_bytes(("첫 문장\x00이다.\n둘째\x07 문장이다.\n" + KOREAN * 8).encode() * 30)  # one NUL in 10 lines
  docs, stats = _read(path)
  assert len(docs) == 1 and not stats.skipped


def test_random_bytes_are_binary_for_any_seed():
  assert all(sniff.binary_reason(random.Random(seed).randbytes(1000)) for seed in range(50))


def test_a_cp949_file_read_as_utf8_suggests_the_encoding(tmp_path):
  path = tmp_path / "legacy.txt"
  path.write_bytes((KOREAN + "\n" + KOREAN).encode("cp949"))
  docs, stats = _read(path)
  assert docs == [] and stats.documents_read == 2 and stats.documents_skipped == {"undecodable": 2}
  assert stats.skipped["undecodable_file"] == 1
  assert stats.where["undecodable_file"] == [
      f"{path}: 2 of 2 lines do not decode as utf-8; looks like cp949/euc-kr: try --encoding cp949"]
  docs, stats = _read(path, encoding="cp949")
  assert len(docs) == 2 and not stats.skipped


def test_hints_for_other_encodings(tmp_path):
  path = tmp_path / "utf8.txt"
  path.write_text(KOREAN, encoding="utf-8")
  _, stats = _read(path, encoding="ascii")
  assert stats.where["undecodable_file"][0].endswith("do not decode as ascii; looks like utf-8: try --encoding utf-8")
  damaged = tmp_path / "damaged.txt"
  damaged.write_bytes(b"\xff\xfe\xfd line\n" * 3 + KOREAN.encode())
  _, stats = _read(damaged)
  assert stats.where["undecodable_file"][0].endswith("3 of 4 lines do not decode as utf-8; "
                                                     "not cp949/euc-kr either: damaged, or pass its --encoding")
  mostly_fine = tmp_path / "fine.txt"
  mostly_fine.write_bytes(KOREAN.encode() * 3 + b"\xff bad\n")
  assert "undecodable_file" not in _read(mostly_fine)[1].skipped


def test_undecodable_documents_are_counted_as_documents(tmp_path):
  text = tmp_path / "t.txt"
  text.write_bytes(KOREAN.encode() * 3 + b"\n" + KOREAN.encode("cp949") * 2 + b"\n" + KOREAN.encode()
                   + KOREAN.encode("cp949"))  # a good document, an undecodable one, one that lost a line
  docs, stats = _read(text)
  assert [d.notes for d in docs] == [(), ("undecodable_line",)]
  assert stats.documents_read == 3 and stats.documents_skipped == {"undecodable": 1}
  assert stats.skipped == {"undecodable_line": 3}
  rows = tmp_path / "r.jsonl"
  row = json.dumps({"text": KOREAN.strip()}, ensure_ascii=False)
  rows.write_bytes(f"{row}\n".encode() + f"{row}\n".encode("cp949") + b"{bad\n")
  docs, stats = _read(rows)
  assert len(docs) == 1 and stats.documents_read == 3
  assert stats.documents_skipped == {"undecodable": 1, "bad_json": 1}
  table = tmp_path / "t.tsv"
  table.write_bytes(b"id\ttext\n1\t" + KOREAN.encode() + b"2\t" + KOREAN.encode("cp949") + b"3\t\n4\n")
  docs, stats = _read(table)
  assert len(docs) == 1 and stats.documents_read == 4
  assert stats.documents_skipped == {"undecodable": 1, "empty_document": 1, "missing_column": 1}
