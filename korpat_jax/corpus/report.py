"""Counts of what preparation read, wrote, skipped and adjusted, mergeable across workers and runners.

Nothing is dropped silently: every skipped line, document or file is counted under a reason, with the first few
places (`file:line: detail`) kept as examples for the manifest.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

MAX_EXAMPLES_PER_REASON = 5


@dataclasses.dataclass
class PrepStats:
  documents: int = 0  # documents that produced at least one example
  sentences: int = 0
  tokens: int = 0  # tokens of the sentences, before packing truncates anything
  tokens_truncated: int = 0  # dropped by ELECTRA's per-example truncation
  examples: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # split -> n
  documents_by_split: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  adjusted: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  where: dict[str, list[str]] = dataclasses.field(default_factory=dict)

  def _note(self, reason: str, where: str) -> None:
    # The smallest few, so that the result does not depend on the order in which workers merge.
    places = self.where.setdefault(reason, [])
    if where not in places:
      places.append(where)
      places.sort()
      del places[MAX_EXAMPLES_PER_REASON:]

  def skip(self, reason: str, where: str, count: int = 1) -> None:
    """Input that did not make it into any example."""
    self.skipped[reason] += count
    self._note(reason, where)

  def adjust(self, reason: str, where: str, count: int = 1) -> None:
    """Input that was kept but changed (a huge document split in parts, a long sentence cut)."""
    self.adjusted[reason] += count
    self._note(reason, where)

  def merge(self, other: PrepStats) -> PrepStats:
    self.documents += other.documents
    self.sentences += other.sentences
    self.tokens += other.tokens
    self.tokens_truncated += other.tokens_truncated
    self.examples.update(other.examples)
    self.documents_by_split.update(other.documents_by_split)
    self.skipped.update(other.skipped)
    self.adjusted.update(other.adjusted)
    for reason, places in other.where.items():
      for place in places:
        self._note(reason, place)
    return self

  def to_json(self) -> dict[str, Any]:
    return {
        "documents": self.documents,
        "documents_by_split": dict(sorted(self.documents_by_split.items())),
        "sentences": self.sentences,
        "tokens": self.tokens,
        "tokens_truncated": self.tokens_truncated,
        "examples": dict(sorted(self.examples.items())),
        "skipped": {r: {"count": n, "examples": self.where.get(r, [])} for r, n in sorted(self.skipped.items())},
        "adjusted": {r: {"count": n, "examples": self.where.get(r, [])} for r, n in sorted(self.adjusted.items())},
    }

  @classmethod
  def from_json(cls, data: dict[str, Any]) -> PrepStats:
    stats = cls(documents=data["documents"], sentences=data["sentences"], tokens=data["tokens"],
                tokens_truncated=data["tokens_truncated"])
    stats.examples.update(data["examples"])
    stats.documents_by_split.update(data["documents_by_split"])
    for kind in ("skipped", "adjusted"):
      for reason, entry in data[kind].items():
        getattr(stats, kind)[reason] += entry["count"]
        stats.where[reason] = list(entry["examples"])
    return stats


def merge_all(parts: list[PrepStats]) -> PrepStats:
  total = PrepStats()
  for part in parts:
    total.merge(part)
  return total
