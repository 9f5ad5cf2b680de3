"""`korpat-jax COMMAND ...`: dispatches to the module that owns each command.

Commands import lazily so that `korpat-jax tokenizer ...` never pays for JAX.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Sequence

from korpat_jax.errors import KorpatError

# command -> (module with a `main(argv) -> int`, one-line help)
COMMANDS = {
    "pretrain": ("korpat_jax.pretrain.cli", "pretrain ELECTRA from a config"),
    "finetune": ("korpat_jax.finetune.cli", "fine-tune: NER, CPC classification, sentence pairs, QA"),
    "predict": ("korpat_jax.finetune.predict", "a fine-tuned run on new files -> predictions"),
    "tokenizer": ("korpat_jax.tokenizer.cli", "build the MWP tokenizer: userdic | train | extend | encode"),
    "prepare": ("korpat_jax.corpus.cli", "corpus -> pre-tokenized ArrayRecord shards"),
    "verify": ("korpat_jax.corpus.verify", "check prepared records against their manifest (sha256, record counts)"),
    "export": ("korpat_jax.export.cli", "Orbax checkpoint -> HF transformers directory (--format onnx: + model.onnx)"),
    "import-hf": ("korpat_jax.export.import_cli", "HF ELECTRA weights -> Orbax checkpoint"),
}
JAX_COMMANDS = ("pretrain", "finetune", "predict", "export", "import-hf")  # set up host memory before JAX starts


def _usage() -> str:
  lines = ["usage: korpat-jax COMMAND [ARGS]", "", "commands:"]
  lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
  lines += ["", "`korpat-jax COMMAND --help` for the command's arguments."]
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  try:
    try:
      return _dispatch(argv)
    finally:   # also after argparse's --help (SystemExit): a closed pipe shows up here, not at interpreter exit
      sys.stdout.flush()
  except BrokenPipeError:
    # `korpat-jax ... | head`: the reader closed the pipe. Python's documented way out (see "Note on SIGPIPE" in
    # the signal module docs): point stdout at devnull so the flush at exit does not raise again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def _dispatch(argv: Sequence[str] | None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help"):
    print(_usage())
    return 0 if argv else 2
  if argv[0] in ("-V", "--version"):
    from korpat_jax import __version__
    print(f"korpat-jax {__version__}")
    return 0
  command, rest = argv[0], argv[1:]
  if command not in COMMANDS:
    print(f"korpat-jax: error: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
    return 2
  if command in JAX_COMMANDS:
    from korpat_jax import host_memory
    try:
      host_memory.keep_freed_memory()
    except ValueError as e:
      print(f"korpat-jax {command}: error: {e}", file=sys.stderr)
      return 2
  module = importlib.import_module(COMMANDS[command][0])
  try:
    return int(module.main(rest) or 0)
  except KorpatError as e:
    print(f"korpat-jax {command}: error: {e}", file=sys.stderr)
    return getattr(e, "exit_code", 2)
