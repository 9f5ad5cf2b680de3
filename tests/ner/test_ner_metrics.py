from __future__ import annotations

import pytest

from korpat_jax.ner import char_macro_f1, entity_scores, extract_entities, ner_scores

# (tags, strict entities, default entities); entities are (type, start, end) with end exclusive
TRICKY = [
    ([], set(), set()),
    (["O", "O"], set(), set()),
    (["I-PS", "I-PS", "O"], set(), {("PS", 0, 2)}),                                  # I- without B-
    (["B-PS", "I-OG", "I-OG"], {("PS", 0, 1)}, {("PS", 0, 1), ("OG", 1, 3)}),        # type change in a span
    (["B-PS", "I-OG", "I-PS"], {("PS", 0, 1)}, {("PS", 0, 1), ("OG", 1, 2), ("PS", 2, 3)}),
    (["B-PS", "B-PS", "I-PS"], {("PS", 0, 1), ("PS", 1, 3)}, {("PS", 0, 1), ("PS", 1, 3)}),
    (["O", "B-LC", "I-LC"], {("LC", 1, 3)}, {("LC", 1, 3)}),                         # at the sentence end
    (["B-PS", "I-PS", "O", "I-PS", "B-OG"], {("PS", 0, 2), ("OG", 4, 5)},
     {("PS", 0, 2), ("PS", 3, 4), ("OG", 4, 5)}),
    (["I-PS", "B-PS"], {("PS", 1, 2)}, {("PS", 0, 1), ("PS", 1, 2)}),
    (["B-QT"], {("QT", 0, 1)}, {("QT", 0, 1)}),
]


@pytest.mark.parametrize("tags,strict,default", TRICKY)
def test_extract_entities(tags, strict, default):
  assert extract_entities(tags, "strict") == strict
  assert extract_entities(tags, "default") == default


def test_extract_entities_rejects_bad_input():
  with pytest.raises(ValueError):
    extract_entities(["B-PS"], "lenient")
  with pytest.raises(ValueError):
    extract_entities(["PS-B"], "strict")       # not normal form


GOLD = [["B-PS", "I-PS", "O", "B-OG", "I-OG"],   # PS(0,2) OG(3,5)
        ["O", "B-LC", "I-LC"],                   # LC(1,3), ends with the sentence
        ["B-PS", "O"]]                           # PS(0,1)
PRED = [["B-PS", "I-PS", "O", "B-PS", "I-OG"],   # strict: PS(0,2) PS(3,4); default: + OG(4,5)
        ["O", "I-LC", "I-LC"],                   # strict: nothing; default: LC(1,3)
        ["O", "O"]]                              # an empty prediction


def test_entity_scores_strict_by_hand():
  s = entity_scores(GOLD, PRED, "strict")
  # gold 4 entities, predicted 2 (PS(0,2), PS(3,4) of sentence 1), correct 1 (PS(0,2))
  # P = 1/2, R = 1/4, F1 = 2 * 1/2 * 1/4 / (1/2 + 1/4) = (1/4) / (3/4) = 1/3
  assert s["precision"] == pytest.approx(1 / 2)
  assert s["recall"] == pytest.approx(1 / 4)
  assert s["f1"] == pytest.approx(1 / 3)
  # PS: 1 correct of 2 predicted, 2 gold -> P = R = F1 = 1/2; OG and LC: none predicted -> 0, support 1 each
  assert s["per_type"] == {
      "LC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
      "OG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
      "PS": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
  }


