"""DataReport.merge adds a saved report (a TFDS builder's) to a live one: counts add, examples stay bounded."""

from korpat_jax.finetune.report import MAX_EXAMPLES, DataReport


def test_merge_adds_counts_and_keeps_at_most_the_first_examples():
  saved = DataReport("builder")
  saved.read, saved.used = 10, 7
  for i in range(MAX_EXAMPLES + 2):
    saved.skip("empty_text", f"a.tsv:{i}")
  saved.adjust("bioes_mapped", "a.tsv:3", count=4)
  live = DataReport("run")
  live.read, live.used = 2, 2
  live.skip("empty_text", "b.tsv:1")
  live.merge(saved.to_dict())
  assert (live.read, live.used) == (12, 9)
  assert live.skipped["empty_text"] == MAX_EXAMPLES + 3 and live.adjusted["bioes_mapped"] == 4
  assert live.examples("empty_text") == ["b.tsv:1"] + [f"a.tsv:{i}" for i in range(MAX_EXAMPLES - 1)]
