"""The shard plan: which example goes to which shard, decided from the inputs alone.

Examples of a split are ordered by (input file index in the sorted corpus list, rank within that file). With T
examples and at most R a shard, there are n = ceil(T / R) shards and shard i holds the contiguous ranks
[i * T // n, (i + 1) * T // n), so shards differ in size by at most one. Any runner that knows the per-file counts
places every example in the same shard at the same position, which makes the runners' shards byte-identical.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Mapping

from korpat_jax.corpus import records


@dataclasses.dataclass(frozen=True)
class SplitPlan:
  split: str
  total: int
  file_offsets: dict[int, int]  # file index -> global rank of its first example in this split
  starts: tuple[int, ...]  # first global rank of each shard

  @property
  def num_shards(self) -> int:
    return len(self.starts)

  def shard_size(self, shard: int) -> int:
    end = self.starts[shard + 1] if shard + 1 < len(self.starts) else self.total
    return end - self.starts[shard]

  def shard_file(self, shard: int) -> str:
    return records.shard_name(self.split, shard, self.num_shards)

  def locate(self, file_index: int, rank: int) -> tuple[int, int]:
    """(shard, position in the shard) of the `rank`-th example of file `file_index`."""
    global_rank = self.file_offsets[file_index] + rank
    shard = bisect.bisect_right(self.starts, global_rank) - 1
    return shard, global_rank - self.starts[shard]

  def file_ranges(self, shard: int, counts: Mapping[int, int]) -> list[tuple[int, int, int]]:
    """The (file index, first rank, end rank) pieces that make up `shard`, in order."""
    lo, hi = self.starts[shard], self.starts[shard] + self.shard_size(shard)
    pieces = []
    for file_index in sorted(self.file_offsets):
      a = self.file_offsets[file_index]
      b = a + counts.get(file_index, 0)
      if b > a and b > lo and a < hi:
        pieces.append((file_index, max(lo, a) - a, min(hi, b) - a))
    return pieces


def plan_split(split: str, counts: Mapping[int, int], records_per_shard: int) -> SplitPlan:
  """`counts`: file index -> number of this split's examples from that file."""
  if records_per_shard < 1:
    raise ValueError(f"records_per_shard must be positive, got {records_per_shard}")
  offsets, total = {}, 0
  for file_index in sorted(counts):
    offsets[file_index] = total
    total += counts[file_index]
  n = -(-total // records_per_shard)
  return SplitPlan(split, total, offsets, tuple(i * total // n for i in range(n)))
