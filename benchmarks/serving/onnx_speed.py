"""Serving speed on this CPU: onnxruntime on `korpat-jax export --format onnx` against PyTorch on the HF export and
the JAX model's predict-style forward, same params, same threads, sequences/s at batch 1 and 32 x seq 128.

    python -m benchmarks.serving.onnx_speed --out benchmarks/results/onnx_speed.md  # the demo's `cpu` size
    python -m benchmarks.serving.onnx_speed --small --out ...  # + ELECTRA-Small sizes (L12/H256/E128, vocab 35000)
    python -m benchmarks.serving.onnx_speed --quick --out /tmp/onnx_speed.md  # tiny sizes, 1 round (the smoke test)

Per size: random params (every leaf perturbed off its init) saved as a run directory, exported by the project's own
`export_onnx` (the HF directory + model.onnx, checked there against PyTorch), then four runtimes on the same
numbers: onnxruntime (CPUExecutionProvider, ORT_ENABLE_ALL, intra-op threads = --threads, inter-op 1, sequential,
no spin-waiting unless --ort-spin: spinning threads lose their cores on a shared machine, as libgomp's do);
onnxruntime on the file rewritten by onnxruntime.transformers.optimizer (model_type bert; kept only when it is
within --tol of JAX); PyTorch: the HF class from_pretrained (transformers' default attention), eval,
torch.inference_mode, torch.set_num_threads(--threads), OMP_WAIT_POLICY=PASSIVE; JAX: the Flax model's apply,
deterministic, jit, params on the device, host int32 batch in and numpy logits out as `korpat-jax predict` does.
--int8 adds onnxruntime on model.int8.onnx (`export --format onnx --quantize int8`: dynamically quantized int8
weights): another model (its outputs move by ~1e-3), never counted as valid against JAX.
XLA has no thread-count flag: the process is pinned to --threads cores (sched_setaffinity) before JAX starts, which
sizes XLA's pool and bounds the others alike.

Timing: untimed warm-up calls first (JAX compiles each shape); then --rounds rounds, each timing every runtime in
turn (the order rotates each round) over --calls-1 calls at batch 1 / --calls-32 at batch 32; figures are medians
of the per-call times. Inputs are full-length rows (no padding; the dense runtimes cost the same either way); the
max abs difference against JAX is taken separately on a padded batch of 2.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional, Sequence

from benchmarks.common import REPO, machine, pin_cpus, process_settings_restored

CPU = dict(num_layers=2, hidden_size=128, embedding_size=64, num_heads=2, intermediate_size=512, vocab_size=16000)
SMALL = dict(num_layers=12, hidden_size=256, embedding_size=128, num_heads=4, intermediate_size=1024,
             vocab_size=35000)
QUICK = dict(num_layers=2, hidden_size=32, embedding_size=16, num_heads=2, intermediate_size=64, vocab_size=100)
KINDS = ("discriminator", "token_classification", "sequence_classification", "question_answering")
ORT, ORT_OPT, TORCH, JAX = "onnxruntime", "onnxruntime + transformers optimizer", "PyTorch", "JAX"
ORT_INT8 = "onnxruntime, model.int8.onnx (--quantize int8; not exact)"

Runner = Callable[[dict[str, Any]], list[Any]]  # native inputs -> outputs as numpy arrays


def cpu_flags() -> str:
  """The vector extensions that decide which kernels the runtimes pick (avx2, avx512*, amx*, fma)."""
  try:
    with open("/proc/cpuinfo") as f:
      flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
  except OSError:
    return "unknown"
  wanted = sorted(f for f in set(flags) if f in ("avx2", "fma") or f.startswith(("avx512", "amx")))
  return " ".join(wanted) or "none of avx2/avx512/amx"


def model_config(sizes: dict[str, int], seq_len: int) -> Any:
  from korpat_jax.model.config import ElectraConfig
  return ElectraConfig.from_config({**sizes, "max_position_embeddings": max(128, seq_len),
                                    "generator_hidden_fraction": 0.25})


def random_params(cfg: Any, kind: str, seed: int) -> tuple[Any, Any]:
  """(Flax module, params) of `kind`, every leaf moved off its init so that no export mistake can hide."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from korpat_jax.model.electra import ElectraPretrainer
  from korpat_jax.model.heads import task_model
  model = ElectraPretrainer(cfg) if kind == "discriminator" else task_model(kind, cfg, 3)
  ids = jnp.ones((1, 8), jnp.int32)
  params = jax.jit(model.init)(jax.random.PRNGKey(seed), ids, jnp.zeros_like(ids), ids)["params"]
  rng = np.random.default_rng(seed)
  params = jax.tree_util.tree_map(
      lambda x: (np.asarray(x) + 0.02 * rng.standard_normal(x.shape)).astype(np.float32), params)
  return model, params


