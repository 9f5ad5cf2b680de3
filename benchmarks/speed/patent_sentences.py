"""Long patent-like Korean sentences for tokenizer benchmarks: claims and abstracts, 150-250 characters each.

  from benchmarks.speed.patent_sentences import patent_sentences
  measured = patent_sentences(3000, seed=11)
  warmup = patent_sentences(3000, seed=1011)   # other sentences (a disjoint set is checked by the caller)

Original text assembled from word lists written for this benchmark (no real patent is quoted): long compound nouns
glued from technical nouns (질화갈륨층, 반도체기판지지부), chemical names with locants, numbers with units (25 ℃,
3.5 nm, 10~20 중량%), drawing references (도 3, 100a, 제2 전극(120), 단계 S120) and English terms or
abbreviations. Deterministic: the same (count, seed) always gives the same list. `python -m
benchmarks.speed.patent_sentences [N] [abstract]` prints N samples.

`patent_sentences(count, seed, realism="abstract")` (issue 21): shorter abstract sentences (40-250 characters) drawn
from a far larger lexicon, as hard for the encoder's caches as patent abstracts (benchmarks/speed/patent_stats.py
measures both modes against the demo's patent-style documents). The default mode's sentences never change: other
benchmarks' published figures depend on them.
"""

from __future__ import annotations

import itertools
import random
import re
import sys

MIN_CHARS, MAX_CHARS = 150, 250

_HEADS = ("질화", "갈륨", "반도체", "기판", "지지", "산화", "실리콘", "발광", "구동", "게이트", "채널", "식각", "정지",
          "보호", "투명", "도전", "배선", "접촉", "냉각", "유체", "공급", "배출", "열교환", "제어", "신호", "처리",
          "전원", "변환", "압력", "온도", "감지", "광학", "렌즈", "반사", "방지", "흡착", "분리", "정제", "촉매",
          "전해질", "양극", "음극", "활물질", "집전", "분리막", "바인더", "도포", "건조", "압연", "절단", "적층",
          "봉지", "박막", "증착", "스퍼터링", "플라즈마", "챔버", "진공", "배기", "가스", "노즐", "분사", "회전",
          "구동축", "베어링", "하우징", "커버", "체결", "탄성", "완충", "밀봉", "가열", "히터", "단열", "송풍",
          "필터", "세정", "연마", "패드", "슬러리", "웨이퍼", "마스크", "노광", "현상", "레지스트", "금속", "합금",
          "세라믹", "고분자", "수지", "경화", "접착", "코팅", "안테나", "급전", "무선", "통신", "데이터", "저장",
          "메모리", "셀", "비트라인", "워드라인", "커패시터", "트랜지스터", "화소", "표시", "터치", "편광")
_TAILS = ("층", "막", "부", "기", "판", "체", "관", "로", "홈", "공", "단", "선", "편", "재", "액", "제", "물", "부재",
          "장치", "모듈", "유닛", "영역", "패턴", "구조체", "조립체", "회로", "소자", "전극", "기판", "시스템")
_DEVICES = ("반도체 소자", "발광 다이오드", "이차전지", "박막 트랜지스터", "표시 장치", "플라즈마 처리 장치",
            "열교환기", "연료전지 스택", "이미지 센서", "무선 충전 장치", "유기 발광 표시 장치", "기판 처리 장치",
            "전력 변환 장치", "진공 펌프", "촉매 반응기", "광학 렌즈 모듈", "배터리 관리 시스템", "화학기계연마 장치")
_ENGLISH = ("CMOS", "TFT(thin film transistor)", "LED", "OLED", "PECVD(plasma enhanced chemical vapor deposition)",
            "ALD(atomic layer deposition)", "DRAM", "NAND", "ITO(indium tin oxide)", "IGZO", "MOSFET", "PWM",
            "CPU", "FPGA", "LiDAR", "IoT", "5G NR", "Bluetooth Low Energy", "RF", "MEMS", "UV", "XRD", "SEM", "TEM",
            "FT-IR", "HPLC", "PCR", "CRISPR-Cas9", "BMS(battery management system)", "SoC", "USB Type-C", "Wi-Fi")
_FORMULAS = ("SiO2", "Si3N4", "GaN", "AlGaN", "InGaN", "TiO2", "Al2O3", "HfO2", "ZrO2", "LiCoO2", "LiFePO4",
             "NiCoMn", "SnO2", "ZnO", "MoS2", "WSe2", "NH3", "SiH4", "CF4", "Cl2", "H2SO4", "H2O2", "NaOH", "KOH",
             "Cu", "Al", "Ti", "TiN", "TaN", "Ni", "Co", "Pt", "Au", "Ag")
