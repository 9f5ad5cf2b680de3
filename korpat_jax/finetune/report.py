"""Bad input of a fine-tuning run, counted by reason with `file:line` examples: nothing is dropped silently.

Readers call `skip` for an example they leave out and `adjust` for one they keep changed (a character no token
covers, a truncated field); the run logs the summary and writes it to `W/data_report.json`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping

from korpat_jax.reasons import MAX_PLACES, ReasonCounts

log = logging.getLogger("korpat_jax")

MAX_EXAMPLES = MAX_PLACES  # file:line examples kept per reason (the first ones, in input order)


@dataclasses.dataclass
class DataReport(ReasonCounts):
  """Counts of read / used examples and of skipped and adjusted ones by reason, per input file role."""

  name: str = ""
  read: int = 0
  used: int = 0

  def skip(self, reason: str, where: str, detail: str = "") -> None:
    """One example left out; `where` is `file:line` (or `file:#index`)."""
    self.count("skipped", reason, f"{where}: {detail}" if detail else where)

  def adjust(self, reason: str, where: str, detail: str = "", count: int = 1) -> None:
    """An example kept but changed (`count` units of it: characters, tokens, labels)."""
    self.count("adjusted", reason, f"{where}: {detail}" if detail else where, count)

  def merge(self, saved: Mapping[str, Any]) -> None:
    """Adds a report saved with `to_dict` (e.g. a TFDS builder's) to this one."""
    self.read += int(saved.get("read", 0))
    self.used += int(saved.get("used", 0))
    self.add_saved_reasons(saved)

  def examples(self, reason: str) -> list[str]:
    return self.places_of(reason)

  def to_dict(self) -> dict[str, Any]:
    return {"read": self.read, "used": self.used, **self.reasons_dict()}

  def log_summary(self) -> None:
    what = f"{self.name}: " if self.name else ""
    log.info("%s%d examples read, %d used", what, self.read, self.used)
    for kind, counter in (("skipped", self.skipped), ("adjusted", self.adjusted)):
      for reason, count in sorted(counter.items()):
        first = self.examples(reason)
        log.warning("%s%s %d x %s%s", what, kind, count, reason, f" (e.g. {first[0]})" if first else "")
