"""Corpus test helpers: a tiny deterministic tokenizer that needs no Mecab (one id per whitespace word), and a
small patent-like corpus with every kind of damaged input."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from pathlib import Path
from typing import Sequence

import zstandard

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
