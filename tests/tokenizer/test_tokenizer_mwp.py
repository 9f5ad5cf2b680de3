from __future__ import annotations

import pickle

import pytest

from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer import MWPTokenizer, demo_corpus_files
from korpat_jax.tokenizer.morphemes import make_tagger
from korpat_jax.tokenizer.sources import iter_lines

PATENT_STYLE = [
    "본 발명은 질화갈륨 기판 상에 형성된 발광다이오드에 관한 것이다.",
    "상기 킬레이트제는 EDTA(에틸렌디아민테트라아세트산) 또는 구연산나트륨(C6H5Na3O7)이다.",
    "본 發明은 半導體 素子의 製造方法에 관한 것이다.",
    "게이트전극의 폭은 ５０ ｎｍ 이하이고, 열처리 온도는 약 1,050℃이다.",
    "TNF-α, IL-6의 발현을 50% 이상 억제하였다; 용량은 0.1 mg/kg 내지 100 mg/kg이다.",
    "청구항 1에 있어서, 상기 열처리는 질소(N₂) 분위기에서 30초 동안 수행되는 것을 특징으로 한다.",
]


def seed_morphs(text: str, tagger=None) -> list[str]:
  """The seed's Mecab step: every node surface, as mecab.morphs() returns them (default: the tagger without a user
  dictionary)."""
  tagger = tagger or make_tagger()
  node, out = tagger.parseToNode(text), []
  while node:
    if node.surface:
      out.append(node.surface)
    node = node.next
  return out


def test_special_ids_and_api(demo_tok):
  assert (demo_tok.pad_id, demo_tok.unk_id, demo_tok.cls_id, demo_tok.sep_id, demo_tok.mask_id) == (0, 1, 2, 3, 4)
  assert demo_tok.vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  assert demo_tok.vocab_size == 8000
  assert len(demo_tok.vocab_hash) == 64


def test_tokens_equal_seed_recipe(demo_tok_dir, demo_tok, klue_ner):
  transformers = pytest.importorskip("transformers")
  from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
  rust_bert = transformers.BertTokenizer(str(demo_tok_dir / "vocab.txt"), do_lower_case=False)
  legacy_bert = BertTokenizerLegacy(str(demo_tok_dir / "vocab.txt"), do_lower_case=False)
  texts = PATENT_STYLE + klue_ner(4500, 4800)   # held-out sentences, not in the demo corpus
  for text in texts:
    joined = " ".join(seed_morphs(text))
    expected = rust_bert.tokenize(joined)
    enc = demo_tok.encode(text, add_special_tokens=False)
    assert enc.tokens == expected, text
    assert enc.ids == rust_bert.convert_tokens_to_ids(expected)
    assert legacy_bert.tokenize(joined) == expected, text


def test_offsets_point_into_original_text(demo_tok):
  for text in PATENT_STYLE + ["  앞뒤 공백과\t탭, 그리고\n줄바꿈  "]:
    enc = demo_tok.encode(text)
    assert enc.offsets[0] == enc.offsets[-1] == (0, 0)
    for token, (start, end) in zip(enc.tokens[1:-1], enc.offsets[1:-1]):
      assert 0 <= start < end <= len(text)
      if token != "[UNK]":
        assert text[start:end] == token.removeprefix("##"), (text, token)


def test_truncation_and_pairs(demo_tok):
  a, b = PATENT_STYLE[0], PATENT_STYLE[1]
  full = demo_tok.encode(a)
  short = demo_tok.encode(a, max_length=8)
  assert short.ids == full.ids[:7] + [demo_tok.sep_id]
  assert len(short.offsets) == len(short.tokens) == 8
  assert len(demo_tok.encode(a, max_length=8, truncation=False).ids) == len(full.ids)
  pair = demo_tok.encode_pair(a, b)
  n_a = len(full.ids) - 2
  assert pair.ids[: n_a + 2] == full.ids
  assert pair.token_type_ids == [0] * (n_a + 2) + [1] * (len(pair.ids) - n_a - 2)
  assert pair.ids[-1] == demo_tok.sep_id
  cut = demo_tok.encode_pair(a, b, max_length=20)
  assert len(cut.ids) == 20 and cut.ids.count(demo_tok.sep_id) == 2
  assert len(cut.offsets) == 20
  second = cut.offsets[cut.ids.index(demo_tok.sep_id) + 1]
  assert b[second[0]:second[1]] == cut.tokens[cut.ids.index(demo_tok.sep_id) + 1].removeprefix("##")
  assert demo_tok.encode(a, max_length=2).ids == [demo_tok.cls_id, demo_tok.sep_id]
  with pytest.raises(ValueError, match="max_length"):
    demo_tok.encode_pair(a, b, max_length=2)


