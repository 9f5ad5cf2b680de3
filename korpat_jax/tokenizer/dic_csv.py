"""mecab-ko user-dictionary rows: validation, context ids, costs, and compiling to `user.dic`.

A row has 12 columns: surface, left_id, right_id, cost, POS, semantic, has_jongseong, reading, type,
start_pos, end_pos, expression. Empty ids are assigned the way mecab-dict-index does (rewrite.def, then
left-id.def / right-id.def of the installed dictionary); the compile itself runs libmecab's own
`mecab_dict_index` through ctypes, in a child process because MeCab exits the process on a fatal error.
"""

from __future__ import annotations

import csv
import mmap
import os
import re
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from korpat_jax.errors import KorpatError
from korpat_jax.tokenizer.morphemes import dictionary_dir, libmecab_path

NUM_COLUMNS = 12
ROW_TYPES = {"*", "Compound", "Inflect", "Preanalysis"}
MAX_SURFACE_CHARS = 64
COST_MIN, COST_MAX = -32768, 32767


def has_jongseong(word: str) -> str | None:
  """'T'/'F' for a word ending in a Hangul syllable (with/without a final consonant), None otherwise."""
  if not word:
    return None
  code = ord(word[-1]) - 0xAC00
  if 0 <= code < 11172:
    return "T" if code % 28 else "F"
  return None


def _compile_pattern(field: str):
  if field == "*":
    return None
  m = re.fullmatch(r"\((.*)\)", field)
  return frozenset(m.group(1).split("|")) if m else frozenset([field])


class ContextIds:
  """Left/right context ids of the installed dictionary, from rewrite.def + left-id.def/right-id.def."""

  def __init__(self, dicdir: str | None = None):
    dicdir = dicdir or dictionary_dir()
    self.left = self._read_ids(os.path.join(dicdir, "left-id.def"))
    self.right = self._read_ids(os.path.join(dicdir, "right-id.def"))
    self.max_left, self.max_right = max(self.left.values()), max(self.right.values())
    self.rules = self._read_rewrite(os.path.join(dicdir, "rewrite.def"))
    self.pos_tags = {f.split(",", 1)[0] for f in self.left} | {f.split(",", 1)[0] for f in self.right}
    self._cache: dict[tuple[str, ...], int | None] = {}

  @staticmethod
  def _read_ids(path: str) -> dict[str, int]:
    ids = {}
    with open(path, encoding="utf-8") as f:
      for line in f:
        line = line.strip()
        if line:
          num, feature = line.split(" ", 1)
          ids[feature] = int(num)
    return ids

  @staticmethod
  def _read_rewrite(path: str) -> dict[str, list]:
    rules: dict[str, list] = {}
    section = None
    with open(path, encoding="utf-8") as f:
      for line in f:
        line = line.strip()
        if not line or line.startswith("#"):
          continue
        if line.startswith("["):
          section = line.strip("[]").split()[0]
          rules[section] = []
          continue
        pattern, target = line.split(None, 1)
        targets = [int(t[1:]) - 1 if re.fullmatch(r"\$\d+", t) else t for t in target.strip().split(",")]
        rules[section].append(([_compile_pattern(p) for p in pattern.split(",")], targets))
    return rules

  def lookup(self, side: str, feature: tuple[str, ...]) -> int | None:
    """The context id that mecab-dict-index would give `feature` (8 fields) on `side` ('left'/'right')."""
    for pattern, target in self.rules[side]:
      for p, v in zip(pattern, feature):
        if p is not None and v not in p:
          break
      else:
        if len(pattern) <= len(feature):
          rewritten = tuple(feature[t] if isinstance(t, int) else t for t in target)
          break
    else:
      return None
    key = (side, *rewritten)
    if key not in self._cache:
      table = self.left if side == "left" else self.right
      self._cache[key] = table.get(",".join(rewritten))
    return self._cache[key]


class ConnectionCosts:
  """MeCab's connection costs (matrix.bin of the installed dictionary), read in place."""

  def __init__(self, dicdir: str | None = None):
    with open(os.path.join(dicdir or dictionary_dir(), "matrix.bin"), "rb") as f:
      self._matrix = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    self._rows = struct.unpack_from("<H", self._matrix, 0)[0]

  def __call__(self, right_id: int, left_id: int) -> int:
    """The cost of a morpheme with `left_id` following one with `right_id` (BOS and EOS have id 0)."""
    return struct.unpack_from("<h", self._matrix, 4 + 2 * (right_id + self._rows * left_id))[0]


class RowError(ValueError):
  pass


@dataclass
class RowReport:
  """What happened to the rows of one source."""
  source: str
  rows: int = 0
  kept: int = 0
  bad: int = 0
  fixed_jongseong: int = 0
  duplicates: int = 0

  def summary(self) -> str:
    return (f"{self.source}: {self.rows} rows, {self.kept} kept, {self.bad} bad (skipped), "
            f"{self.duplicates} duplicates, {self.fixed_jongseong} has_jongseong flags corrected")


