"""The command line the training commands share (`korpat-jax pretrain`, `korpat-jax finetune`): a config file and
variant, --workdir, --print-config and `--config.KEY=VALUE` overrides, then the loop (korpat_jax.train)."""

from __future__ import annotations

import argparse
import logging
from typing import Callable, Optional, Sequence

import ml_collections

from korpat_jax import config as config_lib, files
from korpat_jax.errors import ConfigError
from korpat_jax.hooks import Hooks
from korpat_jax.train import finished_read_only, train


def _not_reraised(record: logging.LogRecord) -> bool:
  """Orbax logs the error of a failed async save (with its traceback) before raising it to the loop, which turns it
  into one line: drop the log record."""
  return "raised an exception" not in record.getMessage()


def setup_logging() -> None:
  """INFO lines with the time for korpat_jax; absl, Orbax and JAX's internals at WARNING."""
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S",
                      force=True)
  for noisy in ("absl", "orbax", "jax._src"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  logging.getLogger("absl").addFilter(_not_reraised)


def run_command(argv: Optional[Sequence[str]], prog: str, description: str, variants: str,
                prepare: Optional[Callable[[ml_collections.ConfigDict, str], None]] = None,
                hooks: Optional[Hooks] = None) -> int:
  """`PROG --config FILE.py:VARIANT --workdir W [--config.k=v ...]`: the pretrain and finetune commands.
  `prepare(config, workdir)` runs before the trainer (the demo's data); `hooks` run in its loop (the demo's probe
  when the run ends)."""
  rest, overrides = config_lib.split_overrides(list(argv or []))
  parser = argparse.ArgumentParser(
      prog=prog, description=description,
      epilog="Any config key can be overridden: --config.train.batch_size=64 --config.model.dtype=bfloat16. "
             f"{variants} Rerunning the same command resumes from the latest checkpoint in --workdir.")
  parser.add_argument("--config", required=True, help="FILE.py:VARIANT, e.g. configs/pretrain.py:tiny")
  parser.add_argument("--workdir", help="run directory: checkpoints, TensorBoard logs, profiles (required to run)")
  parser.add_argument("--print-config", action="store_true",
                      help="print every key of the resolved config (with its default and help) and exit")
  args = parser.parse_args(rest)
  config = config_lib.load(args.config)
  config_lib.apply_overrides(config, overrides)
  if args.print_config:
    print(config_lib.describe(config, args.config))
    return 0
  if not args.workdir:
    parser.error("the following arguments are required: --workdir")
  if config.data.get("build_demo") and files.is_remote(args.workdir):
    raise ConfigError(f"--workdir {args.workdir}: the demo builds its records under the workdir and ArrayRecord "
                      "reads local files only; use a local --workdir")
  setup_logging()
  if finished_read_only(config, args.workdir):  # before `prepare` too, which writes the demo's data there
    return 0
  if prepare is not None:
    prepare(config, args.workdir)
  train(config, args.workdir, hooks=hooks)
  return 0
