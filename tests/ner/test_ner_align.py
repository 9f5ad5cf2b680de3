from __future__ import annotations

import time

from korpat_jax.finetune.report import DataReport
from korpat_jax.ner import (NerExample, char_tags_from_tokens, decode_entities, entities_from_tags, read_ner,
                            token_tags, unit_tags_from_chars)


def _chars(text: str, tags: list[str]) -> NerExample:
  return NerExample("0", text, [(i, i + 1) for i in range(len(text))], tags, "t:1")


def test_token_takes_its_first_character_tag():
  # 경찰은 박씨: tokens 경찰 | 은 | 박씨 (the PS entity ends inside the token 박씨)
  ex = _chars("경찰은 박씨", ["B-OG", "I-OG", "O", "O", "B-PS", "O"])
  offsets = [(0, 2), (2, 3), (4, 6)]
  a = token_tags(ex, offsets)
  assert a.tags == ["B-OG", "O", "B-PS"]
  assert (a.uncovered_units, a.entity_starts_inside_token, a.entity_ends_inside_token) == (0, 0, 1)
  assert not a.lossless
  assert decode_entities(ex.text, offsets, a.tags) == [{"start": 0, "end": 2, "label": "OG"},
                                                       {"start": 4, "end": 6, "label": "PS"}]


def test_entity_starting_inside_a_token_and_uncovered_characters():
  # 한국전력: one token; the entity 전력 starts at its 3rd character. "★" is covered by no token.
  ex = _chars("한국전력 ★", ["O", "O", "B-OG", "I-OG", "O", "O"])
  a = token_tags(ex, [(0, 4)])
  assert a.tags == ["O"]
  assert (a.uncovered_units, a.entity_starts_inside_token, a.entity_ends_inside_token) == (1, 1, 0)
  assert char_tags_from_tokens(ex.text, [(0, 4)], a.tags) == ["O"] * 6


def test_word_units_and_special_tokens():
  ex = NerExample("0", "삼성 전자 주가", [(0, 2), (3, 5), (6, 8)], ["B-OG", "I-OG", "O"], "t:1")
  offsets = [(0, 0), (0, 2), (3, 4), (4, 5), (6, 8), (0, 0)]    # [CLS] 삼성 전 ##자 주가 [SEP]
  a = token_tags(ex, offsets)
  assert a.tags == ["O", "B-OG", "I-OG", "I-OG", "O", "O"] and a.lossless
  chars = char_tags_from_tokens(ex.text, offsets, a.tags)
  assert chars == ["B-OG", "I-OG", "I-OG", "I-OG", "I-OG", "O", "O", "O"]    # the space inside the entity too
  assert decode_entities(ex.text, offsets, a.tags) == entities_from_tags(ex.spans, ex.tags) == [
      {"start": 0, "end": 5, "label": "OG"}]
  assert unit_tags_from_chars(ex, chars) == ["B-OG", "I-OG", "O"]


def test_decoding_is_lenient():
  text = "가나 다라 마"
  offsets = [(0, 2), (3, 5), (6, 7)]
  # an I- that starts nothing starts an entity; a type change starts another; the gap before it stays O
  assert decode_entities(text, offsets, ["I-PS", "I-OG", "O"]) == [{"start": 0, "end": 2, "label": "PS"},
                                                                   {"start": 3, "end": 5, "label": "OG"}]
  assert decode_entities(text, offsets, ["B-PS", "B-PS", "I-PS"]) == [{"start": 0, "end": 2, "label": "PS"},
                                                                      {"start": 3, "end": 7, "label": "PS"}]


def test_klue_dev_round_trip(shared_data, demo_tok):
  started = time.perf_counter()
  examples = read_ner(str(shared_data / "klue-ner-v1.1_dev.tsv"), "char_bio", DataReport())
  entities = kept = failed = reported = 0
  unaccounted = []
  for ex in examples:
    offsets = demo_tok.encode(ex.text, add_special_tokens=False).offsets
    a = token_tags(ex, offsets)
    gold = entities_from_tags(ex.spans, ex.tags)
    decoded = decode_entities(ex.text, offsets, a.tags)
    entities += len(gold)
    kept += sum(g in decoded for g in gold)
    failed += decoded != gold
    reported += not a.lossless
    if decoded != gold and a.lossless:
      unaccounted.append(ex.id)
    chars = char_tags_from_tokens(ex.text, offsets, a.tags)
    assert unit_tags_from_chars(ex, chars) == chars     # char units: the identity
  elapsed = time.perf_counter() - started
  print(f"\nKLUE NER dev round trip: {len(examples)} sentences, {failed} not exact ({reported} reported), "
        f"{kept}/{entities} entities = {kept / entities:.2%}, {elapsed:.1f} s")
  assert len(examples) == 5000
  assert not unaccounted                        # every loss shows in the alignment's counts
  assert failed == reported
  assert failed < 0.05 * len(examples)
  assert kept / entities > 0.95


def test_predicted_entities_are_whole_words_read_with_the_strict_rule():
  # The case: gold 모바일 (0-3). Sub-word tokens 모바|일 and the later words predicted B-PS, I-OG, ...: the
  # lenient character reading cut the word (모바 0-2, 일 경포여중 1188 2-13); the metric scores the word tags.
  from korpat_jax.ner import char_tags_from_tokens, decode_entities, predicted_entities
  from korpat_jax.ner.metrics import extract_entities
  words = ["모바일", "경포여중", "1188"]
  text = " ".join(words)
  example = NerExample("0", text, [(0, 3), (4, 8), (9, 13)], ["B-OG", "O", "O"], "x")
  offsets = [(0, 2), (2, 3), (4, 6), (6, 8), (9, 13)]
  chars = char_tags_from_tokens(text, offsets, ["B-PS", "I-OG", "I-OG", "I-OG", "I-OG"])
  assert decode_entities(text, offsets, ["B-PS", "I-OG", "I-OG", "I-OG", "I-OG"]) == [
      {"start": 0, "end": 2, "label": "PS"}, {"start": 2, "end": 13, "label": "OG"}]
  assert predicted_entities(example, chars) == [{"start": 0, "end": 3, "label": "PS"}]  # strict: I-OG starts nothing
  unit_tags = [chars[s] for s, _ in example.spans]
  assert {(e["label"], e["start"], e["end"]) for e in predicted_entities(example, chars)} == {
      (kind, example.spans[s][0], example.spans[e - 1][1]) for kind, s, e in extract_entities(unit_tags, "strict")}
  # A word predicted from a later sub-word is still the whole word; the char format maps one unit per character.
  chars = char_tags_from_tokens(text, offsets, ["O", "O", "B-LC", "I-LC", "O"])
  assert predicted_entities(example, chars) == [{"start": 4, "end": 8, "label": "LC"}]
  klue = NerExample("1", "경찰 박씨", [(i, i + 1) for i in range(5)], None, "x")
  chars = char_tags_from_tokens(klue.text, [(0, 2), (3, 4), (4, 5)], ["B-OG", "B-PS", "O"])
  assert predicted_entities(klue, chars) == [{"start": 0, "end": 2, "label": "OG"}, {"start": 3, "end": 4,
                                                                                       "label": "PS"}]