_SUBSTITUENTS = ("메틸", "에틸", "프로필", "부틸", "페닐", "메톡시", "에톡시", "하이드록시", "아미노", "클로로", "플루오로",
                 "브로모", "니트로", "시아노", "카복시", "트리플루오로메틸", "비닐", "아세틸", "벤질", "사이클로헥실")
_CORES = ("벤젠", "피리딘", "피리미딘", "이미다졸", "티오펜", "퓨란", "인돌", "퀴놀린", "나프탈렌", "아크릴레이트",
          "메타크릴레이트", "실록산", "카보네이트", "아마이드", "우레탄", "에폭사이드", "벤조산", "아닐린", "피페라진")
_POLYMERS = ("폴리에틸렌테레프탈레이트", "폴리이미드", "폴리비닐리덴플루오라이드", "폴리메틸메타크릴레이트",
             "폴리카보네이트", "폴리테트라플루오로에틸렌", "스티렌부타디엔고무", "카복시메틸셀룰로오스", "폴리아크릴로니트릴")
_SOLVENTS = ("N-메틸-2-피롤리돈(NMP)", "에탄올", "이소프로필알코올(IPA)", "탈이온수", "톨루엔", "아세톤",
             "N,N-다이메틸포름아마이드(DMF)", "프로필렌글리콜모노메틸에테르아세테이트(PGMEA)", "다이메틸설폭사이드")
_GASES = ("질소(N2)", "아르곤(Ar)", "산소(O2)", "수소(H2)", "암모니아(NH3)", "헬륨(He)", "질소와 수소의 혼합 가스")
_UNITS = ("nm", "㎛", "mm", "cm", "Å", "℃", "K", "Pa", "Torr", "mTorr", "MPa", "W", "kW", "V", "mV", "mA", "A", "Hz",
          "kHz", "MHz", "GHz", "rpm", "sccm", "mL/min", "mol/L", "wt%", "중량%", "부피%", "mAh/g", "Ω", "kΩ", "dB", "초",
          "분", "시간", "mg/kg", "g/㎡", "cP", "eV", "lm/W")
_LENGTHS = ("nm", "㎛", "mm", "cm", "Å")
_TEMPERATURES = ("℃", "°C", "K")
_TIMES = ("초", "분", "시간", "sec", "min")
_VOLTAGES = ("V", "mV", "kV")
_CONTENTS = ("중량%", "wt%", "부피%", "중량부", "mol%", "ppm")
_VERBS = ("형성하는", "배치되는", "증착하는", "식각하는", "가열하는", "냉각시키는", "공급하는", "제어하는", "측정하는",
          "감지하는", "전달하는", "차단하는", "연결되는", "결합되는", "수용하는", "지지하는", "분리하는", "혼합하는")
_EFFECTS = ("누설 전류를 감소시키고 신뢰성을 향상시킬", "열 방출 효율을 높이고 소비 전력을 줄일", "제조 공정을 단순화하고 "
            "수율을 향상시킬", "수명 특성과 고율 충방전 특성을 개선할", "균일한 박막을 대면적에 형성할", "광 추출 효율을 "
            "극대화할", "노이즈를 억제하여 검출 정확도를 높일", "기계적 강도를 유지하면서 무게를 줄일")


def _has_final_consonant(word: str) -> bool:
  """Whether the word, read aloud, ends in a consonant (decides 은/는, 이/가, 을/를, 과/와, 으로/로).

  A trailing parenthesis (a reference numeral, an abbreviation) is skipped: `전극(120)` is read `전극`."""
  word = re.sub(r"\([^()]*\)$", "", word)
  for ch in reversed(word):
    if "가" <= ch <= "힣":
      return (ord(ch) - 0xAC00) % 28 != 0
    if ch.isdigit():
      return ch in "013678"
    if ch.isalpha():
      return ch.upper() in "LMNR"
  return False


def josa(word: str, pair: str) -> str:
  """`word` with the particle of `pair` ("은/는", "이/가", "을/를", "과/와", "으로/로") that fits it."""
  with_final, without = pair.split("/")
  if pair == "으로/로" and re.sub(r"\([^()]*\)$", "", word).endswith("ㄹ"):
    return word + without
  return word + (with_final if _has_final_consonant(word) else without)


LEXICON_SIZE = 20_000   # distinct compound nouns; sentences draw them with Zipf-like frequencies
LEXICON_SEED = 7


