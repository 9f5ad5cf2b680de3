from __future__ import annotations

import json
import logging

import pytest

from korpat_jax.qa import evaluate, exact_match_score, f1_score, normalize_answer


@pytest.mark.parametrize("text, expected", [
    ("《토지》", "토지"),
    ("〈한국사〉의 저자", "한국사 의 저자"),          # 〈 〉 become spaces, not nothing
    ("‘사랑’이란", "사랑 이란"),
    ("가(나)", "가 나"),                              # ( ) become spaces too
    ("<가>나", "가 나"),
    ("\"Hello,\" World!", "hello world"),           # " -> space, then , and ! deleted, case folded
    ("가-나", "가나"),                               # other ASCII punctuation is deleted (no space)
    ("U.S.A.", "usa"),
    ("“가”·나", "“가”·나"),                         # curly double quotes and the middle dot stay
    ("  1989년\t2월 \n15일 ", "1989년 2월 15일"),
    ("ＡＢＣ", "ａｂｃ"),                            # no NFKC: full-width letters are only lowercased
])
def test_normalize_answer(text, expected):
  assert normalize_answer(text) == expected


def test_exact_match():
  assert exact_match_score("1989년 2월  15일", "1989년 2월 15일")
  assert exact_match_score("《토지》", "토지")
  assert exact_match_score("", "")
  assert not exact_match_score("1989년2월 15일", "1989년 2월 15일")   # EM still sees the word breaks
  assert not exact_match_score("가(나)", "가나")                       # ( ) became a word break


def test_character_f1_by_hand():
  # 임,종,석,이 against 임,종,석: 3 common, P = 3/4, R = 3/3, F1 = 2 * 3/4 * 1 / (7/4) = 6/7
  assert f1_score("임종석이", "임종석") == pytest.approx(6 / 7)
  # spaces do not count: 서울경희대학교 (7) against 경희대학교 (5): P = 5/7, R = 1, F1 = (10/7) / (12/7) = 5/6
  assert f1_score("서울 경희대학교", "경희대학교") == pytest.approx(5 / 6)
  # a multiset overlap: 가가가 against 가나 share one 가: P = 1/3, R = 1/2, F1 = (1/3) / (5/6) = 2/5
  assert f1_score("가가가", "가나") == pytest.approx(0.4)
  # word breaks do not matter for F1: 1.0 where EM fails
  assert f1_score("1989년2월 15일", "1989년 2월 15일") == 1.0
  assert f1_score("《토지》", "토지") == 1.0
  assert f1_score("서울", "부산") == 0.0
  assert f1_score("", "") == 0.0 and f1_score("", "가") == 0.0


def test_evaluate_max_over_gold_and_missing_predictions(caplog):
  dataset = {"version": "KorQuAD_v1.0_test", "data": [{"paragraphs": [{"context": "...", "qas": [
      {"id": "q1", "question": "?", "answers": [{"text": "경희대", "answer_start": 0},
                                               {"text": "서울 경희대학교", "answer_start": 0}]},
      {"id": "q2", "question": "?", "answers": [{"text": "《토지》", "answer_start": 0}]},
      {"id": "q3", "question": "?", "answers": [{"text": "임종석", "answer_start": 0}]},
      {"id": "q4", "question": "?", "answers": []},
  ]}]}]}
  predictions = {"q1": "경희대학교", "q2": "토지", "extra": "ignored"}
  with caplog.at_level(logging.WARNING, logger="korpat_jax"):
    result = evaluate(dataset, predictions)
  # q1: EM 0 against both; F1 max(vs 경희대: P 3/5 R 1 -> 3/4, vs 서울경희대학교: P 1 R 5/7 -> 5/6) = 5/6
  # q2: EM 1, F1 1.  q3: no prediction -> 0 and 0, still counted.  q4: no gold answers -> not counted.
  assert result["exact_match"] == pytest.approx(100 * 1 / 3)
  assert result["f1"] == pytest.approx(100 * (5 / 6 + 1) / 3)
  assert set(result) == {"exact_match", "f1"}
  assert "1 unanswered" in caplog.text and "q3" in caplog.text
  assert evaluate(dataset["data"], {"q1": "서울 경희대학교", "q2": "토지", "q3": "임종석"}) == \
      {"exact_match": 100.0, "f1": 100.0}   # the `data` list is accepted too


def test_evaluate_gold_against_itself_on_korquad(shared_data):
  path = shared_data / "KorQuAD_v1.0_dev.json"
  if not path.is_file():
    pytest.skip(f"{path} is absent")
  dataset = json.loads(path.read_text(encoding="utf-8"))
  gold = {qa["id"]: qa["answers"][0]["text"] for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"]}
  assert evaluate(dataset, gold) == {"exact_match": 100.0, "f1": 100.0}
  assert evaluate(dataset, {}) == {"exact_match": 0.0, "f1": 0.0}
