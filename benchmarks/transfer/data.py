"""The benchmark's data under DIR/data, built once: the NSMC pretraining corpus and sentiment sets (split by movie),
80/20 splits of KLUE NER and NLI dev, and the bundled CPC demo set."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import shutil
from pathlib import Path
from typing import Callable, Optional

NSMC = "nsmc_reviews.tsv.zst"
KLUE_NER = "klue-ner-v1.1_dev.tsv"
KLUE_NLI = "klue-nli-v1.1_dev.json"
CPC_DEMO = Path(__file__).resolve().parents[2] / "korpat_jax" / "demo" / "finetune"
SPLIT_SEED = 0  # the fixed seed of every sample and split here


@dataclasses.dataclass(frozen=True)
class Sizes:
  """How much of each source to use (None: all of it)."""
  nsmc_train: int = 4000
  nsmc_eval: int = 1000
  corpus_reviews: Optional[int] = None   # the first N reviews of the pretraining movies (the smoke run's slice)
  klue_train: Optional[int] = None       # at most N sentences / pairs of each KLUE split
  klue_eval: Optional[int] = None


def movie_part(movie_id: str) -> str:
  """pretrain (80% of the movies), train (10%) or eval (10%), from a stable hash of the movie id."""
  bucket = int(hashlib.sha256(movie_id.encode("utf-8")).hexdigest()[:8], 16) % 10
  return "pretrain" if bucket < 8 else ("train" if bucket == 8 else "eval")


def clean(text: str) -> str:
  """One TSV field: tabs and line breaks become spaces."""
  return text.replace("\t", " ").replace("\r", " ").replace("\n", " ").strip()


def sentiment(rating: int) -> Optional[str]:
  """NSMC's rule: 1-4 negative, 9-10 positive, the rest dropped."""
  return "neg" if rating <= 4 else ("pos" if rating >= 9 else None)


