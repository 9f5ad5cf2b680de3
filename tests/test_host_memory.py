"""korpat_jax.host_memory: with the default, a jitted step whose temporaries are far above glibc's mmap threshold
stops faulting its arena in again on (almost) every call; KORPAT_JAX_MALLOC=system keeps glibc's behaviour; a bad
value is one line. Each case runs in its own process (the settings are per process, and this one keeps glibc's defaults)."""

import json
import os
import subprocess
import sys

import pytest

from korpat_jax import host_memory

PROBE = r"""
import json, resource, sys
from korpat_jax import host_memory
applied = host_memory.keep_freed_memory()
import jax, jax.numpy as jnp

@jax.jit
def step(x):  # 24 live [1024, 1024] temporaries: a ~100 MB arena, one block per call
  ys = [jnp.sin(x * (i + 1)) @ x for i in range(24)]
  return sum(y.sum() for y in ys)

x = jnp.ones((1024, 1024)) / 1024
temp = step.lower(x).compile().memory_analysis().temp_size_in_bytes
for _ in range(6):
  step(x).block_until_ready()
faults = []
for _ in range(6):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  step(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "temp_pages": temp // 4096, "faults": faults}))
"""


def probe(mode: str) -> dict:
  env = {**os.environ, "JAX_PLATFORMS": "cpu", host_memory.ENV: mode}
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
  out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or host_memory._glibc() is None, reason="glibc only")
def test_default_keeps_the_arena_and_system_faults_it_in_every_call():
  kept, system = probe("keep"), probe("system")
  assert kept["applied"].startswith("kept (glibc "), kept
  assert system["applied"] == "system (KORPAT_JAX_MALLOC=system)", system
  assert system["temp_pages"] > 10_000, system  # far above glibc's 32 MB mmap ceiling: the case that matters
  # glibc's own behaviour: most of the arena is faulted in again on every call ...
  assert min(system["faults"]) > system["temp_pages"] // 2, system
  # ... and with the arena kept, (almost) none of it is in most calls (the heap can still grow once or twice while
  # XLA frees one call's arena after the next call has taken its own)
  assert sorted(kept["faults"])[len(kept["faults"]) // 2] < system["temp_pages"] // 20, (kept, system)


def test_unknown_mode_is_one_line(monkeypatch):
  monkeypatch.setattr(host_memory, "_applied", None)
  monkeypatch.setenv(host_memory.ENV, "jemalloc")
  with pytest.raises(ValueError, match=r"^KORPAT_JAX_MALLOC='jemalloc': expected keep \(the default\) or system"):
    host_memory.keep_freed_memory()


def test_cli_names_a_bad_mode_before_any_work(monkeypatch, capsys, tmp_path):
  from korpat_jax import cli
  monkeypatch.setattr(host_memory, "_applied", None)
  monkeypatch.setenv(host_memory.ENV, "bogus")
  assert cli.main(["pretrain", "--config", "configs/pretrain.py:tiny", "--workdir", str(tmp_path / "w")]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("korpat-jax pretrain: error: KORPAT_JAX_MALLOC='bogus'") and "\n" not in err
  assert not (tmp_path / "w").exists()


def test_state_before_and_after(monkeypatch):
  monkeypatch.setattr(host_memory, "_applied", None)
  assert host_memory.state().startswith("system (not set up")
  monkeypatch.setenv(host_memory.ENV, "system")
  assert host_memory.keep_freed_memory() == host_memory.state() == "system (KORPAT_JAX_MALLOC=system)"
