from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from korpat_jax.tokenizer.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
  parser = build_parser()
  return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("command", ["userdic", "train", "encode"])
def test_every_option_has_help_and_shows_its_default(command):
  parser = _subcommands()[command]
  formatter = parser._get_formatter()
  for action in parser._actions:
    if isinstance(action, argparse._HelpAction):
      continue
    assert action.help, f"{command} {action.option_strings[0]}: no help"
    is_flag = isinstance(action, argparse._StoreTrueAction)
    if not action.required and not is_flag:
      shown = formatter._get_help_string(action) % {"default": action.default}
      assert "default" in shown, f"{command} {action.option_strings[0]}: default not shown"


def test_vocab_size_help_and_default():
  parser = _subcommands()["train"]
  assert parser.parse_args(["--corpus", "x", "--out", "y"]).vocab_size == 35000
  help_text = " ".join(parser.format_help().split())
  assert "--vocab-size N WordPiece vocabulary size" in help_text and "(default: 35000" in help_text


def _env():
  return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_help_into_head_has_no_broken_pipe_traceback():
  run = subprocess.run(["bash", "-c", f"'{sys.executable}' -m korpat_jax --help | head -1"], capture_output=True,
                       text=True, env=_env(), cwd=REPO, timeout=60)
  assert run.stdout == "usage: korpat-jax COMMAND [ARGS]\n"
  assert run.stderr == ""


@pytest.mark.parametrize("argv", [["--help"], ["tokenizer", "train", "--help"]])
def test_reader_gone_before_output(argv):
  # deterministic: the read end is closed before the child writes anything
  proc = subprocess.Popen([sys.executable, "-m", "korpat_jax", *argv], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=_env(), cwd=REPO)
  proc.stdout.close()
  err = proc.stderr.read().decode()
  proc.wait(timeout=60)
  assert "Traceback" not in err and "BrokenPipeError" not in err, err
