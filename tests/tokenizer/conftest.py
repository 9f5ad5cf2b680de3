from __future__ import annotations

from pathlib import Path

import pytest


SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def klue_ner_sentences(start: int = 0, stop: int | None = None) -> list[str]:
  """Plain sentences of KLUE NER dev from ../shared/data (skips the test when absent)."""
  import re
  path = SHARED_DATA / "klue-ner-v1.1_dev.tsv"
  if not path.is_file():
    pytest.skip(f"{path} not present (fresh clone without the shared data)")
  out = []
  for line in path.read_text(encoding="utf-8").splitlines():
    if line.startswith("## klue-ner"):
      out.append(re.sub(r"<([^<>:]+):[A-Z]{2}>", r"\1", line.split("\t", 1)[1]).strip())
  return out[start:stop]


@pytest.fixture(scope="session")
def klue_ner():
  """`klue_ner(start, stop)`: KLUE NER dev sentences (the test is skipped without ../shared/data)."""
  return klue_ner_sentences
