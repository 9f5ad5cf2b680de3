"""Bad input of a fine-tuning run, counted by reason with `file:line` examples: nothing is dropped silently.

Readers call `skip` for an example they leave out and `adjust` for one they keep changed (a character no token
covers, a truncated field); the run logs the summary and writes it to `W/data_report.json`.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Mapping

log = logging.getLogger("korpat_jax")

MAX_EXAMPLES = 5  # file:line examples kept per reason


class DataReport:
  """Counts of read / used examples and of skipped and adjusted ones by reason, per input file role."""

  def __init__(self, name: str = ""):
    self.name = name
    self.read = 0
    self.used = 0
    self.skipped: collections.Counter[str] = collections.Counter()
    self.adjusted: collections.Counter[str] = collections.Counter()
    self._examples: dict[str, list[str]] = collections.defaultdict(list)

  def skip(self, reason: str, where: str, detail: str = "") -> None:
    """One example left out; `where` is `file:line` (or `file:#index`)."""
    self.skipped[reason] += 1
    self._example(reason, where, detail)

  def adjust(self, reason: str, where: str, detail: str = "", count: int = 1) -> None:
    """An example kept but changed (`count` units of it: characters, tokens, labels)."""
    self.adjusted[reason] += count
    self._example(reason, where, detail)

  def _example(self, reason: str, where: str, detail: str) -> None:
    if len(self._examples[reason]) < MAX_EXAMPLES:
      self._examples[reason].append(f"{where}: {detail}" if detail else where)

  def merge(self, saved: Mapping[str, Any]) -> None:
    """Adds a report saved with `to_dict` (e.g. a TFDS builder's) to this one."""
    self.read += int(saved.get("read", 0))
    self.used += int(saved.get("used", 0))
    for kind, counter in (("skipped", self.skipped), ("adjusted", self.adjusted)):
      for reason, entry in saved.get(kind, {}).items():
        counter[reason] += int(entry["count"])
        kept = self._examples[reason]
        kept.extend(entry.get("examples", [])[:max(0, MAX_EXAMPLES - len(kept))])

  def examples(self, reason: str) -> list[str]:
    return list(self._examples.get(reason, ()))

  def to_dict(self) -> dict[str, Any]:
    return {
        "read": self.read,
        "used": self.used,
        "skipped": {r: {"count": n, "examples": self.examples(r)} for r, n in sorted(self.skipped.items())},
        "adjusted": {r: {"count": n, "examples": self.examples(r)} for r, n in sorted(self.adjusted.items())},
    }

  def log_summary(self) -> None:
    what = f"{self.name}: " if self.name else ""
    log.info("%s%d examples read, %d used", what, self.read, self.used)
    for kind, counter in (("skipped", self.skipped), ("adjusted", self.adjusted)):
      for reason, count in sorted(counter.items()):
        first = self.examples(reason)
        log.warning("%s%s %d x %s%s", what, kind, count, reason, f" (e.g. {first[0]})" if first else "")
