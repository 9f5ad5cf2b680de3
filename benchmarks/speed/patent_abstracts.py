"""Patent-like sentences as hard for the MWP encoder's caches as patent abstracts (issue 21): the
`realism="abstract"` mode of benchmarks/speed/patent_sentences.py, which calls `abstract_sentences` here.

  from benchmarks.speed.patent_sentences import patent_sentences
  hard = patent_sentences(2000, seed=11, realism="abstract")
"""

from __future__ import annotations

import collections
import functools
import itertools
import random

from benchmarks.speed.patent_sentences import (_CONTENTS, _EFFECTS, _ENGLISH, _HEADS, _TAILS, _TEMPERATURES,
                                              _TIMES, _Writer, josa)

# -- realism="abstract": as hard for the encoder's caches as patent abstracts (issue 21) -------------------------------
#
# The default sentences draw ~140 technical nouns (compounds that Mecab-ko splits back into them), so after a warm-up
# almost every morpheme is cached: kinder than real abstracts. This mode draws nouns from a much larger lexicon (the
# technical nouns below first, then the common nouns of the bundled demo corpus as a long tail, Zipf-like), predicates
# with varied endings, native verbs, abbreviations and formulas built combinatorially, fewer digits and Latin letters,
# and sentences of 40-250 characters (the demo CPC documents' abstracts: 65 on average; the seed corpus: ~100).

ABSTRACT_MIN_CHARS, ABSTRACT_MAX_CHARS = 40, 250
ZIPF_OFFSET, ZIPF_EXPONENT = 30, 1.3   # noun frequencies of realism="abstract": weight 1 / (rank + offset) ** exponent
GLUED = 0.45   # share of compounds written without spaces

_TECH_NOUNS = (
    "조성물", "화합물", "유도체", "약학", "투여", "치료", "예방", "질환", "염증", "항체", "단백질", "유전자", "세포",
    "배양", "발현", "억제제", "수용체", "효소", "펩타이드", "균주", "발효", "추출물", "식품", "건강", "기능성", "유효성분",
    "제형", "정제", "캡슐", "주사제", "담체", "부형제", "안정성", "용해도", "흡수율", "독성", "면역", "백신", "진단",
    "마커", "시료", "검출", "프라이머", "증폭", "서열", "변이", "암", "종양", "당뇨", "비만", "피부", "모발", "화장료",
    "단말", "기지국", "사용자", "서버", "네트워크", "프로토콜", "패킷", "채널", "대역폭", "변조", "부호화", "복호화",
    "암호화", "인증", "식별자", "메시지", "요청", "응답", "세션", "어플리케이션", "인터페이스", "프로세서", "알고리즘",
    "신경망", "학습", "모델", "추론", "파라미터", "가중치", "특징", "벡터", "영상", "이미지", "픽셀", "프레임", "카메라",
    "객체", "인식", "분류", "예측", "확률", "점수", "임계값", "블록체인", "트랜잭션", "데이터베이스", "쿼리", "캐시",
    "엔진", "차량", "운전자", "주행", "조향", "제동", "변속기", "클러치", "크랭크", "피스톤", "실린더", "밸브", "펌프",
    "압축기", "터빈", "블레이드", "로터", "스테이터", "모터", "감속기", "기어", "샤프트", "스프링", "브래킷", "프레임",
    "레일", "가이드", "롤러", "벨트", "체인", "링크", "힌지", "래치", "레버", "핸들", "노브", "스위치", "센서", "액추에이터",
    "로봇", "그리퍼", "매니퓰레이터", "컨베이어", "금형", "사출", "압출", "용접", "주조", "단조", "열처리", "도금",
    "건축물", "콘크리트", "철근", "거푸집", "슬래브", "기둥", "보강재", "방수", "단열재", "패널", "창호", "배관",
    "냉매", "증발기", "응축기", "팽창", "공조", "덕트", "환기", "미세먼지", "흡착제", "활성탄", "제올라이트", "폐수",
    "슬러지", "소각", "연소", "배기가스", "탈황", "탈질", "수소", "연료", "전해조", "태양광", "풍력", "발전기", "인버터",
    "컨버터", "변압기", "차단기", "계통", "충전", "방전", "용량", "전압", "전류", "저항", "임피던스", "주파수", "위상",
    "파장", "굴절률", "투과율", "반사율", "휘도", "색좌표", "형광체", "양자점", "발광층", "정공", "전자", "수송층",
    "나노", "입자", "분말", "섬유", "부직포", "필름", "시트", "적층체", "복합재", "탄소", "그래핀", "나노튜브", "실리카",
    "알루미나", "지르코니아", "티타늄", "구리", "니켈", "코발트", "망간", "리튬", "나트륨", "칼슘", "마그네슘", "아연",
    "올리고머", "단량체", "중합", "가교", "개시제", "경화제", "첨가제", "가소제", "안정제", "산화방지제", "분산제", "용매",
    "점도", "분자량", "유리전이온도", "융점", "비점", "밀도", "경도", "인장강도", "신율", "탄성률", "내열성", "내구성",
    "접착력", "박리", "균열", "변형", "진동", "소음", "마찰", "마모", "부식", "산화", "환원", "촉매", "반응", "수율",
    "순도", "농도", "함량", "비율", "온도", "압력", "시간", "속도", "유량", "두께", "직경", "길이", "폭", "높이", "면적",
    "체적", "간격", "각도", "곡률", "거리", "위치", "방향", "축", "중심", "가장자리", "표면", "내부", "외부", "상부", "하부",
    "측면", "일단", "타단", "관통홀", "개구부", "돌출부", "홈부", "리브", "플랜지", "캡", "케이스", "본체", "몸체",
)
_PREDICATES = (
    "형성", "배치", "제공", "구비", "포함", "연결", "결합", "수용", "지지", "분리", "혼합", "측정", "감지", "제어", "산출",
    "결정", "판단", "추출", "변환", "저장", "전송", "수신", "생성", "보정", "유지", "적용", "설정", "선택", "처리", "가공",
    "성형", "접합", "삽입", "회전", "이동", "공급", "배출", "순환", "냉각", "가열", "투과", "반사", "흡수", "방출", "검출",
    "분석", "학습", "예측", "인식", "분류", "압축", "표시", "출력", "입력", "구동", "정렬", "고정", "밀착", "확산", "증착",
    "도핑", "식각", "세척", "건조", "소성", "합성", "배양", "투여", "조절", "갱신", "할당", "요청", "승인", "암호화", "매칭",
)
_ACTIVE = ("하는", "하고", "하며", "하여", "한", "할", "함으로써", "하기 위한", "하도록", "하면서", "하거나", "하기 위하여")
_PASSIVE = ("되는", "되고", "되며", "되어", "된", "되도록", "됨에 따라", "되더라도", "되면")
_NATIVE = ("갖는", "가지며", "이루어진", "이루어지며", "높이고", "줄이고", "낮추어", "늘리고", "넓히는", "놓인", "놓여",
           "둘러싸는", "둘러싸여", "덮는", "덮도록", "채워진", "채우는", "뚫린", "나누어", "나뉘는", "이어지는", "맞닿는",
           "마주보는", "겹치는", "끼워지는", "담긴", "녹인", "섞은", "넣어", "빼내는", "보내는", "받는", "읽어", "찾는",
           "바꾸는", "거치는", "따르는", "갖춘", "지닌", "견디는", "흐르는", "흘려", "쌓인", "붙인", "붙여", "떨어진",
           "감싸는", "감긴", "꺾인", "휘어진", "뻗은", "솟은", "잠기는", "열리는", "닫히는", "밀어내는", "당기는", "누르는")
