"""`tokenizer userdic|train --sample-lines N | --sample-fraction F [--sample-seed S]`: which lines, recorded where."""

from __future__ import annotations

import json

import pytest

from korpat_jax.cli import main
from korpat_jax.tokenizer.sampling import Sample, make_sample, select, smallest, up_to
from korpat_jax.tokenizer.sources import ReadStats, demo_corpus_files, iter_lines, iter_numbered_lines


def _numbered(files: int = 3, lines: int = 4000) -> list[tuple[int, int, str]]:
  return [(f, i, f"{f}:{i}") for f in range(files) for i in range(lines)]


def _json(path) -> dict:
  return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("sample", [Sample(fraction=0.1), Sample(lines=500)], ids=["fraction", "lines"])
def test_same_seed_same_lines_other_seed_other_lines(sample):
  lines = _numbered()
  first = list(select(lines, sample))
  assert first == list(select(lines, sample))
  other = list(select(lines, Sample(sample.lines, sample.fraction, seed=1)))
  assert len(set(first) & set(other)) < 0.3 * len(first)


def test_fraction_keeps_about_f_of_the_lines():
  lines = _numbered()   # 12,000 lines
  for fraction in (0.01, 0.1, 0.5):
    kept = len(list(select(lines, Sample(fraction=fraction))))
    spread = 4 * (len(lines) * fraction * (1 - fraction)) ** 0.5
    assert abs(kept - fraction * len(lines)) < spread, fraction
  assert len(list(select(lines, Sample(fraction=1.0)))) == len(lines)


def test_lines_keeps_exactly_n_in_corpus_order_or_all_when_fewer():
  lines = _numbered()
  kept = smallest(lines, Sample(lines=700, seed=3))
  assert len(kept) == 700 and kept == sorted(kept)
  ranks = sorted(Sample(seed=3).rank(f, i) for f, i, _ in lines)
  assert [(f, i) for f, i, _ in kept] == sorted((f, i) for _, f, i in ranks[:700])   # the 700 smallest ranks
  assert 0.4 < sum(i for _, i, _ in kept) / 700 / 4000 < 0.6   # not the start of each file
  assert list(select(lines[:50], Sample(lines=700))) == [text for _, _, text in lines[:50]]


def test_the_nth_rank_selects_the_same_lines_file_by_file():
  # What the Beam runner does: a line's rank depends on (seed, file, line) only, so each file alone, given the
  # N-th smallest rank, keeps its lines of the whole-corpus sample.
  lines, sample = _numbered(), Sample(lines=300, seed=5)
  last = max(sample.rank(f, i) for f, i, _ in smallest(lines, sample))
  per_file = [line for f in range(3) for line in up_to([x for x in lines if x[0] == f], sample, last)]
  assert per_file == list(select(lines, sample))
  assert list(up_to(lines, sample, None)) == []


def test_files_read_alone_keep_the_lines_of_the_whole_corpus():
  files, sample = demo_corpus_files(), Sample(fraction=0.2, seed=7)
  whole_stats = ReadStats()
  whole = list(iter_lines(files, whole_stats, sample=sample))
  alone = [line for i, path in enumerate(files) for line in iter_lines([path], sample=sample, first_file=i)]
  assert whole == alone and whole_stats.kept == len(whole) < whole_stats.lines
  assert f"({len(whole)} kept by the sample)" in whole_stats.summary()
  numbered = list(iter_numbered_lines(files[:1]))
  assert [i for _, i, _ in numbered] == list(range(len(numbered)))


@pytest.mark.parametrize("argv, message", [
    (["--sample-lines", "10", "--sample-fraction", "0.1"], "--sample-lines and --sample-fraction: give one of them"),
    (["--sample-lines", "0"], "--sample-lines 0: give a number of lines"),
    (["--sample-fraction", "1.5"], "--sample-fraction 1.5: give a share of the lines in (0, 1]"),
    (["--sample-seed", "4"], "--sample-seed 4: seeds a sample; add --sample-lines N or --sample-fraction F"),
])
@pytest.mark.parametrize("command", ["userdic", "train"])
def test_bad_sample_options_are_one_line_naming_them(tmp_path, capsys, command, argv, message):
  rc = main(["tokenizer", command, "--corpus", "demo", "--out", str(tmp_path / "o"), *argv])
  err = capsys.readouterr().err.strip()
  assert rc == 2 and err.count("\n") == 0 and message in err, err


