from __future__ import annotations

import argparse
import json
import os

import pytest

from corpus_fakes import WordHashFactory, write_corpus
from korpat_jax.corpus import cli
from korpat_jax.corpus.examples import PackingConfig
from korpat_jax.corpus.local import run_local
from korpat_jax.corpus.manifest import STATE
from korpat_jax.corpus.pipeline import PrepConfig
from korpat_jax.corpus.readers import expand_corpus
from korpat_jax.errors import KorpatError

CONFIG = PrepConfig(packing=PackingConfig(seq_len=48))


def test_help_documents_every_option_with_its_default():
  parser = cli.build_parser()
  undocumented = [a.option_strings for a in parser._actions if not a.help or a.help == argparse.SUPPRESS]
  assert not undocumented
  text = " ".join(parser.format_help().split())
  formatter = parser._get_formatter()
  shown = {a.option_strings[-1]: " ".join(formatter._expand_help(a).split()) for a in parser._actions}
  assert all(help_text in text for help_text in shown.values())
  for option, default in (("--seq-len", "512"), ("--format", "auto"), ("--encoding", "utf-8"), ("--normalize", "NFC"),
                          ("--max-document-chars", "1000000"), ("--max-sentence-chars", "1000"),
                          ("--single-segment-prob", "0.1"), ("--short-seq-prob", "0.05"), ("--eval-fraction", "0.01"),
                          ("--records-per-shard", "10000"), ("--seed", "0"), ("--runner", "local"),
                          ("--jsonl-fields", "title,abstract,claims,description,text"), ("--tsv-column", "text")):
    assert shown[option].endswith(f"(default: {default})"), shown[option]
  assert "(default: True)" not in text and "(default: None)" not in text  # flags and computed defaults
  assert "jsonl: one JSON object a line" in text and "cp949" in text and "the summary is still printed" in text


@pytest.fixture()
def small_corpus(tmp_path):
  return expand_corpus([write_corpus(tmp_path / "corpus", n_docs=9, damaged=False)])


def test_another_seq_len_says_which(small_corpus, tmp_path):
  out = str(tmp_path / "out")
  run_local(small_corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  other = PrepConfig(packing=PackingConfig(seq_len=64), seed=3)
  with pytest.raises(KorpatError, match=r"different corpus, tokenizer or config \(seq_len 48 there, 64 now; "
                                        r"seed 0 there, 3 now\); use another --out or pass --overwrite"):
    run_local(small_corpus, other, WordHashFactory(), out, workers=0, quiet=True)
  with open(os.path.join(out, STATE), "w", encoding="utf-8") as f:
    json.dump({"fingerprint": "from an older version"}, f)  # no identity: the manifest tells the settings
  with pytest.raises(KorpatError, match=r"seq_len 48 there, 64 now"):
    run_local(small_corpus, other, WordHashFactory(), out, workers=0, quiet=True)


def test_another_tokenizer_says_which(small_corpus, tmp_path):
  out = str(tmp_path / "out")
  run_local(small_corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  with pytest.raises(KorpatError, match=r"tokenizer vocab hash word-hash-1000 there, word-hash-2000 now; "
                                        r"tokenizer vocab size 1000 there, 2000 now"):
    run_local(small_corpus, CONFIG, WordHashFactory(2000), out, workers=0, quiet=True)


def test_another_corpus_says_which_files(small_corpus, tmp_path):
  out = str(tmp_path / "out")
  run_local(small_corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  extra = tmp_path / "corpus" / "z_new.txt"
  extra.write_text("새 문서이다.\n", encoding="utf-8")
  with open(small_corpus[0], "a", encoding="utf-8") as f:
    f.write("\n덧붙인 문서이다.\n")
  with pytest.raises(KorpatError,
                     match=r"corpus files differ: 1 added \(e.g. .*z_new.txt\), 1 changed \(e.g. .*a.txt\)"):
    run_local([*small_corpus, str(extra)], CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  with pytest.raises(KorpatError, match=r"corpus files differ: 1 removed \(e.g. .*c.tsv.zst\)"):
    run_local(small_corpus[:-1], CONFIG, WordHashFactory(), out, workers=0, quiet=True)


def test_summary_shows_counts_truncation_and_encoding_hints(tmp_path, capsys, monkeypatch):
  corpus = tmp_path / "corpus"
  write_corpus(corpus, n_docs=9, damaged=False)
  (corpus / "legacy.txt").write_bytes("특허 문서이다.\n\n다른 문서이다.\n".encode("cp949"))
  (corpus / "program").write_bytes(b"\x7fELF" + bytes(400))
  (tmp_path / "tok").mkdir()
  monkeypatch.setattr(cli, "MWPTokenizerFactory", lambda directory: WordHashFactory())
  args = ["--corpus", str(corpus / "*"), "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "out"),
          "--seq-len", "16", "--workers", "0"]
  assert cli.main(args) == 0
  captured = capsys.readouterr()
  manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
  out = captured.out
  assert f"{manifest['documents_written']} of {manifest['documents_read']} documents written" in out
  assert f"tokens: {manifest['tokens']} ids in the records (" in out
  assert (f"= {manifest['tokens_read']} read - {manifest['tokens_truncated']} truncated + "
          f"{manifest['special_tokens']} [CLS]/[SEP]") in out
  lost = manifest["documents_adjusted"]["truncated_at_seq_len"]
  assert f"truncated at seq-len 16: {lost} document(s) lost {manifest['tokens_truncated']} tokens" in out
  hint = f"{corpus / 'legacy.txt'}: 2 of 2 lines do not decode as utf-8; looks like cp949/euc-kr: try --encoding cp949"
  log = [line for line in captured.err.splitlines() if line.startswith("[prepare] undecodable file:")]
  assert log == [f"[prepare] undecodable file: {hint}"]  # logged as soon as the file is read
  assert f"    {hint}" in captured.err.splitlines()  # and in the summary
  assert "documents skipped: undecodable 2" in captured.err
  assert any(line.startswith("[prepare] binary file: ") and "program" in line for line in captured.err.splitlines())
