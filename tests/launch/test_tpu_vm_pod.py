"""launch/tpu_vm_pod.sh with a stub gcloud: the --command string it sends is then run the way a worker's sshd runs
it (`bash -c STRING` in the home directory), against a fake home with a checkout and a stub korpat-jax, to check
the environment is activated, the checkout entered and arguments with spaces and quotes arrive intact."""

from __future__ import annotations

import os
import pathlib
import subprocess

from launch_testlib import LAUNCH, calls, require_bash, run_script, stub_env, write_stub

SCRIPT = LAUNCH / "tpu_vm_pod.sh"
CONFIG, WORKDIR = "configs/pretrain.py:base", "gs://bucket/runs/base"
TRICKY = ["--config.train.note=two words", "it's", "$HOME", "a;b"]  # spaces, a quote, no expansion, no 2nd command


def launch(tmp_path: pathlib.Path, **env: str) -> str:
  """Runs the pod script with a stub gcloud; returns the --command string it was given."""
  bin_dir, logs = tmp_path / "bin", tmp_path / "logs"
  logs.mkdir(exist_ok=True)
  write_stub(bin_dir, "gcloud")
  full_env = {k: v for k, v in os.environ.items() if not k.startswith("KORPAT_")}
  full_env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(logs), **env)
  result = run_script([str(SCRIPT), "my-tpu", "us-central2-b", CONFIG, WORKDIR, *TRICKY], full_env, tmp_path)
  assert result.returncode == 0, result.stderr
  [argv] = calls(logs, "gcloud")
  assert argv[:9] == ["compute", "tpus", "tpu-vm", "ssh", "my-tpu", "--zone", "us-central2-b", "--worker=all",
                      "--command"]
  assert argv[9].startswith("bash -lc ")  # a login shell: ~/.profile puts ~/.local/bin on PATH
  return argv[9]


def fake_home(tmp_path: pathlib.Path) -> pathlib.Path:
  """A worker's home with the checkout in ~/korpat-jax."""
  home = tmp_path / "home"
  (home / "korpat-jax").mkdir(parents=True)
  return home


def run_on_worker(command: str, home: pathlib.Path, logs: pathlib.Path) -> None:
  """What sshd does with --command: the user's shell, -c, started in the home directory, with a bare PATH."""
  env = dict(HOME=str(home), PATH="/usr/bin:/bin", STUB_LOG=str(logs), USER=os.environ.get("USER", "worker"))
  result = subprocess.run([require_bash(), "-c", command], env=env, cwd=home, capture_output=True, text=True,
                          timeout=60)
  assert result.returncode == 0, result.stderr


def expected_argv(command: str = "pretrain") -> list[str]:
  return [command, "--config", CONFIG, "--workdir", WORKDIR, "--config.distributed.mode=auto", *TRICKY]


def test_venv_is_activated_and_args_arrive_intact(tmp_path):
  home = fake_home(tmp_path)
  venv = home / "envs" / "korpat venv"
  write_stub(venv / "bin", "korpat-jax")
  (venv / "bin" / "activate").write_text(f'export VIRTUAL_ENV="{venv}"\nexport PATH="$VIRTUAL_ENV/bin:$PATH"\n')
  command = launch(tmp_path, KORPAT_VENV="envs/korpat venv", KORPAT_COMMAND="finetune")
  worker_logs = tmp_path / "worker"
  worker_logs.mkdir()
  run_on_worker(command, home, worker_logs)
  assert calls(worker_logs, "korpat-jax") == [expected_argv("finetune")]
  assert (worker_logs / "korpat-jax.cwd").read_text().strip() == str(home / "korpat-jax")
  assert stub_env(worker_logs, "korpat-jax")["VIRTUAL_ENV"] == str(venv)


def test_user_install_is_found_through_the_login_shell(tmp_path):
  """No KORPAT_VENV: `pip install --user` put korpat-jax in ~/.local/bin, on PATH only through ~/.profile."""
  home = fake_home(tmp_path)
  write_stub(home / ".local" / "bin", "korpat-jax")
  (home / ".profile").write_text('PATH="$HOME/.local/bin:$PATH"\n')
  command = launch(tmp_path)
  assert "activate" not in command
  worker_logs = tmp_path / "worker"
  worker_logs.mkdir()
  run_on_worker(command, home, worker_logs)
  assert calls(worker_logs, "korpat-jax") == [expected_argv()]
  assert (worker_logs / "korpat-jax.cwd").read_text().strip() == str(home / "korpat-jax")


def test_missing_arguments_give_the_usage(tmp_path):
  result = run_script([str(SCRIPT), "my-tpu", "us-central2-b"], dict(os.environ), tmp_path)
  assert result.returncode != 0 and "usage: tpu_vm_pod.sh TPU_NAME ZONE CONFIG WORKDIR" in result.stderr
