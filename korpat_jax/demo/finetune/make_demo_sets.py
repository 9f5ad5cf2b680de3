"""How the KLUE-derived fine-tuning demo sets in this folder were cut (pure stdlib; run from the repo root).

    python korpat_jax/demo/finetune/make_demo_sets.py \
        /work/shared/data/klue-ner-v1.1_dev.tsv /work/shared/data/klue-nli-v1.1_dev.json korpat_jax/demo/finetune

NER: sentences 0-999 -> ner_train.tsv, 1000-1299 -> ner_eval.tsv, unmodified KLUE blocks (the "## <id>\\t<marked
sentence>" line and the CHAR\\tTAG lines), a blank line after each sentence; the file's header comments dropped.
NLI: examples 0-1799 -> pair_train.tsv, 1800-2399 -> pair_eval.tsv as id, sentence1, sentence2, label
(guid, premise, hypothesis, gold_label); a tab or line break inside a field would become a space (none in v1.1 dev).
"""

import json
import os
import sys

NER_SPLITS = {"ner_train.tsv": (0, 1000), "ner_eval.tsv": (1000, 1300)}
PAIR_SPLITS = {"pair_train.tsv": (0, 1800), "pair_eval.tsv": (1800, 2400)}


def ner_sentences(path):
  """KLUE NER blocks (list of lines), each starting with its "## <id>\\t..." comment line."""
  with open(path, encoding="utf-8", newline="\n") as f:
    blocks = f.read().split("\n\n")
  out = []
  for block in blocks:
    lines = [line for line in block.split("\n") if line]
    while lines and lines[0].startswith("## ") and (len(lines) < 2 or lines[1].startswith("## ")):
      lines.pop(0)   # the header comments before the first sentence's own comment line
    if lines:
      if not lines[0].startswith("## klue-ner"):
        raise ValueError(f"{path}: a sentence without its id comment: {lines[0]!r}")
      out.append(lines)
  return out


def clean(field):
  return str(field).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def main(ner_path, nli_path, out_dir):
  os.makedirs(out_dir, exist_ok=True)
  sentences = ner_sentences(ner_path)
  for name, (start, stop) in NER_SPLITS.items():
    with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n") as f:
      for lines in sentences[start:stop]:
        f.write("\n".join(lines) + "\n\n")
  with open(nli_path, encoding="utf-8") as f:
    examples = json.load(f)
  changed = 0
  for name, (start, stop) in PAIR_SPLITS.items():
    with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n") as f:
      f.write("id\tsentence1\tsentence2\tlabel\n")
      for ex in examples[start:stop]:
        row = [ex["guid"], ex["premise"], ex["hypothesis"], ex["gold_label"]]
        fixed = [clean(x) for x in row]
        changed += fixed != [str(x) for x in row]
        f.write("\t".join(fixed) + "\n")
  print(f"NER: {len(sentences)} sentences read; NLI: {len(examples)} examples read, {changed} rows had a tab or "
        f"line break replaced")


if __name__ == "__main__":
  if len(sys.argv) != 4:
    sys.exit(f"usage: {sys.argv[0]} KLUE_NER_DEV_TSV KLUE_NLI_DEV_JSON OUT_DIR")
  main(*sys.argv[1:])
