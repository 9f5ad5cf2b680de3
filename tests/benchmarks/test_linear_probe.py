"""benchmarks/transfer/linear_probe: the probe's regression on features with a known answer, its input checks, and the
whole path on a real (tiny) pretraining run against a random init of the same sizes."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from helpers import REPO

if str(REPO) not in sys.path:  # `benchmarks` is a package at the repository root
  sys.path.insert(0, str(REPO))

from benchmarks.transfer import linear_probe  # noqa: E402


def test_probe_separates_a_linearly_separable_set_and_not_noise():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(400, 8)).astype(np.float32)
  y = (x[:, 3] - 0.5 * x[:, 5] > 0).astype(int)
  assert linear_probe.probe_accuracy(x[:300], y[:300], x[300:], y[300:]) > 0.95
  noise = rng.normal(size=(400, 8)).astype(np.float32)
  assert linear_probe.probe_accuracy(noise[:300], y[:300], noise[300:], y[300:]) < 0.7


def test_probe_handles_more_than_two_labels():
  rng = np.random.default_rng(1)
  y = rng.integers(0, 3, size=300)
  x = np.eye(3, dtype=np.float32)[y] * 3 + rng.normal(size=(300, 3)).astype(np.float32)
  assert linear_probe.probe_accuracy(x[:200], y[:200], x[200:], y[200:]) > 0.9


def test_a_tsv_without_text_and_label_is_refused_in_one_line(tmp_path):
  path = tmp_path / "bad.tsv"
  path.write_text("sentence\tgold\n좋다\tpos\n", encoding="utf-8")
  with pytest.raises(SystemExit, match=r"bad.tsv: needs the columns text and label \(missing label, text\)"):
    linear_probe.read_tsv(str(path))


def test_probe_of_a_pretraining_run_and_of_its_random_init(pretrained, tmp_path, capsys):
  rows = ["text\tlabel"] + [f"{t}\t{l}" for t, l in [("기판 상에 질화갈륨층을 형성한다.", "a"),
                                                     ("발광 다이오드의 제조 방법", "b")] * 20]
  (tmp_path / "set.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
  path = str(tmp_path / "set.tsv")
  assert linear_probe.main(["--train", path, "--eval", path, str(pretrained), "--random", str(pretrained)]) == 0
  table = capsys.readouterr().out.splitlines()
  assert table[0] == "| init | embeddings_mean | top_cls | top_mean |"
  assert len(table) == 4 and table[2].startswith(f"| {pretrained} |") and table[3].startswith("| random init")
  scores = [float(v) for row in table[2:] for v in row.strip("|").split("|")[1:]]
  assert all(s == 1.0 for s in scores)  # two distinct texts, each its own label: every feature separates them
