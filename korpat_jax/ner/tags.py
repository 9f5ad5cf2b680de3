"""NER tags: one normal form (IOB2 prefix form, `B-PS` / `I-PS` / `O`), the label set, unknown-label checks.

Files may write tags as `B-PS` or in the suffix form `PS-B`; BIOES/BILOU files use `S-`/`U-` (single) and
`E-`/`L-` (last), which map to `B-` and `I-` (the spans stay the same under IOB2). Anything else is malformed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
  from korpat_jax.finetune.report import DataReport
  from korpat_jax.ner.readers import NerExample

OUTSIDE = "O"
_PREFIXES = {"B": "B", "I": "I", "S": "B", "U": "B", "E": "I", "L": "I"}
_MAPPED = frozenset("SUEL")   # BIOES / BILOU prefixes rewritten to B / I


def parse_tag(tag: str) -> tuple[str, bool]:
  """(normal form, whether a BIOES/BILOU prefix was rewritten); ValueError when malformed."""
  if tag == OUTSIDE:
    return OUTSIDE, False
  parts = tag.split("-")
  if len(parts) == 2:
    head, tail = parts
    if head in _PREFIXES and _valid_type(tail):
      return f"{_PREFIXES[head]}-{tail}", head in _MAPPED
    if tail in _PREFIXES and _valid_type(head):
      return f"{_PREFIXES[tail]}-{head}", tail in _MAPPED
  raise ValueError(f"malformed NER tag {tag!r} (expected O, B-TYPE, I-TYPE or TYPE-B, TYPE-I)")


def _valid_type(name: str) -> bool:
  return bool(name) and name not in _PREFIXES and not any(c.isspace() for c in name)


def normalize_tag(tag: str) -> str:
  """`PS-B` -> `B-PS`, `S-PS` -> `B-PS`, `E-PS` -> `I-PS`; raises ValueError on a malformed tag."""
  return parse_tag(tag)[0]


def entity_type(tag: str) -> str | None:
  """The entity type of a tag (any accepted form), None for `O`."""
  norm = normalize_tag(tag)
  return None if norm == OUTSIDE else norm[2:]


def split_tag(tag: str) -> tuple[str, str | None]:
  """A normal-form tag -> (prefix, type): ("B", "PS"), ("I", "PS") or ("O", None). ValueError otherwise."""
  if tag == OUTSIDE:
    return OUTSIDE, None
  if len(tag) > 2 and tag[1] == "-" and tag[0] in "BI":
    return tag[0], tag[2:]
  raise ValueError(f"NER tag {tag!r} is not in normal form (O, B-TYPE, I-TYPE)")


def continuation(tag: str) -> str:
  """The tag of a later character of the unit that carries `tag`: I-T for B-T/I-T, O for O."""
  prefix, kind = split_tag(tag)
  return OUTSIDE if kind is None else f"I-{kind}"


def label_set(examples: Iterable["NerExample"]) -> list[str]:
  """"O", then B-T and I-T for every entity type seen (sorted), both even where only one of them occurs."""
  kinds: set[str] = set()
  for ex in examples:
    for tag in ex.tags or ():
      kind = split_tag(tag)[1]
      if kind is not None:
        kinds.add(kind)
  return [OUTSIDE] + [f"{p}-{k}" for k in sorted(kinds) for p in ("B", "I")]


def model_tags(tags: Sequence[str], labels: Sequence[str] | set[str] | None) -> list[str]:
  """The tags the model is trained on: a tag outside `labels` becomes O (None: all kept).

  Only the model's targets change; gold tags used for scoring are never passed through this."""
  if labels is None:
    return list(tags)
  known = labels if isinstance(labels, (set, frozenset)) else set(labels)
  return [t if t in known else OUTSIDE for t in tags]


def check_labels(examples: Iterable["NerExample"], labels: Sequence[str], report: "DataReport") -> None:
  """Report tags outside the training label set (an eval/test file's extra types); the examples keep them.

  The token-label function (`align.token_tags(..., labels=...)`) maps them to O for the model, while the gold
  tags scored by the metrics stay as written, so a type the model cannot know still counts as a miss."""
  known = set(labels)
  for ex in examples:
    if not ex.tags:
      continue
    unknown: dict[str, int] = {}
    for tag in ex.tags:
      if tag not in known:
        unknown[tag] = unknown.get(tag, 0) + 1
    for tag, count in sorted(unknown.items()):
      report.adjust("label_not_in_training_set", ex.where, tag, count)