def test_decode(demo_tok):
  enc = demo_tok.encode("합성세제액을 기판 상에 형성한다.")
  assert demo_tok.decode(enc.ids) == " ".join(seed_morphs("합성세제액을 기판 상에 형성한다."))


def test_batch_encode_matches_encode(demo_tok):
  texts = list(iter_lines(demo_corpus_files()))[:300]
  batch = demo_tok.batch_encode(texts, num_workers=2)
  single = [demo_tok.encode(t) for t in texts]
  assert [e.ids for e in batch] == [e.ids for e in single]
  assert [e.offsets for e in batch] == [e.offsets for e in single]
  assert [e.tokens for e in batch[:5]] == [e.tokens for e in single[:5]]
  demo_tok.close()


def test_save_load_pickle(demo_tok, tmp_path):
  demo_tok.save(tmp_path / "copy")
  again = MWPTokenizer.load(tmp_path / "copy")
  assert again.vocab_hash == demo_tok.vocab_hash
  text = PATENT_STYLE[2]
  assert again.encode(text).ids == demo_tok.encode(text).ids
  clone = pickle.loads(pickle.dumps(demo_tok))
  assert clone.encode(text).ids == demo_tok.encode(text).ids
  (tmp_path / "copy" / "vocab.txt").write_text("a\nb\n", encoding="utf-8")
  with pytest.raises(KorpatError, match="first five tokens"):
    MWPTokenizer.load(tmp_path / "copy")


BAD_INPUTS = [
    "", " ", "\t\n  \u3000 ", "\x00", "앞\x00뒤", "제어\x01\x02\x1f문자\x7f", "\ud800외톨이\udfff서로게이트",
    "\ufffd\ufffd깨진 바이트", "漢字表記 本發明의 特徵", "ＡＢＣ１２３（全角）", "H₂SO₄ + 2NaOH → Na₂SO₄ + 2H₂O",
    "10 ㎛, 25 ℃, 3.5 kgf/cm², 60 Hz, 5 Ω·m", "🙂 이모지", "a" * 300, "\u200b\u200d\ufeff폭 없는 문자",
]


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_bad_input_never_crashes(demo_tok, text):
  enc = demo_tok.encode(text, max_length=64)
  assert enc.ids[0] == demo_tok.cls_id and enc.ids[-1] == demo_tok.sep_id
  assert len(enc.ids) == len(enc.tokens) == len(enc.offsets) == len(enc.token_type_ids) <= 64
  assert all(0 <= s <= e <= len(text) for s, e in enc.offsets)
  demo_tok.decode(enc.ids)


def test_one_megabyte_line(demo_tok):
  unit = "상기 기판 상에 질화갈륨(GaN)층을 형성한다. "
  text = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
  enc = demo_tok.encode(text, add_special_tokens=False)
  assert len(enc.ids) > 100_000
  assert all(0 <= s <= e <= len(text) for s, e in enc.offsets)
  assert enc.offsets[-1][1] <= len(text)


def test_unk_rate_on_held_out_text(demo_tok, klue_ner):
  sentences = klue_ner(4500, 5000)
  ids = [i for s in sentences for i in demo_tok.encode(s, add_special_tokens=False).ids]
  rate = ids.count(demo_tok.unk_id) / len(ids)
  assert rate < 0.01, rate
