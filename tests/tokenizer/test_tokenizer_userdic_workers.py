"""`tokenizer userdic --workers N` gives the entries of one worker, and `--max-distinct` reports what it cost."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from korpat_jax.cli import main
from korpat_jax.tokenizer import noun_counts, nouns
from korpat_jax.tokenizer.noun_counts import PruneLog, Tally, prune_threshold
from korpat_jax.tokenizer.pool import WorkerPool
from korpat_jax.tokenizer.sources import demo_corpus_files, iter_lines

BLOCK = 256   # lines per worker task here, so the demo corpus (5,208 lines) makes about 20 of them
BOUND = 6000  # distinct strings: hit after the first 2-3 blocks of the demo corpus, a few times in all


@pytest.fixture
def small_blocks(monkeypatch):
  monkeypatch.setattr(noun_counts, "BLOCK_LINES", BLOCK)


@pytest.fixture
def pools(monkeypatch):
  """The worker processes of every pool the builder starts."""
  started: list[list[int]] = []

  class Recording(WorkerPool):
    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      started.append(self.pids)

  monkeypatch.setattr(nouns, "WorkerPool", Recording)
  return started


def _userdic(tmp_path, capsys, name: str, *args: str) -> tuple[bytes, dict, str]:
  out = tmp_path / name
  rc = main(["tokenizer", "userdic", "--corpus", "demo", "--out", str(out), *args])
  err = capsys.readouterr().err
  assert rc == 0, err
  manifest = json.loads((out / "userdic.json").read_text(encoding="utf-8"))
  return (out / "user.csv").read_bytes(), manifest, err


def test_two_workers_write_the_entries_of_one(tmp_path, capsys, small_blocks, pools):
  csv1, json1, err1 = _userdic(tmp_path, capsys, "w1", "--workers", "1")
  csv2, json2, err2 = _userdic(tmp_path, capsys, "w2", "--workers", "2")
  assert [len(p) for p in pools] == [0, 2]   # in this process, then two worker processes
  assert csv1 == csv2 and csv1.count(b"\n") > 100
  assert json1["corpus_candidates"] == json2["corpus_candidates"]
  assert json1["counts"] == json2["counts"] == "exact"
  assert "counts exact" in err1 and "counts exact" in err2
  distinct = json1["corpus_candidates"]["distinct"]   # what the counts held, the same for any worker count
  assert distinct["eojeols"] > distinct["l_strings"] > json1["entries"]
  for manifest in (json1, json2):   # where the time went: counting (what workers spread), choosing, compiling
    assert set(manifest["seconds"]) == {"count", "select", "compile"}
    assert manifest["seconds"]["count"] > 0 and manifest["seconds"]["compile"] == manifest["compile_seconds"]


def test_two_workers_write_the_entries_of_one_when_pruned(tmp_path, capsys, small_blocks):
  # Pruning depends on the order of the merges: the blocks must be merged in corpus order to match.
  csv1, json1, err1 = _userdic(tmp_path, capsys, "w1", "--workers", "1", "--max-distinct", str(BOUND))
  csv2, json2, _ = _userdic(tmp_path, capsys, "w2", "--workers", "2", "--max-distinct", str(BOUND))
  assert csv1 == csv2 and csv1.count(b"\n") > 20
  assert json1["corpus_candidates"] == json2["corpus_candidates"]
  counts = json1["counts"]
  assert counts == json2["counts"]
  assert counts["exact"] is False and counts["prunes"] >= 2 and counts["pruned"] > BOUND / 2
  assert counts["max_undercount"] == sum(counts["thresholds"]) and counts["first_pruned_at_line"] % BLOCK == 0
  assert f"counts are LOWER BOUNDS from line {counts['first_pruned_at_line']} " in err1
  assert f"counts lower bounds from line {counts['first_pruned_at_line']} on (--max-distinct {BOUND} hit)" in err1


def _block_ends_and_files() -> tuple[list[str], list[int], list[str]]:
  """The demo corpus's lines (its short files first), the line number that ends each block, and the file each
  line comes from."""
  lines, where = [], []
  for path in reversed(demo_corpus_files()):
    for line in iter_lines([path]):
      lines.append(line)
      where.append(path)
  ends = list(range(BLOCK, len(lines), BLOCK)) + [len(lines)]
  return lines, ends, where


def test_bound_reports_where_and_how_much_was_lost(small_blocks):
  lines, ends, where = _block_ends_and_files()
  # Independently: the first block after which eojeols + L strings exceed the bound.
  state = nouns.NounCounter(nouns.ExtractOptions().max_chars)
  eojeols: Counter = Counter()
  surfaces: set[str] = set()
  expected = None
  for start, end in zip([0] + ends, ends):
    eojeols.update(" ".join(lines[start:end]).split())
    surfaces.update(nouns.count_block(state, lines[start:end])[0])
    if len(eojeols) + len(surfaces) > BOUND:
      expected = end
      break
  assert expected is not None and expected < len(lines)

  position = iter(where)
  report = nouns.ExtractReport()
  pruned = nouns.extract_candidates(lines, nouns.ExtractOptions(max_distinct=BOUND), report,
                                    locate=lambda: next(position))
  log = report.counts
  assert not log.exact and log.first_pruned_at_line == expected
  assert log.first_pruned_in_file == where[expected - 1] and log.first_pruned_in_file != where[0]
  exact_report = nouns.ExtractReport()
  exact = {c.surface: c.count for c in nouns.extract_candidates(lines, nouns.ExtractOptions(max_distinct=0),
                                                                 exact_report)}
  assert exact_report.counts.exact and exact_report.counts.to_json() == "exact"
  assert len(pruned) < len(exact)
  for cand in pruned:   # lower bounds, at most max_undercount low
    assert cand.count <= exact[cand.surface] <= cand.count + log.max_undercount, cand.surface
  assert any(cand.count < exact[cand.surface] for cand in pruned)


def test_prune_threshold_halves_with_the_fewest_losses():
  counts = [1, 1, 1, 2, 2, 5]
  assert prune_threshold(counts, 6) == 0
  assert prune_threshold(counts, 3) == 1
  assert prune_threshold(counts, 2) == 2
  assert prune_threshold(counts, 1) == 2
  assert prune_threshold(counts, 0) == 5


def test_tally_prune_logs_what_it_forgot():
  tally = Tally(max_distinct=6)
  tally.add(["a b a c", "d a"], Counter({"가나": 2, "다라": 1}), {"가나": 900, "다라": 700})
  assert not tally.over() and tally.log.to_json() == "exact"
  tally.add(["e f b"], Counter({"가나": 1, "마바": 1}), {"가나": 800, "마바": 500})
  assert tally.distinct == 9 and tally.over()
  tally.prune(line=3, where="x.txt")
  assert dict(tally.eojeols) == {"a": 3, "b": 2} and dict(tally.counts) == {"가나": 3}
  assert tally.costs == {"가나": 800}
  assert tally.log.to_json() | {"meaning": ""} == {
      "exact": False, "max_distinct": 6, "prunes": 1, "pruned": 6, "first_pruned_at_line": 3,
      "first_pruned_in_file": "x.txt", "thresholds": [1], "max_undercount": 1, "meaning": ""}


def test_no_bound_never_prunes():
  tally = Tally(max_distinct=0)
  tally.add(["a b c d e f g"], Counter(), {})
  assert not tally.over() and PruneLog(0).summary() == "counts exact"


@pytest.mark.parametrize("option, value", [("--workers", "0"), ("--max-distinct", "-1")])
def test_bad_option_is_one_line_naming_it(tmp_path, capsys, option, value):
  rc = main(["tokenizer", "userdic", "--corpus", "demo", "--out", str(tmp_path / "ud"), option, value])
  err = capsys.readouterr().err.strip()
  assert rc == 2 and err.count("\n") == 0 and f"{option} {value}:" in err
