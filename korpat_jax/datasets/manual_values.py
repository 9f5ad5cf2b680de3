"""Small helpers over prepared TFDS rows (no TFDS import)."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
  """A decoded TFDS Text value (bytes) as str."""
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)
