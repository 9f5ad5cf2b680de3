"""Speed and memory of korpat-jax's train steps on one GPU: ELECTRA-Base pretraining and fine-tuning at seq 512.

    bash benchmarks/gpu.sh                                        # one H200, < 8 minutes; tables and traces in $OUT
    python benchmarks/gpu_bench.py --out gpu_out                  # the same, without the wheel install
    python benchmarks/gpu_bench.py --cpu-smoke --out /tmp/smoke   # tiny sizes on CPU, 1-2 steps a case (the test)

Pretraining rows (configs/pretrain.py:base: L12/H768, generator 1/3, vocab 35,000, seq 512, bf16, the synthetic
stream already on device, PretrainingTask + train.compile_steps as the trainer runs them):
  cuDNN fused attention (model.attention_impl=cudnn, attention dropout 0) at batch 32 / 64 / 128 per device;
  XLA attention (attention_impl=xla, dropout 0) and the explicit softmax + dropout path (attention dropout 0.1,
  ELECTRA's recipe) at 64; remat on at 64; the generator's vocab projection on all 512 positions, gathered at the
  masked ones afterwards (a switch of this benchmark only: the model projects the masked positions) at 64.
Fine-tuning rows (configs/finetune.py ner / cpc / qa without init_from, i.e. the base discriminator from scratch,
the demo tokenizer and a few demo examples): seq 512, batch 32, cuDNN attention.
Largest batch that fits, remat off and on: a linear fit of XLA's memory estimate over the timed batches predicts
it, fresh processes probe around the prediction (a binary search of a few probes, inside the time budget), each
reporting `jax.devices()[0].memory_stats()` peak bytes.

How: this process (no device) runs one worker process that builds every case, compiles them in threads, and times
them interleaved round by round (A B A B), every step synchronised, medians; then the probes, one process each, so
each sees the whole device and its own peak. MFU = korpat_jax.mfu's analytic FLOPs / step time / 989 TFLOP/s (H200
bf16 dense). Into --out: gpu.md (the tables), gpu.json (every number), the optimised HLO of the best pretraining
row (best_step.hlo.txt.gz) and a jax.profiler trace of 2 of its steps (trace_best.tar.gz). A case that does not
fit the time budget is listed as not run, with the reason.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import gzip
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEMO = REPO / "korpat_jax" / "demo" / "finetune"
GIB = 2.0 ** 30
RESULT_TAG = "GPU_BENCH_RESULT "


@dataclasses.dataclass(frozen=True)
class Profile:
  """Sizes and step counts of a run (the GPU run or the CPU smoke run)."""

  seq_len: int
  batches: tuple[int, int, int]  # the pretraining sweep; the middle one is the comparison batch
  finetune_batch: int
  finetune_seq_len: int
  pretrain_model: dict
  finetune_model: dict
  tokenizer_vocab: int
  examples: int           # demo examples per fine-tuning file
  warmup: int
  rounds: int
  steps: int              # timed steps per case per round
  trace_steps: int
  compile_threads: int
  batch_step: int         # granularity of the largest-batch search
  probes: int             # per search
  budget_s: float
  worker_share: float     # of the budget, for the worker (the rest is for the probes)
  reserve_s: float        # of the worker's time, kept for warm-up, timing, trace and HLO


GPU = Profile(
    seq_len=512, batches=(32, 64, 128), finetune_batch=32, finetune_seq_len=512,
    pretrain_model={}, finetune_model=dict(vocab_size=35_000, embedding_size=768, hidden_size=768, num_layers=12,
                                           num_heads=12, intermediate_size=3072, max_position_embeddings=512),
    tokenizer_vocab=8000, examples=96, warmup=2, rounds=3, steps=5, trace_steps=2, compile_threads=4,
    batch_step=8, probes=2, budget_s=400.0, worker_share=0.7, reserve_s=75.0)
SMOKE = Profile(
    seq_len=32, batches=(2, 4, 8), finetune_batch=2, finetune_seq_len=64,
    pretrain_model=dict(vocab_size=128, embedding_size=16, hidden_size=32, num_layers=1, num_heads=2,
                        intermediate_size=64, max_position_embeddings=128),
    finetune_model=dict(vocab_size=1000, embedding_size=16, hidden_size=32, num_layers=1, num_heads=2,
                        intermediate_size=64, max_position_embeddings=128),
    tokenizer_vocab=1000, examples=12, warmup=1, rounds=2, steps=1, trace_steps=1, compile_threads=1,
    batch_step=1, probes=1, budget_s=900.0, worker_share=0.8, reserve_s=30.0)


@dataclasses.dataclass(frozen=True)
class Case:
  """One row: a train step at one configuration."""

  name: str
  task: str                 # pretrain | ner | cls | qa
  batch: int
  attention: str = "cudnn"  # cudnn | xla | explicit (softmax + dropout 0.1)
  remat: bool = False
  vocab_all: bool = False   # generator vocab projection on every position, gathered afterwards


def cases(prof: Profile) -> list[Case]:
  """Every timed row, in the order they are built (most wanted first, so a short budget drops the least)."""
  small, mid, large = prof.batches
  fb = prof.finetune_batch
  return [
      Case("pretrain cudnn b{}".format(mid), "pretrain", mid),
      Case("pretrain explicit-dropout b{}".format(mid), "pretrain", mid, attention="explicit"),
      Case("pretrain xla b{}".format(mid), "pretrain", mid, attention="xla"),
      Case("pretrain cudnn b{}".format(large), "pretrain", large),
      Case("pretrain cudnn b{}".format(small), "pretrain", small),
      Case("pretrain cudnn remat b{}".format(mid), "pretrain", mid, remat=True),
      Case("pretrain cudnn vocab-all b{}".format(mid), "pretrain", mid, vocab_all=True),
      Case("finetune ner b{}".format(fb), "ner", fb),
      Case("finetune cls b{}".format(fb), "cls", fb),
      Case("finetune qa b{}".format(fb), "qa", fb),
  ]


TABLE_ORDER = ("pretrain cudnn b{s}", "pretrain cudnn b{m}", "pretrain cudnn b{l}", "pretrain xla b{m}",
               "pretrain explicit-dropout b{m}", "pretrain cudnn remat b{m}", "pretrain cudnn vocab-all b{m}",
               "finetune ner b{f}", "finetune cls b{f}", "finetune qa b{f}")
SEARCHES = ("largest batch, remat off", "largest batch, remat on")


def table_order(prof: Profile) -> list[str]:
  s, m, l = prof.batches
  return [name.format(s=s, m=m, l=l, f=prof.finetune_batch) for name in TABLE_ORDER]


# -- building a case (worker and probe processes) ----------------------------------------------------------------

def log(message: str) -> None:
  print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def attention_settings(attention: str, on_cpu: bool) -> dict[str, Any]:
  """model.attention_impl / attention_dropout_rate of a row; cuDNN runs as XLA on CPU (the smoke run)."""
  impl = {"cudnn": "cudnn", "xla": "xla", "explicit": "xla"}[attention]
  if on_cpu and impl == "cudnn":
    impl = "xla"
  return {"attention_impl": impl, "attention_dropout_rate": 0.1 if attention == "explicit" else 0.0}


def pretrain_task(case: Case, prof: Profile, on_cpu: bool, workdir: str):
  from korpat_jax import config as config_lib
  from korpat_jax.tasks.pretraining import PretrainingTask
  config = config_lib.load(f"{REPO / 'configs' / 'pretrain.py'}:base")
  config.data.source = "synthetic"
  config.model.update(dtype="bfloat16", remat=case.remat, **attention_settings(case.attention, on_cpu),
                      **prof.pretrain_model)
  config.train.update(batch_size=case.batch, seq_len=prof.seq_len)
  config.mesh.update(data=1, fsdp=1)
  task = PretrainingTask(config, workdir)
  task.validate(1)
  return task, next(task.make_input(0).train)


def finetune_task(case: Case, prof: Profile, on_cpu: bool, data: dict[str, Any], workdir: str):
  from korpat_jax import config as config_lib
  from korpat_jax.tasks import make_task
  variant = {"ner": "ner", "cls": "cpc", "qa": "qa"}[case.task]
  config = config_lib.load(f"{REPO / 'configs' / 'finetune.py'}:{variant}")
  config.model.update(dtype="bfloat16", remat=case.remat, **attention_settings(case.attention, on_cpu),
                      **prof.finetune_model)
  config.model.vocab_size = max(config.model.vocab_size, int(data["vocab_size"]))
  config.data.update(train=data[case.task], tokenizer_dir=data["tokenizer"])
  if case.task == "cls":
    config.data.text_fields = "title,abstract"
  seq = prof.finetune_seq_len
  if case.task == "qa":
    config.head.update(max_query_length=seq // 8, doc_stride=seq // 4)
  config.train.update(batch_size=case.batch, eval_batch_size=case.batch, seq_len=seq)
  task = make_task(config, workdir)
  task.validate(1)
  return task, dict(next(task.make_input(0).train))


def finetune_data(work: str, prof: Profile) -> dict[str, Any]:
  """The demo tokenizer and small training files cut from the demo sets (QA: SQuAD JSON made from CPC abstracts)."""
  from korpat_jax.tokenizer import demo_corpus_files, train_tokenizer
  tok = os.path.join(work, "tokenizer")
  vocab = train_tokenizer(demo_corpus_files(), tok, vocab_size=prof.tokenizer_vocab, show_progress=False,
                          log=lambda m: None).vocab_size
  n = prof.examples
  ner = os.path.join(work, "ner_train.tsv")
  blocks = (DEMO / "ner_train.tsv").read_text(encoding="utf-8").strip("\n").split("\n\n")
  Path(ner).write_text("\n\n".join(blocks[:n]) + "\n", encoding="utf-8")
  rows = (DEMO / "cpc_train.tsv").read_text(encoding="utf-8").splitlines()
  cls = os.path.join(work, "cpc_train.tsv")
  Path(cls).write_text("\n".join(rows[:n + 1]) + "\n", encoding="utf-8")
  qa = os.path.join(work, "qa_train.json")
  Path(qa).write_text(json.dumps(squad_from_abstracts(rows[1:n + 1]), ensure_ascii=False), encoding="utf-8")
  return {"tokenizer": tok, "vocab_size": vocab, "ner": ner, "cls": cls, "qa": qa}


def squad_from_abstracts(rows: Sequence[str], seed: int = 0) -> dict[str, Any]:
  """One question per CPC demo row: the abstract is the context, one of its words the answer (shapes only)."""
  rng = random.Random(seed)
  paragraphs = []
  for i, row in enumerate(rows):
    _, title, abstract, _ = row.split("\t")[:4]
    words = abstract.split(" ")
    k = rng.randrange(len(words))
    start = sum(len(w) + 1 for w in words[:k])
    question = f"{title}에서 {words[k - 1] if k else ''} 다음은?"
    answers = [{"text": words[k], "answer_start": start}]
    paragraphs.append({"context": abstract, "qas": [{"id": f"q{i}", "question": question, "answers": answers}]})
  return {"version": "gpu_bench", "data": [{"title": "cpc demo", "paragraphs": paragraphs}]}


@contextlib.contextmanager
def vocab_on_all_positions(enabled: bool) -> Iterator[None]:
  """While tracing: the generator's vocab projection on all S positions, gathered at the N masked ones afterwards.

  The same values as ElectraPretrainer.generator_logits (the head is per position), with [B, S, V] logits in the
  step instead of [B, N, V]: what the masked-positions gather saves.
  """
  if not enabled:
    yield
    return
  import jax.numpy as jnp
  from korpat_jax.model import ElectraPretrainer
  original = ElectraPretrainer.generator_logits

  def all_positions(module, input_ids, token_type_ids, attention_mask, positions=None, deterministic=True):
    logits = original(module, input_ids, token_type_ids, attention_mask, None, deterministic)
    return logits if positions is None else jnp.take_along_axis(logits, positions[..., None], axis=1)

  ElectraPretrainer.generator_logits = all_positions
  try:
    yield
  finally:
    ElectraPretrainer.generator_logits = original


def build(case: Case, prof: Profile, on_cpu: bool, data: Optional[dict[str, Any]], work: str,
          initial: Optional[dict[str, Any]] = None) -> dict[str, Any]:
  """The case's task, compiled steps, initial state, on-device batch and lowered (not yet compiled) train step.

  `initial` keeps one pristine initial state per state layout: cases that differ only in attention, remat or batch
  start from a copy of the same `init()` result instead of compiling and running init again.
  """
  import jax
  import jax.numpy as jnp
  from korpat_jax import input_pipeline, sharding
  from korpat_jax.train import compile_steps
  t0 = time.perf_counter()
  workdir = tempfile.mkdtemp(prefix=case.task + "-", dir=work)
  if case.task == "pretrain":
    task, host = pretrain_task(case, prof, on_cpu, workdir)
  else:
    task, host = finetune_task(case, prof, on_cpu, data, workdir)
  mesh = sharding.make_mesh({"data": 1, "fsdp": 1}, jax.devices()[:1])
  steps = compile_steps(task, mesh)
  layout = str(jax.tree.map(lambda x: (x.shape, x.dtype), steps.abstract_state))
  if initial is None or layout not in initial:
    state = steps.init()
    if initial is not None:
      initial[layout] = jax.tree.map(jnp.copy, state)
  else:
    state = jax.tree.map(jnp.copy, initial[layout])  # the train step donates its state: each case its own copy
  batch = input_pipeline.to_global(host, steps.batch_sharding)
  with vocab_on_all_positions(case.vocab_all):
    lowered = steps.train_step.lower(state, batch)
  seq = prof.seq_len if case.task == "pretrain" else prof.finetune_seq_len
  return {"case": case, "task": task, "state": state, "batch": batch, "lowered": lowered, "seq": seq,
          "flops": task.flops_per_step(), "setup_s": time.perf_counter() - t0, "times": [], "losses": []}


def compile_run(run: dict[str, Any], deadline: float = math.inf) -> None:
  """Compiles the lowered step (in a worker thread) and reads XLA's memory estimate of it; past `deadline` it only
  marks the run as skipped."""
  if time.time() > deadline:
    run["skipped"] = True
    return
  t0 = time.perf_counter()
  run["compiled"] = run.pop("lowered").compile()
  run["compile_s"] = time.perf_counter() - t0
  run["memory"] = memory_analysis(run["compiled"])


def memory_analysis(compiled: Any) -> dict[str, Optional[float]]:
  """XLA's static buffer assignment of one executable: arguments + outputs - aliased (donated) + temporaries."""
  stats = compiled.memory_analysis()
  if stats is None:
    return {"need_bytes": None, "state_bytes": None, "temp_bytes": None}
  state = stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
  return {"need_bytes": float(state + stats.temp_size_in_bytes), "state_bytes": float(state),
          "temp_bytes": float(stats.temp_size_in_bytes)}


