"""`korpat-jax predict --workdir W --input FILE --output FILE`: a fine-tuned run on new files.

Raw documents (a .txt with one document a line, or JSONL: `text`, `text` + `text_pair`, QA `question` +
`context`; korpat_jax.finetune.raw_input) are streamed (korpat_jax.finetune.stream): tokenized in worker
processes, batched by length, one JSONL line per input line, progress with an ETA, and an interrupted run resumes.
A file in the task's training format (KLUE / CoNLL NER, classification TSV or JSON, SQuAD JSON) is read by the
training readers (labels not needed) and written in the format of W/eval/predictions.* (QA: predictions.json).
Either way: the best checkpoint (or --step), any devices, one output line per input row, a row that could not be
used as `{"id", "error", "where", "detail"}`. W and --output may be URLs (gs://...: see korpat_jax.files); --input
is read from a local path. A classification input whose fields are named otherwise than the training file's takes
--text-fields / --id-field.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from typing import Optional, Sequence

import jax
import ml_collections

from korpat_jax import files, sharding, workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.errors import KorpatError
from korpat_jax.evaluation import evaluate_split
from korpat_jax.finetune import raw_input, stream
from korpat_jax.tasks import make_task
from korpat_jax.tasks.finetuning import FineTuningTask
from korpat_jax.train import compile_steps
from korpat_jax.tokenizer.pool import usable_cpus
from korpat_jax.train_cli import setup_logging

log = logging.getLogger("korpat_jax")


def predict(workdir: str, input_path: str, output_path: str, step: Optional[int] = None,
            batch_size: Optional[int] = None, text_fields: Optional[str] = None,
            id_field: Optional[str] = None, input_format: str = "auto", workers: Optional[int] = None) -> int:
  """Writes the predictions of `input_path` to `output_path`; returns the number of lines predicted (raw input)
  or examples predicted (training format). `text_fields` / `id_field` (classification): the input's own names of
  the run's data.text_fields / id_field. `input_format`: auto, text, jsonl or task (raw_input.input_format).
  `workers`: tokenizer processes for raw input (0: tokenize in this process; default: one per spare core)."""
  workdir = files.resolve(workdir)
  saved = workdir_lib.read_json_if_exists(files.join(workdir, workdir_lib.CONFIG_JSON))
  if saved is None:
    raise KorpatError(f"{files.join(workdir, workdir_lib.CONFIG_JSON)}: missing; is {workdir!r} a fine-tuning "
                      "run directory?")
  files.require_local(input_path, "--input", "read from local paths only; copy it to a local disk first")
  if not os.path.isfile(input_path):
    raise KorpatError(f"--input {input_path}: no such file")
  config = ml_collections.ConfigDict(saved)
  trained_fields = config.data.get("text_fields", "")
  _override_fields(config, text_fields, id_field)
  task = make_task(config, workdir)
  if not isinstance(task, FineTuningTask):
    raise KorpatError(f"{workdir}: a {task.name} run; predict takes fine-tuned runs")
  # Messages about the input name predict's options, not the fine-tuning config keys.
  task.setting_names = {"text_fields": f"--text-fields to the input's names of the run's text_fields "
                                       f"({trained_fields}), in that order",
                        "id_field": "--id-field"}
  fmt = _input_format(input_path, input_format, task, config)
  task.load_run()
  step = step if step is not None else workdir_lib.best_step(workdir)
  checkpointer = Checkpointer(workdir_lib.checkpoint_dir(workdir), interval=1, keep=1, read_only=True)
  try:
    step, params = checkpointer.restore_params_on_host(step)
  finally:
    checkpointer.close()

  devices = jax.device_count()
  wanted = batch_size or config.train.eval_batch_size
  config.train.eval_batch_size = -(-wanted // devices) * devices
  steps = compile_steps(task, sharding.make_mesh({"data": -1, "fsdp": 1}))  # the loop's eval step and shardings
  params = jax.device_put(params, steps.state_sharding.params)
  if fmt in raw_input.RAW_FORMATS:
    return _predict_raw(task, steps, params, input_path, fmt, files.resolve(output_path), step,
                        workers=default_workers() if workers is None else workers)
  with tempfile.TemporaryDirectory(prefix="korpat-predict-") as scratch:
    task.add_prediction_input(os.path.abspath(input_path), scratch)
    result = evaluate_split(task, steps.eval_step, params, "predict", steps.batch_sharding, config.seed)
    result.write(scratch)
    output_path = files.resolve(output_path)
    files.makedirs(os.path.dirname(output_path))
    files.rename(os.path.join(scratch, task.predictions_file), output_path)
  count = task.splits["predict"].num_examples
  skipped = len(task.skipped_rows("predict"))
  log.info("wrote %d predictions of %s (step %d of %s) to %s%s", count, input_path, step, workdir, output_path,
           f", and {skipped} error lines for the rows it could not read (see \"error\")" if skipped else "")
  return count


def default_workers() -> int:
  """Tokenizer processes beside the model: one per spare core, at most 4 (Mecab-ko outruns a small model)."""
  return max(0, min(4, usable_cpus() - 1))


def _input_format(input_path: str, forced: str, task: FineTuningTask, config: ml_collections.ConfigDict) -> str:
  """The input's format (raw_input.input_format), refused in one line where the task cannot read it."""
  if forced not in raw_input.INPUT_FORMATS:
    raise KorpatError(f"--input-format {forced}: expected one of {', '.join(raw_input.INPUT_FORMATS)}")
  fmt = raw_input.input_format(input_path, forced, task.task_type, config.data.get("format"))
  if fmt == "text" and task.task_type == "question_answering":
    raise KorpatError(f"--input {input_path}: a QA run reads JSONL lines with \"question\" and \"context\" "
                      "(.jsonl) or SQuAD JSON (.json), not plain text")
  if fmt == "text" and getattr(task, "pair", False):
    raise KorpatError(f"--input {input_path}: a sentence-pair run reads JSONL lines with \"text\" and "
                      "\"text_pair\" (.jsonl) or its training format, not one text a line")
  if fmt != "task" and forced == "auto":
    log.info("reading %s as %s (--input-format %s; --input-format task for the training format)", input_path,
             "raw text, one document a line" if fmt == "text" else "JSONL documents", fmt)
  return fmt


