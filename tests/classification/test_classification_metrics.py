from __future__ import annotations

import numpy as np
import pytest

from korpat_jax.classification.metrics import multi_hot, multi_label_scores, pair_scores, single_label_scores


def test_single_label_by_hand():
  gold = np.array([0, 1, 2, 3, -1])   # the last gold label is outside the label set
  logits = np.array([
      [3, 1, 0, 0, -9],   # pred 0, right; gold rank 0
      [2, 1, 0, 0, -9],   # pred 0, wrong; gold 1 at rank 1
      [0, 1, 3, 0, -9],   # pred 2, right; gold rank 0
      [5, 0, 4, 1, -9],   # pred 0, wrong; gold 3 at rank 2 (5 and 4 above it): label 3 is never predicted
      [0, 9, 1, 0, -9],   # pred 1, wrong (an unknown gold label is always wrong)
  ], dtype=np.float32)    # label 4: neither gold nor predicted
  scores = single_label_scores(gold, logits)
  # accuracy 2/5. top3: ranks 0, 1, 0, 2, never -> 4/5; no top5 (k = L = 5 says nothing).
  # TP: l0 1 (row 0), l2 1 (row 2). FP: l0 2 (rows 1, 3), l1 1 (row 4). FN: l1 1 (row 1), l3 1 (row 3).
  # F1 = 2TP / (2TP + FP + FN): l0 2/4 = 0.5, l1 0/2 = 0, l2 2/2 = 1, l3 0/1 = 0; l4 has none, left out.
  # macro = (0.5 + 0 + 1 + 0) / 4 = 0.375. micro = 2*2 / (2*2 + 3 + 2) = 4/9 (= 2TP / (N + N_known) = 4 / (5 + 4)).
  assert scores == pytest.approx({"accuracy": 0.4, "top3": 0.8, "macro_f1": 0.375, "micro_f1": 4 / 9})


def test_single_label_k_larger_than_the_label_count():
  gold = np.array([0, 1, -1])
  logits = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
  scores = single_label_scores(gold, logits)
  # preds 0, 0, 1: accuracy 1/3. L = 2: every known label is in the top 2, so no top3 / top5 (they would say 1).
  # l0: TP 1, FP 1 (row 1), FN 0 -> 2/3. l1: TP 0, FP 1 (row 2), FN 1 (row 1) -> 0. macro = (2/3 + 0) / 2 = 1/3.
  # micro = 2*1 / (3 + 2) = 0.4.
  assert scores == pytest.approx({"accuracy": 1 / 3, "macro_f1": 1 / 3, "micro_f1": 0.4})


@pytest.mark.parametrize("num_labels, keys", [(2, []), (3, []), (4, ["top3"]), (5, ["top3"]), (6, ["top3", "top5"])])
def test_top_k_only_where_k_is_below_the_label_count(num_labels, keys):
  from korpat_jax.classification.metrics import top_k_keys
  rng = np.random.default_rng(num_labels)
  gold = rng.integers(0, num_labels, size=8)
  logits = rng.standard_normal((8, num_labels))
  assert top_k_keys(num_labels) == keys
  assert [k for k in single_label_scores(gold, logits) if k.startswith("top")] == keys
  targets = multi_hot([[g] for g in gold], num_labels)
  assert [k for k in multi_label_scores(targets, 1 / (1 + np.exp(-logits)), main_label_ids=gold)
          if k.startswith("top")] == keys
  assert [k for k in single_label_scores(gold[:0], logits[:0]) if k.startswith("top")] == keys


def test_single_label_all_known_micro_equals_accuracy_and_ties_go_to_the_lower_id():
  gold = np.array([1, 0, 2, 2])
  logits = np.array([[1.0, 1.0, 0.0],   # tie: argmax picks 0 -> wrong; gold 1 at rank 1
                     [2.0, 0.0, 0.0],   # right
                     [0.0, 0.0, 1.0],   # right
                     [1.0, 1.0, 1.0]])  # all tied: pred 0, gold 2 at rank 2 -> in the top 3, not the top 1
  scores = single_label_scores(gold, logits)
  # accuracy 2/4; micro = 2*2 / (4 + 4) = 0.5. l0: TP 1, FP 2 -> 2/4; l1: FN 1 -> 0; l2: TP 1, FN 1 -> 2/3.
  # macro = (0.5 + 0 + 2/3) / 3 = 7/18. Three labels: no top3 / top5.
  assert scores["accuracy"] == scores["micro_f1"] == 0.5
  assert "top3" not in scores and "top5" not in scores
  assert scores["macro_f1"] == pytest.approx(7 / 18)


def test_pair_scores_are_accuracy_and_macro_f1():
  gold = np.array([0, 1, 2])   # entailment, neutral, contradiction
  logits = np.array([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 2.0, 1.0]])
  # preds 0, 1, 1: accuracy 2/3. l0: 2/2 = 1; l1: TP 1, FP 1 -> 2/3; l2: FN 1 -> 0. macro = (1 + 2/3 + 0) / 3 = 5/9.
  assert pair_scores(gold, logits) == pytest.approx({"accuracy": 2 / 3, "macro_f1": 5 / 9})


