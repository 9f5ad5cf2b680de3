from __future__ import annotations

import re

import pytest

from korpat_jax.errors import KorpatError
from korpat_jax.finetune.report import DataReport
from korpat_jax.ner import (NerExample, check_labels, detect_format, entities_from_tags, entity_type, label_set,
                            normalize_tag, read_ner, token_tags)
from korpat_jax.ner.metrics import entity_scores

KLUE_SMALL = (
    "## 토큰, 레이블 구분자 : \\t\n"
    "## 컬럼명 : CHAR\tNE_TAG\n"
    "## klue-ner-v1_dev_00000-wikitree\t<경찰:OG>은 <박:PS>씨\n"
    "경\tB-OG\n찰\tI-OG\n은\tO\n \tO\n박\tB-PS\n씨\tO\n"
    "\n"
    "## klue-ner-v1_dev_00001-nsmc\t<16 명:QT>\n"
    "1\tB-QT\n6\tI-QT\n \tI-QT\n명\tI-QT\n"
    "\n"
)


def _read(tmp_path, content, fmt, name="data.tsv", labelled=True, encoding="utf-8"):
  path = tmp_path / name
  path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
  report = DataReport()
  return read_ner(str(path), fmt, report, labelled=labelled), report, str(path)


def test_klue_char_format_small(tmp_path):
  examples, report, path = _read(tmp_path, KLUE_SMALL, "char_bio")
  assert [e.id for e in examples] == ["klue-ner-v1_dev_00000-wikitree", "klue-ner-v1_dev_00001-nsmc"]
  first, second = examples
  assert first.text == "경찰은 박씨"
  assert first.spans == [(i, i + 1) for i in range(6)]
  assert first.tags == ["B-OG", "I-OG", "O", "O", "B-PS", "O"]
  assert first.where == f"{path}:3"    # the id comment right before the characters
  assert second.text == "16 명" and second.where == f"{path}:11"
  assert entities_from_tags(first.spans, first.tags) == [{"start": 0, "end": 2, "label": "OG"},
                                                          {"start": 4, "end": 5, "label": "PS"}]
  assert entities_from_tags(second.spans, second.tags) == [{"start": 0, "end": 4, "label": "QT"}]
  assert (report.read, report.used, dict(report.skipped), dict(report.adjusted)) == (2, 2, {}, {})
  assert detect_format((tmp_path / "data.tsv").read_bytes().split(b"\n")) == "char_bio"
  auto, _, _ = _read(tmp_path, KLUE_SMALL, "auto")
  assert auto == examples


def test_ids_default_to_position_and_crlf(tmp_path):
  examples, report, _ = _read(tmp_path, "가\tO\r\n나\tB-LC\r\n\r\n다\tO\r\n", "char_bio")
  assert [(e.id, e.text, e.tags) for e in examples] == [("0", "가나", ["O", "B-LC"]), ("1", "다", ["O"])]
  assert report.read == report.used == 2


def _klue_marks(marked: str) -> tuple[str, list[dict]]:
  plain, entities, pos = "", [], 0
  for m in re.finditer(r"<([^<>]+):([A-Z]{2})>", marked):
    plain += marked[pos:m.start()]
    entities.append({"start": len(plain), "end": len(plain) + len(m.group(1)), "label": m.group(2)})
    plain += m.group(1)
    pos = m.end()
  return plain + marked[pos:], entities


def test_klue_dev_file(shared_data):
  path = shared_data / "klue-ner-v1.1_dev.tsv"
  report = DataReport()
  examples = read_ner(str(path), "auto", report)
  assert (report.read, report.used, sum(report.skipped.values()), sum(report.adjusted.values())) == (5000, 5000, 0, 0)
  assert examples[0].id == "klue-ner-v1_dev_00000-wikitree" and examples[0].where == f"{path}:6"
  assert len({e.id for e in examples}) == 5000
  # The comment's marked sentence gives the same text, and (where its marks are unambiguous) the same entities.
  marked = {}
  for line in path.read_text(encoding="utf-8").splitlines():
    m = re.match(r"## (klue-ner\S+)\t(.*)$", line)
    if m:
      marked[m.group(1)] = m.group(2)
  compared = 0
  for ex in examples:
    text, entities = _klue_marks(marked[ex.id])
    assert ex.text == text, ex.id
    if "<<" not in marked[ex.id]:
      assert entities_from_tags(ex.spans, ex.tags) == entities, ex.id
      compared += 1
  assert compared > 4900
  assert label_set(examples) == ["O", "B-DT", "I-DT", "B-LC", "I-LC", "B-OG", "I-OG", "B-PS", "I-PS",
                                 "B-QT", "I-QT", "B-TI", "I-TI"]


