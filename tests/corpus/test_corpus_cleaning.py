from __future__ import annotations

import pytest

from korpat_jax.corpus.cleaning import CleanConfig, clean_paragraph
from korpat_jax.corpus.sentences import split_sentences


@pytest.mark.parametrize("raw, clean", [
    ("【0001】 본 발명은 기판에 관한 것이다.", "본 발명은 기판에 관한 것이다."),
    ("[0012] 상기 장치는 유리이다.", "상기 장치는 유리이다."),
    ("【기술분야】", ""),
    ("【청구항 1】 기판; 및 전극을 포함하는 장치.", "기판; 및 전극을 포함하는 장치."),
    ("청구항 2. 제1항에 있어서, 상기 기판은 유리인 장치.", "제1항에 있어서, 상기 기판은 유리인 장치."),
    ("[청구항 3] 제1항에 있어서 장치.", "제1항에 있어서 장치."),
    ("기판(110)과 전극(120a, 130) 및 단계 (S10~S20)", "기판과 전극 및 단계"),
    ("(1) 첫째 항목, 화합물 (2019) 출원", "(1) 첫째 항목, 화합물 (2019) 출원"),  # enumeration, year
    ("<p>태그\u200b <b>굵게</b></p>\u3000본문\ufffd", "태그 굵게 본문"),
    ("ｆｕｌｌ　ｗｉｄｔｈ", "ｆｕｌｌ ｗｉｄｔｈ"),
])
def test_clean_paragraph(raw, clean):
  assert clean_paragraph(raw) == clean


def test_each_rule_can_be_switched_off():
  keep_all = CleanConfig(normalize="NFKC", strip_markup=False, strip_paragraph_tags=False, strip_claim_headers=False,
                         strip_drawing_refs=False)
  assert clean_paragraph("【0001】 청구항 1 <b>기판(110)</b> ｆｕｌｌ", keep_all) == "【0001】 청구항 1 <b>기판(110)</b> full"


def test_sentence_ends_in_patent_text():
  text = ("본 발명은 기판에 관한 것이다. 도 1은 단면도이다.또한 효율이 1.5배 높다! 정말인가? "
          "FIG. 1 shows a device. The device works. 전극을 포함하는 장치.")
  assert split_sentences(text) == [
      "본 발명은 기판에 관한 것이다.", "도 1은 단면도이다.", "또한 효율이 1.5배 높다!", "정말인가?",
      "FIG. 1 shows a device.", "The device works.", "전극을 포함하는 장치."]


def test_quotes_stay_with_their_sentence():
  assert split_sentences("그는 \"좋다.\" 라고 했다. 끝이다.") == ["그는 \"좋다.\"", "라고 했다.", "끝이다."]


def test_long_sentences_are_cut_at_spaces_and_reported():
  cut = []
  sentence = " ".join(["단어"] * 200)  # 599 chars, no sentence end
  pieces = split_sentences(sentence, max_chars=100, on_cut=cut.append)
  assert all(len(p) <= 100 for p in pieces) and " ".join(pieces) == sentence
  assert cut == [sentence]
  assert split_sentences("가" * 250, max_chars=100) == ["가" * 100, "가" * 100, "가" * 50]
