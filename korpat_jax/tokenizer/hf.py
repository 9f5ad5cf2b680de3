"""A transformers-loadable copy of the MWP tokenizer, and the Mecab-ko pre-segmentation it needs.

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

import json
import os
from pathlib import Path
from typing import Sequence

from korpat_jax.tokenizer.morphemes import MorphAnalyzer, sanitize
from korpat_jax.tokenizer.mwp import SPECIAL_TOKENS, MWPTokenizer

MODEL_MAX_LENGTH = 512
_ANALYZERS: dict[str | None, MorphAnalyzer] = {}


def presegment(texts: str | Sequence[str], tokenizer: str | os.PathLike | MWPTokenizer | None = None):
  """Mecab-ko morphemes joined by single spaces (the input that the HF tokenizer expects).

  `tokenizer`: an MWPTokenizer or its directory, to use the same user dictionary; None = system dictionary.
  A str gives a str, a list gives a list.
  """
  user_dic = None
  if isinstance(tokenizer, MWPTokenizer):
    user_dic = tokenizer.user_dic
  elif tokenizer is not None:
    config_path = Path(tokenizer) / "mwp_tokenizer.json"
    if config_path.is_file():
      ud = json.loads(config_path.read_text(encoding="utf-8")).get("user_dic") or None
      if ud:
        p = Path(ud["path"])
        user_dic = str(p if p.is_absolute() else Path(tokenizer) / p)
  analyzer = _ANALYZERS.get(user_dic)
  if analyzer is None:
    analyzer = _ANALYZERS[user_dic] = MorphAnalyzer(user_dic)
  if isinstance(texts, str):
    return analyzer.joined(sanitize(texts))
  return [analyzer.joined(sanitize(t)) for t in texts]


def save_hf(tok: MWPTokenizer, directory: str | os.PathLike) -> None:
  """Write an AutoTokenizer-loadable BERT tokenizer (cased) for `tok`'s vocabulary."""
  from tokenizers.processors import TemplateProcessing

  d = Path(directory)
  tok.save(d, copy_user_dic=bool(tok.user_dic))
  rust = tok._rust.__class__.from_str(tok._rust.to_str())
  rust.post_processor = TemplateProcessing(
      single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
      special_tokens=[("[CLS]", tok.cls_id), ("[SEP]", tok.sep_id)])
  rust.save(str(d / "tokenizer.json"))
  names = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), SPECIAL_TOKENS))
  config = {
      "tokenizer_class": "BertTokenizer", "do_lower_case": False, "strip_accents": False,
      "tokenize_chinese_chars": True, "do_basic_tokenize": True, "model_max_length": MODEL_MAX_LENGTH,
      "clean_up_tokenization_spaces": False, **names,
  }
  (d / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
  (d / "special_tokens_map.json").write_text(json.dumps(names, indent=2) + "\n", encoding="utf-8")
  (d / "PRESEGMENT.md").write_text(
      "This tokenizer expects Mecab-ko pre-segmented text (morphemes joined by single spaces):\n\n"
      "    from korpat_jax.tokenizer import presegment\n"
      "    hf_tokenizer(presegment(texts, this_directory))\n\n"
      "or use `korpat_jax.tokenizer.MWPTokenizer.load(this_directory)`, which segments by itself and returns\n"
      "offsets into the original text.\n", encoding="utf-8")