def write_run(workdir: str, cfg: Any, kind: str, params: Any) -> str:
  """A run directory as training leaves it (model.json, a task entry for a head, one checkpoint)."""
  from korpat_jax import workdir as workdir_lib
  from korpat_jax.checkpoint import Checkpointer
  from korpat_jax.export.task_info import write_task_info
  workdir_lib.write_model_info(workdir, cfg, None, {"pad": 0})
  if kind != "discriminator":
    write_task_info(workdir, kind, {0: "start", 1: "end"} if kind == "question_answering" else
                    {0: "A", 1: "B", 2: "C"})
  checkpointer = Checkpointer(workdir_lib.checkpoint_dir(workdir), interval=1, keep=1, async_save=False)
  checkpointer.save(1, {"params": params, "step": 1}, force=True)
  checkpointer.close()
  return workdir


def ort_session(path: str, threads: int, spin: bool) -> Any:
  import onnxruntime as ort
  options = ort.SessionOptions()
  options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
  options.intra_op_num_threads = threads
  options.inter_op_num_threads = 1
  options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
  options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
  return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def ort_optimized(path: str, cfg: Any) -> tuple[Optional[str], str]:
  """(path of the transformers-optimizer rewrite or None, what it fused or why there is none)."""
  try:
    from onnxruntime.transformers import optimizer
  except ImportError as e:
    return None, f"onnxruntime.transformers not importable ({e})"
  try:
    rewritten = optimizer.optimize_model(path, model_type="bert", num_heads=cfg.discriminator.num_heads,
                                         hidden_size=cfg.discriminator.hidden_size)
  except Exception as e:  # noqa: BLE001 - an optional row: say why and go on
    return None, f"optimize_model failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
  fused = {op: n for op, n in rewritten.get_fused_operator_statistics().items() if n}
  out = path.replace(".onnx", ".bert_opt.onnx")
  rewritten.save_model_to_file(out)
  return out, "fused " + (", ".join(f"{op} x{n}" for op, n in sorted(fused.items())) or "nothing")


def ort_runner(session: Any) -> Runner:
  return lambda feeds: session.run(None, feeds)


def torch_runner(model: Any, outputs: tuple[str, ...]) -> Runner:
  import torch

  def run(inputs: dict[str, Any]) -> list[Any]:
    with torch.inference_mode():
      result = model(**inputs, return_dict=True)
    return [result[name].numpy() for name in outputs]

  return run


