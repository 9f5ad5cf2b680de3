"""Domain adaptation end to end: a general Korean model -> HF -> `import-hf` (with or without a vocabulary extended on
patent-like text) -> continued pretraining on that text -> CPC fine-tuning, against the same without the extension
and without the continued pretraining.

    python -m benchmarks.transfer.domain_adaptation --general runs/transfer/pretrain/korpat_60m \\
        --out runs/domain                                                # 4 arms x 3 seeds
    python -m benchmarks.transfer.domain_adaptation --general RUN --out /tmp/da_smoke --smoke

The general model is a korpat-jax pretraining run (e.g. the transfer benchmark's 60-minute run on movie reviews)
with its own tokenizer (model.json's tokenizer_dir, or --tok). The domain corpus: `--documents` generated patent-like documents (benchmarks/speed/patent_sentences,
`--sentences-per-document` sentences each) plus the TRAINING documents of the demo CPC set (title + abstract, never
its evaluation documents): unlabelled in-domain text, as in task-adaptive pretraining (Gururangan et al. 2020).

Arms (each fine-tuned on the demo CPC set with configs/finetune.py:cpc_cpu, seeds --seeds):
  general           the exported general model imported as it is
  general+ext       imported with the extended vocabulary (`--add` tokens; new rows = the mean of their pieces)
  continued         imported as it is, then `--steps` of configs/pretrain.py:cpu on the domain corpus (its
                    embeddings kept: word_vectors.source=none)
  continued+ext     imported with the extended vocabulary, then the same continued pretraining
Every step is a korpat-jax command in its own directory under --out (a rerun skips what is done). Writes
results.json and domain_adaptation.md there.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Optional, Sequence

from benchmarks.common import machine
from benchmarks.speed.patent_sentences import patent_sentences

from . import pretrain
from .pretrain import DONE, is_done
from .worker import REPO, Job, run_jobs, write_json

CPC_DIR = REPO / "korpat_jax" / "demo" / "finetune"
FINETUNE_CONFIG = REPO / "configs" / "finetune.py"
ARMS = ("general", "general+ext", "continued", "continued+ext")
SMOKE = dict(documents=40, add=50, steps=3, seeds="0")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m benchmarks.transfer.domain_adaptation",
                              description=__doc__.split("\n\n")[0])
  p.add_argument("--general", required=True, help="the general model: a korpat-jax pretraining run directory")
  p.add_argument("--tok", default="", help="the general model's tokenizer (default: its model.json tokenizer_dir)")
  p.add_argument("--out", required=True, help="benchmark directory (a rerun resumes)")
  p.add_argument("--documents", type=int, default=None, help="generated patent-like documents (default 4000)")
  p.add_argument("--sentences-per-document", type=int, default=5)
  p.add_argument("--add", type=int, default=None, help="tokens `tokenizer extend` adds (default 2000)")
  p.add_argument("--steps", type=int, default=None,
                 help="continued-pretraining steps (default 1159: 5 minutes of the cpu recipe's step)")
  p.add_argument("--seeds", default=None, help="CPC fine-tuning seeds (default 0,1,2)")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="continued-pretraining config override (repeatable), e.g. optimizer.learning_rate=2e-4; the "
                      "continued runs and their fine-tunings then live under continued_rHASH/ and finetune_rHASH/")
  p.add_argument("--smoke", action="store_true", help="tiny end to end: 40 documents, +50 tokens, 3 steps, 1 seed, "
                                                       "cpc_tiny for 1 epoch")
  args = p.parse_args(argv)
  defaults = SMOKE if args.smoke else dict(documents=4000, add=2000, steps=1159, seeds="0,1,2")
  for key, value in defaults.items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  return args


def cpc_rows(name: str) -> list[dict]:
  lines = (CPC_DIR / name).read_text(encoding="utf-8").splitlines()
  header = lines[0].split("\t")
  return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line.strip()]


def write_corpus(path: Path, documents: int, per_document: int) -> dict:
  """The domain corpus as JSONL (title, abstract): generated documents + the CPC training documents, shuffled."""
  sentences = patent_sentences(documents * per_document, seed=23)
  docs = [{"title": "", "abstract": " ".join(sentences[i:i + per_document])}
          for i in range(0, len(sentences), per_document)]
  train = [{"title": r["title"], "abstract": r["abstract"]} for r in cpc_rows("cpc_train.tsv")]
  held_out = {r["abstract"] for r in cpc_rows("cpc_eval.tsv")}
  if any(d["abstract"] in held_out for d in docs + train):
    raise SystemExit("domain corpus: holds a CPC evaluation document")
  docs += train
  random.Random(0).shuffle(docs)
  path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
  return {"generated": len(docs) - len(train), "cpc_train": len(train),
          "characters": sum(len(d["title"]) + len(d["abstract"]) for d in docs)}


def tokens_per_document(tok_dir: Path, rows: list[dict]) -> dict:
  from korpat_jax.tokenizer import MWPTokenizer
  tok = MWPTokenizer.load(str(tok_dir))
  ids = [tok.encode(f"{r['title']} {r['abstract']}", add_special_tokens=False).ids for r in rows]
  tokens = sum(map(len, ids))
  return {"vocab": tok.vocab_size, "tokens_per_document": tokens / len(ids),
          "unk_share": sum(x.count(tok.unk_id) for x in ids) / tokens,
          "truncated_at_128": sum(len(x) > 126 for x in ids) / len(ids)}


class DomainAdaptation:

  def __init__(self, args: argparse.Namespace):
    self.args, self.out = args, Path(args.out).resolve()
    self.general = Path(args.general).resolve()
    if not (self.general / "model.json").is_file():
      raise SystemExit(f"--general: {self.general / 'model.json'} not found (a korpat-jax pretraining run directory)")
    tok = args.tok or json.loads((self.general / "model.json").read_text(encoding="utf-8")).get("tokenizer_dir", "")
    self.tok = Path(tok).resolve()
    if not tok or not (self.tok / "vocab.txt").is_file():
      raise SystemExit(f"--tok: no vocab.txt in {tok or '(model.json names no tokenizer_dir)'}; pass the general "
                       f"model's tokenizer directory")
    self.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    self.recipe = pretrain.load_recipe(pretrain.parse_overrides(args.set, "--set", pretrain.FROZEN_KEYS))
    self.failed: list[str] = []

  def tok_of(self, arm: str) -> Path:
    return self.out / "tok_ext" if arm.endswith("+ext") else self.tok

  def imported(self, arm: str) -> Path:
    return self.out / "imported" / ("ext" if arm.endswith("+ext") else "base")

  def init_of(self, arm: str) -> Path:
    return self.out / f"continued{self.recipe.suffix}" / arm if arm.startswith("continued") else self.imported(arm)

  def records_of(self, arm: str) -> Path:
    return self.out / ("records_ext" if arm.endswith("+ext") else "records")

  def batch(self, what: str, jobs: list[Optional[Job]]) -> None:
    jobs = [j for j in jobs if j is not None and not (j.done and Path(j.done).exists())]
    if not jobs:
      return
    print(f"{what}: {len(jobs)} run(s)", flush=True)
    for name, result in run_jobs(jobs, self.out / "logs", str(self.out / "jax_cache")).items():
      if result["rc"] != 0:
        self.failed.append(f"{name} (see {result['log']})")
    if self.failed:
      raise SystemExit(f"{len(self.failed)} run(s) failed: {'; '.join(self.failed)}")

  def run(self) -> int:
    t0 = time.perf_counter()
    a, out = self.args, self.out
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "domain.jsonl"
    if not corpus.exists():
      write_json(out / "corpus.json", write_corpus(corpus, a.documents, a.sentences_per_document))
    hf = out / "hf"
    self.batch("export", [Job("export", ["export", "--workdir", str(self.general), "--out", str(hf), "--part", "both",
                                         "--overwrite"], str(out / "logs" / "export.log"), str(hf / DONE))])
    ext = out / "tok_ext"
    self.batch("extend", [Job("extend", ["tokenizer", "extend", "--tokenizer", str(self.tok), "--corpus", str(corpus),
                                         "--add", str(a.add), "--out", str(ext)],
                              str(out / "logs" / "extend.log"), str(ext / DONE))])
    config = self.recipe.config(self.records_of("continued"), a.steps)
    jobs = []
    for arm in ("general", "general+ext"):
      run = self.imported(arm)
      if run.exists() and not is_done(run):
        shutil.rmtree(run)
      jobs.append(Job(f"import-hf {run.name}", ["import-hf", "--model", str(hf / "discriminator"), "--generator",
                                                str(hf / "generator"), "--out", str(run),
                                                *(["--tokenizer", str(ext)] if arm.endswith("+ext") else [])],
                      str(out / "logs" / f"import_{run.name}.log"), str(run / DONE)))
    for arm in ("continued", "continued+ext"):
      records = self.records_of(arm)
      jobs.append(Job(f"prepare {records.name}", ["prepare", "--corpus", str(corpus), "--tokenizer", str(self.tok_of(arm)),
                                                  "--out", str(records), "--seq-len", str(config.train.seq_len)],
                      str(out / "logs" / f"prepare_{records.name}.log"), str(records / DONE)))
    self.batch("import-hf and records", jobs)
    jobs = []
    for arm in ("continued", "continued+ext"):
      w = self.init_of(arm)
      extra = [("init_from", str(self.imported(arm))), ("model.vocab_size", "-1"), ("word_vectors.source", "none")]
      if a.smoke:
        extra.append(("train.eval_every", "0"))
      jobs.append(Job(f"pretrain {arm} ({a.steps} steps)",
                      self.recipe.korpat_argv(self.records_of(arm), w, a.steps, *extra),
                      str(w / "pretrain.log"), str(w / DONE)))
    self.batch("continued pretraining", jobs)
    self.batch("CPC fine-tuning", [self.finetune_job(arm, seed) for arm in ARMS for seed in self.seeds])
    return self.report(t0)

  def finetune_dir(self, arm: str, seed: int) -> Path:
    suffix = self.recipe.suffix if arm.startswith("continued") else ""
    return self.out / f"finetune{suffix}" / arm / f"seed{seed}"

  def finetune_job(self, arm: str, seed: int) -> Job:
    w = self.finetune_dir(arm, seed)
    variant = finetune_variant(self.args.smoke)
    pairs = [("init_from", self.init_of(arm)), ("seed", seed), ("data.train", CPC_DIR / "cpc_train.tsv"),
             ("data.eval", CPC_DIR / "cpc_eval.tsv"), ("data.tokenizer_dir", self.tok_of(arm)),
             ("data.text_fields", "title,abstract"), *((("train.num_epochs", 1),) if self.args.smoke else ())]
    return Job(f"finetune {arm}/seed{seed}", ["finetune", "--config", f"{FINETUNE_CONFIG}:{variant}", "--workdir",
                                              str(w), *(f"--config.{k}={v}" for k, v in pairs)],
               str(w / "finetune.log"), str(w / DONE))

  def report(self, t0: float) -> int:
    from .finetune import read_score
    evaluation = cpc_rows("cpc_eval.tsv")
    corpus = json.loads((self.out / "corpus.json").read_text(encoding="utf-8"))
    rows = []
    for arm in ARMS:
      row = {"arm": arm, **tokens_per_document(self.tok_of(arm), evaluation)}
      if arm.startswith("continued"):
        config = self.recipe.config(self.records_of(arm), self.args.steps)
        summary = pretrain.korpat_summary(self.init_of(arm), config)
        row.update(steps=summary["final_step"], gen_loss=summary["gen_loss"], disc_loss=summary["disc_loss"],
                   disc_precision=summary["disc_precision"], disc_recall=summary["disc_recall"])
      scores = [s["score"] for s in (read_score(self.finetune_dir(arm, seed)) for seed in self.seeds) if s]
      row.update(cpc_accuracy=scores, cpc_mean=statistics.fmean(scores) if scores else None)
      rows.append(row)
    results = {"machine": machine(), "general": str(self.general), "corpus": corpus,
               "settings": {**{k: getattr(self.args, k) for k in ("documents", "sentences_per_document", "add",
                                                                  "steps", "seeds", "smoke")},
                            "continued_overrides": [f"{k}={v}" for k, v in self.recipe.overrides]}, "arms": rows}
    suffix = self.recipe.suffix
    write_json(self.out / f"results{suffix}.json", results)
    text = markdown(results)
    (self.out / f"domain_adaptation{suffix}.md").write_text(text, encoding="utf-8")
    print("\n" + text + f"\n{self.out / f'domain_adaptation{suffix}.md'}; {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


def finetune_variant(smoke: bool) -> str:
  return "cpc_tiny" if smoke else "cpc_cpu"


def _fmt(x, spec: str) -> str:
  return "–" if x is None else format(x, spec)


def markdown(results: dict) -> str:
  s, c = results["settings"], results["corpus"]
  lines = [f"Domain adaptation ({results['machine']}): general model {results['general']}; domain corpus "
           f"{c['generated']:,} generated patent-like documents + the {c['cpc_train']} CPC training documents "
           f"({c['characters']:,} characters); extension +{s['add']:,} tokens; continued pretraining {s['steps']:,} "
           f"steps of configs/pretrain.py:cpu{' ' + ' '.join(s.get('continued_overrides', [])) if s.get('continued_overrides') else ''}; CPC: configs/finetune.py:{finetune_variant(s['smoke'])} on the demo set, seeds {s['seeds']}.",
           "", "| arm | vocab | CPC eval tokens/doc | [UNK] | docs over 126 tokens | gen loss | disc loss | disc P | "
               "disc R | CPC accuracy mean [min, max] |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for r in results["arms"]:
    acc = r["cpc_accuracy"]
    score = f"{r['cpc_mean']:.3f} [{min(acc):.3f}, {max(acc):.3f}]" if acc else "–"
    lines.append(f"| {r['arm']} | {r['vocab']:,} | {r['tokens_per_document']:.1f} | {r['unk_share']:.2%} | "
                 f"{r['truncated_at_128']:.0%} | {_fmt(r.get('gen_loss'), '.3f')} | {_fmt(r.get('disc_loss'), '.4f')} | "
                 f"{_fmt(r.get('disc_precision'), '.3f')} | {_fmt(r.get('disc_recall'), '.3f')} | {score} |")
  return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
  return DomainAdaptation(parse_args(argv)).run()


if __name__ == "__main__":
  raise SystemExit(main())
