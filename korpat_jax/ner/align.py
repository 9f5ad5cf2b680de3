"""Units <-> tokens through the MWP tokenizer's character offsets (spans of the ORIGINAL text).

Gold to tokens: per-character tags are built from the units (a word's tag on its first character, I-T or O on
the rest), then a token takes the tag of its first character (KLUE's rule). Tokens back to text: a token's first
character gets its tag, its other characters continue it, and the characters between two tokens of one entity
(spaces) continue it too; a unit (a word, or a character of the char format) then takes the tag of its first
character, and the predicted entities are read from the unit tags with the strict rule (`predicted_entities`):
exactly the entities the metric scores, whole words for word-level input. (`decode_entities` reads the
character tags leniently instead, cutting words where a sub-word token starts an entity.) Long sentences are cut
into overlapping windows (korpat_jax.finetune.windows); each token is predicted from the window in which it is most
central.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from korpat_jax.ner.metrics import extract_entities
from korpat_jax.ner.readers import NerExample
from korpat_jax.ner.tags import OUTSIDE, continuation, model_tags, split_tag

Offsets = Sequence[tuple[int, int]]


@dataclasses.dataclass
class Alignment:
  """Token tags of one example and what they cannot represent (the caller reports the counts)."""
  tags: list[str]
  uncovered_units: int             # units with a non-space character inside no token span
  entity_starts_inside_token: int  # gold entities whose first character starts no token (their B- is lost)
  entity_ends_inside_token: int = 0  # gold entities whose last character ends no token (decoded span differs)

  @property
  def lossless(self) -> bool:
    """True when decoding these token tags gives back the gold entities exactly."""
    return not (self.uncovered_units or self.entity_starts_inside_token or self.entity_ends_inside_token)


def unit_char_tags(example: NerExample, labels: Sequence[str] | None = None) -> list[str]:
  """Per-character gold tags: each unit's tag on its first character, its continuation on the others, O
  between units. With `labels`, a tag outside them is O first (the model's view; gold scoring never uses it)."""
  chars = [OUTSIDE] * len(example.text)
  if example.tags is None:
    return chars
  for (start, end), tag in zip(example.spans, model_tags(example.tags, labels)):
    if start < end:
      chars[start] = tag
      rest = continuation(tag)
      for c in range(start + 1, end):
        chars[c] = rest
  return chars


def entities_from_tags(spans: Sequence[tuple[int, int]], tags: Sequence[str]) -> list[dict]:
  """Gold entities (strict IOB2) as character spans: [{"start", "end", "label"}], end exclusive, sorted."""
  found = extract_entities(tags, "strict")
  return sorted(({"start": spans[s][0], "end": spans[e - 1][1], "label": kind} for kind, s, e in found),
                key=lambda d: (d["start"], d["end"], d["label"]))


def token_tags(example: NerExample, offsets: Offsets, labels: Sequence[str] | None = None) -> Alignment:
  """Token i gets the tag of the character offsets[i][0]; empty spans (special tokens) get O.

  With `labels` (the training label set), tags outside it become O here only, so the model never sees a type
  it has no output for, while the example's gold tags stay as they are for scoring."""
  n = len(example.text)
  chars = unit_char_tags(example, labels)
  covered = [False] * n
  starts, ends = set(), set()
  out: list[str] = []
  for start, end in offsets:
    if start >= end or start >= n:
      out.append(OUTSIDE)
      continue
    out.append(chars[start])
    starts.add(start)
    ends.add(min(end, n))
    for c in range(start, min(end, n)):
      covered[c] = True
  text = example.text
  uncovered = sum(1 for s, e in example.spans
                  if any(not covered[c] and not text[c].isspace() for c in range(s, e)))
  inside = after = 0
  if example.tags is not None:
    for entity in entities_from_tags(example.spans, model_tags(example.tags, labels)):
      inside += entity["start"] not in starts
      after += entity["end"] not in ends
  return Alignment(out, uncovered, inside, after)


def char_tags_from_tokens(text: str, offsets: Offsets, token_tags: Sequence[str]) -> list[str]:
  """Per-character predicted tags from token tags (see the module docstring); uncovered characters are O."""
  if len(offsets) != len(token_tags):
    raise ValueError(f"{len(offsets)} offsets but {len(token_tags)} token tags")
  n = len(text)
  chars = [OUTSIDE] * n
  last_end, last_kind = 0, None
  for (start, end), tag in sorted(((o, t) for o, t in zip(offsets, token_tags) if o[0] < o[1] and o[0] < n),
                                  key=lambda item: item[0][0]):
    prefix, kind = split_tag(tag)
    if prefix == "I" and kind == last_kind:
      for c in range(last_end, start):     # the gap (spaces) inside one entity
        chars[c] = tag
    chars[start] = tag
    rest = continuation(tag)
    for c in range(start + 1, min(end, n)):
      chars[c] = rest
    last_end, last_kind = max(last_end, min(end, n)), kind
  return chars


def decode_entities(text: str, offsets: Offsets, token_tags: Sequence[str]) -> list[dict]:
  """Predicted token tags -> [{"start", "end", "label"}] character spans of `text`, end exclusive, sorted: the
  character tags read with conlleval's default (lenient) rule, word boundaries ignored. Prediction files use
  `predicted_entities` (what the metric scores) instead."""
  chars = char_tags_from_tokens(text, offsets, token_tags)
  found = extract_entities(chars, "default")
  return sorted(({"start": s, "end": e, "label": kind} for kind, s, e in found),
                key=lambda d: (d["start"], d["end"], d["label"]))


def unit_tags_from_chars(example: NerExample, char_tags: Sequence[str]) -> list[str]:
  """Predicted tag per unit: a word's tag is its first character's (for the char format: the identity)."""
  return [char_tags[s] if s < len(char_tags) else OUTSIDE for s, _ in example.spans]


def predicted_entities(example: NerExample, char_tags: Sequence[str]) -> list[dict]:
  """The predicted entities of one example as character spans of its text, end exclusive, sorted: the unit tags
  (`unit_tags_from_chars`: a word's tag is its first character's) read with the strict rule, as `ner_scores`
  scores them. Word-level input gives whole words; the char format gives what KLUE's entity metric scores."""
  return entities_from_tags(example.spans, unit_tags_from_chars(example, char_tags))