def _predict_raw(task: FineTuningTask, steps, params, input_path: str, fmt: str, output_path: str, step: int,
                 workers: int) -> int:
  output = stream.PartialOutput(output_path, stream.identity(input_path, fmt, task.workdir, step, task.config))
  try:
    summary = stream.predict_stream(task, steps.eval_step, params, steps.batch_sharding, input_path, fmt, output,
                                    batch_size=task.config.train.eval_batch_size, workers=workers)
  finally:
    output.close()
  summary.report.log_summary()
  total = summary.resumed_at + summary.lines
  log.info("wrote %d prediction lines of %s (step %d of %s) to %s%s: %d lines in %.1f s (%.0f docs/s)%s", total,
           input_path, step, task.workdir, output_path,
           f", {summary.errors} of them error lines (see \"error\")" if summary.errors else "", summary.lines,
           summary.seconds, summary.lines / max(summary.seconds, 1e-9),
           f", after {summary.resumed_at} lines of an earlier run" if summary.resumed_at else "")
  return total


def _override_fields(config: ml_collections.ConfigDict, text_fields: Optional[str], id_field: Optional[str]) -> None:
  """--text-fields / --id-field: the input's names of the fields a classification run reads."""
  if text_fields is None and id_field is None:
    return
  if config.task != "sequence_classification":
    raise KorpatError(f"--text-fields / --id-field: only for classification runs; this is a {config.task} run")
  if text_fields is not None:
    wanted = [f.strip() for f in text_fields.split(",") if f.strip()]
    trained = [f.strip() for f in config.data.text_fields.split(",") if f.strip()]
    if len(wanted) != len(trained):
      raise KorpatError(f"--text-fields {text_fields}: {len(wanted)} fields, the run was trained on "
                        f"{len(trained)} ({config.data.text_fields}); name the input's {len(trained)}, in that order")
    config.data.text_fields = ",".join(wanted)
  if id_field is not None:
    config.data.id_field = id_field.strip()


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(
      prog="korpat-jax predict",
      description="Run a fine-tuned model (NER, classification, QA) on new files: the same readers as training, "
                  "labels not needed; output in the format of W/eval/predictions.*")
  parser.add_argument("--workdir", required=True, help="a fine-tuning run directory")
  parser.add_argument("--input", required=True,
                      help="raw documents (.txt: one a line; .jsonl: text, text + text_pair, or question + context) "
                           "or a file in the task's training format (labels optional)")
  parser.add_argument("--output", required=True, help="predictions file (.jsonl; QA from SQuAD JSON: .json)")
  parser.add_argument("--input-format", default="auto", choices=raw_input.INPUT_FORMATS,
                      help="auto: .txt -> text (unless a NER file in the training format), .jsonl -> jsonl, else "
                           "task (the training format)")
  parser.add_argument("--workers", type=int, default=None,
                      help="tokenizer processes for raw input (0: in this process; default: one per spare core, "
                           "at most 4)")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the best one)")
  parser.add_argument("--batch-size", type=int, default=None, help="default: the run's train.eval_batch_size")
  parser.add_argument("--text-fields", default=None,
                      help="classification: the input's columns (fields) holding the run's data.text_fields, "
                           "comma-separated, in that order (default: the run's own names)")
  parser.add_argument("--id-field", default=None, help="classification: the input's id column (default: the run's "
                                                       "data.id_field)")
  args = parser.parse_args(list(argv))
  setup_logging()
  predict(args.workdir, args.input, args.output, step=args.step, batch_size=args.batch_size,
          text_fields=args.text_fields, id_field=args.id_field, input_format=args.input_format,
          workers=args.workers)
  return 0
