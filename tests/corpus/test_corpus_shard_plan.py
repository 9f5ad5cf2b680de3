from __future__ import annotations

import os

import numpy as np
import pytest

from korpat_jax.corpus import records
from korpat_jax.corpus.shard_plan import plan_split
from korpat_jax.corpus.writer import read_records, sha256_file, write_shard


@pytest.mark.parametrize("counts, per_shard", [({0: 0}, 10), ({0: 10}, 10), ({0: 7, 1: 0, 2: 30, 5: 4}, 10),
                                               ({i: i * 3 for i in range(20)}, 7)])
def test_plan_is_balanced_and_covers_every_example_once(counts, per_shard):
  plan = plan_split("train", counts, per_shard)
  total = sum(counts.values())
  assert plan.total == total and plan.num_shards == -(-total // per_shard)
  sizes = [plan.shard_size(i) for i in range(plan.num_shards)]
  assert sum(sizes) == total and all(s <= per_shard for s in sizes)
  assert not sizes or max(sizes) - min(sizes) <= 1
  seen = {}
  for shard in range(plan.num_shards):
    position = 0
    for file_index, a, b in plan.file_ranges(shard, counts):
      for rank in range(a, b):
        assert plan.locate(file_index, rank) == (shard, position)
        seen[(file_index, rank)] = shard
        position += 1
  assert len(seen) == total
  if plan.num_shards:
    assert plan.shard_file(plan.num_shards - 1) == records.shard_name("train", plan.num_shards - 1, plan.num_shards)


def test_write_shard_is_atomic_reusable_and_compact(tmp_path):
  id_dtype = records.id_dtype_for(35000)
  assert id_dtype == np.dtype("<u2") and records.id_dtype_for(70000) == np.dtype("<u4")
  examples = [[2, 100 + i, 34999, 3] for i in range(25)]
  data = [records.encode_record(e, id_dtype) for e in examples]
  path = str(tmp_path / records.shard_name("train", 0, 1))
  info = write_shard(path, iter(data), 25, id_dtype)
  assert info == {"file": os.path.basename(path), "examples": 25, "tokens": 100, "sha256": sha256_file(path)}
  assert os.listdir(tmp_path) == [os.path.basename(path)]  # no temp file left
  assert [records.decode_record(r, id_dtype).tolist() for r in read_records(path)] == examples
  head, middle = records.RecordFormat(id_dtype).headers(4)
  assert data[0] == head + bytes([3] * 4) + middle + np.array(examples[0], "<u2").tobytes()  # a flag, two id bytes
  assert len(head) + len(middle) == 41
  mtime = os.stat(path).st_mtime_ns
  assert write_shard(path, iter(()), 25, id_dtype) == info  # complete: kept, not rewritten
  assert os.stat(path).st_mtime_ns == mtime
  with pytest.raises(RuntimeError, match="plan says 26"):
    write_shard(path, iter(data), 26, id_dtype)  # the old shard is wrong for the plan: rewritten, and checked


def test_grain_reads_the_shards(tmp_path):
  grain = pytest.importorskip("grain")
  id_dtype = records.id_dtype_for(1000)
  path = str(tmp_path / records.shard_name("eval", 0, 1))
  write_shard(path, (records.encode_record([2, i, 3], id_dtype) for i in range(5, 15)), 10, id_dtype)
  source = grain.sources.ArrayRecordDataSource([path])
  assert len(source) == 10
  assert records.decode_record(source[4], id_dtype).tolist() == [2, 9, 3]