def balanced_sample(rows: list[tuple[str, str]], n: int, rng: random.Random, what: str) -> list[tuple[str, str]]:
  """n rows, half of each label, in a seeded random order; stops when a label has too few."""
  by_label: dict[str, list[tuple[str, str]]] = {"pos": [], "neg": []}
  for row in rows:
    by_label[row[1]].append(row)
  out = []
  for label, items in sorted(by_label.items()):
    if len(items) < n // 2:
      raise SystemExit(f"{what}: only {len(items)} {label} reviews for a balanced sample of {n}")
    out += rng.sample(items, n // 2)
  rng.shuffle(out)
  return out


def read_nsmc(path: Path) -> list[tuple[str, int, str]]:
  """(movie_id, rating, review) rows of nsmc_reviews.tsv.zst."""
  import zstandard
  with open(path, "rb") as f:
    text = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8").read()
  rows = []
  for number, line in enumerate(text.split("\n")[1:], 2):
    if not line:
      continue
    fields = line.split("\t")
    if len(fields) != 3 or not fields[1].isdigit():
      raise SystemExit(f"{path}:{number}: expected movie_id<TAB>rating<TAB>review, got {line[:60]!r}")
    rows.append((fields[0], int(fields[1]), fields[2]))
  return rows


def build_nsmc(source: Path, out: Path, sizes: Sizes) -> dict:
  """pretrain.txt (a document per movie, its reviews one a line) and nsmc_{train,eval}.tsv (text, label)."""
  movies: dict[str, list[str]] = {}
  labelled: dict[str, list[tuple[str, str]]] = {"train": [], "eval": []}
  corpus_reviews = 0
  for movie, rating, review in read_nsmc(source):
    review = review.strip()
    if not review:
      continue
    part = movie_part(movie)
    if part == "pretrain":
      if sizes.corpus_reviews is None or corpus_reviews < sizes.corpus_reviews:
        movies.setdefault(movie, []).append(review)
        corpus_reviews += 1
    elif sentiment(rating):
      labelled[part].append((clean(review), sentiment(rating)))
  rng = random.Random(SPLIT_SEED)
  counts = {"corpus_movies": len(movies), "corpus_reviews": corpus_reviews}
  for part, n in (("train", sizes.nsmc_train), ("eval", sizes.nsmc_eval)):
    rows = balanced_sample(labelled[part], n, rng, f"{source} ({part} movies)")
    write_tsv(out / f"nsmc_{part}.tsv", ["text", "label"], rows)
    counts[f"nsmc_{part}"] = len(rows)
  write_text(out / "pretrain.txt", "\n\n".join("\n".join(reviews) for reviews in movies.values()) + "\n")
  return counts


def write_text(path: Path, text: str) -> None:
  """Whole or not at all (a rerun after an interruption never finds half a file)."""
  tmp = path.with_name(path.name + ".tmp")
  with open(tmp, "w", encoding="utf-8", newline="\n") as f:
    f.write(text)
  os.replace(tmp, path)


def write_tsv(path: Path, header: list[str], rows: list) -> None:
  write_text(path, "".join("\t".join(clean(str(x)) for x in row) + "\n" for row in [header, *rows]))


def split_80_20(items: list, sizes: Sizes) -> tuple[list, list]:
  """A seeded 80/20 split, each side cut to the sizes' caps."""
  items = list(items)
  random.Random(SPLIT_SEED).shuffle(items)
  cut = int(len(items) * 0.8)
  return items[:cut][:sizes.klue_train], items[cut:][:sizes.klue_eval]


def split_groups_80_20(rows: list, key: Callable, sizes: Sizes) -> tuple[list, list]:
  """split_80_20 over groups of rows with the same key (in first-seen order), flattened: no group on both sides."""
  groups: dict = {}
  for row in rows:
    groups.setdefault(key(row), []).append(row)
  train, evaluation = split_80_20(list(groups.values()), Sizes())
  flat = lambda part: [row for group in part for row in group]
  return flat(train)[:sizes.klue_train], flat(evaluation)[:sizes.klue_eval]


def build_klue_ner(source: Path, out: Path, sizes: Sizes) -> dict:
  """klue_ner_{train,eval}.tsv: whole KLUE blocks (id comment + CHAR<TAB>TAG lines), the header comments dropped."""
  from korpat_jax.demo.finetune.make_demo_sets import ner_sentences
  train, evaluation = split_80_20(ner_sentences(str(source)), sizes)
  for name, blocks in (("train", train), ("eval", evaluation)):
    write_text(out / f"klue_ner_{name}.tsv", "".join("\n".join(lines) + "\n\n" for lines in blocks))
  return {"klue_ner_train": len(train), "klue_ner_eval": len(evaluation)}


def build_klue_nli(source: Path, out: Path, sizes: Sizes) -> dict:
  """klue_nli_{train,eval}.tsv: sentence1 (premise), sentence2 (hypothesis), label (gold_label), split BY PREMISE.

  KLUE NLI dev pairs each premise with one hypothesis of each label, so a split by pair puts a premise's other
  hypotheses, with the other labels, in train (579 of 600 eval pairs): a model that learns the premise's words is
  then pushed to a wrong label (bag-of-words logistic regression: 0.25-0.28 eval accuracy by pair, 0.41 by premise)."""
  with open(source, encoding="utf-8") as f:
    examples = json.load(f)
  rows = [(ex["premise"], ex["hypothesis"], ex["gold_label"]) for ex in examples]
  train, evaluation = split_groups_80_20(rows, lambda row: row[0], sizes)
  for name, part in (("train", train), ("eval", evaluation)):
    write_tsv(out / f"klue_nli_{name}.tsv", ["sentence1", "sentence2", "label"], part)
  return {"klue_nli_train": len(train), "klue_nli_eval": len(evaluation)}


def count_rows(path: Path) -> int:
  """Data rows of a TSV with a header."""
  with open(path, encoding="utf-8") as f:
    return sum(1 for line in f if line.strip()) - 1


# set -> (source file in --data or None, builder, its train and eval file names)
SETS: dict[str, tuple[Optional[str], Optional[Callable], tuple[str, str]]] = {
    "nsmc": (NSMC, None, ("nsmc_train.tsv", "nsmc_eval.tsv")),  # built with the corpus
    "klue_ner": (KLUE_NER, build_klue_ner, ("klue_ner_train.tsv", "klue_ner_eval.tsv")),
    "klue_nli": (KLUE_NLI, build_klue_nli, ("klue_nli_train.tsv", "klue_nli_eval.tsv")),
    "cpc": (None, None, ("cpc_train.tsv", "cpc_eval.tsv")),
}


def build_data(shared: Path, out: Path, sets: list[str], sizes: Sizes, log: Callable[[str], None] = print
               ) -> dict[str, tuple[Path, Path]]:
  """Builds DIR/data once (DIR/data/manifest.json records what; another --nsmc-* or --smoke is refused) and returns
  {set: (train file, eval file)} of the sets that could be built. Stops when the pretraining corpus cannot be."""
  out.mkdir(parents=True, exist_ok=True)
  manifest_path = out / "manifest.json"
  settings = {"sizes": dataclasses.asdict(sizes), "shared": str(shared.resolve())}
  manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"counts": {}}
  if manifest.get("settings", settings)["sizes"] != settings["sizes"]:
    raise SystemExit(f"{out}: built with sizes {manifest['settings']['sizes']}, not {settings['sizes']}; "
                     f"use another --out")
  counts = manifest["counts"]
  if not all((out / f).exists() for f in ("nsmc_train.tsv", "nsmc_eval.tsv", "pretrain.txt")):
    if not (shared / NSMC).is_file():
      raise SystemExit(f"no pretraining corpus: {shared / NSMC} is absent (--data names the shared data folder)")
    log(f"data: splitting {shared / NSMC} by movie")
    counts.update(build_nsmc(shared / NSMC, out, sizes))
  found: dict[str, tuple[Path, Path]] = {}
  for name in sets:
    if name not in SETS:
      raise SystemExit(f"--sets: unknown set {name!r} (one of {', '.join(SETS)})")
    source, builder, (train, evaluation) = SETS[name]
    if not (out / evaluation).exists():  # written last
      if name == "cpc":
        for file in (train, evaluation):
          shutil.copyfile(CPC_DEMO / file, out / file)
        counts.update({f"cpc_{part}": count_rows(out / file)
                       for part, file in (("train", train), ("eval", evaluation))})
      elif not (shared / source).is_file():
        log(f"data: skipping {name}: {shared / source} is absent")
        continue
      else:
        log(f"data: splitting {shared / source}")
        counts.update(builder(shared / source, out, sizes))
    found[name] = (out / train, out / evaluation)
  manifest = {"settings": settings, "counts": counts}
  manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
  return found

