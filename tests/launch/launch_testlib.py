"""Stub executables for the launch-script tests: each records its argv (and environment) so that a test can check
what the script would have run on a cluster without SLURM, gcloud or a GPU."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"


def require_bash() -> str:
  """The launch scripts are bash; the only reason to skip."""
  bash = shutil.which("bash")
  if bash is None:
    pytest.skip("bash is not installed")
  return bash


def write_stub(bin_dir: pathlib.Path, name: str, exit_var: str = "") -> pathlib.Path:
  """An executable `name` that appends its argc and argv (NUL-terminated) to $STUB_LOG/name.argv, writes its
  environment and working directory beside it, and exits with $exit_var (0 when unset)."""
  bin_dir.mkdir(parents=True, exist_ok=True)
  exit_code = f'"${{{exit_var}:-0}}"' if exit_var else "0"
  path = bin_dir / name
  path.write_text(f"""#!/usr/bin/env bash
printf '%s\\0' "$#" "$@" >> "$STUB_LOG/{name}.argv"
env -0 > "$STUB_LOG/{name}.env"
pwd > "$STUB_LOG/{name}.cwd"
exit {exit_code}
""")
  path.chmod(0o755)
  return path


def calls(log_dir: pathlib.Path, name: str) -> list[list[str]]:
  """The argv of every call of stub `name`, in order; [] when it never ran."""
  path = log_dir / f"{name}.argv"
  if not path.exists():
    return []
  fields = [f.decode() for f in path.read_bytes().split(b"\0")[:-1]]
  out = []
  while fields:
    count, fields = int(fields[0]), fields[1:]
    out.append(fields[:count])
    fields = fields[count:]
  return out


def stub_env(log_dir: pathlib.Path, name: str) -> dict[str, str]:
  """The environment stub `name` saw on its last call."""
  pairs = (log_dir / f"{name}.env").read_bytes().split(b"\0")
  return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def run_script(args: list[str], env: dict[str, str], cwd: pathlib.Path) -> subprocess.CompletedProcess:
  return subprocess.run([require_bash(), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
