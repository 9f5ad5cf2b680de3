"""Shared builders for the TFDS tests (not a test module)."""

from __future__ import annotations

import pathlib

from helpers import finetune_config


def tfds_config(variant: str, manual_dir, data_dir, **overrides):
  """configs/finetune.py:VARIANT reading `data.tfds` from `manual_dir`, prepared into `data_dir`."""
  return finetune_config(variant, **{"data.tfds_manual_dir": str(manual_dir) if manual_dir else "",
                                     "data.tfds_data_dir": str(data_dir), **overrides})


def read_inputs(config):
  """{run split: (TfdsSplit, examples, DataReport)} of a TFDS config (prepared on first use)."""
  from korpat_jax.datasets import source
  from korpat_jax.finetune.report import DataReport
  source.check_keys(config)
  out = {}
  for split, split_input in source.inputs(config).items():
    report = DataReport(split)
    out[split] = (split_input, split_input.examples(config, report), report)
  return out


def counts(report) -> dict:
  """A report without its `file:line` examples (those name the manual file's path)."""
  d = report if isinstance(report, dict) else report.to_dict()
  return {"read": d["read"], "used": d["used"],
          **{kind: {r: e["count"] for r, e in d[kind].items()} for kind in ("skipped", "adjusted")}}


def write(path: pathlib.Path, text: str) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text, encoding="utf-8")
  return path