def test_conll_docstart_and_four_columns(tmp_path):
  content = ("-DOCSTART- -X- -X- O\n\n"
             "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\ncall NN I-NP O\n. . O O\n\n"
             "-DOCSTART- -X- -X- O\n"
             "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n")
  examples, report, path = _read(tmp_path, content, "auto", name="train.conll")
  assert [e.text for e in examples] == ["EU rejects German call .", "Peter Blackburn"]
  assert examples[0].spans == [(0, 2), (3, 10), (11, 17), (18, 22), (23, 24)]
  assert examples[0].tags == ["B-ORG", "O", "B-MISC", "O", "O"]
  assert examples[1].tags == ["B-PER", "I-PER"] and examples[1].where == f"{path}:10"
  assert [e.id for e in examples] == ["0", "1"]
  assert entities_from_tags(examples[1].spans, examples[1].tags) == [{"start": 0, "end": 15, "label": "PER"}]
  assert (report.read, report.used, dict(report.skipped)) == (2, 2, {})
  tabbed, _, _ = _read(tmp_path, "특허\tB-TERM\n출원\tI-TERM\n", "auto", name="t.tsv")
  assert tabbed[0].text == "특허 출원" and tabbed[0].tags == ["B-TERM", "I-TERM"]


def test_suffix_and_bioes_tags(tmp_path):
  content = "EU ORG-B\nCommission ORG-I\nsaid O\n\nBob S-PER\nvan B-PER\nDyk E-PER\n"
  examples, report, path = _read(tmp_path, content, "conll")
  assert examples[0].tags == ["B-ORG", "I-ORG", "O"]
  assert examples[1].tags == ["B-PER", "B-PER", "I-PER"]
  assert report.adjusted == {"bioes_tag_mapped": 2}
  assert report.examples("bioes_tag_mapped") == [f"{path}:5: S-PER -> B-PER"]


def test_every_bad_input_is_counted_with_its_line(tmp_path):
  good = "가\tB-PS\n나\tI-PS\n"
  content = (good.encode() + b"\n"                          # 1-2: kept
             + "다\tO\n라마\tO\n".encode() + b"\n"             # 4-5: two characters before the tab
             + "바\tO\n사O\n".encode() + b"\n"                 # 7-8: no tab
             + "아\tB-PS-X\n".encode() + b"\n"                 # 10: malformed tag
             + "자\t\n".encode() + b"\n"                       # 12: empty tag
             + "차\tO\n".encode() + b"\xff\xfe\tO\n" + b"\n"   # 14-15: invalid UTF-8
             + " \tO\n \tO\n".encode() + b"\n"                 # 17-18: only spaces
             + "## klue-x_00009\t<>\n".encode() + b"\n"       # 20: an id without characters
             + good.encode())                                 # 22-23: kept
  examples, report, path = _read(tmp_path, content, "char_bio")
  assert [e.where for e in examples] == [f"{path}:1", f"{path}:22"]
  assert [e.id for e in examples] == ["0", "8"]
  assert report.read == 9 and report.used == 2
  assert report.skipped == {"malformed_line": 2, "malformed_tag": 2, "invalid_utf8": 1, "empty_text": 2}
  assert [x.split(": ")[0] for x in report.examples("malformed_line")] == [f"{path}:5", f"{path}:8"]
  assert [x.split(": ")[0] for x in report.examples("malformed_tag")] == [f"{path}:10", f"{path}:12"]
  assert report.examples("invalid_utf8")[0].startswith(f"{path}:15: byte 0")
  assert [x.split(": ")[0] for x in report.examples("empty_text")] == [f"{path}:17", f"{path}:20"]