def jax_runner(model: Any, params: Any, kind: str) -> Runner:
  """The predict-style forward: jit(apply, deterministic), params already on the device, logits back on the host."""
  import jax
  from korpat_jax.model.electra import ElectraPretrainer
  params = jax.device_put(params)
  method = ElectraPretrainer.discriminator_logits if kind == "discriminator" else None

  @jax.jit
  def forward(params: Any, ids: Any, types: Any, mask: Any) -> Any:
    if method is not None:
      return model.apply({"params": params}, ids, types, mask, method=method)
    return model.apply({"params": params}, ids, types, mask, True)

  def run(inputs: dict[str, Any]) -> list[Any]:
    out = jax.device_get(forward(params, inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"]))
    return list(out) if isinstance(out, tuple) else [out]

  return run


def batch(rows: int, length: int, vocab: int, seed: int, pad: bool) -> dict[str, Any]:
  import numpy as np
  rng = np.random.default_rng(seed)
  ids = rng.integers(5, vocab, size=(rows, length), dtype=np.int64)
  types = np.zeros_like(ids)
  types[:, length // 2:] = 1
  mask = np.ones_like(ids)
  if pad:
    mask[-1, length * 3 // 4:] = 0
    ids[-1, length * 3 // 4:] = 0
  return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def native(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
  """Each runtime's own input types, made once outside the timed calls: int64 numpy (ONNX), int64 tensors (torch),
  int32 numpy (JAX, as the project's input pipeline feeds it)."""
  import numpy as np
  if name == TORCH:
    import torch
    return {k: torch.from_numpy(v) for k, v in inputs.items()}
  if name == JAX:
    return {k: v.astype(np.int32) for k, v in inputs.items()}
  return inputs


def max_abs_diff(a: list[Any], b: list[Any]) -> float:
  import numpy as np
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))) for x, y in zip(a, b))


def time_rounds(runners: dict[str, Runner], inputs: dict[str, dict[str, Any]], calls: int, rounds: int,
                warmup: int) -> dict[str, float]:
  """Median seconds per call of each runner, interleaved: every round times each runner in turn, in a rotated order."""
  for name, run in runners.items():
    for _ in range(warmup):
      run(inputs[name])
  times: dict[str, list[float]] = {name: [] for name in runners}
  names = list(runners)
  for r in range(rounds):
    for name in names[r % len(names):] + names[:r % len(names)]:
      run, feed = runners[name], inputs[name]
      start = time.perf_counter()
      for _ in range(calls):
        run(feed)
      times[name].append((time.perf_counter() - start) / calls)
  return {name: statistics.median(t) for name, t in times.items()}


def measure_size(label: str, sizes: dict[str, int], args: argparse.Namespace, root: str) -> dict[str, Any]:
  """Exports one size, builds the runtimes, checks them against JAX and times them."""
  import jax
  import transformers
  from korpat_jax.export.onnx_export import export_onnx

  cfg = model_config(sizes, args.seq_len)
  model, params = random_params(cfg, args.kind, args.seed)
  workdir = write_run(os.path.join(root, label, "run"), cfg, args.kind, params)
  start = time.perf_counter()
  (done,) = export_onnx(workdir, os.path.join(root, label, "onnx"), quantize="int8" if args.int8 else "none")
  export_s = time.perf_counter() - start

  runners: dict[str, Runner] = {ORT: ort_runner(ort_session(done.path, args.threads, args.ort_spin))}
  optimized, note = ort_optimized(done.path, cfg) if args.ort_optimizer else (None, "not tried (--no-ort-optimizer)")
  if optimized:
    runners[ORT_OPT] = ort_runner(ort_session(optimized, args.threads, args.ort_spin))
  if args.int8:
    runners[ORT_INT8] = ort_runner(ort_session(done.int8.path, args.threads, args.ort_spin))
  transformers.utils.logging.disable_progress_bar()
  hf = getattr(transformers, done.hf.architecture).from_pretrained(done.hf.directory).eval()
  runners[TORCH] = torch_runner(hf, done.outputs)
  runners[JAX] = jax_runner(model, params, args.kind)

  check = batch(2, args.seq_len, cfg.vocab_size, args.seed + 1, pad=True)
  reference = runners[JAX](native(JAX, check))
  diffs = {name: max_abs_diff(run(native(name, check)), reference) for name, run in runners.items()}
  if ORT_OPT in diffs and diffs[ORT_OPT] > args.tol:
    note += f"; dropped: {diffs.pop(ORT_OPT):.1e} from JAX > {args.tol:g}"
    runners.pop(ORT_OPT)

  speeds: dict[int, dict[str, float]] = {}
  for rows in args.batch_sizes:
    inputs = batch(rows, args.seq_len, cfg.vocab_size, args.seed + rows, pad=False)
    calls = args.calls_1 if rows == 1 else args.calls_32
    seconds = time_rounds(runners, {name: native(name, inputs) for name in runners}, calls, args.rounds, args.warmup)
    speeds[rows] = {name: rows / s for name, s in seconds.items()}
    print(f"[{label}] batch {rows}: " + ", ".join(f"{n} {v:,.1f} seq/s" for n, v in speeds[rows].items()),
          flush=True)
  num_params = sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
  return {"label": label, "sizes": sizes, "params": num_params, "architecture": done.hf.architecture,
          "export_s": export_s, "onnx_mib": done.num_bytes / 2**20, "check": done.max_abs_diff, "diffs": diffs,
          "speeds": speeds, "optimizer": note, "attn": hf.config._attn_implementation}


def table(results: list[dict[str, Any]], batch_sizes: Sequence[int]) -> list[str]:
  head = ["model", "runtime", *(f"batch {b} (seq/s)" for b in batch_sizes),
          *(f"vs PyTorch, batch {b}" for b in batch_sizes), "max abs diff vs JAX"]
  lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (2 * len(batch_sizes) + 1)]
  for result in results:
    for name in result["diffs"]:
      speeds = [result["speeds"][b][name] for b in batch_sizes]
      ratios = [result["speeds"][b][name] / result["speeds"][b][TORCH] for b in batch_sizes]
      lines.append(f"| {result['label']} | {name} | " + " | ".join(f"{s:,.1f}" for s in speeds) + " | "
                   + " | ".join(f"{r:.2f}x" for r in ratios) + " | "
                   + ("(reference)" if name == JAX else f"{result['diffs'][name]:.1e}") + " |")
  return lines


def report(results: list[dict[str, Any]], args: argparse.Namespace, cpus: list[int], load: tuple[float, ...]) -> str:
  import jax
  import onnxruntime
  import torch
  import transformers
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
  dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip()
  after = os.getloadavg() if hasattr(os, "getloadavg") else ()
  lines = [f"# Serving speed: onnxruntime vs PyTorch vs JAX on CPU (`benchmarks/serving/onnx_speed.py`), "
           f"{time.strftime('%Y-%m-%d %H:%M')}", "",
           f"{machine()}; CPU flags: {cpu_flags()}; pinned to cores {cpus}. Load average (1/5/15 min) before "
           f"{'/'.join(f'{x:.1f}' for x in load)}, after {'/'.join(f'{x:.1f}' for x in after)}"
           + (" (other jobs share the cores: the figures are noisy upper bounds on time)"
              if load and load[0] >= 1.0 else "") + ".",
           f"Threads: onnxruntime intra-op {args.threads}, inter-op 1, spin-waiting "
           f"{'on' if args.ort_spin else 'off'}; torch {torch.get_num_threads()} "
           f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}); XLA: the {len(cpus)} pinned cores.",
           f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}, transformers "
           f"{transformers.__version__}, jax {jax.__version__}; commit {commit}{' (dirty tree)' if dirty else ''}.",
           f"Model: {results[0]['architecture']} ({args.kind}), fp32, seq {args.seq_len}; {args.rounds} interleaved "
           f"rounds of {args.calls_1} calls (batch 1) / {args.calls_32} (larger batches) per runtime, medians.", ""]
  for r in results:
    s = r["sizes"]
    lines.append(f"- {r['label']}: L{s['num_layers']} H{s['hidden_size']} E{s['embedding_size']} heads "
                 f"{s['num_heads']} FFN {s['intermediate_size']} vocab {s['vocab_size']}, {r['params'] / 1e6:.2f}M "
                 f"params; export --format onnx {r['export_s']:.1f} s, model.onnx {r['onnx_mib']:.1f} MiB, "
                 f"onnxruntime vs PyTorch at export {r['check']:.1e}; PyTorch attention {r['attn']}; "
                 f"transformers optimizer: {r['optimizer']}")
  return "\n".join(lines + [""] + table(results, args.batch_sizes)) + "\n"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default="", help="write the Markdown report there too (default: print only)")
  parser.add_argument("--kind", choices=KINDS, default="discriminator", help="which model is exported and timed")
  parser.add_argument("--small", action="store_true", help="also ELECTRA-Small sizes (L12/H256/E128, vocab 35000)")
  parser.add_argument("--batches", default="1,32", help="comma-separated batch sizes")
  parser.add_argument("--seq-len", type=int, default=128)
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--calls-1", type=int, default=20, help="timed calls per round at batch 1")
  parser.add_argument("--calls-32", type=int, default=3, help="timed calls per round at the larger batches")
  parser.add_argument("--warmup", type=int, default=3, help="untimed calls per runtime and batch size first")
  parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1), help="threads of every runtime (default: the schedulable cores)")
  parser.add_argument("--ort-spin", action="store_true", help="let onnxruntime's threads spin-wait (its default; "
                      "off here because spinning collapses when other processes share the cores)")
  parser.add_argument("--no-ort-optimizer", dest="ort_optimizer", action="store_false",
                      help="skip the onnxruntime.transformers.optimizer row")
  parser.add_argument("--int8", action="store_true", help="also onnxruntime on int8 dynamically quantized weights "
                      "(outside --tol by design: reported, never counted as a valid row)")
  parser.add_argument("--omp-wait-policy", default="PASSIVE", help="OMP_WAIT_POLICY for torch ('' = libgomp's default)")
  parser.add_argument("--tol", type=float, default=1e-4, help="max abs difference from JAX for a valid row")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--quick", action="store_true", help="tiny sizes, batches 1 and 4 x seq 32, 1 round, 1 call")
  args = parser.parse_args(argv)
  if args.quick:
    args.small, args.batches, args.seq_len, args.rounds, args.calls_1, args.calls_32, args.warmup = (
        False, "1,4", 32, 1, 1, 1, 1)
  try:
    args.batch_sizes = sorted({int(b) for b in args.batches.split(",")})
  except ValueError:
    parser.error(f"--batches {args.batches!r}: expected comma-separated integers, e.g. 1,32")
  if min(args.batch_sizes) < 1 or args.threads < 1 or args.rounds < 1:
    parser.error("--batches, --threads and --rounds must be >= 1")
  return args


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Parses `argv`, measures, prints (and writes --out); 1 when onnxruntime or PyTorch is not within --tol of JAX.
  The process's affinity and OMP_WAIT_POLICY are restored afterwards (callable in-process)."""
  args = parse_args(argv)
  with process_settings_restored():
    return measure(args)


def measure(args: argparse.Namespace) -> int:
  load = os.getloadavg() if hasattr(os, "getloadavg") else ()
  cpus = pin_cpus(args.threads)  # before JAX starts its CPU backend
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  if args.omp_wait_policy and "torch" not in sys.modules:  # libgomp reads it once, when torch loads it
    os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
  import torch
  torch.set_num_threads(args.threads)
  sizes = [("tiny", QUICK)] if args.quick else [("cpu", CPU)] + ([("small", SMALL)] if args.small else [])
  with tempfile.TemporaryDirectory(prefix="onnx_speed_") as root:
    results = [measure_size(label, size, args, root) for label, size in sizes]
  text = report(results, args, cpus, load)
  print("\n" + text)
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
      f.write(text)
  bad = [(r["label"], name, d) for r in results for name, d in r["diffs"].items() if d > args.tol and name != ORT_INT8]
  if bad:
    print(f"not within --tol {args.tol:g} of JAX: {bad}; the comparison is not valid")
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
