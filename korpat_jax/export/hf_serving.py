"""What an exported HF directory needs from the run to serve raw text as the run saw it: the training sequence length
(the tokenizer's model_max_length) and, for question answering, the run's window settings and a pipeline.

transformers 5 has no "question-answering" pipeline any more; a QA export registers korpat-jax's own
(korpat_jax/export/hf_remote/pipeline_korpat.py) in config.json `custom_pipelines`, with the run's head settings
under `korpat_question_answering`, so `pipeline("question-answering", model=DIR, trust_remote_code=True)` answers
as `korpat-jax predict` does.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

from korpat_jax import files, workdir as workdir_lib
from korpat_jax.export import hf_remote
from korpat_jax.model.config import ElectraConfig

QA_KIND = "question_answering"
QA_KEYS = ("max_query_length", "doc_stride", "max_answer_length", "n_best_size")
PIPELINE_FILE = f"{hf_remote.PIPELINE_MODULE}.py"


@dataclasses.dataclass(frozen=True)
class ServingInfo:
  model_max_length: int                                  # tokens per sequence, special tokens included
  question_answering: Optional[Mapping[str, int]] = None  # QA runs: max_seq_length + QA_KEYS


def read_serving_info(workdir: str, cfg: ElectraConfig) -> ServingInfo:
  """From the run's config.json: train.seq_len (capped by the model's positions; the positions when the run has no
  config, e.g. an `import-hf` directory) and a QA run's head settings."""
  saved = workdir_lib.read_json_if_exists(files.join(workdir, workdir_lib.CONFIG_JSON)) or {}
  length = _seq_len(saved, cfg.max_position_embeddings)
  if saved.get("task") != QA_KIND:
    return ServingInfo(length)
  head = saved.get("head") or {}
  qa = {key: int(head[key]) for key in QA_KEYS if _positive_int(head.get(key))}
  return ServingInfo(length, {"max_seq_length": length, **qa})


def write_pipeline_files(out: str, kind: str, serving: ServingInfo) -> dict[str, Any]:
  """A question answering export: copies pipeline_korpat.py into `out` and returns the config.json entries that
  register it; other kinds need nothing (transformers' token- and text-classification pipelines take the remote
  tokenizer as it is) and get {}."""
  if kind != QA_KIND:
    return {}
  files.copy_file(str(hf_remote.source_path(hf_remote.PIPELINE_MODULE)), files.join(out, PIPELINE_FILE))
  return {"custom_pipelines": {"question-answering": {
              "impl": f"{hf_remote.PIPELINE_MODULE}.{hf_remote.QA_PIPELINE_CLASS}",
              "pt": ["AutoModelForQuestionAnswering"], "type": "text"}},
          "korpat_question_answering": dict(serving.question_answering
                                            or {"max_seq_length": serving.model_max_length})}


def _seq_len(saved: Mapping[str, Any], positions: int) -> int:
  seq_len = (saved.get("train") or {}).get("seq_len")
  return min(int(seq_len), positions) if _positive_int(seq_len) else positions


def _positive_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool) and value > 0
