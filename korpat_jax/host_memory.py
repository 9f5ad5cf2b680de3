"""Host memory: keep freed memory mapped so that XLA:CPU's per-step arena is not faulted in again every step.

XLA:CPU allocates an executable's temporaries as one block per execution (ELECTRA-Small fine-tuning at batch 32 x
128: 1.5 GB) and frees it afterwards. glibc serves a block that large with a fresh `mmap` and gives it back with
`munmap` on free (a thread's own arena does so whatever `M_MMAP_MAX` says), so every step touches 375,000 new 4 KB
pages: page faults and kernel zeroing, about 0.4-1 s of CPU a step on a 2-core machine (BENCHMARKS.md, issue 16
item 7). PyTorch's step reuses its heap and faults ~0 pages. Three `mallopt` settings make glibc do the same for
XLA: one arena (the main one, which grows with `brk`), no `mmap` for large blocks, and no trimming of the heap's
free top. Freed memory then stays with the process for the next step: its resident size stays at its peak, which
the step reaches anyway.

The `korpat-jax` commands that run JAX call `keep_freed_memory()` first; a program that calls `train()` itself
calls it at its start (before JAX starts its threads) if it wants the same. Set `KORPAT_JAX_MALLOC=system` to leave
glibc's defaults alone (a long-lived process that runs many jobs and should give memory back between them).
Elsewhere than glibc (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Optional

ENV = "KORPAT_JAX_MALLOC"
# glibc's <malloc.h> parameter numbers
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, -1))  # -1: SIZE_MAX, never trim

_applied: Optional[str] = None


def _glibc() -> Optional[ctypes.CDLL]:
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.gnu_get_libc_version  # only glibc has it (and mallopt with these parameters)
  except (OSError, AttributeError):
    return None
  return libc


def state() -> str:
  """What keep_freed_memory did in this process ("not set up" if it was not called: the Python API's default)."""
  return _applied or "system (not set up: korpat_jax.host_memory.keep_freed_memory() before JAX starts)"


def keep_freed_memory() -> str:
  """Applies the settings once per process, before JAX starts its threads (their arenas are chosen then).

  Returns what was done, for a log line: "kept (glibc X)", "system (KORPAT_JAX_MALLOC=system)" or "system (not
  glibc)". Raises ValueError on an unknown KORPAT_JAX_MALLOC value."""
  global _applied
  if _applied is not None:
    return _applied
  mode = os.environ.get(ENV, "keep").strip().lower() or "keep"
  if mode not in ("keep", "system"):
    raise ValueError(f"{ENV}={os.environ[ENV]!r}: expected keep (the default) or system (glibc's own behaviour)")
  libc = _glibc() if mode == "keep" else None
  if mode == "system":
    _applied = f"system ({ENV}=system)"
  elif libc is None:
    _applied = "system (not glibc)"
  else:
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    failed = [param for param, value in SETTINGS if libc.mallopt(param, value) != 1]
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    version = libc.gnu_get_libc_version().decode()
    _applied = f"kept (glibc {version})" if not failed else f"system (glibc {version} refused mallopt {failed})"
  return _applied