_FINALS = ("한다.", "된다.", "할 수 있다.", "될 수 있다.", "하였다.", "되었다.", "하는 것이 바람직하다.",
           "하는 것을 특징으로 한다.", "할 수 있도록 한다.")
_CONNECTIVES = ("또한", "이때", "이에 따라", "따라서", "나아가", "한편", "바람직하게는", "구체적으로", "더욱이", "그 결과",
                "특히", "일 실시예에 따르면", "다른 실시예에서")
_WORDS_EN = ("thin film", "substrate", "layer", "module", "controller", "network", "device", "sensor", "signal",
             "battery", "cathode", "anode", "electrolyte", "polymer", "coating", "antibody", "protein", "vector",
             "frame", "buffer", "server", "client", "kernel", "token", "embedding", "transformer", "pixel", "gate",
             "channel", "source", "drain", "doping", "annealing", "etching", "wafer", "photoresist", "lens", "mirror")
_ELEMENTS = ("Li", "Na", "K", "Mg", "Ca", "Al", "Si", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
             "Zr", "Nb", "Mo", "Ag", "In", "Sn", "Sb", "W", "Pt", "Au", "La", "Ce", "O", "N", "S", "F", "P", "B", "C")


@functools.lru_cache(maxsize=1)
def _demo_nouns() -> tuple[str, ...]:
  """Common nouns (NNG, 2+ Hangul syllables) of the bundled demo corpus by Mecab-ko, most frequent first: the
  lexicon's long tail (real dictionary words, so Mecab-ko keeps them whole as it does a patent's rarer nouns)."""
  from korpat_jax.tokenizer import demo_corpus_files
  from korpat_jax.tokenizer.morphemes import FeatureAnalyzer
  analyzer, counts = FeatureAnalyzer(), collections.Counter()
  for path in sorted(demo_corpus_files()):
    with open(path, encoding="utf-8") as f:
      for line in f:
        counts.update(m.surface for m in analyzer.analyse(line)
                      if m.pos == "NNG" and not m.unknown and len(m.surface) >= 2 and _is_hangul(m.surface))
  return tuple(w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _is_hangul(word: str) -> bool:
  return all("가" <= c <= "힣" for c in word)


class _AbstractWriter(_Writer):
  """`_Writer` with the larger lexicon and the rarer pieces of realism="abstract"."""

  def __init__(self, rng: random.Random):
    super().__init__(rng)
    nouns = dict.fromkeys(_TECH_NOUNS + _HEADS + _TAILS)
    nouns.update(dict.fromkeys(_demo_nouns()))
    self.nouns = list(nouns)
    self.noun_weights = list(itertools.accumulate(1 / (rank + ZIPF_OFFSET) ** ZIPF_EXPONENT for rank in range(len(self.nouns))))

  def noun(self) -> str:
    return self.r.choices(self.nouns, cum_weights=self.noun_weights)[0]

  def compound(self) -> str:
    r = self.r
    words = [self.noun() for _ in range(r.choice((1, 1, 2, 2, 2, 3, 3, 4)))]
    glue = "" if r.random() < GLUED else " "
    return glue.join(words)

  def abbreviation(self) -> str:
    r = self.r
    if r.random() < 0.5:
      return r.choice(_ENGLISH).split("(")[0]
    if r.random() < 0.5:
      return "".join(r.choice("ABCDEFGHIJKLMNOPRSTUVW") for _ in range(r.randint(2, 5)))
    return " ".join(r.choice(_WORDS_EN) for _ in range(r.randint(1, 3)))

  def formula(self) -> str:
    r = self.r
    parts = []
    for element in r.sample(_ELEMENTS, r.randint(2, 4)):
      count = r.choice(("", "", "2", "3", "4", f"{r.uniform(0.05, 0.95):.{r.randint(1, 2)}f}"))
      parts.append(element + count)
    return "".join(parts)

  def noun_phrase(self) -> str:
    r = self.r
    kind = r.random()
    if kind < 0.55:
      phrase = self.compound()
    elif kind < 0.63:
      phrase = self.part()
    elif kind < 0.67:
      phrase = f"{self.compound()}({self.abbreviation()})"
    elif kind < 0.75:
      phrase = self.chemical()
    elif kind < 0.76:
      phrase = f"{self.compound()}({self.formula()})"
    else:
      phrase = f"{self.noun()} {self.compound()}"
    return ("상기 " if r.random() < 0.3 else "") + phrase

  def predicate(self) -> str:
    r = self.r
    if r.random() < 0.3:
      return r.choice(_NATIVE)
    return r.choice(_PREDICATES) + r.choice(_ACTIVE if r.random() < 0.6 else _PASSIVE)


def _abstract_clause(w: _AbstractWriter) -> str:
  r, j, np = w.r, josa, w.noun_phrase
  clauses = (
      lambda: f"{j(np(), '은/는')} {j(np(), '을/를')} {w.predicate()} {np()}",
      lambda: f"{j(np(), '과/와')} {np()} 사이에 {w.predicate()} {np()}",
      lambda: f"{np()}의 {j(w.compound(), '이/가')} {w.quantity()} 이상인 {np()}",
      lambda: f"{j(np(), '이/가')} {w.quantity()}의 {w.noun()}에서 {w.predicate()}",
      lambda: f"{w.english()} 방식으로 {j(np(), '을/를')} {w.predicate()}",
      lambda: f"{j(np(), '으로/로')} {w.predicate()} {j(np(), '을/를')} {w.predicate()}",
      lambda: f"{w.figure()}에 도시된 {j(np(), '은/는')} {np()}에 {w.predicate()}",
      lambda: f"{w.step()}에서 {j(np(), '을/를')} {w.quantity(_TEMPERATURES)}에서 {w.quantity(_TIMES)} 동안 "
              f"{w.predicate()}",
      lambda: f"{np()} {w.quantity(_CONTENTS)} 및 {j(np(), '을/를')} {w.predicate()}",
      lambda: f"{j(w.compound(), '이/가')} {w.pick(_EFFECTS)} 수 있는 {np()}",
      lambda: f"{j(np(), '은/는')} {np()}의 {j(w.compound(), '을/를')} {w.predicate()}",
      lambda: f"{np()}에 {w.predicate()} {j(np(), '이/가')} {w.predicate()}",
  )
  return r.choice(clauses)()


def _abstract_sentence(w: _AbstractWriter) -> str:
  r = w.r
  target = r.triangular(ABSTRACT_MIN_CHARS, ABSTRACT_MAX_CHARS, ABSTRACT_MIN_CHARS)
  out = f"{r.choice(_CONNECTIVES)}, " if r.random() < 0.25 else ""
  if r.random() < 0.15:
    out += f"본 발명은 {w.compound()}에 관한 것으로, "
  out += _abstract_clause(w)
  while len(out) < target - 40:
    out += ", " + _abstract_clause(w)
  return f"{out}, {josa(w.noun_phrase(), '을/를')} {r.choice(_PREDICATES)}{r.choice(_FINALS)}"


def abstract_sentences(count: int, seed: int) -> list[str]:
  w = _AbstractWriter(random.Random(seed))
  out: list[str] = []
  while len(out) < count:
    text = _abstract_sentence(w)
    if ABSTRACT_MIN_CHARS <= len(text) <= ABSTRACT_MAX_CHARS:
      out.append(text)
  return out