def compound_lexicon(size: int = LEXICON_SIZE, seed: int = LEXICON_SEED) -> list[str]:
  """Compound nouns written without spaces, the way patents write them (1-3 technical nouns and a tail), most
  frequent first. The same for every sentence seed: measured and warm-up text share a vocabulary, as the
  documents of one corpus do."""
  r = random.Random(seed)
  out: dict[str, None] = {}
  while len(out) < size:
    out["".join(r.sample(_HEADS, r.randint(1, 3))) + r.choice(_TAILS)] = None
  return list(out)


def user_dictionary_csv(path: str, size: int = LEXICON_SIZE) -> str:
  """The lexicon as a mecab-ko-dic user CSV (a patent user dictionary of these compounds); returns `path`."""
  with open(path, "w", encoding="utf-8") as f:
    for word in compound_lexicon(size):
      final = "T" if _has_final_consonant(word) else "F"
      f.write(f"{word},,,,NNG,*,{final},{word},*,*,*,*\n")
  return path


class _Writer:
  """Random pieces of patent prose from one seeded generator."""

  def __init__(self, rng: random.Random):
    self.r = rng
    self.lexicon = compound_lexicon()
    self.weights = list(itertools.accumulate(1 / (rank + 10) for rank in range(len(self.lexicon))))

  def pick(self, seq):
    return self.r.choice(seq)

  def compound(self) -> str:
    return self.r.choices(self.lexicon, cum_weights=self.weights)[0]

  def chemical(self) -> str:
    r = self.r
    kind = r.random()
    if kind < 0.4:
      loc = r.choice(("2-", "3-", "4-", "2,4-", "4,4'-", "N-", "1,3-", "2,6-"))
      return f"{loc}({r.choice(_SUBSTITUENTS)}){r.choice(_SUBSTITUENTS)}{r.choice(_CORES)}"
    if kind < 0.6:
      return r.choice(_POLYMERS)
    if kind < 0.8:
      return f"{r.choice(_SUBSTITUENTS)}{r.choice(_CORES)}({r.choice(_FORMULAS)})"
    return r.choice(_FORMULAS)

  def number(self) -> str:
    r = self.r
    kind = r.random()
    if kind < 0.35:
      return str(r.randint(1, 999))
    if kind < 0.7:
      return f"{r.uniform(0.01, 99):.{r.randint(1, 2)}f}"
    if kind < 0.85:
      return f"{r.randint(1, 99):,}{r.choice(('', '0', '00'))}"
    return f"{r.randint(1, 9)}×10{r.choice(('⁻³', '⁻⁶', '³', '⁵', '^-4'))}"

  def quantity(self, units: tuple[str, ...] = _UNITS) -> str:
    r = self.r
    unit = r.choice(units)
    space = " " if r.random() < 0.7 else ""
    if r.random() < 0.35:
      sep = r.choice(("~", " 내지 ", "-", " ~ "))
      return f"{self.number()}{sep}{self.number()}{space}{unit}"
    return f"{self.number()}{space}{unit}"

  def ref(self) -> str:
    r = self.r
    base = r.randrange(10, 990, 10)
    return f"{base}{r.choice(('', '', '', 'a', 'b', '-1', '-2', chr(39)))}"

  def part(self) -> str:
    r = self.r
    ordinal = f"제{r.randint(1, 4)} " if r.random() < 0.4 else ""
    return f"{ordinal}{self.compound()}({self.ref()})"

  def figure(self) -> str:
    return f"도 {self.r.randint(1, 12)}{self.r.choice(('', '', 'a', 'b', 'c'))}"

  def step(self) -> str:
    return f"단계 S{self.r.randrange(100, 1000, 10)}"

  def english(self) -> str:
    return self.pick(_ENGLISH)


