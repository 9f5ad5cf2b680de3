"""The hard patent set (issue 21): realism="abstract" is deterministic, leaves the default sentences unchanged, and
its statistics (benchmarks/speed/patent_stats.py) land where they were tuned: harder for the caches than the
default set, a little harder than the demo's CPC documents."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:  # `benchmarks` is a package at the repository root
  sys.path.insert(0, REPO)
from benchmarks.speed.patent_abstracts import ABSTRACT_MAX_CHARS, ABSTRACT_MIN_CHARS  # noqa: E402
from benchmarks.speed.patent_sentences import patent_sentences, warmup_sentences  # noqa: E402
from benchmarks.speed.patent_stats import (FeatureAnalyzer, cpc_sentences, patent_style_sentences,  # noqa: E402
                                           sentence_stats, split_sentences)

# sha256 of "\n".join(patent_sentences(2000)) as published with the issue 11 figures: must never change.
DEFAULT_2000_SHA256 = "bde979728441b14dbf0ad1f8e10ddeb8d528c6ba670ad1035543d0c59f105b42"


@pytest.fixture(scope="module")
def analyzer() -> FeatureAnalyzer:
  return FeatureAnalyzer()


def test_default_sentences_are_unchanged():
  texts = patent_sentences(2000)
  assert hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest() == DEFAULT_2000_SHA256
  assert patent_sentences(2000, realism="default") == texts
  with pytest.raises(ValueError):
    patent_sentences(3, realism="claims")


def test_abstract_mode_is_deterministic_and_disjoint_from_its_warmup():
  texts = patent_sentences(300, seed=5, realism="abstract")
  assert texts == patent_sentences(300, seed=5, realism="abstract")
  assert texts != patent_sentences(300, seed=6, realism="abstract")
  assert all(ABSTRACT_MIN_CHARS <= len(t) <= ABSTRACT_MAX_CHARS for t in texts)
  assert len(set(texts)) == len(texts)
  warm = warmup_sentences(200, texts, realism="abstract")
  assert len(warm) == 200 and not set(warm) & set(texts)


def test_abstract_mode_statistics_land_in_the_tuned_range(analyzer):
  texts = patent_sentences(400, seed=11, realism="abstract")
  warm = patent_sentences(200, seed=1011, realism="abstract")
  hard = sentence_stats(texts, warm, analyzer)
  easy = sentence_stats(patent_sentences(400), patent_sentences(200, seed=1011), analyzer)
  assert 90 <= hard["chars/sentence"] <= 150
  assert 1_450 <= hard["distinct in first 10,000 morphemes"] <= 2_100   # CPC demo: 1,415-1,448
  assert 0.035 <= hard["cache misses (of morphemes)"] <= 0.09
  assert hard["plain share of misses"] >= 0.9
  assert 0.02 <= hard["eojeols with >= 3 nouns"] <= 0.08
  assert easy["distinct in first 10,000 morphemes"] < 1_100 and easy["cache misses (of morphemes)"] < 0.02


def test_statistics_on_a_tiny_set(analyzer):
  stats = sentence_stats(["질화갈륨반도체기판층은 SiO2를 10 nm 포함한다.", "상기 질화갈륨 기판은 얇다."], ["상기 층은 두껍다."],
                         analyzer)
  assert stats["sentences"] == 2 and stats["morphemes/sentence"] > 3
  assert stats["eojeols with >= 3 nouns"] == pytest.approx(1 / 9)
  assert 0 < stats["cache misses (of morphemes)"] < stats["unseen after warm-up (of morphemes)"] <= 1
  assert split_sentences("첫째 문장이다. 둘째 문장이다.") == ["첫째 문장이다.", "둘째 문장이다."]
  assert len(patent_style_sentences()) > 20 and len(cpc_sentences()) > 500
