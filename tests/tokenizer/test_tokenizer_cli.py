from __future__ import annotations

import io
import json
import sys

from korpat_jax.cli import main


def _run(argv, stdin: str = "", monkeypatch=None, capsys=None) -> tuple[int, str]:
  monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8"))
  rc = main(argv)
  return rc, capsys.readouterr().out


def test_userdic_train_encode_on_a_user_corpus_glob(tmp_path, monkeypatch, capsys):
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  lines = ["본 발명은 질화갈륨 기판 상에 형성된 발광다이오드에 관한 것이다.",
           "상기 발광다이오드는 질화갈륨기판과 활성층을 포함한다.",
           "상기 질화갈륨기판의 두께는 100 ㎛ 이하이다.",
           "상기 활성층은 양자우물구조를 가진다."]
  for i in range(3):
    (corpus / f"part{i}.txt").write_text("\n".join(lines) + "\n\n" + "\n".join(lines[::-1]) + "\n", encoding="utf-8")
  (corpus / "bad.txt").write_bytes("깨진 바이트 ".encode("utf-8") + b"\xff\xfe\n")
  rc, _ = _run(["tokenizer", "userdic", "--corpus", str(corpus / "*.txt"), "--out", str(tmp_path / "ud"),
                "--min-count", "2"], monkeypatch=monkeypatch, capsys=capsys)
  assert rc == 0 and (tmp_path / "ud" / "user.dic").is_file()
  rc, _ = _run(["tokenizer", "train", "--corpus", str(corpus / "*.txt"), "--user-dic", str(tmp_path / "ud"),
                "--vocab-size", "300", "--out", str(tmp_path / "tok"), "--workers", "1"],
               monkeypatch=monkeypatch, capsys=capsys)
  assert rc == 0
  config = json.loads((tmp_path / "tok" / "mwp_tokenizer.json").read_text(encoding="utf-8"))
  assert config["user_dic"]["sha256"] and config["training"]["undecodable_lines"] == 1
  rc, out = _run(["tokenizer", "encode", "--tokenizer", str(tmp_path / "tok"), "--json"],
                 stdin="질화갈륨기판을 준비한다.\n", monkeypatch=monkeypatch, capsys=capsys)
  record = json.loads(out.strip().splitlines()[0])
  assert rc == 0 and record["ids"][0] == 2 and record["ids"][-1] == 3
  assert "질화갈륨기판" in record["tokens"] or "질화" in record["tokens"]


def test_train_on_bundled_corpus_and_encode(tmp_path, monkeypatch, capsys):
  rc, _ = _run(["tokenizer", "train", "--corpus", "demo", "--vocab-size", "3000", "--out", str(tmp_path / "tok"),
                "--hf-out", str(tmp_path / "hf")], monkeypatch=monkeypatch, capsys=capsys)
  assert rc == 0 and (tmp_path / "hf" / "tokenizer.json").is_file()
  rc, out = _run(["tokenizer", "encode", "--tokenizer", str(tmp_path / "tok")], stdin="기판 상에\n\n",
                 monkeypatch=monkeypatch, capsys=capsys)
  tokens, ids, empty_tokens, empty_ids = out.strip("\n").split("\n")
  tokens = tokens.split()
  assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
  assert " ".join(tokens[1:-1]).replace(" ##", "") == "기판 상 에"
  assert ids.split()[0] == "2" and empty_ids == "2 3"


def test_errors_exit_2(tmp_path, monkeypatch, capsys):
  rc = main(["tokenizer", "encode", "--tokenizer", str(tmp_path / "missing")])
  assert rc == 2
  assert "no vocabulary" in capsys.readouterr().err
  assert main(["tokenizer", "train", "--corpus", str(tmp_path / "none*.txt"), "--out", str(tmp_path / "t")]) == 2
  assert main(["tokenizer", "userdic", "--out", str(tmp_path / "u")]) == 2