def test_entity_scores_default_by_hand():
  s = entity_scores(GOLD, PRED, "default")
  # predicted 4: PS(0,2) PS(3,4) OG(4,5) | LC(1,3); correct 2: PS(0,2), LC(1,3); gold 4
  # P = 2/4, R = 2/4, F1 = 1/2
  assert (s["precision"], s["recall"], s["f1"]) == pytest.approx((0.5, 0.5, 0.5))
  # OG: 1 predicted (OG(4,5)), wrong, 1 gold -> 0; LC: 1/1 -> 1; PS: 1 of 2 predicted, 2 gold -> 1/2
  assert s["per_type"]["OG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
  assert s["per_type"]["LC"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
  assert s["per_type"]["PS"]["f1"] == pytest.approx(0.5)


def test_entity_scores_empty_cases():
  nothing = entity_scores(GOLD, [["O"] * len(g) for g in GOLD], "strict")
  assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (0.0, 0.0, 0.0)
  assert {t: v["support"] for t, v in nothing["per_type"].items()} == {"LC": 1, "OG": 1, "PS": 2}
  no_gold = entity_scores([["O", "O"]], [["B-PS", "O"]], "strict")
  # 1 predicted, 0 gold: P = 0/1 = 0, R undefined -> 0; PS support 0
  assert (no_gold["precision"], no_gold["recall"], no_gold["f1"]) == (0.0, 0.0, 0.0)
  assert no_gold["per_type"] == {"PS": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}}
  empty = entity_scores([], [], "strict")
  assert empty == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "per_type": {}}
  perfect = entity_scores(GOLD, GOLD, "strict")
  assert (perfect["precision"], perfect["recall"], perfect["f1"]) == (1.0, 1.0, 1.0)
  with pytest.raises(ValueError):
    entity_scores([["O", "O"]], [["O"]], "strict")


LABELS = ["O", "B-PS", "I-PS", "B-OG", "I-OG"]


def test_char_macro_f1_by_hand():
  gold = [["B-PS", "I-PS", "O", "B-OG"]]
  pred = [["B-PS", "O", "O", "B-PS"]]
  # per label F1 = 2TP / (2TP + FP + FN); a label neither in gold nor predicted scores 1 (zero_division=1)
  #   O:    TP 1 (pos 2), FP 1 (pos 1), FN 0 -> 2/3
  #   B-PS: TP 1 (pos 0), FP 1 (pos 3), FN 0 -> 2/3
  #   I-PS: TP 0, FP 0, FN 1 (pos 1)        -> 0
  #   B-OG: TP 0, FP 0, FN 1 (pos 3)        -> 0
  #   I-OG: absent from both               -> 1
  # macro = (2/3 + 2/3 + 0 + 0 + 1) / 5 = 7/15
  assert char_macro_f1(gold, pred, LABELS) == pytest.approx(7 / 15)
  assert char_macro_f1(gold, gold, LABELS) == 1.0


def test_char_macro_f1_drops_spaces_like_klue():
  gold = [["B-PS", "I-PS", "I-PS", "I-PS"]]
  pred = [["B-PS", "I-PS", "O", "I-PS"]]       # wrong only on the space
  # all positions: O: TP 0, FP 1, FN 0 -> 0; B-PS 1; I-PS: TP 2, FN 1 -> 4/5; B-OG, I-OG absent -> 1, 1
  # macro = (0 + 1 + 4/5 + 1 + 1) / 5 = 0.76
  assert char_macro_f1(gold, pred, LABELS) == pytest.approx(0.76)
  # without the space (KLUE drops " " characters): every class right or absent -> 1
  assert char_macro_f1(gold, pred, LABELS, texts=["가나 다"]) == 1.0
  with pytest.raises(ValueError):
    char_macro_f1(gold, pred, LABELS, texts=["가나"])


def test_ner_scores_keys_and_values():
  chars_gold = [["B-PS", "I-PS", "O", "B-OG"]]
  chars_pred = [["B-PS", "O", "O", "B-PS"]]
  scores = ner_scores(GOLD, PRED, chars_gold, chars_pred, LABELS)
  assert set(scores) == {"f1", "precision", "recall", "f1_default", "char_macro_f1", "per_type"}
  assert scores["f1"] == pytest.approx(1 / 3)
  assert (scores["precision"], scores["recall"]) == pytest.approx((1 / 2, 1 / 4))
  assert scores["f1_default"] == pytest.approx(1 / 2)
  assert scores["char_macro_f1"] == pytest.approx(7 / 15)
  assert scores["per_type"]["PS"]["support"] == 2
