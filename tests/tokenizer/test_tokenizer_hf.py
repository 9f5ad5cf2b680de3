from __future__ import annotations

import json

import pytest

from korpat_jax.tokenizer import MWPTokenizer, presegment

TEXTS = ["본 발명은 합성세제액의 제조방법에 관한 것이다.", "본 發明은 半導體 素子에 관한 것이다.",
         "게이트전극의 폭은 ５０ ｎｍ 이하이다.", "수학 A형의 1등급 커트라인은 평균 96점이었다."]


def test_auto_tokenizer_loads_and_matches(demo_tok, tmp_path):
  transformers = pytest.importorskip("transformers")
  demo_tok.save_hf(tmp_path / "hf")
  config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text(encoding="utf-8"))
  assert config["do_lower_case"] is False
  hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
  for text in TEXTS:
    segmented = presegment(text, tmp_path / "hf")
    assert hf(segmented)["input_ids"] == demo_tok.encode(text).ids
    assert hf.tokenize(segmented) == demo_tok.encode(text, add_special_tokens=False).tokens
  pair = hf(presegment(TEXTS[0]), presegment(TEXTS[1]))
  ours = demo_tok.encode_pair(TEXTS[0], TEXTS[1])
  assert pair["input_ids"] == ours.ids and pair["token_type_ids"] == ours.token_type_ids
  assert presegment(TEXTS, demo_tok) == [demo_tok.segment(t) for t in TEXTS]
  # the HF directory is also an MWP tokenizer directory
  assert MWPTokenizer.load(tmp_path / "hf").encode(TEXTS[0]).ids == demo_tok.encode(TEXTS[0]).ids
