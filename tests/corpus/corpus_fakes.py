"""Corpus test helpers: a tiny deterministic tokenizer that needs no Mecab (one id per whitespace word), a small
patent-like corpus with every kind of damaged input, and a seeded fuzzed corpus."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import random
import struct
import zlib
from pathlib import Path
from typing import Sequence

import zstandard

from korpat_jax.boundaries import UNIT
from korpat_jax.corpus.tokenizing import SPECIAL_NAMES


@dataclasses.dataclass(frozen=True)
class WordHashTokenizer:
  vocab_size: int = 1000

  @property
  def vocab_hash(self) -> str:
    return f"word-hash-{self.vocab_size}"

  @property
  def special_ids(self) -> dict[str, int]:
    return {name: i for i, name in enumerate(SPECIAL_NAMES)}

  def encode(self, text: str) -> list[int]:
    return [5 + int.from_bytes(hashlib.md5(w.encode()).digest()[:4], "little") % (self.vocab_size - 5)
            for w in text.split()]

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    return [self.encode(t) for t in texts]

  def encode_batch_with_boundaries(self, texts: Sequence[str]) -> list[tuple[list[int], bytes]]:
    """Every word is one token, so every token starts a morpheme and an eojeol."""
    return [(ids, bytes([UNIT]) * len(ids)) for ids in self.encode_batch(texts)]


@dataclasses.dataclass(frozen=True)
class WordHashFactory:
  """Picklable factory, as the runners need."""

  vocab_size: int = 1000

  def __call__(self) -> WordHashTokenizer:
    return WordHashTokenizer(self.vocab_size)

PATENT_SENTENCES = [
    "본 발명은 질화갈륨 기판(10) 상에 형성된 발광다이오드에 관한 것이다.",
    "상기 발광다이오드는 n형 반도체층(20), 활성층(30) 및 p형 반도체층(40)을 순차적으로 포함한다.",
    "상기 활성층은 다중양자우물 구조를 가지며 발광 파장은 450 nm 내지 470 nm이다.",
    "본 발명에 따르면 광추출효율이 향상된 발광소자를 제공할 수 있다.",
    "도 1은 본 발명의 일 실시예에 따른 발광소자의 단면도이다.",
    "상기 전극은 투명 전도성 산화물로 이루어진다.또한 상기 전극의 두께는 100 nm 이하이다.",
]


def _doc(i: int, n: int) -> list[str]:
  return [f"{PATENT_SENTENCES[(i + k) % len(PATENT_SENTENCES)]} 실시예 {i}-{k}." for k in range(n)]


def write_corpus(root: Path, n_docs: int = 40, damaged: bool = True) -> str:
  """Text, JSONL.gz and TSV.zst files of patent-like documents, plus (when `damaged`) one of each kind of bad input.

  Returns the corpus glob.
  """
  root.mkdir(parents=True, exist_ok=True)
  third = n_docs // 3
  text_docs = ["\n".join([f"【{i:04d}】"] + _doc(i, 3 + i % 9)) for i in range(third)]
  (root / "a.txt").write_text("\n\n".join(text_docs) + "\n", encoding="utf-8")
  rows = [json.dumps({"title": f"발광소자 {i}", "abstract": " ".join(_doc(i, 2)),
                      "claims": [f"청구항 {k + 1}. {s}" for k, s in enumerate(_doc(i, 2 + i % 4))]},
                     ensure_ascii=False) for i in range(third, 2 * third)]
  (root / "b.jsonl.gz").write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
  tsv = "id\ttext\n" + "".join(f"{i}\t{' '.join(_doc(i, 1 + i % 5))}\n" for i in range(2 * third, n_docs))
  (root / "c.tsv.zst").write_bytes(zstandard.ZstdCompressor().compress(tsv.encode()))
  if damaged:
    bad = "\n\n".join(["【0001】 【기술분야】", " ".join(_doc(900, 2)), "끝없는 긴 문장 " * 400])
    (root / "d_bad.txt").write_bytes(bad.encode() + b"\n\n\xff\xfe broken line\n")
    (root / "e_bad.jsonl").write_text('{"title": "좋은 문서이다."}\n{broken\n', encoding="utf-8")
    blob = gzip.compress(("\n\n".join(" ".join(_doc(i, 3)) for i in range(950, 1400)) + "\n").encode())
    (root / "f_truncated.txt.gz").write_bytes(blob[: len(blob) // 2])
  return str(root / "*")


def tiny_png(rng: random.Random, size: int = 8) -> bytes:
  """A valid RGB PNG of random pixels."""
  def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
  rows = b"".join(b"\x00" + rng.randbytes(3 * size) for _ in range(size))
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
          + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def elf_like(rng: random.Random) -> bytes:
  """What the head of an x86-64 executable looks like: a NUL-padded header, then code."""
  header = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 64, 0, 0, 64, 56,
                                                             1, 64, 0, 0)
  return header + bytes(200) + rng.randbytes(3000)


# Binary files of the fuzzed corpus, by name: the rest are text, however damaged.
FUZZ_BINARIES = ("bin_random.dat", "bin_image.png", "bin_program", "bin_utf16.txt", "bin_packed.txt.gz")


def write_fuzzed_corpus(root: Path, seed: int) -> str:
  """A small corpus of everything that goes wrong in practice, drawn from `seed`: random bytes, binaries, mixed
  encodings, NUL and control characters, huge lines, byte flips, empty files, broken JSON and TSV, truncation.

  Returns the corpus glob.
  """
  rng = random.Random(seed)
  root.mkdir(parents=True, exist_ok=True)

  def sentence() -> str:
    return f"{rng.choice(PATENT_SENTENCES)} 실시예 {rng.randint(0, 999)}."

  def damaged_line() -> str:
    line = sentence()
    kind = rng.randrange(6)
    if kind == 0:
      at = rng.randrange(len(line))
      line = line[:at] + "\x00" + line[at:]
    elif kind == 1:
      line = "".join(c + (chr(rng.randrange(1, 32)) if rng.random() < 0.1 else "") for c in line)
    elif kind == 2:
      line = "".join(chr(rng.randrange(1, 9)) for _ in range(rng.randint(1, 6)))  # control characters only
    elif kind == 3:
      line = rng.choice(["【0001】", "【기술분야】", "<p></p>", "\u200b"])
    return line

  def text_docs(n: int) -> list[list[str]]:
    return [[damaged_line() for _ in range(rng.randint(1, 6))] for _ in range(n)]

  def as_text(docs: list[list[str]]) -> str:
    return "".join("\n".join(doc) + rng.choice(["\n\n", "\n \n", "\r\n\r\n", "\n\t\n\n"]) for doc in docs)

  (root / "good.txt").write_text(as_text(text_docs(rng.randint(5, 15))), encoding="utf-8")
  (root / "good.txt.zst").write_bytes(zstandard.ZstdCompressor().compress(as_text(text_docs(8)).encode()))
  (root / "legacy_cp949.txt").write_bytes(as_text([[sentence()] for _ in range(rng.randint(1, 5))]).encode("cp949"))
  mixed = b""
  for doc in text_docs(rng.randint(4, 10)):
    mixed += b"\n".join(line.encode(rng.choice(["utf-8", "utf-8", "cp949"]), errors="replace") for line in doc)
    mixed += b"\n\n"
  (root / "mixed_encodings.txt").write_bytes(mixed)
  flipped = bytearray(as_text(text_docs(10)).encode())
  for _ in range(len(flipped) // 50):
    flipped[rng.randrange(len(flipped))] = rng.randrange(256)
  (root / "byte_flips.txt").write_bytes(bytes(flipped))
  no_controls = bytes(b for b in rng.randbytes(3000) if b >= 32 or b in b"\t\n\r")
  (root / "random_text.txt").write_bytes(no_controls)
  words = " ".join(rng.choice(["기판", "전극", "발광", "소자", "층", "상기"]) for _ in range(rng.randint(2000, 4000)))
  (root / "huge_line.txt").write_text(sentence() + "\n" + words + "\n\n" + sentence() + "\n", encoding="utf-8")
  (root / "empty.txt").write_bytes(b"")
  (root / "blank.txt").write_text("\n \n\t\n\r\n", encoding="utf-8")
  rows = [json.dumps({"title": sentence(), "claims": [damaged_line(), sentence()]}, ensure_ascii=False),
          "{broken", "[1, 2]", json.dumps({"id": 3}), "", json.dumps({"abstract": words}, ensure_ascii=False),
          json.dumps({"text": damaged_line()}, ensure_ascii=False)]
  legacy_row = json.dumps({"title": sentence()}, ensure_ascii=False).encode("cp949")
  jsonl = "\n".join(rng.sample(rows, len(rows))).encode() + b"\n" + legacy_row + b"\n"
  (root / "rows.jsonl").write_bytes(jsonl)
  tsv = "id\ttext\n" + "".join(rng.choice([f"{i}\t{damaged_line()}\n", f"{i}\n", f"{i}\t\n", f"{i}\t{sentence()}\n"])
                               for i in range(rng.randint(3, 12)))
  (root / "table.tsv").write_bytes(tsv.encode() + "99\t레거시 행이다.\n".encode("cp949"))
  (root / "no_column.tsv").write_text("id\tbody\n1\t본문이다.\n", encoding="utf-8")
  blob = gzip.compress(as_text(text_docs(200)).encode())
  (root / "truncated.txt.gz").write_bytes(blob[: len(blob) // 2])
  (root / "bin_random.dat").write_bytes(rng.randbytes(rng.randint(500, 5000)))
  (root / "bin_image.png").write_bytes(tiny_png(rng))
  (root / "bin_program").write_bytes(elf_like(rng))
  (root / "bin_utf16.txt").write_text(as_text([["Patent text in UTF-16."]] * 3), encoding="utf-16")
  (root / "bin_packed.txt.gz").write_bytes(gzip.compress(elf_like(rng)))
  return str(root / "*")
