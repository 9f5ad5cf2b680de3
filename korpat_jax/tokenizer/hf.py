"""The transformers side of the MWP tokenizer: the files that make a tokenizer directory AutoTokenizer-loadable.

`MWPTokenizer.save_hf(dir)` writes a plain BERT tokenizer directory (vocab.txt, tokenizer.json,
tokenizer_config.json with do_lower_case false, special_tokens_map.json) plus mwp_tokenizer.json, so both
`transformers.AutoTokenizer.from_pretrained(dir)` and `MWPTokenizer.load(dir)` read it.

transformers has no Mecab step: segment the text first, exactly as in pretraining:

    from transformers import AutoTokenizer
    from korpat_jax.tokenizer import presegment
    hf_tok = AutoTokenizer.from_pretrained(dir)
    batch = hf_tok(presegment(["기판 상에 질화갈륨을 형성한다."], dir), truncation=True, max_length=512)

Offsets that transformers returns then index the segmented string; `MWPTokenizer.encode` gives offsets into
the original text.
"""

from __future__ import annotations

import os
from pathlib import Path

from korpat_jax import files
from korpat_jax.tokenizer.wordpiece import SPECIAL_TOKENS, BertWordPiece

MODEL_MAX_LENGTH = 512
_PRESEGMENT_NOTE = (
    "This tokenizer expects Mecab-ko pre-segmented text (morphemes joined by single spaces):\n\n"
    "    from korpat_jax.tokenizer import presegment\n"
    "    hf_tokenizer(presegment(texts, this_directory))\n\n"
    "or use `korpat_jax.tokenizer.MWPTokenizer.load(this_directory)`, which segments by itself and returns\n"
    "offsets into the original text.\n")


def write_hf_files(wordpiece: BertWordPiece, directory: str | os.PathLike) -> None:
  """tokenizer.json (with BERT's [CLS] A [SEP] B [SEP] template), tokenizer_config.json, special_tokens_map.json."""
  from tokenizers.processors import TemplateProcessing

  d = Path(directory)
  d.mkdir(parents=True, exist_ok=True)
  rust = wordpiece.rust_tokenizer()
  cls_id, sep_id = SPECIAL_TOKENS.index("[CLS]"), SPECIAL_TOKENS.index("[SEP]")
  rust.post_processor = TemplateProcessing(
      single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
      special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
  rust.save(str(d / "tokenizer.json"))
  names = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), SPECIAL_TOKENS))
  config = {
      "tokenizer_class": "BertTokenizer", "do_lower_case": False, "strip_accents": False,
      "tokenize_chinese_chars": True, "do_basic_tokenize": True, "model_max_length": MODEL_MAX_LENGTH,
      "clean_up_tokenization_spaces": False, **names,
  }
  files.write_json(d / "tokenizer_config.json", config)
  files.write_json(d / "special_tokens_map.json", names)
  files.write_text(d / "PRESEGMENT.md", _PRESEGMENT_NOTE)