def normalize_row(fields: list[str], ids: ContextIds, default_cost: int, report: RowReport) -> list[str]:
  """A checked, complete 12-column row; raises RowError naming what is wrong."""
  if len(fields) != NUM_COLUMNS:
    raise RowError(f"expected {NUM_COLUMNS} columns, got {len(fields)}")
  fields = [f.strip() for f in fields]
  surface, left, right, cost, pos, semantic, jong, reading, typ, start, end, expr = fields
  if not surface:
    raise RowError("empty surface")
  if len(surface) > MAX_SURFACE_CHARS:
    raise RowError(f"surface longer than {MAX_SURFACE_CHARS} characters")
  if any(c.isspace() or ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in surface):
    raise RowError(f"surface {surface!r} contains whitespace or control characters")
  if any("," in f or '"' in f for f in fields):
    raise RowError("a field contains a comma or a double quote")
  if not pos or any(tag not in ids.pos_tags for tag in pos.split("+")):
    raise RowError(f"unknown POS tag {pos!r}")
  if typ in ("", "*"):
    typ = "*"
  elif typ not in ROW_TYPES:
    raise RowError(f"unknown type {typ!r} (expected one of {sorted(ROW_TYPES)})")
  if typ != "*" and expr in ("", "*"):
    raise RowError(f"type {typ} needs an expression (e.g. 질화/NNG/*+갈륨/NNG/*)")
  expected = has_jongseong(surface)
  if expected is not None and jong != expected:
    report.fixed_jongseong += 1
    jong = expected
  elif expected is None and jong not in ("T", "F", "*"):
    jong = "*"
  feature = (pos, semantic or "*", jong, reading or surface, typ, start or "*", end or "*", expr or "*")
  left_id = _int_field(left, "left_id") if left else ids.lookup("left", feature)
  right_id = _int_field(right, "right_id") if right else ids.lookup("right", feature)
  if left_id is None or right_id is None:
    raise RowError(f"no context id in the installed dictionary for feature {','.join(feature)!r}")
  if not 0 <= left_id <= ids.max_left or not 0 <= right_id <= ids.max_right:
    raise RowError(f"context ids {left_id},{right_id} outside the installed dictionary's range")
  cost_value = _int_field(cost, "cost") if cost else default_cost
  if not COST_MIN <= cost_value <= COST_MAX:
    raise RowError(f"cost {cost_value} outside [{COST_MIN}, {COST_MAX}]")
  return [surface, str(left_id), str(right_id), str(cost_value), *feature]


def _int_field(value: str, name: str) -> int:
  try:
    return int(value)
  except ValueError:
    raise RowError(f"{name} {value!r} is not an integer") from None


def read_user_csv(path: str, ids: ContextIds, default_cost: int, report: RowReport, on_bad=None):
  """Yield the checked rows of a user CSV; bad rows go to `on_bad(message)` with their line number."""
  with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
    reader = csv.reader(f)
    for fields in reader:
      line_no = reader.line_num
      if not fields or (len(fields) == 1 and not fields[0].strip()):
        continue
      report.rows += 1
      try:
        if any("\udc80" <= c <= "\udcff" for field in fields for c in field):
          raise RowError("bytes that are not UTF-8")
        row = normalize_row(fields, ids, default_cost, report)
      except RowError as e:
        report.bad += 1
        if on_bad is not None:
          on_bad(f"{path}:{line_no}: {e}")
        continue
      yield row


@dataclass
class CompileResult:
  path: str
  entries: int
  seconds: float
  peak_rss_mb: float


# The compiler reports its own peak memory: the parent's RUSAGE_CHILDREN would give the largest child ever (pool
# workers included), and a child's ru_maxrss starts at its parent's size (it is counted across fork and exec).
_PEAK_MARK = "korpat-compile-peak-kb"
_COMPILE_SNIPPET = f"""
import ctypes, resource, sys
lib = ctypes.CDLL(sys.argv[1])
lib.mecab_dict_index.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
args = [a.encode("utf-8") for a in sys.argv[2:]]
rc = lib.mecab_dict_index(len(args), (ctypes.c_char_p * len(args))(*args))
try:
  peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
except (OSError, StopIteration, ValueError):
  peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
sys.stderr.write("\\n{_PEAK_MARK} %d\\n" % peak_kb)
sys.exit(rc)
"""


def compile_user_dic(csv_path: str, out_path: str, entries: int, quiet: bool = False) -> CompileResult:
  """Compile a mecab-ko user CSV with libmecab's `mecab_dict_index` (the wheel's own compiler)."""
  dicdir = dictionary_dir()
  args = ["mecab-dict-index", "-d", dicdir, "-u", str(out_path), "-f", "utf-8", "-t", "utf-8", str(csv_path)]
  start = time.perf_counter()
  proc = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET, libmecab_path(), *args],
                        stdout=subprocess.PIPE if quiet else None, stderr=subprocess.PIPE, text=True,
                        errors="replace")
  seconds = time.perf_counter() - start
  stderr = [line for line in (proc.stderr or "").splitlines() if line.strip()]
  marks = [line for line in stderr if line.startswith(_PEAK_MARK)]
  peak_kb = int(marks[-1].split()[1]) if marks else 0   # no mark: the compiler died before reporting
  if proc.returncode != 0 or not Path(out_path).is_file():
    detail = " | ".join([line for line in stderr if not line.startswith(_PEAK_MARK)][-3:])
    raise KorpatError(f"{csv_path}: mecab_dict_index failed (exit {proc.returncode}): {detail}")
  return CompileResult(str(out_path), entries, seconds, peak_kb / 1024)