def step(run: dict[str, Any]) -> float:
  """One synchronised train step; returns its seconds and keeps the loss."""
  import jax
  t0 = time.perf_counter()
  run["state"], metrics = run["compiled"](run["state"], run["batch"])
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - t0
  run["losses"].append(float(metrics["loss"]))
  return seconds


def vocab_logits_in_hlo(run: dict[str, Any]) -> str:
  """Which generator logits the optimised HLO holds: [B, S, V] (all positions) or [B, N, V] (masked only)."""
  from korpat_jax import objective
  cfg, b, s = run["task"].model_config, run["case"].batch, run["seq"]
  n, v = objective.max_predictions_per_seq(s, 0.15), cfg.vocab_size
  text = run["compiled"].as_text()
  if f"{b},{s},{v}]" in text or f"[{b * s},{v}]" in text:
    return f"all {s}"
  if f"{b},{n},{v}]" in text or f"[{b * n},{v}]" in text:
    return f"masked {n}"
  return "not found"


def device_memory() -> dict[str, Optional[float]]:
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  return {"peak_bytes": stats.get("peak_bytes_in_use"), "bytes_limit": stats.get("bytes_limit")}


def setup_jax(cache_dir: str) -> None:
  """The persistent compilation cache: identical programs (every case's init, the probes' re-runs) compile once."""
  import jax
  os.makedirs(cache_dir, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# -- the worker: every case, interleaved ---------------------------------------------------------------------------

def row_of(run: dict[str, Any], device_kind: str) -> dict[str, Any]:
  from korpat_jax.mfu import mfu
  case, times = run["case"], run["times"]
  median = statistics.median(times)
  util = mfu(run["flops"], median, 1, device_kind) if run["flops"] else None
  return {**dataclasses.asdict(case), "status": "ok", "seq": run["seq"], "median_s": median, "times_s": times,
          "sequences_per_s": case.batch / median, "tokens_per_s": case.batch * run["seq"] / median, "mfu": util,
          "flops": run["flops"], "compile_s": run["compile_s"], "setup_s": run["setup_s"], **run["memory"],
          "loss_first": run["losses"][0], "loss_last": run["losses"][-1], "vocab_logits": run.get("vocab_logits")}


def worker(args: argparse.Namespace) -> int:
  prof = SMOKE if args.cpu_smoke else GPU
  import jax
  setup_jax(args.cache_dir)
  on_cpu = jax.devices()[0].platform == "cpu"
  out = Path(args.out)
  build_deadline = args.deadline - prof.reserve_s
  device = jax.devices()[0]
  report: dict[str, Any] = {"device_kind": device.device_kind, "platform": device.platform, "jax": jax.__version__,
                            "rows": {}, "files": {}, "notes": []}

  def save() -> None:
    (out / "worker.json").write_text(json.dumps(report, indent=1))

  runs: dict[str, dict[str, Any]] = {}
  futures, initial = {}, {}
  with tempfile.TemporaryDirectory(prefix="gpu_bench_") as work, \
      concurrent.futures.ThreadPoolExecutor(prof.compile_threads) as pool:
    data = None
    for case in cases(prof):
      if time.time() > build_deadline:
        report["rows"][case.name] = {**dataclasses.asdict(case), "status": "not run: time budget (build phase)"}
        continue
      try:
        if case.task != "pretrain" and data is None:
          data = finetune_data(work, prof)
        run = build(case, prof, on_cpu, data, work, initial)
      except Exception as e:  # noqa: BLE001 - one broken case must not stop the others
        report["rows"][case.name] = {**dataclasses.asdict(case), "status": f"failed: {type(e).__name__}: {e}"[:400]}
        continue
      runs[case.name] = run
      futures[case.name] = pool.submit(compile_run, run, build_deadline)
      log(f"built {case.name} ({run['setup_s']:.1f}s), compiling")
    initial.clear()
    for name, future in futures.items():  # all compiled before any case runs (the autotuner uses the device)
      try:
        future.result()
        if runs[name].get("skipped"):
          report["rows"][name] = {**dataclasses.asdict(runs.pop(name)["case"]),
                                  "status": "not run: time budget (compile phase)"}
      except Exception as e:  # noqa: BLE001
        report["rows"][name] = {**dataclasses.asdict(runs.pop(name)["case"]),
                                "status": f"failed: {type(e).__name__}: {e}"[:400]}
    for name, run in list(runs.items()):
      try:
        if run["case"].task == "pretrain":
          run["vocab_logits"] = vocab_logits_in_hlo(run)
        warm = [step(run) for _ in range(prof.warmup)]
        log(f"compiled {name} in {run['compile_s']:.1f}s, warm-up step {warm[-1] * 1e3:.1f} ms")
      except Exception as e:  # noqa: BLE001
        report["rows"][name] = {**dataclasses.asdict(runs.pop(name)["case"]),
                                "status": f"failed: {type(e).__name__}: {e}"[:400]}

    # Timing: A B A B, every case once per round, at least one round.
    for r in range(prof.rounds):
      if r and time.time() > args.deadline - prof.reserve_s / 3:
        report["notes"].append(f"timing stopped after {r} of {prof.rounds} rounds (time budget)")
        break
      for run in runs.values():
        run["times"].extend(step(run) for _ in range(prof.steps))
    for name, run in runs.items():
      report["rows"][name] = row_of(run, device.device_kind)
    report["memory"] = device_memory()
    save()

    # The best pretraining row: its optimised HLO and a trace of a few steps.
    log("timed")
    pretrain = [r for r in report["rows"].values() if r["task"] == "pretrain" and r["status"] == "ok"
                and not r["vocab_all"]]
    if pretrain:
      best = max(pretrain, key=lambda r: r["tokens_per_s"])["name"]
      report["best"] = best
      hlo = out / "best_step.hlo.txt.gz"
      with gzip.open(hlo, "wt") as f:
        f.write(runs[best]["compiled"].as_text())
      report["files"]["hlo"] = hlo.name
      report["files"]["trace"] = trace(runs[best], prof.trace_steps, out, work, report["notes"])
    report["memory"] = device_memory()
    save()
    log("trace and HLO written")
  return 0


def trace(run: dict[str, Any], num_steps: int, out: Path, work: str, notes: list[str]) -> Optional[str]:
  """A jax.profiler trace of `num_steps` steps as one tarball (the profiler's folders nest too deep to copy)."""
  import jax
  logdir = os.path.join(work, "trace")
  try:
    jax.profiler.start_trace(logdir)
    for i in range(num_steps):
      with jax.profiler.StepTraceAnnotation("train", step_num=i):
        step(run)
    jax.profiler.stop_trace()
  except Exception as e:  # noqa: BLE001 - a missing profiler backend must not lose the tables
    notes.append(f"trace failed: {type(e).__name__}: {e}"[:300])
    return None
  target = out / "trace_best.tar.gz"
  for pattern in ("*", "*.trace.json.gz"):  # everything, else only the Perfetto trace when it is too large
    with tarfile.open(target, "w:gz") as tar:
      for path in sorted(Path(logdir).rglob(pattern)):
        if path.is_file():
          tar.add(path, arcname=str(path.relative_to(logdir)))
    if target.stat().st_size < 15 * 2 ** 20:
      return target.name
  notes.append(f"trace tarball over 15 MiB even without the xplane files: left out ({target.stat().st_size} bytes)")
  target.unlink()
  return None


# -- a probe: one batch size in a fresh process -------------------------------------------------------------------

def probe(args: argparse.Namespace) -> int:
  """Builds one case, compiles it, and runs it unless XLA's estimate already exceeds the limit; prints a result."""
  prof = SMOKE if args.cpu_smoke else GPU
  spec = json.loads(args.probe)
  case = Case(**spec["case"])
  import jax
  from korpat_jax.mfu import mfu
  setup_jax(args.cache_dir)
  on_cpu = jax.devices()[0].platform == "cpu"
  result: dict[str, Any] = {"batch": case.batch, "fits": False}
  limit = spec.get("limit_bytes") or device_memory()["bytes_limit"]
  result["limit_bytes"] = limit
  try:
    with tempfile.TemporaryDirectory(prefix="gpu_probe_") as work:
      run = build(case, prof, on_cpu, None, work)
      compile_run(run)
      result.update(run["memory"], compile_s=run["compile_s"])
      if limit and run["memory"]["need_bytes"] and run["memory"]["need_bytes"] > limit:
        result["why"] = "XLA's estimate exceeds the device limit"
      else:
        times = [step(run) for _ in range(2)]
        peak = device_memory()["peak_bytes"]
        result.update(fits=True, step_s=times[-1], peak_bytes=peak, loss=run["losses"][-1],
                      tokens_per_s=case.batch * run["seq"] / times[-1],
                      mfu=mfu(run["flops"], times[-1], 1, jax.devices()[0].device_kind))
  except Exception as e:  # noqa: BLE001 - an out-of-memory error is a result here
    text = f"{type(e).__name__}: {e}"
    oom = any(s in text for s in ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory", "OOM"))
    result.update(fits=False, why=("out of memory: " if oom else "failed: ") + text[:300], error=not oom)
  print(RESULT_TAG + json.dumps(result), flush=True)
  return 0


def search(template: Case, points: list[tuple[int, float, float]], limit: float, prof: Profile, deadline: float,
           run_probe, known_fit: int = 0, min_probe_s: float = 0.0) -> dict[str, Any]:
  """The largest batch of `template` that fits: a linear prediction from (batch, need, state) points, then a
  bounded binary search of probes around it. Points are timed rows, so their batches are known to fit, as is
  `known_fit`; without points the first guess is twice the largest known fit. No probe starts with less than
  `min_probe_s` left."""
  step_ = prof.batch_step
  down = lambda b: max(step_, int(b) // step_ * step_)
  lo = max([known_fit] + [b for b, _, _ in points])
  if points and lo == max(b for b, _, _ in points):
    source = "a timed row"
  else:
    source = "the remat-off search" if known_fit else "none"
  if len(points) >= 2:
    (b1, n1, _), (b2, n2, _) = sorted(points)[0], sorted(points)[-1]
    slope = (n2 - n1) / (b2 - b1)
    intercept = n1 - slope * b1
  elif points:
    b1, n1, s1 = points[0]
    slope, intercept = (n1 - s1) / b1, s1
  else:
    slope, intercept = None, None
  predicted = down((0.97 * limit - intercept) / slope) if slope else down(2 * max(lo, step_))
  guess = max(predicted, lo + step_)
  hi, tried, best = None, [], None
  while len(tried) < prof.probes:
    if time.time() + min_probe_s > deadline:
      break
    result = run_probe(dataclasses.replace(template, batch=guess, name=f"probe b{guess}"), deadline)
    tried.append(result)
    if result.get("fits"):
      lo, best, source = guess, result, "a probe"
    else:
      hi = guess
    if hi is None:
      guess = down(guess * 1.25) if down(guess * 1.25) > guess else guess + step_
    else:
      guess = down((lo + hi) // 2)
      if guess <= lo or hi - lo <= step_:
        break
  return {"template": dataclasses.asdict(template), "predicted": predicted, "largest_fit": lo, "smallest_fail": hi,
          "largest_fit_from": source,
          "probes": tried, "best_probe": best, "limit_bytes": limit,
          "status": "ok" if tried else "not run: time budget (probes)"}


# -- the orchestrator --------------------------------------------------------------------------------------------

def child_env(cpu_smoke: bool) -> dict[str, str]:
  env = dict(os.environ)
  flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
  if cpu_smoke:
    env["JAX_PLATFORMS"] = "cpu"
    flags += ["--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true"]
  env["XLA_FLAGS"] = " ".join(flags)
  env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.9")  # as launch/xla_gpu_flags.sh
  env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
  return env


def run_probe_process(args: argparse.Namespace, env: dict[str, str], limit: Optional[float]):
  def run(case: Case, deadline: float) -> dict[str, Any]:
    spec = {"case": dataclasses.asdict(case), "limit_bytes": limit}
    command = [sys.executable, __file__, "--probe", json.dumps(spec), "--cache-dir", args.cache_dir]
    command += ["--cpu-smoke"] if args.cpu_smoke else []
    timeout = max(5.0, deadline - time.time())
    t0 = time.time()
    try:
      done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
      return {"batch": case.batch, "fits": False, "why": "timed out (time budget)", "error": True}
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_TAG)]
    if not lines:
      tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
      return {"batch": case.batch, "fits": False, "why": f"probe exited {done.returncode}: {' | '.join(tail)}"[:400],
              "error": done.returncode != 0}
    result = json.loads(lines[-1][len(RESULT_TAG):])
    result["wall_s"] = time.time() - t0
    log(f"probe batch {case.batch}: {'fits' if result['fits'] else result.get('why', 'does not fit')} "
        f"({result['wall_s']:.1f}s)")
    return result
  return run


def orchestrate(args: argparse.Namespace) -> int:
  prof = SMOKE if args.cpu_smoke else GPU
  budget = args.budget_s or prof.budget_s
  start = time.time()
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  args.cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="gpu_bench_cache_")
  env = child_env(args.cpu_smoke)
  worker_deadline = start + budget * prof.worker_share
  command = [sys.executable, __file__, "--worker", "--out", str(out), "--cache-dir", args.cache_dir,
             "--deadline", str(worker_deadline)] + (["--cpu-smoke"] if args.cpu_smoke else [])
  try:
    code = subprocess.run(command, env=env, timeout=worker_deadline - time.time() + 90).returncode
  except subprocess.TimeoutExpired:
    code = "timeout"
  worker_json = out / "worker.json"
  if not worker_json.is_file():
    print(f"the worker wrote no results (exit {code})", file=sys.stderr)
    return 1
  report = json.loads(worker_json.read_text())
  worker_json.unlink()
  report["worker_exit"] = code

  # Largest batch, remat off then on, with the attention of the fastest timed dropout-free pretraining row.
  rows = report["rows"]
  ok = lambda r: r.get("status") == "ok"
  plain = [r for r in rows.values() if ok(r) and r["task"] == "pretrain" and r["attention"] != "explicit"
           and not r["vocab_all"]]
  report["searches"] = {}
  no_remat = [r for r in plain if not r["remat"]]
  if no_remat:
    attention = max(no_remat, key=lambda r: r["tokens_per_s"])["attention"]
    limit = (1.6 * max(r["need_bytes"] for r in no_remat) if args.cpu_smoke
             else (report.get("memory") or {}).get("bytes_limit"))
    run_probe = run_probe_process(args, env, limit if args.cpu_smoke else None)
    deadline = start + budget
    # A probe compiles one pretraining step in a fresh process: about what the worker's slowest compile took.
    min_probe_s = 0.0 if args.cpu_smoke else 15.0 + max(r["compile_s"] for r in no_remat)
    for title, remat in zip(SEARCHES, (False, True)):
      same = [r for r in plain if r["attention"] == attention and r["remat"] == remat and r.get("need_bytes")]
      points = [(r["batch"], r["need_bytes"], r["state_bytes"]) for r in same]
      # What fits without remat fits with it (remat only drops activations).
      known = (report["searches"].get(SEARCHES[0], {}).get("largest_fit") or 0) if remat else 0
      if limit is None:
        report["searches"][title] = {"status": "not run: the device reports no memory limit"}
        continue
      template = Case(title, "pretrain", 0, attention=attention, remat=remat)
      report["searches"][title] = search(template, points, limit, prof, deadline, run_probe, known,
                                         min_probe_s)
  for title in SEARCHES:
    report["searches"].setdefault(title, {"status": "not run: no timed pretraining row to start from"})
  report["wall_s"] = time.time() - start
  report["budget_s"] = budget
  (out / "gpu.json").write_text(json.dumps(report, indent=1))
  markdown = render(report, prof, args.cpu_smoke)
  (out / "gpu.md").write_text(markdown)
  print(markdown)
  failed = [n for n, r in rows.items() if r.get("status", "").startswith("failed")]
  failed += [t for t, s in report["searches"].items() if any(p.get("error") for p in s.get("probes", []))]
  if args.cpu_smoke:
    failed += [n for n, r in rows.items() if not ok(r)]
    failed += [t for t, s in report["searches"].items() if s.get("status") != "ok"]
  return 1 if failed else 0


# -- the tables ----------------------------------------------------------------------------------------------------

def _num(value: Optional[float], fmt: str, scale: float = 1.0) -> str:
  return "n/a" if value is None or not math.isfinite(value) else format(value * scale, fmt)


def render(report: dict[str, Any], prof: Profile, cpu_smoke: bool) -> str:
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
  mfu_note = "n/a (CPU)" if report["platform"] == "cpu" else "n/a"
  smoke = " (CPU SMOKE RUN: tiny sizes, not a measurement)" if cpu_smoke else ""
  lines = [f"# korpat-jax train steps on {report['device_kind']}{smoke}",
           "",
           f"{time.strftime('%Y-%m-%d %H:%M')}, jax {report['jax']}, commit {commit or 'unknown'}; wall "
           f"{report['wall_s']:.0f} s of a {report['budget_s']:.0f} s budget. bf16 compute, fp32 params; medians "
           f"of {prof.rounds} interleaved rounds x {prof.steps} synchronised steps after {prof.warmup} warm-up; "
           "MFU = analytic FLOPs (korpat_jax.mfu) / step / 989 TFLOP/s; memory = XLA's buffer assignment of the "
           "step (state + temporaries).",
           "",
           "| row | batch x seq | attention | remat | vocab projection | median step (ms) | sequences/s | tokens/s "
           "| MFU | step memory (GiB) | compile (s) | loss first -> last |",
           "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
  rows = report["rows"]
  for name in table_order(prof):
    r = rows.get(name, {"status": "not run"})
    if r.get("status") != "ok":
      lines.append(f"| {name} | | | | | {r.get('status')} | | | | | | |")
      continue
    attention = {"cudnn": "cuDNN fused" + (" (XLA on CPU)" if report["platform"] == "cpu" else ""),
                 "xla": "XLA", "explicit": "softmax + dropout 0.1"}[r["attention"]]
    vocab = "n/a" if r["task"] != "pretrain" else (("all positions" if r["vocab_all"] else "masked") +
                                                    f" (HLO: {r.get('vocab_logits')})")
    util = mfu_note if r["mfu"] is None else f"{r['mfu']:.1%}"
    lines.append(f"| {name} | {r['batch']} x {r['seq']} | {attention} | {'on' if r['remat'] else 'off'} | {vocab} | "
                 f"{r['median_s'] * 1e3:.1f} | {r['sequences_per_s']:,.1f} | {r['tokens_per_s']:,.0f} | {util} | "
                 f"{_num(r.get('need_bytes'), '.3g', 1 / GIB)} | {r['compile_s']:.1f} | "
                 f"{r['loss_first']:.4f} -> {r['loss_last']:.4f} |")
  lines += ["", "Largest pretraining batch that fits (fresh process per probe; peak = memory_stats()):", "",
            "| search | attention | predicted | largest that fits | smallest that did not | peak memory (GiB) | "
            "XLA estimate (GiB) | step (ms) | tokens/s | MFU | probes |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
  for title in SEARCHES:
    s = report["searches"].get(title, {"status": "not run"})
    if s.get("status") != "ok":
      lines.append(f"| {title} | | | {s.get('status')} | | | | | | | |")
      continue
    p = s.get("best_probe") or {}
    tried = "; ".join(f"b{q['batch']}: {'fits' if q['fits'] else q.get('why', 'no')}"[:80] for q in s["probes"])
    util = mfu_note if p.get("mfu") is None else f"{p['mfu']:.1%}"
    peak = _num(p.get("peak_bytes"), ".3g", 1 / GIB) if p else "n/a"
    lines.append(f"| {title} | {s['template']['attention']} | {s['predicted']} | {s['largest_fit']} (from "
                 f"{s.get('largest_fit_from', 'a probe')}) | "
                 f"{s['smallest_fail'] if s['smallest_fail'] is not None else 'none tried'} | "
                 f"{peak if p.get('peak_bytes') is not None else 'n/a (no memory_stats)'} | "
                 f"{_num(p.get('need_bytes'), '.3g', 1 / GIB)} | {_num(p.get('step_s'), '.1f', 1e3)} | "
                 f"{_num(p.get('tokens_per_s'), ',.0f')} | {util if p else 'n/a'} | {tried} |")
  memory = report.get("memory") or {}
  lines += ["", f"- best pretraining row: {report.get('best', 'none')}; its optimised HLO: "
            f"{report['files'].get('hlo') or 'none'}, its trace: {report['files'].get('trace') or 'none'}",
            f"- worker process memory_stats: peak {_num(memory.get('peak_bytes'), '.2f', 1 / GIB)} GiB of "
            f"{_num(memory.get('bytes_limit'), '.2f', 1 / GIB)} GiB (all rows' states live at once)"]
  lines += [f"- {note}" for note in report.get("notes", [])]
  return "\n".join(lines) + "\n"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_out", help="where tables, HLO and trace go")
  parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on CPU, 1-2 steps a case")
  parser.add_argument("--budget-s", type=float, default=0.0, help="wall-clock budget (default: 400 GPU, 900 smoke)")
  parser.add_argument("--cache-dir", default="", help="persistent compilation cache (default: a new temporary one)")
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--probe", default="", help=argparse.SUPPRESS)
  parser.add_argument("--deadline", type=float, default=0.0, help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  if args.worker:
    return worker(args)
  if args.probe:
    return probe(args)
  return orchestrate(args)


if __name__ == "__main__":
  sys.exit(main())
