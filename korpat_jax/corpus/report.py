"""Counts of what preparation read, wrote, skipped and adjusted, mergeable across workers and runners.

Nothing is dropped silently. Two kinds of counts:

- Events (`skipped`, `adjusted`): every skipped line, document or file and every change (a sentence cut, a huge
  document split) under a reason, with the first few places (`file:line: detail`) kept as examples.
- Documents: every document the readers produce or drop is *read*; it is then either *written* (at least one
  example) or *skipped* under exactly one reason, so `documents_read == documents + sum(documents_skipped)`.
  A written document that lost or changed content (an undecodable line, a line cleaning emptied, tokens cut at
  seq-len...) also counts once per reason in `documents_adjusted`. A document over `max_document_chars` is split by
  the reader, and each part counts as a document. Whole files that are skipped (binary, unreadable, a TSV without
  its column) hold no countable documents: they are events only.

Tokens: `tokens_read` (the sentences' tokens, before packing) - `tokens_truncated` (cut at seq-len) +
`special_tokens` ([CLS]/[SEP]) == the ids written in the records, `tokens_written` per split.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from korpat_jax.reasons import MAX_PLACES, ReasonCounts

MAX_EXAMPLES_PER_REASON = MAX_PLACES
# Whole files skipped or suspect: the local runner logs each as soon as the file is read, the summary lists them.
FILE_WARNINGS = ("binary_file", "undecodable_file", "truncated_file", "unreadable_file")
_COUNTERS = ("examples", "documents_by_split", "tokens_written", "documents_skipped", "documents_adjusted")
_INTS = ("documents", "documents_read", "sentences", "tokens_read", "tokens_truncated", "special_tokens")


class AccountingError(RuntimeError):
  """The counts do not add up: a bug in preparation, never bad input."""


@dataclasses.dataclass
class PrepStats(ReasonCounts):
  """The events (`skipped`, `adjusted` with their places: ReasonCounts) and the document and token totals."""

  SMALLEST_PLACES = True  # so that the result does not depend on the order in which workers merge

  documents: int = 0  # documents written: they produced at least one example
  documents_read: int = 0  # documents the readers produced or dropped
  sentences: int = 0
  tokens_read: int = 0  # tokens of the written documents' sentences, before packing truncates anything
  tokens_truncated: int = 0  # dropped by ELECTRA's per-example truncation at seq-len
  special_tokens: int = 0  # [CLS] and [SEP] ids added by packing
  examples: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # split -> n
  documents_by_split: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  tokens_written: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # split -> ids
  documents_skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  documents_adjusted: collections.Counter = dataclasses.field(default_factory=collections.Counter)

  def skip(self, reason: str, where: str, count: int = 1) -> None:
    """Input that did not make it into any example (an event: a line, a document or a file)."""
    self.count("skipped", reason, where, count)

  def adjust(self, reason: str, where: str, count: int = 1) -> None:
    """Input that was kept but changed (a huge document split in parts, a long sentence cut)."""
    self.count("adjusted", reason, where, count)

  def drop_document(self, reason: str) -> None:
    """A document that was read and will not be written (its event, with the place, is counted by the caller)."""
    self.documents_skipped[reason] += 1

  def merge(self, other: PrepStats) -> PrepStats:
    for name in _INTS:
      setattr(self, name, getattr(self, name) + getattr(other, name))
    for name in _COUNTERS:
      getattr(self, name).update(getattr(other, name))
    self.merge_reasons(other)
    return self

  def check(self) -> None:
    """Raises AccountingError when documents or tokens do not add up."""
    skipped = sum(self.documents_skipped.values())
    if self.documents_read != self.documents + skipped:
      raise AccountingError(
          f"document accounting: read {self.documents_read} != written {self.documents} + skipped {skipped} "
          f"({dict(sorted(self.documents_skipped.items()))})")
    if self.documents != sum(self.documents_by_split.values()):
      raise AccountingError(f"document accounting: written {self.documents} != per split "
                            f"{dict(sorted(self.documents_by_split.items()))}")
    written = sum(self.tokens_written.values())
    if written != self.tokens_read - self.tokens_truncated + self.special_tokens:
      raise AccountingError(
          f"token accounting: written {written} != read {self.tokens_read} - truncated {self.tokens_truncated} "
          f"+ special {self.special_tokens}")

  def to_json(self) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(self, name) for name in _INTS}
    for name in _COUNTERS:
      out[name] = dict(sorted(getattr(self, name).items()))
    return {**out, **self.reasons_dict()}

  @classmethod
  def from_json(cls, data: dict[str, Any]) -> PrepStats:
    stats = cls(**{name: data.get(name, 0) for name in _INTS})
    for name in _COUNTERS:
      getattr(stats, name).update(data.get(name, {}))
    stats.add_saved_reasons(data)
    return stats