def test_userdic_sample_needs_a_corpus(tmp_path, capsys):
  csv = tmp_path / "user.csv"
  csv.write_text("질화갈륨,,,,NNG,*,T,질화갈륨,*,*,*,*\n", encoding="utf-8")
  assert main(["tokenizer", "userdic", "--csv", str(csv), "--out", str(tmp_path / "o"), "--sample-lines", "5"]) == 2
  assert "--sample-lines 5: samples the corpus; give --corpus GLOB" in capsys.readouterr().err
  assert make_sample(None, None, 0) is None


def test_train_records_and_prints_the_sample_and_any_workers_agree(tmp_path, capsys):
  for workers in ("1", "2"):
    assert main(["tokenizer", "train", "--corpus", "demo", "--vocab-size", "1500", "--out", str(tmp_path / workers),
                 "--workers", workers, "--sample-lines", "800", "--sample-seed", "2"]) == 0
  assert (tmp_path / "1" / "vocab.txt").read_bytes() == (tmp_path / "2" / "vocab.txt").read_bytes()
  training = _json(tmp_path / "1" / "mwp_tokenizer.json")["training"]
  read = training["lines"]
  assert training["sample"] == {"lines": 800, "fraction": None, "seed": 2, "lines_read": read, "lines_kept": 800,
                                "method": Sample(lines=800).to_json(0, 0)["method"]}
  assert f"sample: kept 800 of {read} lines (--sample-lines 800, --sample-seed 2)" in capsys.readouterr().err
  assert main(["tokenizer", "train", "--corpus", "demo", "--out", str(tmp_path / "none"),
               "--sample-fraction", "1e-9"]) == 2
  assert "the sample kept none of the" in capsys.readouterr().err


def test_userdic_records_the_sample(tmp_path, capsys):
  out = tmp_path / "ud"
  assert main(["tokenizer", "userdic", "--corpus", "demo", "--out", str(out), "--sample-fraction", "0.5"]) == 0
  sample = _json(out / "userdic.json")["sample"]
  assert sample["fraction"] == 0.5 and sample["seed"] == 0 and sample["lines"] is None
  assert 0.4 < sample["lines_kept"] / sample["lines_read"] < 0.6
  assert f"sample: kept {sample['lines_kept']} of {sample['lines_read']} lines" in capsys.readouterr().err
  assert main(["tokenizer", "userdic", "--corpus", "demo", "--out", str(tmp_path / "all")]) == 0
  assert _json(tmp_path / "all" / "userdic.json")["sample"] is None


def test_beam_keeps_the_lines_the_local_runner_keeps(tmp_path):
  pytest.importorskip("apache_beam")
  runs = {"local": ["--workers", "1"], "beam": ["--runner", "beam"]}
  for name, extra in runs.items():
    bound = ["--max-distinct", "0"] if name == "local" else []
    assert main(["tokenizer", "userdic", "--corpus", "demo", "--out", str(tmp_path / f"ud_{name}"),
                 "--sample-fraction", "0.5", "--sample-seed", "1", *bound, *extra]) == 0
    for flag, value in (("--sample-fraction", "0.2"), ("--sample-lines", "600")):
      assert main(["tokenizer", "train", "--corpus", "demo", "--vocab-size", "1500", "--out",
                   str(tmp_path / f"tok_{name}{flag}"), flag, value, *extra]) == 0
  local, beam = _json(tmp_path / "ud_local" / "userdic.json"), _json(tmp_path / "ud_beam" / "userdic.json")
  assert (tmp_path / "ud_local" / "user.csv").read_bytes() == (tmp_path / "ud_beam" / "user.csv").read_bytes()
  assert local["sample"] == beam["sample"] and local["corpus_candidates"] == beam["corpus_candidates"]
  for flag in ("--sample-fraction", "--sample-lines"):
    a, b = tmp_path / f"tok_local{flag}", tmp_path / f"tok_beam{flag}"
    assert (a / "vocab.txt").read_bytes() == (b / "vocab.txt").read_bytes(), flag
    samples = [_json(d / "mwp_tokenizer.json")["training"]["sample"] for d in (a, b)]
    assert samples[0] == samples[1] and samples[0]["lines_kept"] > 0
