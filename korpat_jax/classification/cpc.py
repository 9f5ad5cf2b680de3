"""CPC (Cooperative Patent Classification) codes: parsing the usual spellings and cutting them to a level.

Read: "H01L 21/02", "H01L21/02", "H01L  21/02" (fixed width), lower case, the 14-character EPO/DOCDB form
"H01L0021020000" (4-digit zero-padded main group, 6-digit subgroup right-padded with zeros), a trailing version
("H01L 21/02 (2006.01)", "H01L 21/02 20060101"), and partial codes "H", "H01", "H01L", "H01L 21" (main group
only), which cut to the levels they reach. Written: "H", "H01", "H01L", "H01L 21/00", "H01L 21/02".
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Callable

SECTIONS = "ABCDEFGHY"
LEVELS = ("section", "class", "subclass", "group", "subgroup")
CUT_LEVELS = LEVELS + ("none",)   # "none": the label as it is (any label set, not only CPC)

_VERSION = re.compile(r"\s*(?:\(\s*\d{4}[.\-]\d{2}\s*\)|\s\d{8}|\s\d{4}\.\d{2})\s*$")
_DOCDB = re.compile(r"([A-Z])(\d{2})([A-Z])(\d{4})(\d{6})")
_CODE = re.compile(r"([A-Z])(?:(\d{2})(?:([A-Z])(?:\s*(\d{1,4})(?:\s*/\s*(\d+))?)?)?)?")
_EXAMPLE = "expected e.g. 'H01L 21/02' (section A-H or Y, 2-digit class, subclass letter, main group/subgroup)"


@dataclasses.dataclass(frozen=True)
class CpcCode:
  """A CPC code down to its deepest known level; deeper parts are None ("H01L": main_group None)."""
  section: str
  cls: str | None = None          # 2 digits: "01"
  subclass: str | None = None     # 1 letter: "L"
  main_group: str | None = None   # digits without leading zeros: "21"
  subgroup: str | None = None     # at least 2 digits, as written: "02", "00", "0123"

  @property
  def level(self) -> str:
    """The deepest level present ("H01L 21" is at group level)."""
    parts = (self.section, self.cls, self.subclass, self.main_group, self.subgroup)
    return LEVELS[sum(p is not None for p in parts) - 1]

  def format(self, level: str | None = None) -> str:
    """The code cut to `level` (default: its own level); ValueError when it is too short for it."""
    level = level or self.level
    if level not in LEVELS:
      raise ValueError(f"CPC level {level!r}: expected one of {', '.join(CUT_LEVELS)}")
    if LEVELS.index(level) > LEVELS.index(self.level):
      raise ValueError(f"CPC code {str(self)!r} stops at the {self.level} level, too short for {level!r}")
    if level == "section":
      return self.section
    if level == "class":
      return f"{self.section}{self.cls}"
    if level == "subclass":
      return f"{self.section}{self.cls}{self.subclass}"
    subgroup = self.subgroup if level == "subgroup" else "00"
    return f"{self.section}{self.cls}{self.subclass} {self.main_group}/{subgroup}"

  def __str__(self) -> str:
    if self.main_group is not None and self.subgroup is None:
      return f"{self.section}{self.cls}{self.subclass} {self.main_group}"
    return self.format()


def parse_cpc(code: str) -> CpcCode:
  """A CPC code in any of the spellings above; ValueError naming the code for anything else."""
  if not isinstance(code, str):
    raise ValueError(f"CPC code {code!r}: not a string")
  text = code.strip().upper()
  text = _VERSION.sub("", text).strip()
  if not text:
    raise ValueError(f"CPC code {code!r}: empty")
  if text[0] not in SECTIONS and text[0].isalpha():
    raise ValueError(f"CPC code {code!r}: section {text[0]!r} is not a CPC section (A-H, Y)")
  if m := _DOCDB.fullmatch(text):
    section, cls, subclass, main, sub = m.groups()
    sub = sub.rstrip("0").ljust(2, "0")
  elif m := _CODE.fullmatch(text):
    section, cls, subclass, main, sub = m.groups()
  else:
    raise ValueError(f"CPC code {code!r}: {_EXAMPLE}")
  if section not in SECTIONS:
    raise ValueError(f"CPC code {code!r}: section {section!r} is not a CPC section (A-H, Y)")
  if main is not None:
    main = main.lstrip("0")
    if not main:
      raise ValueError(f"CPC code {code!r}: main group 0 does not exist")
  if sub is not None and not 2 <= len(sub) <= 6:
    raise ValueError(f"CPC code {code!r}: the subgroup needs 2 to 6 digits ('21/02', not '21/2')")
  return CpcCode(section, cls, subclass, main, sub)


def cut_cpc(code: str, level: str) -> str:
  """`code` at `level` (section | class | subclass | group | subgroup), or stripped and unchanged for "none"."""
  if level == "none":
    return code.strip()
  if level not in LEVELS:
    raise ValueError(f"CPC level {level!r}: expected one of {', '.join(CUT_LEVELS)}")
  return parse_cpc(code).format(level)


def cpc_label_parser(level: str) -> Callable[[str], str]:
  """A `label_parser` for `read_examples` that cuts each CPC label to `level` (checked now, not per label)."""
  if level not in CUT_LEVELS:
    raise ValueError(f"CPC level {level!r}: expected one of {', '.join(CUT_LEVELS)}")
  return functools.partial(cut_cpc, level=level)
