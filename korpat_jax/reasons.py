"""Input left out or changed, counted by reason with its first few places (`file:line: detail`), so that nothing
is dropped silently. The corpus preparation (corpus/report.py PrepStats) and the fine-tuning readers
(finetune/report.py DataReport) both keep their counts in this shape; each adds its own totals around it.

Saved form (both write it, and read it back): {"skipped": {reason: {"count": n, "examples": [place, ...]}},
"adjusted": {...}}, reasons sorted.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, ClassVar, Mapping

MAX_PLACES = 5  # places kept per reason
KINDS = ("skipped", "adjusted")


@dataclasses.dataclass(kw_only=True)
class ReasonCounts:
  """`skipped`: input left out; `adjusted`: input kept but changed; `where`: reason -> up to MAX_PLACES places.

  A subclass sets SMALLEST_PLACES to keep the smallest places instead of the first ones seen: then merging the
  counts of parallel workers gives the same places in any order (the first ones depend on that order)."""

  skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  adjusted: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  where: dict[str, list[str]] = dataclasses.field(default_factory=dict)

  SMALLEST_PLACES: ClassVar[bool] = False

  def count(self, kind: str, reason: str, place: str, n: int = 1) -> None:
    """`n` units of `kind` ("skipped" or "adjusted") under `reason`, at `place`."""
    getattr(self, kind)[reason] += n
    self.note(reason, place)

  def note(self, reason: str, place: str) -> None:
    places = self.where.setdefault(reason, [])
    if self.SMALLEST_PLACES:
      if place not in places:
        places.append(place)
        places.sort()
        del places[MAX_PLACES:]
    elif len(places) < MAX_PLACES:
      places.append(place)

  def places_of(self, reason: str) -> list[str]:
    """The places kept for `reason`."""
    return list(self.where.get(reason, ()))

  def merge_reasons(self, other: ReasonCounts) -> None:
    """Adds another instance's counts and places."""
    for kind in KINDS:
      getattr(self, kind).update(getattr(other, kind))
    for reason, places in other.where.items():
      for place in places:
        self.note(reason, place)

  def add_saved_reasons(self, saved: Mapping[str, Any]) -> None:
    """Adds counts in the saved form (`reasons_dict`), e.g. another worker's or a TFDS builder's."""
    for kind in KINDS:
      for reason, entry in saved.get(kind, {}).items():
        getattr(self, kind)[reason] += int(entry["count"])
        for place in entry.get("examples", []):
          self.note(reason, place)

  def reasons_dict(self) -> dict[str, Any]:
    return {kind: {r: {"count": n, "examples": self.places_of(r)} for r, n in sorted(getattr(self, kind).items())}
            for kind in KINDS}
