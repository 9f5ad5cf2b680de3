"""Measuring one case: compile, synchronised steps, XLA's memory estimate, device memory, FLOPs, a row's numbers."""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from typing import Any, Optional

from .grid import Case


def setup_jax(cache_dir: str) -> None:
  """The persistent compilation cache: identical programs (every case's init, the probes' re-runs) compile once."""
  import jax
  os.makedirs(cache_dir, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def step_flops(task: Any, case: Case, seq: int) -> Optional[float]:
  """Analytic FLOPs of one step as the row runs it (korpat_jax.mfu).

  The task counts the model as built: the generator's head and vocab projection at the masked positions only. The
  vocab-all row projects every position, so its count has all `seq` positions there, not the masked ones.
  """
  if not case.vocab_all:
    return task.flops_per_step()
  from korpat_jax.mfu import training_flops_per_step
  return training_flops_per_step(task.model_config, case.batch, seq, seq)


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
  """One train step, synchronised on everything it returns (the new state too); its seconds. Keeps the loss."""
  import jax
  t0 = time.perf_counter()
  run["state"], metrics = run["compiled"](run["state"], run["batch"])
  jax.block_until_ready((run["state"], metrics))
  seconds = time.perf_counter() - t0
  run["losses"].append(float(metrics["loss"]))
  return seconds


def vocab_logits_in_hlo(run: dict[str, Any]) -> str:
  """Which generator logits the optimised HLO holds: [B, S, V] (all positions) or [B, N, V] (masked only)."""
  from korpat_jax import objective
  cfg, b, s = run["task"].model_config, run["case"].batch, run["seq"]
  obj = run["task"].config.objective
  n = obj.max_predictions if obj.max_predictions >= 0 else objective.max_predictions_per_seq(s, obj.mask_prob)
  v = cfg.vocab_size
  text = run["compiled"].as_text()
  if f"{b},{s},{v}]" in text or f"[{b * s},{v}]" in text:
    return f"all {s}"
  if f"{b},{n},{v}]" in text or f"[{b * n},{v}]" in text:
    return f"masked {n}"
  return "not found"


def device_memory() -> dict[str, Optional[float]]:
  """The first device's allocator: peak bytes in use and the limit (None where the backend reports neither)."""
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  return {"peak_bytes": stats.get("peak_bytes_in_use"), "bytes_limit": stats.get("bytes_limit")}


def row_of(run: dict[str, Any], device_kind: str, rounds: int) -> dict[str, Any]:
  """A timed case's table row, from the steps timed so far (`rounds` rounds of them)."""
  from korpat_jax.mfu import mfu
  case, times = run["case"], run["times"]
  median = statistics.median(times)
  util = mfu(run["flops"], median, 1, device_kind) if run["flops"] else None
  return {**dataclasses.asdict(case), "status": "ok", "seq": run["seq"], "median_s": median, "times_s": list(times),
          "rounds": rounds, "sequences_per_s": case.batch / median, "tokens_per_s": case.batch * run["seq"] / median,
          "mfu": util, "flops": run["flops"], "compile_s": run["compile_s"], "setup_s": run["setup_s"],
          **run["memory"], "loss_first": run["losses"][0], "loss_last": run["losses"][-1],
          "vocab_logits": run.get("vocab_logits")}
