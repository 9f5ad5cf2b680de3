"""Small helpers over prepared TFDS rows and saved reports (no TFDS import)."""

from __future__ import annotations

from typing import Any, Mapping

from korpat_jax.finetune.report import MAX_EXAMPLES, DataReport


def text(value: Any) -> str:
  """A decoded TFDS Text value (bytes) as str."""
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def merge_report(report: DataReport, prepared: Mapping[str, Any]) -> None:
  """Adds a builder's saved report (`DataReport.to_dict()`) to `report`."""
  report.read += int(prepared.get("read", 0))
  report.used += int(prepared.get("used", 0))
  for kind, counter in (("skipped", report.skipped), ("adjusted", report.adjusted)):
    for reason, entry in prepared.get(kind, {}).items():
      counter[reason] += int(entry["count"])
      kept = report._examples[reason]  # DataReport keeps its first examples per reason privately
      kept.extend(entry.get("examples", [])[:max(0, MAX_EXAMPLES - len(kept))])