def _claim(w: _Writer) -> str:
  r, j = w.r, josa
  opening = r.choice((f"제{r.randint(1, 20)}항에 있어서, ", f"제{r.randint(1, 9)}항 또는 제{r.randint(10, 20)}항에 있어서, ",
                      f"제{r.randint(1, 20)}항 내지 제{r.randint(21, 30)}항 중 어느 한 항에 있어서, "))
  clauses = [
      lambda: f"상기 {j(w.compound(), '은/는')} {j(w.chemical(), '을/를')} 포함하고, 두께가 {w.quantity(_LENGTHS)}이며",
      lambda: f"상기 {j(w.part(), '과/와')} 상기 {w.part()} 사이에 {j(w.compound(), '이/가')} 개재되고",
      lambda: f"상기 {j(w.compound(), '은/는')} {w.quantity(_TEMPERATURES)}의 온도에서 {w.pick(_GASES)} 분위기 하에 "
              f"{w.quantity(_TIMES)} 동안 열처리되며",
      lambda: f"상기 {w.compound()}의 {j(w.compound(), '은/는')} {w.english()} 방식으로 {w.pick(_VERBS)} "
              f"{j(w.compound(), '을/를')} 구비하고",
      lambda: f"상기 {w.chemical()}의 함량은 전체 조성물 100 중량부에 대하여 {w.quantity(_CONTENTS)}이고",
      lambda: f"{w.step()}에서 상기 {w.compound()}에 {w.quantity(_VOLTAGES)}의 전압을 인가하여 {j(w.compound(), '을/를')} "
              f"{w.pick(_VERBS)} 것이며",
  ]
  body = []
  while sum(map(len, body)) < MIN_CHARS - 40:
    body.append(r.choice(clauses)())
  end = f", 상기 {j(w.compound(), '을/를')} 포함하는 것을 특징으로 하는 {w.pick(_DEVICES)}."
  return opening + ", ".join(body) + end


def _abstract(w: _Writer) -> str:
  r, j = w.r, josa
  openings = [
      lambda: f"본 발명은 {w.pick(_DEVICES)}에 관한 것으로, 보다 상세하게는 {j(w.compound(), '과/와')} "
              f"{j(w.compound(), '을/를')} 구비하여 {w.pick(_EFFECTS)} 수 있는 {w.pick(_DEVICES)} 및 그 제조방법에 관한 "
              f"것이다.",
      lambda: f"{w.figure()}에 도시된 바와 같이, {w.pick(_DEVICES)}(100)는 {w.part()}, {w.part()} 및 "
              f"{j(w.part(), '을/를')} 포함한다.",
      lambda: f"상기 조성물은 {w.chemical()} {w.quantity(_CONTENTS)}, {w.chemical()} {w.quantity(_CONTENTS)} 및 잔부의 "
              f"{j(w.pick(_SOLVENTS), '을/를')} 포함하며, 점도는 {w.quantity(('cP', 'mPa·s'))}이다.",
      lambda: f"{w.step()}에서는 {w.english()} 공정으로 {j(w.chemical(), '으로/로')} 이루어진 {j(w.compound(), '을/를')} "
              f"{w.quantity(_LENGTHS)}의 두께로 {w.pick(_VERBS)} 것이 바람직하다.",
      lambda: f"실시예 {r.randint(1, 30)}에서 제조된 {j(w.compound(), '은/는')} {w.english()} 측정 결과 {w.quantity()}의 값을 "
              f"나타내었으며, 비교예 대비 {r.randint(5, 95)}% 향상되었다.",
      lambda: f"{j(w.figure(), '을/를')} 참조하면, 상기 {j(w.part(), '은/는')} {w.english()} 신호에 따라 "
              f"{j(w.part(), '을/를')} {w.pick(_VERBS)} {w.compound()}이다.",
  ]
  out = ""
  while len(out) < MIN_CHARS:
    out += (" " if out else "") + r.choice(openings)()
  return out


def patent_sentences(count: int, seed: int = 11, realism: str = "default") -> list[str]:
  """`count` claims and abstracts (about half each) of MIN_CHARS-MAX_CHARS characters, the same for the same seed.

  realism="abstract": abstract sentences of 40-250 characters as hard for the
  encoder's caches as patent abstracts (benchmarks/speed/patent_abstracts.py); the default is the original set, unchanged."""
  if realism == "abstract":
    from benchmarks.speed.patent_abstracts import abstract_sentences  # it builds on this module's _Writer
    return abstract_sentences(count, seed)
  if realism != "default":
    raise ValueError(f"realism must be 'default' or 'abstract', not {realism!r}")
  w = _Writer(random.Random(seed))
  out: list[str] = []
  while len(out) < count:
    text = (_claim if w.r.random() < 0.5 else _abstract)(w)
    if MIN_CHARS <= len(text) <= MAX_CHARS:
      out.append(text)
  return out


def warmup_sentences(count: int, measured: list[str], seed: int = 1011, realism: str = "default") -> list[str]:
  """Other sentences of the same kind, none of them in `measured` (to warm caches on other text)."""
  seen = set(measured)
  return [s for s in patent_sentences(count + len(measured) // 100 + 10, seed, realism) if s not in seen][:count]


if __name__ == "__main__":
  for line in patent_sentences(int(sys.argv[1]) if len(sys.argv) > 1 else 10,
                               realism=sys.argv[2] if len(sys.argv) > 2 else "default"):
    print(line)
