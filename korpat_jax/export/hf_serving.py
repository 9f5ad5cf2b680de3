"""What an exported HF directory needs from the run to serve raw text as the run saw it: the training sequence length
(the tokenizer's model_max_length) and, for question answering and token classification, the run's window settings
and a pipeline.

transformers 5 has no "question-answering" pipeline any more, and its "token-classification" pipeline truncates at
model_max_length and reads tags leniently; a QA or NER export registers korpat-jax's own
(korpat_jax/export/hf_remote/pipeline_korpat.py) in config.json `custom_pipelines`, with the run's settings under
`korpat_question_answering` or `korpat_token_classification`, so that `pipeline("question-answering" or
"token-classification", model=DIR, trust_remote_code=True)` answers as `korpat-jax predict` does (and without
trust_remote_code=True transformers refuses to build the pipeline)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

from korpat_jax import files, workdir as workdir_lib
from korpat_jax.export import hf_remote
from korpat_jax.model.config import ElectraConfig

QA_KIND = "question_answering"
QA_KEYS = ("max_query_length", "doc_stride", "max_answer_length", "n_best_size")
NER_KIND = "token_classification"
PIPELINE_FILE = f"{hf_remote.PIPELINE_MODULE}.py"
# kind -> (pipeline task, class in PIPELINE_FILE, model auto class, config.json key of the run's settings)
PIPELINES = {
    QA_KIND: ("question-answering", hf_remote.QA_PIPELINE_CLASS, "AutoModelForQuestionAnswering",
              "korpat_question_answering"),
    NER_KIND: ("token-classification", hf_remote.NER_PIPELINE_CLASS, "AutoModelForTokenClassification",
               "korpat_token_classification"),
}


@dataclasses.dataclass(frozen=True)
class ServingInfo:
  model_max_length: int                                  # tokens per sequence, special tokens included
  question_answering: Optional[Mapping[str, int]] = None  # QA runs: max_seq_length + QA_KEYS
  token_classification: Optional[Mapping[str, int]] = None  # NER runs: max_seq_length, window_stride


def read_serving_info(workdir: str, cfg: ElectraConfig) -> ServingInfo:
  """From the run's config.json: train.seq_len (capped by the model's positions; the positions when the run has no
  config, e.g. an `import-hf` directory), a QA run's head settings and a NER run's window stride."""
  saved = workdir_lib.read_json_if_exists(files.join(workdir, workdir_lib.CONFIG_JSON)) or {}
  length = _seq_len(saved, cfg.max_position_embeddings)
  if saved.get("task") == NER_KIND:
    stride = (saved.get("data") or {}).get("window_stride")
    return ServingInfo(length, token_classification=ner_windows(length, stride if isinstance(stride, int) else -1))
  if saved.get("task") != QA_KIND:
    return ServingInfo(length)
  head = saved.get("head") or {}
  qa = {key: int(head[key]) for key in QA_KEYS if _positive_int(head.get(key))}
  return ServingInfo(length, {"max_seq_length": length, **qa})


def ner_windows(seq_len: int, window_stride: int = -1) -> dict[str, int]:
  """A NER run's windows: `seq_len` tokens with [CLS] and [SEP], starts `window_stride` tokens apart, resolved as
  FineTuningTask.window_stride resolves data.window_stride (-1: half the window of seq_len - 2 tokens)."""
  window = seq_len - 2
  stride = max(1, window // 2) if window_stride < 0 else max(1, min(window_stride, window))
  return {"max_seq_length": seq_len, "window_stride": stride}


def write_pipeline_files(out: str, kind: str, serving: ServingInfo) -> dict[str, Any]:
  """A question answering or token classification export: copies pipeline_korpat.py into `out` and returns the
  config.json entries that register it; other kinds get {} (text classification: transformers' pipeline takes the
  remote tokenizer as it is, and its truncation=True is predict's head cut)."""
  if kind not in PIPELINES:
    return {}
  task, cls, model, key = PIPELINES[kind]
  if kind == QA_KIND:
    settings = serving.question_answering or {"max_seq_length": serving.model_max_length}
  else:
    settings = serving.token_classification or ner_windows(serving.model_max_length)
  files.copy_file(str(hf_remote.source_path(hf_remote.PIPELINE_MODULE)), files.join(out, PIPELINE_FILE))
  return {"custom_pipelines": {task: {"impl": f"{hf_remote.PIPELINE_MODULE}.{cls}", "pt": [model], "type": "text"}},
          key: dict(settings)}


def _seq_len(saved: Mapping[str, Any], positions: int) -> int:
  seq_len = (saved.get("train") or {}).get("seq_len")
  return min(int(seq_len), positions) if _positive_int(seq_len) else positions


def _positive_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool) and value > 0