def test_conll_bad_lines(tmp_path):
  content = "a O\nb\n\nc X-Y-Z\n\nd B-LOC\n"
  examples, report, path = _read(tmp_path, content, "conll")
  assert [e.text for e in examples] == ["d"]
  assert report.skipped == {"malformed_line": 1, "malformed_tag": 1}
  assert report.examples("malformed_line")[0].startswith(f"{path}:2")
  assert report.examples("malformed_tag") == [f"{path}:4: 'X-Y-Z'"]


def test_unlabelled_files(tmp_path):
  chars, report, _ = _read(tmp_path, "가\n \n나\tB-PS\n\n다\n", "char_bio", labelled=False)
  assert [(e.text, e.tags) for e in chars] == [("가 나", None), ("다", None)]
  assert chars[0].spans == [(0, 1), (1, 2), (2, 3)] and report.used == 2
  words, _, _ = _read(tmp_path, "특허 \n출원\n\n청구항\n", "conll", labelled=False)
  assert [(e.text, e.spans, e.tags) for e in words] == [("특허 출원", [(0, 2), (3, 5)], None),
                                                      ("청구항", [(0, 3)], None)]
  text_content = "기판 상에 형성한다.\n\n   \n둘째 문장\n".encode() + b"\xc3\x28\n"
  texts, report, path = _read(tmp_path, text_content, "text", name="in.txt", labelled=False)
  assert [(e.id, e.text, e.tags, e.where) for e in texts] == [("0", "기판 상에 형성한다.", None, f"{path}:1"),
                                                             ("2", "둘째 문장", None, f"{path}:4")]
  assert texts[0].spans[:2] == [(0, 1), (1, 2)]
  assert (report.read, report.used) == (4, 2)
  assert report.skipped == {"empty_text": 1, "invalid_utf8": 1}
  with pytest.raises(KorpatError, match="in.txt"):
    read_ner(path, "text", DataReport(), labelled=True)


def test_missing_file_and_unknown_format(tmp_path):
  missing = tmp_path / "nope.tsv"
  with pytest.raises(KorpatError, match="nope.tsv") as e:
    read_ner(str(missing), "char_bio", DataReport())
  assert "\n" not in str(e.value)
  (tmp_path / "a.tsv").write_text("가\tO\n", encoding="utf-8")
  with pytest.raises(KorpatError, match="format"):
    read_ner(str(tmp_path / "a.tsv"), "json", DataReport())


def test_normalize_tag_and_entity_type():
  assert [normalize_tag(t) for t in ("O", "B-PS", "I-PS", "PS-B", "PS-I", "S-PS", "E-PS", "PS-S")] == [
      "O", "B-PS", "I-PS", "B-PS", "I-PS", "B-PS", "I-PS", "B-PS"]
  for bad in ("", "B-", "-PS", "PS", "B-PS-X", "X-Y-Z", "B_PS", "b-PS", "B-P S"):
    with pytest.raises(ValueError):
      normalize_tag(bad)
  assert (entity_type("B-PS"), entity_type("LC-I"), entity_type("O")) == ("PS", "LC", None)


def test_label_set_and_unknown_labels():
  train = [NerExample("0", "가나", [(0, 1), (1, 2)], ["B-PS", "O"], "t:1"),
           NerExample("1", "다", [(0, 1)], ["I-LC"], "t:3"),
           NerExample("2", "라", [(0, 1)], None, "t:5")]
  labels = label_set(train)
  assert labels == ["O", "B-LC", "I-LC", "B-PS", "I-PS"]
  dev = NerExample("0", "박 삼성", [(0, 1), (1, 2), (2, 3), (3, 4)], ["B-PS", "O", "B-OG", "I-OG"], "d:1")
  report = DataReport()
  check_labels([dev], labels, report)
  assert report.adjusted == {"label_not_in_training_set": 2}
  assert report.examples("label_not_in_training_set") == ["d:1: B-OG", "d:1: I-OG"]
  assert dev.tags == ["B-PS", "O", "B-OG", "I-OG"]            # gold kept
  model = token_tags(dev, [(0, 1), (2, 4)], labels)
  assert model.tags == ["B-PS", "O"]                         # the model never sees OG
  # The OG entity still counts as a miss: recall 1/2 (PS found, OG missed), precision 1/1.
  scores = entity_scores([dev.tags], [["B-PS", "O", "O", "O"]], "strict")
  assert (scores["precision"], scores["recall"]) == (1.0, 0.5)
