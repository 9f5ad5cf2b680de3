from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from korpat_jax.cli import main
from korpat_jax.tokenizer import demo_corpus_files
from korpat_jax.tokenizer.dic_csv import ContextIds, has_jongseong
from korpat_jax.tokenizer.morphemes import FeatureAnalyzer, MorphAnalyzer, make_tagger
from korpat_jax.tokenizer.nouns import noun_verdict
from korpat_jax.tokenizer.sources import iter_lines
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


PATENT_SMALL = Path(__file__).parent / "data" / "patent_small.txt"   # 32 patent-style sentences


def test_small_patent_corpus_finds_suffix_compounds():
  # Mecab-ko ends 질화갈륨층 in 층/XSN and splits 구동부 as 구동+부, 구+동부 or 구동+부/VV depending on context:
  # the L part of each eojeol is counted by its string, so all 16 occurrences count.
  cands = {c.surface: c for c in extract_candidates(iter_lines([str(PATENT_SMALL)]))}
  assert {"질화갈륨층", "반사방지막", "구동부", "전해질층"} <= set(cands)
  assert cands["질화갈륨층"].count == 16
  assert [p for _, p in cands["질화갈륨층"].parts] == ["NNG", "NNG", "XSN"]
  assert "질화갈륨" not in cands   # the suffix is no longer cut off


def test_not_compound_nouns():
  analyzer = FeatureAnalyzer()
  for word in ("화학적", "기판들", "기판상", "이영화", "형성하"):
    assert noun_verdict(word, analyzer.analyse(word)), word
  for word in ("전해질층", "반사방지막", "전극체", "이차전지"):
    assert noun_verdict(word, analyzer.analyse(word)) == "", word
  assert noun_verdict("기판", analyzer.analyse("기판")) == "single"


def test_userdic_on_small_corpus_dir_verbose(tmp_path, capsys):
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  with gzip.open(corpus / "patents.txt.gz", "wt", encoding="utf-8") as f:
    f.write(PATENT_SMALL.read_text(encoding="utf-8"))
  rc = main(["tokenizer", "userdic", "--corpus", str(corpus), "--out", str(tmp_path / "ud"), "--verbose",
             "--min-cohesion", "0.83"])
  err = capsys.readouterr().err
  assert rc == 0, err
  assert "32 lines" in err
  kept = err[err.index("kept:"):err.index("dropped,")]
  assert "질화갈륨층 x16" in kept and "반사방지막 x5" in kept
  assert "seen as a whole fewer than --min-count 3 times" in err and "활성층 x2" in err
  cohesion = err[err.index("cohesion below --min-cohesion 0.83"):]
  assert "전해질층 x6" in cohesion and "구동부 x" in cohesion
  # the entries win in context, not only alone
  morphs = MorphAnalyzer(str(tmp_path / "ud" / "user.dic")).morphs("상기 질화갈륨층의 표면에 반사방지막을 증착하였다.")
  assert "질화갈륨층" in morphs and "반사방지막" in morphs


def test_compile_reports_the_compilers_own_peak_memory(tmp_path):
  # A child's ru_maxrss starts at its parent's size: with 300 MB held here, the old measure said >= 300 MB.
  from korpat_jax.tokenizer.dic_csv import compile_user_dic
  held = bytearray(300 * 2**20)
  held[::4096] = b"x" * len(held[::4096])   # touched, so resident
  csv_path = tmp_path / "user.csv"
  csv_path.write_text("질화갈륨,1784,3537,2000,NNG,*,T,질화갈륨,*,*,*,*\n"
                      "공포영화,1784,3536,2302,NNG,*,F,공포영화,Compound,*,*,공포/NNG/*+영화/NNG/*\n", encoding="utf-8")
  result = compile_user_dic(str(csv_path), str(tmp_path / "user.dic"), 2, quiet=True)
  assert (tmp_path / "user.dic").is_file() and 1 < result.peak_rss_mb < 200
  del held
