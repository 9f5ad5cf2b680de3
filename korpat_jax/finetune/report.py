"""Bad input of a fine-tuning run, counted by reason with `file:line` examples: nothing is dropped silently.

Readers call `skip` for an example they leave out and `adjust` for one they keep changed (a character no token
covers, a truncated field); the run logs the summary and writes it to `W/data_report.json`. A reader that leaves
out one whole input row (a sentence, a record, a question) says so with `row_skipped` right after its `skip`: the
prediction files then hold a line `{"id", "error": reason, "where", "detail"}` in its place (`skipped_rows`), so they
have one line per input row.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping, Optional

from korpat_jax.reasons import MAX_PLACES, ReasonCounts

log = logging.getLogger("korpat_jax")

MAX_EXAMPLES = MAX_PLACES  # file:line examples kept per reason (the first ones, in input order)


@dataclasses.dataclass
class DataReport(ReasonCounts):
  """Counts of read / used examples and of skipped and adjusted ones by reason, per input file role."""

  name: str = ""
  read: int = 0
  used: int = 0
  # Input rows left out, in input order: {"at": kept examples before it, "id", "where", "error", "detail"}.
  skipped_rows: list[dict[str, Any]] = dataclasses.field(default_factory=list, repr=False)
  _last_skip: Optional[tuple[str, str, str]] = dataclasses.field(default=None, repr=False)

  def skip(self, reason: str, where: str, detail: str = "") -> None:
    """One example left out; `where` is `file:line` (or `file:#index`)."""
    self.count("skipped", reason, f"{where}: {detail}" if detail else where)
    self._last_skip = (reason, where, detail)

  def row_skipped(self, at: int, row_id: Optional[str] = None) -> None:
    """The example of the last `skip` was one input row, left out before the `at`-th kept example (0-based; the
    number of examples kept so far): prediction files write an error line in its place."""
    if self._last_skip is None:
      raise ValueError("row_skipped() without a skip() before it")
    reason, where, detail = self._last_skip
    self.skipped_rows.append({"at": int(at), "id": row_id, "where": where, "error": reason, "detail": detail})
    self._last_skip = None

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
