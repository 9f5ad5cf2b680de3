"""`korpat-jax tokenizer extend`: every old id kept (vocab.txt a prefix byte for byte), exactly N new tokens that BASE
lacks, the same output on a rerun, fewer tokens on patent text; the selection rule on small inputs; one-line errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from korpat_jax import cli
from korpat_jax.tokenizer import MWPTokenizer, train_tokenizer
from korpat_jax.tokenizer.cli import build_parser
from korpat_jax.tokenizer.extend import choose, greedy_pieces, missing_characters, token_usage

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:  # `benchmarks` is a package at the repository root
  sys.path.insert(0, REPO)
from benchmarks.speed.patent_sentences import patent_sentences  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "korpat_jax" / "demo" / "corpus"
PATENT_SMALL = Path(__file__).parent / "data" / "patent_small.txt"
ADD = 150


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
  """BASE: a 2,000-token vocabulary of general text (KLUE NLI premises); two extensions of it on patent-like text."""
  root = tmp_path_factory.mktemp("extend")
  train_tokenizer([str(DEMO / "klue_nli_dev.txt")], str(root / "base"), vocab_size=2000, num_workers=1,
                  show_progress=False, log=lambda m: None)
  corpus = root / "patents.txt"
  corpus.write_text("\n".join(patent_sentences(300, seed=3)) + "\n", encoding="utf-8")
  for out in ("ext", "again"):
    assert cli.main(["tokenizer", "extend", "--tokenizer", str(root / "base"), "--corpus", str(corpus),
                     str(DEMO / "patent_style.txt"), "--add", str(ADD), "--out", str(root / out)]) == 0
  return root


def _vocab(d: Path) -> list[str]:
  return (d / "vocab.txt").read_text(encoding="utf-8").splitlines()


def test_keeps_every_id_and_adds_exactly_n_new_tokens(dirs):
  base, ext = (dirs / "base" / "vocab.txt").read_bytes(), (dirs / "ext" / "vocab.txt").read_bytes()
  assert ext.startswith(base)
  old, new = _vocab(dirs / "base"), _vocab(dirs / "ext")
  added = new[len(old):]
  assert len(added) == ADD and len(set(added)) == ADD and not set(added) & set(old)
  tok = MWPTokenizer.load(dirs / "ext")
  assert tok.vocab_size == len(old) + ADD and tok.config["extension"]["base_vocab_size"] == len(old)


def test_is_deterministic(dirs):
  for name in ("vocab.txt", "extension.json"):
    assert (dirs / "ext" / name).read_bytes() == (dirs / "again" / name).read_bytes(), name


def test_the_record_gives_each_new_token_its_base_pieces(dirs):
  record = json.loads((dirs / "ext" / "extension.json").read_text(encoding="utf-8"))
  old = _vocab(dirs / "base")
  assert record["base_vocab_size"] == len(old) and record["vocab_size"] == len(old) + ADD
  assert [a["token"] for a in record["added"]] == _vocab(dirs / "ext")[len(old):]
  assert {a["source"] for a in record["added"]} == {"character", "wordpiece"}
  for i, entry in enumerate(record["added"]):
    assert entry["id"] == len(old) + i
    assert [old[i] for i in entry["pieces"]] == entry["piece_tokens"]
    if entry["piece_tokens"] != ["[UNK]"]:
      assert "".join(p.removeprefix("##") for p in entry["piece_tokens"]) == entry["token"].removeprefix("##")
  chars = [a for a in record["added"] if a["source"] == "character"]
  assert chars and all(a["pieces"] == [1] for a in chars)  # BASE had only [UNK] for them
  merges = [a["saved"] for a in record["added"] if a["source"] == "wordpiece"]
  assert merges == sorted(merges, reverse=True) and merges[-1] > 0


def test_held_out_patent_text_takes_fewer_tokens_and_fewer_unknowns(dirs):
  base, ext = MWPTokenizer.load(dirs / "base"), MWPTokenizer.load(dirs / "ext")
  held_out = patent_sentences(60, seed=77)
  before = [base.encode(s, add_special_tokens=False).ids for s in held_out]
  after = [ext.encode(s, add_special_tokens=False).ids for s in held_out]
  assert sum(map(len, after)) < sum(map(len, before))
  assert sum(ids.count(1) for ids in after) < sum(ids.count(1) for ids in before)
  # Without [UNK] under BASE no sentence gets longer (an [UNK] word may become several known pieces).
  assert all(len(a) <= len(b) for a, b in zip(after, before) if 1 not in b)


def test_userdic_nouns_are_candidates(tmp_path):
  from korpat_jax.tokenizer.userdic import build_user_dictionary
  build_user_dictionary(str(PATENT_SMALL), str(tmp_path / "ud"), log=lambda m: None, quiet_compile=True)
  train_tokenizer([str(DEMO / "klue_nli_dev.txt")], str(tmp_path / "base"), vocab_size=1000, num_workers=1,
                  user_dic_dir=str(tmp_path / "ud"), show_progress=False, log=lambda m: None)
  nouns = {line.split(",")[0] for line in (tmp_path / "ud" / "user.csv").read_text(encoding="utf-8").splitlines()}
  args = ["tokenizer", "extend", "--tokenizer", str(tmp_path / "base"), "--corpus", str(PATENT_SMALL), "--add", "400",
          "--min-frequency", "3"]
  assert cli.main(args + ["--out", str(tmp_path / "with"), "--userdic-nouns"]) == 0
  assert cli.main(args + ["--out", str(tmp_path / "without")]) == 0
  sources = {a["token"]: a["source"] for a in
             json.loads((tmp_path / "with" / "extension.json").read_text(encoding="utf-8"))["added"]}
  from_dic = {t for t, s in sources.items() if s == "userdic"}
  assert from_dic and from_dic <= nouns
  without = json.loads((tmp_path / "without" / "extension.json").read_text(encoding="utf-8"))["added"]
  assert "userdic" not in {a["source"] for a in without}
  assert MWPTokenizer.load(tmp_path / "with").user_dic == MWPTokenizer.load(tmp_path / "base").user_dic


def test_greedy_pieces_is_bert_wordpiece():
  vocab = {"질화", "##갈륨", "##층", "갈", "##륨", "층"}
  assert greedy_pieces("질화갈륨층", vocab, 4) == ["질화", "##갈륨", "##층"]
  assert greedy_pieces("##갈륨층", vocab, 4) == ["##갈륨", "##층"]
  assert greedy_pieces("질화X", vocab, 4) is None


def test_the_rule_on_small_counts():
  base = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "기", "판", "##기", "##판", "층", "##층"]
  words = {"기판": 50, "기판층": 10, "판기": 1, "α": 3}
  assert missing_characters(words, set(base)) == {"α": 3}
  usage = token_usage(words, base + ["기판", "α"])
  assert usage["기판"] == 60 and usage["##층"] == 10
  chosen = choose(base, words, usage, add=3, min_frequency=2, nouns={"기판층": 10})
  # The missing character first, then by tokens saved: 기판 saves 60 (2 pieces -> 1), 기판층 10 x 2.
  assert [(c.token, c.source, c.saved) for c in chosen] == [("α", "character", 0), ("기판", "wordpiece", 60),
                                                             ("기판층", "userdic", 20)]
  assert [c.token for c in choose(base, words, usage, add=3, min_frequency=4)] == ["기판"]


def test_errors_are_one_line(dirs, capsys):
  for extra, expected in ((["--add", "0"], "--add 0"), (["--add", "5", "--userdic-nouns"], "--userdic-nouns"),
                          (["--add", "5", "--out", str(dirs / "base")], "is the --tokenizer directory")):
    argv = ["tokenizer", "extend", "--tokenizer", str(dirs / "base"), "--corpus", str(PATENT_SMALL), *extra]
    if "--out" not in extra:
      argv += ["--out", str(dirs / "bad")]
    capsys.readouterr()
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_every_option_has_help_and_shows_its_default():
  sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["extend"]
  formatter = sub._get_formatter()
  for action in sub._actions:
    if isinstance(action, argparse._HelpAction):
      continue
    assert action.help, action.option_strings
    if not action.required and not isinstance(action, argparse._StoreTrueAction):
      assert "default" in formatter._get_help_string(action) % {"default": action.default}, action.option_strings
