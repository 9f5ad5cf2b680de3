"""MWP tokenizer speed on one core vs bare Mecab-ko and the seed recipe; batch_encode on N cores; [UNK] rate.

  python -m benchmarks.speed.tokenizer_speed [--tokenizer DIR] [--runs 5] [--workers 2]
      [--only patent|patent_hard|standard]

Long patent sentences (issue 11, `--only patent` for this table alone): 2,000 generated claims and abstracts
(benchmarks/speed/patent_sentences.py, 150-250 characters), tokenized by the demo tokenizer and by one with a patent
user dictionary of the generator's 20,000 compound nouns (its vocabulary trained on the demo corpus plus the
warm-up text). Before each timed round the piece cache is set back to its state after a warm-up on 3,000 OTHER
generated sentences, so every round meets the same unseen morphemes a long run would; "empty cache" rounds start
from nothing cached (the worst case: the first texts of a run).

Text: KorQuAD 1.0 dev contexts whole (abstract-length) and cut into sentences, and the held-out KLUE NER dev
sentences 4500-4999 (both from ../shared/data), plus the bundled patent-style sentences. Tokenizer: DIR, or
the 8k demo tokenizer trained on the bundled corpus (built when absent). One-core figures use process CPU time
(the machine may be shared) in interleaved rounds; batch_encode is timed on the wall clock and, for a machine
shared with other jobs, projected from the CPU time of the parent and of the workers (`projected_rate`: the
parent and the workers share as many cores as there are workers). Prints Markdown tables.

`--only patent_hard` (issue 21): the same table on sentences as hard for the caches as patent abstracts
(`patent_sentences(..., realism="abstract")`: 40-250 characters, a far larger lexicon; benchmarks/speed/patent_stats.py
compares them with the references), 2,000 measured after a warm-up on 500 OTHER sentences of that mode (as the
real-abstract measurement of issue 21: 1,795 sentences after 500), same tokenizers, same method.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import time
from pathlib import Path

from korpat_jax.tokenizer import MWPTokenizer, build_user_dictionary, demo_corpus_files, train_tokenizer
from korpat_jax.tokenizer.morphemes import make_tagger
from korpat_jax.tokenizer.sources import iter_lines

from benchmarks.common import REPO
from benchmarks.speed.patent_sentences import patent_sentences, user_dictionary_csv, warmup_sentences

DATA = REPO / ".." / "shared" / "data"


def korquad_sentences(limit: int = 3000) -> list[str]:
  data = json.loads((DATA / "KorQuAD_v1.0_dev.json").read_text(encoding="utf-8"))
  out = []
  for article in data["data"]:
    for para in article["paragraphs"]:
      out += [s.strip() for s in re.split(r"(?<=[.?!])\s+", para["context"]) if s.strip()]
  return out[:limit]


def korquad_paragraphs(limit: int = 500) -> list[str]:
  """Whole KorQuAD contexts: abstract-length texts (several hundred characters)."""
  data = json.loads((DATA / "KorQuAD_v1.0_dev.json").read_text(encoding="utf-8"))
  return [para["context"] for article in data["data"] for para in article["paragraphs"]][:limit]


def klue_heldout() -> list[str]:
  out = []
  for line in (DATA / "klue-ner-v1.1_dev.tsv").read_text(encoding="utf-8").splitlines():
    if line.startswith("## klue-ner"):
      out.append(re.sub(r"<([^<>:]+):[A-Z]{2}>", r"\1", line.split("\t", 1)[1]).strip())
  return out[4500:]


def seed_recipe(vocab_path: str, user_dic: str | None = None):
  """Mecab morphs (as konlpy's Mecab.morphs) + Google BERT's pure-Python WordPiece, do_lower_case=False."""
  from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
  bert = BertTokenizerLegacy(vocab_path, do_lower_case=False)
  tagger = make_tagger(user_dic)

  def encode(text: str) -> list[int]:
    morphs = [line.split("\t", 1)[0] for line in tagger.parse(text).split("\n")[:-2]]
    return bert.convert_tokens_to_ids(bert.tokenize(" ".join(morphs)))
  return encode


def cpu_rates(fns: dict, texts, runs, before: dict | None = None) -> dict[str, float]:
  """Median sentences per CPU second of this process for each fn, measured in interleaved rounds (a shared
  machine drifts; interleaving keeps the ratios fair). Also '<a>/<b>' medians of per-round ratios.
  `before[name]()`, where given, runs untimed before fn `name` in each round."""
  rounds: dict[str, list[float]] = {name: [] for name in fns}
  for _ in range(runs):
    for name, fn in fns.items():
      if before and name in before:
        before[name]()
      start = time.process_time()
      for text in texts:
        fn(text)
      rounds[name].append(len(texts) / (time.process_time() - start))
  out = {name: statistics.median(r) for name, r in rounds.items()}
  names = list(fns)
  for a in names:
    for b in names:
      if a != b:
        out[f"{a}/{b}"] = statistics.median(x / y for x, y in zip(rounds[a], rounds[b]))
  return out


def wall_rate(fn, texts, runs) -> float:
  rates = []
  for _ in range(runs):
    start = time.perf_counter()
    fn(texts)
    rates.append(len(texts) / (time.perf_counter() - start))
  return statistics.median(rates)


def _proc_cpu(pid: int) -> float:
  fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_cpu(tok: MWPTokenizer, texts: list[str], workers: int) -> tuple[float, float]:
  """CPU seconds per sentence of batch_encode: (this process, all workers together)."""
  pool = tok._get_pool(workers)
  pids = pool.pids if hasattr(pool, "pids") else [p.pid for p in pool._pool]   # before issue 11: multiprocessing
  before = [_proc_cpu(p) for p in pids]
  start = time.process_time()
  tok.batch_encode(texts, num_workers=workers)
  parent = time.process_time() - start
  children = sum(_proc_cpu(p) for p in pids) - sum(before)
  return parent / len(texts), children / len(texts)


def batch_figures(tok: MWPTokenizer, texts: list[str], workers: int, runs: int) -> dict[str, float]:
  """batch_encode on `workers` processes vs encode in one, on ~400k characters: wall rates; CPU per sentence of
  the parent and of the workers; and the speed-up projected on `workers` idle cores from that CPU time, as the
  median over rounds that each time single-process encode (CPU) right next to batch_encode."""
  big = texts * max(1, 400_000 // sum(map(len, texts)))
  tok.batch_encode(big[:200], num_workers=workers)   # start the pool
  one = wall_rate(lambda ts: [tok.encode(t).ids for t in ts], big, max(1, runs // 2))
  many = wall_rate(lambda ts: tok.batch_encode(ts, num_workers=workers), big, max(1, runs // 2))
  parents, children, speedups = [], [], []
  for _ in range(max(3, runs)):
    start = time.process_time()
    for text in big:
      tok.encode(text).ids
    single = (time.process_time() - start) / len(big)
    parent, child = batch_cpu(tok, big, workers)
    parents.append(parent)
    children.append(child)
    speedups.append(projected_rate(parent, child, workers) * single)
  return {"one": one, "many": many, "parent_ms": statistics.median(parents) * 1e3,
          "workers_ms": statistics.median(children) * 1e3,
          "projected": projected_rate(statistics.median(parents), statistics.median(children), workers),
          "speedup": statistics.median(speedups)}


def projected_rate(parent: float, children: float, workers: int, cores: int | None = None) -> float:
  """Sentences/s on `cores` idle cores (default: as many as workers) from CPU seconds per sentence: the parent
  and the workers each need their share, and together they share the cores."""
  cores = cores or workers
  return 1 / max(parent, children / workers, (parent + children) / cores)


def cache_state(tok: MWPTokenizer) -> tuple[dict, dict]:
  """The piece caches after a warm-up. Tokenizers before issue 11 had one cache, `_cache`: handled too, so the
  table can be run against an older commit (PYTHONPATH=<its tree>) for before/after figures."""
  wp = tok.wordpiece
  if hasattr(wp, "cache_state"):
    return wp.cache_state()
  return dict(wp._cache), {}


def restore_cache(tok: MWPTokenizer, state: tuple[dict, dict]) -> None:
  wp = tok.wordpiece
  if hasattr(wp, "restore_cache"):
    wp.restore_cache(state)
  else:
    wp._cache = dict(state[0])


def patent_tokenizers(work: Path, warmup: list[str]) -> dict[str, str]:
  """The demo tokenizer and one with a patent user dictionary of the generator's compounds (built when absent)."""
  demo, patent = work / "demo", work / "patent_userdic"
  if not (demo / "vocab.txt").is_file():
    train_tokenizer(demo_corpus_files(), str(demo), vocab_size=8000, show_progress=False, log=lambda m: None)
  if not (patent / "vocab.txt").is_file():
    work.mkdir(parents=True, exist_ok=True)
    csv = user_dictionary_csv(str(work / "patent_compounds.csv"))
    build_user_dictionary(None, str(work / "userdic"), [csv], log=lambda m: None, quiet_compile=True)
    warm_file = work / "warmup.txt"
    warm_file.write_text("\n".join(warmup) + "\n", encoding="utf-8")
    train_tokenizer(demo_corpus_files() + [str(warm_file)], str(patent), vocab_size=8000,
                    user_dic_dir=str(work / "userdic"), show_progress=False, log=lambda m: None)
  return {"demo tokenizer (no user dictionary)": str(demo), "patent user dictionary (20k compounds)": str(patent)}


def _cpu_us(fn, items, runs: int) -> float:
  """Median CPU microseconds per item of `fn` over `items`."""
  times = []
  for _ in range(runs):
    start = time.process_time()
    for item in items:
      fn(item)
    times.append(time.process_time() - start)
  return statistics.median(times) / len(items) * 1e6


def ids_of(wp):
  """`BertWordPiece.ids`, or what it replaced (pieces, then their ids) in a tokenizer before issue 11."""
  if hasattr(wp, "ids"):
    return wp.ids
  return lambda morphs: [i for p in wp.pieces(morphs) for i in p.ids]


def _first_access_us(tok: MWPTokenizer, texts: list[str], attr: str, runs: int, collector: bool = True) -> float:
  """Median CPU microseconds per sentence of reading `attr` of fresh encodings (encoded untimed), the encodings
  kept as a caller keeps them; `collector=False` pauses Python's cyclic garbage collector meanwhile."""
  times = []
  for _ in range(runs):
    encodings = [tok.encode(t) for t in texts]
    if not collector:
      gc.disable()
    start = time.process_time()
    for enc in encodings:
      getattr(enc, attr)
    times.append(time.process_time() - start)
    gc.enable()
  return statistics.median(times) / len(texts) * 1e6


def stage_costs(tok: MWPTokenizer, texts: list[str], warm: tuple[dict, dict], runs: int) -> dict[str, float]:
  """Where encode's time goes, CPU µs per sentence by stage (and per unseen morpheme for the miss path)."""
  from korpat_jax.tokenizer.morphemes import sanitize
  restore_cache(tok, warm)
  wp = tok.wordpiece
  joined = [tok.segment(t) for t in texts]
  morphs = [j.split(" ") for j in joined]
  unseen = sorted({m for ms in morphs for m in ms if m not in warm[0]})
  plain = [m for m in unseen if re.fullmatch("[가-힣A-Za-z0-9]{1,100}", m)]
  fresh = MWPTokenizer(tok.vocab, tok.user_dic).wordpiece   # nothing cached: every call below is a miss
  for text in texts:   # everything cached for the per-stage figures
    tok.encode(text).offsets
  out = {"Mecab-ko parse (surfaces only)": _cpu_us(tok.segment, texts, runs),
         "sanitize": _cpu_us(sanitize, texts, runs),
         "split into morphemes": _cpu_us(lambda j: j.split(" "), joined, runs),
         "ids of cached morphemes": _cpu_us(ids_of(wp), morphs, runs),
         "tokens (first access)": _first_access_us(tok, texts, "tokens", runs),
         "offsets (first access)": _first_access_us(tok, texts, "offsets", runs),
         "offsets (first access), garbage collector paused": _first_access_us(tok, texts, "offsets", runs, False)}
  if plain and hasattr(fresh, "greedy_ids"):
    out["unseen plain morpheme: greedy WordPiece (per morpheme)"] = _cpu_us(fresh.greedy_ids, plain, runs)
  if plain:
    out["unseen plain morpheme: Rust encode + Pieces (per morpheme)"] = _cpu_us(fresh.pieces_of, plain, 1)
  out["unseen morphemes per sentence"] = len([m for ms in morphs for m in ms if m not in warm[0]]) / len(texts)
  out["plain share of unseen morphemes"] = len(plain) / max(1, len(unseen))
  return out


def patent_table(work: Path, runs: int, workers: int, realism: str = "default") -> None:
  """The long patent sentences (issue 11): encode after a warm-up on other text, vs bare Mecab-ko and the seed.
  realism="abstract": the hard set (issue 21), after a warm-up on 500 other sentences of that mode."""
  default_texts = patent_sentences(2000)
  default_warmup = warmup_sentences(3000, default_texts)   # also the user-dictionary tokenizer's training text
  if realism == "default":
    texts, warmup = default_texts, default_warmup
  else:
    texts = patent_sentences(2000, realism=realism)
    warmup = warmup_sentences(500, texts, realism=realism)
  chars = sum(map(len, texts)) / len(texts)
  print(f"Patent sentences ({realism}): {len(texts)} measured ({chars:.0f} chars on average), {len(warmup)} other "
        f"sentences for the warm-up; runs: {runs}, median\n")
  print("| tokenizer | morphemes/sentence | unseen after warm-up | bare Mecab-ko (sent/s) | "
        "MWPTokenizer.encode (sent/s) | encode / Mecab (>= 80%) | seed recipe (sent/s) | encode / seed (>= 2.4x) | "
        f"encode, empty cache: / Mecab, / seed | encode + offsets (sent/s) | batch_encode {workers} procs vs 1 "
        f"(wall) | batch_encode CPU ms/sent: parent, workers | batch_encode projected on {workers} idle cores "
        f"(>= 1.8x) | ids identical |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
  stages = {}
  for name, directory in patent_tokenizers(work, default_warmup).items():
    tok = MWPTokenizer.load(directory)
    for text in warmup:
      tok.encode(text).offsets
    warm = cache_state(tok)
    morphs = [m for t in texts for m in tok.segment(t).split(" ")]
    unseen = sum(m not in warm[0] for m in morphs) / len(morphs)
    seed = seed_recipe(str(Path(directory) / "vocab.txt"), tok.user_dic)
    identical = [tok.encode(t).ids for t in texts] == [[tok.cls_id, *seed(t), tok.sep_id] for t in texts]
    bare = make_tagger(tok.user_dic)
    def encode_ids(text: str, tok=tok) -> list[int]:
      return tok.encode(text).ids
    rates = cpu_rates({"bare": bare.parse, "ours": encode_ids, "offsets": lambda t: tok.encode(t).offsets,
                       "seed": seed, "empty": encode_ids}, texts, runs,
                      before={"ours": lambda: restore_cache(tok, warm), "offsets": lambda: restore_cache(tok, warm),
                              "empty": lambda: restore_cache(tok, ({}, {}))})
    restore_cache(tok, warm)
    b = batch_figures(tok, texts, workers, runs)
    print(f"| {name} | {len(morphs) / len(texts):.0f} | {unseen:.1%} of morphemes | {rates['bare']:,.0f} | "
          f"{rates['ours']:,.0f} | {rates['ours/bare']:.0%} | {rates['seed']:,.0f} | {rates['ours/seed']:.1f}x | "
          f"{rates['empty/bare']:.0%}, {rates['empty/seed']:.1f}x | {rates['offsets']:,.0f} | "
          f"{b['many']:,.0f} vs {b['one']:,.0f} sent/s = {b['many'] / b['one']:.2f}x | "
          f"{b['parent_ms']:.3f}, {b['workers_ms']:.3f} | {b['projected']:,.0f} sent/s = "
          f"{b['speedup']:.2f}x encode | {identical} |")
    stages[name] = stage_costs(tok, texts, warm, runs)
    tok.close()
  print("\n| stage (CPU µs per sentence unless said) | " + " | ".join(stages) + " |")
  print("|---|" + "---|" * len(stages))
  for stage in next(iter(stages.values())):
    print(f"| {stage} | " + " | ".join(f"{costs.get(stage, float('nan')):.2f}" for costs in stages.values()) + " |")
  print()


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--tokenizer", default="/tmp/korpat_demo_tokenizer")
  parser.add_argument("--runs", type=int, default=5)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--only", choices=("patent", "patent_hard", "standard"))
  args = parser.parse_args()
  work = Path(args.tokenizer).parent / "korpat_patent_bench"
  if args.only in (None, "patent"):
    patent_table(work, args.runs, args.workers)
  if args.only in (None, "patent_hard"):
    patent_table(work, args.runs, args.workers, realism="abstract")
  if args.only in ("patent", "patent_hard"):
    return
  if not (Path(args.tokenizer) / "vocab.txt").is_file():
    train_tokenizer(demo_corpus_files(), args.tokenizer, vocab_size=8000, show_progress=False)
  tok = MWPTokenizer.load(args.tokenizer)
  patent = [line for line in iter_lines([f for f in demo_corpus_files() if f.endswith("patent_style.txt")])]
  sets = {"KorQuAD dev paragraphs (abstract-length)": korquad_paragraphs(),
          "KorQuAD dev sentences": korquad_sentences(), "KLUE NER held-out": klue_heldout(),
          "patent-style (bundled)": patent * 20}
  seed = seed_recipe(str(Path(args.tokenizer) / "vocab.txt"))
  bare = make_tagger()

  print(f"tokenizer: {args.tokenizer} (vocab {tok.vocab_size}), runs: {args.runs}, median\n")
  print("| text | sentences | chars/sentence | bare Mecab-ko (sent/s) | MWPTokenizer.encode (sent/s) | "
        "encode / Mecab | seed recipe (sent/s) | encode / seed | encode + offsets (sent/s) | "
        f"batch_encode {args.workers} procs vs 1 (wall) | batch_encode CPU ms/sent: parent, workers | "
        f"batch_encode projected on {args.workers} idle cores | ids identical | [UNK] rate |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
  for name, texts in sets.items():
    for text in texts:   # warm the piece cache like a long run would
      tok.encode(text)
    ours = [tok.encode(t).ids for t in texts]
    identical = ours == [[tok.cls_id, *seed(t), tok.sep_id] for t in texts]
    rates = cpu_rates({"bare": bare.parse, "ours": lambda t: tok.encode(t).ids,
                       "offsets": lambda t: tok.encode(t).offsets, "seed": seed}, texts, args.runs)
    r_bare, r_ours, r_off, r_seed = rates["bare"], rates["ours"], rates["offsets"], rates["seed"]
    chars = sum(map(len, texts)) / len(texts)
    b = batch_figures(tok, texts, args.workers, args.runs)
    r_one, r_many, projected, speedup = b["one"], b["many"], b["projected"], b["speedup"]
    parent_cpu, worker_cpu = b["parent_ms"] / 1e3, b["workers_ms"] / 1e3
    unk = sum(ids.count(tok.unk_id) for ids in ours) / max(1, sum(len(ids) - 2 for ids in ours))
    print(f"| {name} | {len(texts)} | {chars:.0f} | {r_bare:,.0f} ({r_bare * chars:,.0f} chars/s) | "
          f"{r_ours:,.0f} ({r_ours * chars:,.0f} chars/s) | {rates['ours/bare']:.0%} | {r_seed:,.0f} | "
          f"{rates['ours/seed']:.1f}x | {r_off:,.0f} | {r_many:,.0f} vs {r_one:,.0f} sent/s = {r_many / r_one:.2f}x | "
          f"{parent_cpu * 1e3:.3f}, {worker_cpu * 1e3:.3f} | {projected:,.0f} sent/s = {speedup:.2f}x "
          f"encode | {identical} | {unk:.3%} |")
  tok.close()
  alphabet_study(sets, Path(args.tokenizer).parent / "korpat_alphabet_study")


def alphabet_study(sets: dict[str, list[str]], work: Path) -> None:
  """[UNK] rate on held-out text for the trainer's default limit_alphabet (1000) vs ours."""
  print("\n| limit_alphabet | single-char tokens | " + " | ".join(f"[UNK] {name}" for name in sets) + " |")
  print("|---|---|" + "---|" * len(sets))
  for limit in (1000, 10_000):
    tok = train_tokenizer(demo_corpus_files(), str(work / str(limit)), vocab_size=8000, limit_alphabet=limit,
                          show_progress=False, log=lambda m: None)
    rates = []
    for texts in sets.values():
      ids = [i for t in texts for i in tok.encode(t, add_special_tokens=False).ids]
      rates.append(ids.count(tok.unk_id) / len(ids))
    singles = tok.config["training"]["alphabet_size"]
    print(f"| {limit} | {singles} | " + " | ".join(f"{r:.3%}" for r in rates) + " |")


if __name__ == "__main__":
  main()
