"""`korpat-jax predict --workdir W --input FILE --output FILE`: a fine-tuned run on new files.

The same readers as training (labels not needed), the best checkpoint (or --step), batched on whatever devices
are there; writes the format of W/eval/predictions.* to --output: one line per input row, a row the reader left
out as `{"id", "error", "where", "detail"}` (QA: every question in predictions.json, see tasks/question_answering).
W and --output may be URLs (gs://...: see korpat_jax.files); --input is read from a local path. A classification
input whose columns (fields) are named otherwise than the training file's takes --text-fields / --id-field.
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
from korpat_jax.tasks import make_task
from korpat_jax.tasks.finetuning import FineTuningTask
from korpat_jax.train import compile_steps
from korpat_jax.train_cli import setup_logging

log = logging.getLogger("korpat_jax")


def predict(workdir: str, input_path: str, output_path: str, step: Optional[int] = None,
            batch_size: Optional[int] = None, text_fields: Optional[str] = None,
            id_field: Optional[str] = None) -> int:
  """Writes the predictions of `input_path` to `output_path`; returns the number of examples predicted.
  `text_fields` / `id_field` (classification): the input's own names of the run's data.text_fields / id_field."""
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
  parser.add_argument("--input", required=True, help="file in the task's training format (labels optional)")
  parser.add_argument("--output", required=True, help="predictions file (.jsonl; QA: .json)")
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
          text_fields=args.text_fields, id_field=args.id_field)
  return 0
