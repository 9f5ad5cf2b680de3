"""Counts by reason with a few places: the first ones seen (fine-tuning reports, input order) or the smallest ones
(corpus preparation, so that merging workers in any order agrees); the saved form reads back."""

from __future__ import annotations

import dataclasses

from korpat_jax.reasons import MAX_PLACES, ReasonCounts


@dataclasses.dataclass
class Smallest(ReasonCounts):
  SMALLEST_PLACES = True


def test_first_places_in_order_and_smallest_places_in_any_merge_order():
  first = ReasonCounts()
  for i in range(MAX_PLACES + 2):
    first.count("skipped", "bad", f"f:{9 - i}")
  assert first.skipped["bad"] == MAX_PLACES + 2 and first.places_of("bad") == [f"f:{9 - i}" for i in range(MAX_PLACES)]
  a, b = Smallest(), Smallest()
  a.count("adjusted", "cut", "f:3", 2)
  b.count("adjusted", "cut", "f:1")
  ab, ba = Smallest(), Smallest()
  for x in (a, b):
    ab.merge_reasons(x)
  for x in (b, a):
    ba.merge_reasons(x)
  assert ab == ba and ab.adjusted["cut"] == 3 and ab.places_of("cut") == ["f:1", "f:3"]


def test_saved_form_reads_back():
  counts = ReasonCounts()
  counts.count("skipped", "bad", "f:1")
  counts.count("adjusted", "cut", "f:2", 4)
  again = ReasonCounts()
  again.add_saved_reasons(counts.reasons_dict())
  assert again == counts and counts.reasons_dict()["adjusted"] == {"cut": {"count": 4, "examples": ["f:2"]}}
