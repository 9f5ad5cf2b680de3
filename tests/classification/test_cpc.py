from __future__ import annotations

import pickle

import pytest

from korpat_jax.classification.cpc import CpcCode, cpc_label_parser, cut_cpc, parse_cpc

FULL = ("H", "H01", "H01L", "H01L 21/00", "H01L 21/02")
LEVELS = ("section", "class", "subclass", "group", "subgroup")


@pytest.mark.parametrize("spelling", [
    "H01L 21/02", "H01L21/02", "H01L  21/02", "h01l 21/02", "  H01L 21 / 02 ", "H01L0021020000",
    "h01l0021020000", "H01L 21/02 (2006.01)", "H01L 21/02(2006.01)", "H01L 21/02 20060101", "H01L 21/02 2006.01",
    "H01L0021020000 20060101",
])
def test_every_spelling_at_every_level(spelling):
  assert parse_cpc(spelling) == CpcCode("H", "01", "L", "21", "02")
  assert [cut_cpc(spelling, level) for level in LEVELS] == list(FULL)


@pytest.mark.parametrize("docdb, formatted", [
    ("H01L0021020000", "H01L 21/02"),
    ("H01L0021000000", "H01L 21/00"),
    ("H01L0021012300", "H01L 21/0123"),
    ("H01L0021100000", "H01L 21/10"),       # trailing zeros stripped down to the 2 digits a subgroup has
    ("A61K2300000000", "A61K 2300/00"),
    ("Y02E0010500000", "Y02E 10/50"),
    ("G06F0003048420", "G06F 3/04842"),
])
def test_docdb_14_characters(docdb, formatted):
  assert cut_cpc(docdb, "subgroup") == formatted


def test_subgroup_digits_kept_as_written():
  assert parse_cpc("H01L 21/00").subgroup == "00"
  assert parse_cpc("H01L 21/0123").subgroup == "0123"
  assert parse_cpc("H01L 0021/02").main_group == "21"   # leading zeros of the main group go
  assert cut_cpc("Y02E 10/50", "group") == "Y02E 10/00"
  assert cut_cpc("A61K 2300/00", "class") == "A61"


@pytest.mark.parametrize("partial, deepest", [
    ("H", "section"), ("h01", "class"), ("H01L", "subclass"), ("H01L 21", "group"), ("H01L21", "group"),
    ("H01L (2006.01)", "subclass"), ("H01L0021", "group"),   # a zero-padded main group alone
])
def test_partial_codes_cut_to_the_levels_they_reach(partial, deepest):
  code = parse_cpc(partial)
  assert code.level == deepest
  depth = LEVELS.index(deepest)
  for level in LEVELS[: depth + 1]:
    assert cut_cpc(partial, level) == FULL[LEVELS.index(level)]
  for level in LEVELS[depth + 1:]:
    with pytest.raises(ValueError, match="too short"):
      cut_cpc(partial, level)


def test_partial_group_string():
  assert str(parse_cpc("H01L 21")) == "H01L 21"
  assert str(parse_cpc("H01L21/02")) == "H01L 21/02"


def test_level_none_keeps_any_label():
  assert cut_cpc("  entailment ", "none") == "entailment"
  assert cut_cpc("H01L21/02", "none") == "H01L21/02"
  assert cpc_label_parser("none")("Z99") == "Z99"


@pytest.mark.parametrize("bad, message", [
    ("H1L", "expected e.g. 'H01L 21/02'"),
    ("Z01L 21/02", "section 'Z' is not a CPC section"),
    ("I01L", "section 'I'"),
    ("", "empty"),
    ("   ", "empty"),
    ("H01L 21/2", "subgroup needs 2 to 6 digits"),
    ("H01L 21/0212345", "subgroup needs 2 to 6 digits"),
    ("H01L 0/00", "main group 0"),
    ("H01L 21/02/03", "expected e.g."),
    ("H01L 12345/00", "expected e.g."),
    ("101L 21/02", "expected e.g."),
    ("H01LL 21/02", "expected e.g."),
])
def test_errors_name_the_code(bad, message):
  with pytest.raises(ValueError, match=message) as info:
    parse_cpc(bad)
  assert repr(bad) in str(info.value)


def test_non_string_and_bad_level():
  with pytest.raises(ValueError, match="not a string"):
    parse_cpc(None)  # type: ignore[arg-type]
  with pytest.raises(ValueError, match="CPC level 'maingroup'"):
    cut_cpc("H01L 21/02", "maingroup")
  with pytest.raises(ValueError, match="CPC level"):
    cpc_label_parser("sub-class")   # checked when the parser is made, not per label


def test_label_parser_cuts_and_pickles():
  parser = cpc_label_parser("subclass")
  assert parser("h01l 21/02 (2006.01)") == "H01L"
  assert pickle.loads(pickle.dumps(parser))("G06F 3/01") == "G06F"
  with pytest.raises(ValueError):
    parser("H1L")
