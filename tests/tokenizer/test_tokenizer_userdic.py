from __future__ import annotations

import json

import pytest

from korpat_jax.tokenizer import demo_corpus_files
from korpat_jax.tokenizer.dic_csv import ContextIds, has_jongseong
from korpat_jax.tokenizer.morphemes import make_tagger
from korpat_jax.tokenizer.userdic import ExtractOptions, build_user_dictionary, extract_candidates


def test_has_jongseong():
  assert has_jongseong("갈륨") == "T"
  assert has_jongseong("플랫폼") == "T"
  assert has_jongseong("세제") == "F"
  assert has_jongseong("LED") is None


def test_context_ids_match_the_system_dictionary():
  ids = ContextIds()
  tagger = make_tagger(None, '--node-format="%m\\t%phl\\t%phr\\t%H\\n" --eos-format=""')
  for line in tagger.parse("기판에 갈륨을 세제로 형성한다").strip().split("\n"):
    surface, left, right, feature = line.split("\t")
    fields = tuple(feature.split(","))
    assert (ids.lookup("left", fields), ids.lookup("right", fields)) == (int(left), int(right)), surface


def _analysis(user_dic, text):
  tagger = make_tagger(user_dic, '--node-format="%m/%f[0]/%f[4] " --eos-format=""')
  return tagger.parse(text).split()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  out = tmp_path_factory.mktemp("userdic")
  user_csv = out / "mine.csv"
  user_csv.write_text(
      "플랫폼,,,,NNG,*,T,플랫폼,*,*,*,*\n"            # the seed's short form: ids and cost empty
      "질화알루미늄,,,,NNG,*,F,질화알루미늄,Compound,*,*,질화/NNG/*+알루미늄/NNG/*\n"  # wrong flag: fixed
      "broken,row\n"                                      # line 3: too few columns
      "나쁜품사,,,,NNX,*,F,나쁜품사,*,*,*,*\n"            # line 4: unknown POS
      "복합명사,,,,NNG,*,F,복합명사,Compound,*,*,*\n",    # line 5: Compound without expression
      encoding="utf-8")
  messages = []
  result = build_user_dictionary(demo_corpus_files(), str(out / "dic"), [str(user_csv)],
                                 ExtractOptions(min_count=3), log=messages.append, quiet_compile=True)
  return result, messages, out


def test_build_compiles_and_entries_win(built):
  result, messages, out = built
  assert result.from_corpus > 50
  assert result.won > 0.9
  manifest = json.loads((out / "dic" / "userdic.json").read_text(encoding="utf-8"))
  assert manifest["entries"] == result.entries
  assert "합성세제액/NNG/Compound" in _analysis(result.user_dic, "합성세제액을 제조한다")
  assert "합성세제액/NNG/Compound" not in _analysis(None, "합성세제액을 제조한다")
  assert "질화알루미늄/NNG/Compound" in _analysis(result.user_dic, "질화알루미늄으로 이루어진다")


def test_user_csv_rows_checked_with_line_numbers(built):
  result, messages, out = built
  bad = [m for m in messages if m.startswith("skipped bad row")]
  assert any(":3: expected 12 columns" in m for m in bad)
  assert any(":4: unknown POS tag 'NNX'" in m for m in bad)
  assert any(":5: type Compound needs an expression" in m for m in bad)
  report = result.reports[0]
  assert (report.rows, report.kept, report.bad, report.fixed_jongseong) == (5, 2, 3, 1)
  rows = {line.split(",")[0]: line.strip().split(",") for line in open(out / "dic" / "user.csv", encoding="utf-8")}
  assert rows["질화알루미늄"][6] == "T"
  assert rows["플랫폼"][1:4] == ["1784", "3537", "1000"]   # NNG,*,T context ids of the installed dictionary


def test_candidates_are_scored():
  lines = ["합성세제액을 만든다.", "합성세제액의 pH는 높다.", "합성세제액은 좋다.", "합성세제액 제조"] * 2
  cands = {c.surface: c for c in extract_candidates(lines, ExtractOptions(min_count=2))}
  cand = cands["합성세제액"]
  assert cand.count == 8 and cand.compound
  assert 0 < cand.cohesion <= 1
  assert cand.branching > 1.0   # four different R parts: 을, 의, 은, nothing