def test_multi_label_by_hand():
  targets = np.array([[1, 0, 1, 0],
                      [0, 1, 0, 0],
                      [0, 0, 0, 0]])   # all-zero row: every gold label unknown
  probs = np.array([[0.9, 0.6, 0.4, 0.1],    # predicted {0, 1}; ranking 0, 1, 2, 3
                    [0.2, 0.7, 0.1, 0.3],    # predicted {1};    ranking 1, 3, 0, 2
                    [0.1, 0.2, 0.3, 0.05]])  # predicted {};     ranking 2, 1, 0, 3
  scores = multi_label_scores(targets, probs, threshold=0.5, main_label_ids=np.array([2, 1, -1]))
  # TP l0 1, l1 1; FP l1 1 (row 0); FN l2 1 (row 0). micro = 2*2 / (2*2 + 1 + 1) = 2/3.
  # F1: l0 2/2 = 1, l1 2/3, l2 0/1 = 0, l3 none (left out): macro = (1 + 2/3 + 0) / 3 = 5/9.
  # P@1: rows 1, 1, 0 -> 2/3. P@3: 2/3, 1/3, 0 -> (2/3 + 1/3 + 0) / 3 = 1/3.
  # subset accuracy: {0,1} != {0,2}; {1} == {1}; {} == {} -> 2/3.
  # main label in top 3: label 2 at rank 2 yes, label 1 at rank 0 yes, unknown no -> 2/3; no top5 (k > L = 4).
  assert scores == pytest.approx({"micro_f1": 2 / 3, "macro_f1": 5 / 9, "p_at_1": 2 / 3, "p_at_3": 1 / 3,
                                  "accuracy": 2 / 3, "top3": 2 / 3})


def test_multi_label_main_label_versus_any_gold_label():
  targets = np.array([[1, 0, 0, 0, 1, 0]])
  probs = np.array([[0.1, 0.9, 0.8, 0.6, 0.7, 0.05]])   # ranking 1, 2, 4, 3, 0, 5
  with_main = multi_label_scores(targets, probs, main_label_ids=np.array([0]))
  # the main label 0 is fifth (rank 4): not in the top 3, in the top 5.
  assert (with_main["top3"], with_main["top5"]) == (0.0, 1.0)
  any_gold = multi_label_scores(targets, probs)
  # without main ids, label 4 at rank 2 puts a gold label in the top 3.
  assert (any_gold["top3"], any_gold["top5"]) == (1.0, 1.0)
  # predicted (>= 0.5) {1, 2, 3, 4}: TP 1 (l4), FP 3, FN 1 (l0): micro = 2 / (2 + 3 + 1) = 1/3.
  # P@1 = 0 (label 1); P@3 = 1/3 (labels 1, 2, 4).
  assert with_main["micro_f1"] == pytest.approx(1 / 3)
  assert (with_main["p_at_1"], with_main["p_at_3"]) == (0.0, pytest.approx(1 / 3))


def test_multi_label_threshold_only_and_edge_values():
  targets = np.array([[1, 0], [0, 1]])
  probs = np.array([[0.5, 0.2], [0.3, 0.4]])   # 0.5 is at the threshold (predicted); row 1 gets no label at all
  scores = multi_label_scores(targets, probs)
  # TP 1 (row 0, l0), FN 1 (row 1, l1): micro = 2 / (2 + 1) = 2/3; macro = (1 + 0) / 2 = 0.5.
  # P@3 with k capped at L = 2: row 0 1/2, row 1 1/2 -> 0.5. subset accuracy 1/2.
  assert scores == pytest.approx({"micro_f1": 2 / 3, "macro_f1": 0.5, "p_at_1": 1.0, "p_at_3": 0.5,
                                  "accuracy": 0.5})   # two labels: no top3 / top5
  nothing = multi_label_scores(np.zeros((2, 3)), np.zeros((2, 3)))
  # no gold and no predicted label anywhere: F1 undefined -> 0; subset accuracy 1 (empty == empty).
  assert nothing["micro_f1"] == nothing["macro_f1"] == nothing["p_at_1"] == 0.0
  assert nothing["accuracy"] == 1.0


def test_empty_inputs_score_zero():
  assert set(single_label_scores(np.zeros(0, int), np.zeros((0, 3))).values()) == {0.0}
  assert set(multi_label_scores(np.zeros((0, 3)), np.zeros((0, 3))).values()) == {0.0}


def test_shape_and_id_errors():
  with pytest.raises(ValueError, match="expected 2 ids"):
    single_label_scores(np.array([0, 1, 2]), np.zeros((2, 3)))
  with pytest.raises(ValueError, match=r"\[-1, 3\)"):
    single_label_scores(np.array([0, 3]), np.zeros((2, 3)))
  with pytest.raises(ValueError, match="differ in shape"):
    multi_label_scores(np.zeros((2, 3)), np.zeros((2, 4)))


def test_multi_hot_skips_unknown_labels():
  assert multi_hot([[2, 0], [-1], [1, -1]], 3).tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
