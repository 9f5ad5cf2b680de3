"""Speed and memory of korpat-jax's train steps on one GPU: ELECTRA-Base pretraining and fine-tuning at seq 512.

    bash benchmarks/gpu/run.sh preflight                          # first: ~90 s, every row kind once (preflight.py)
    bash benchmarks/gpu/run.sh                                    # one H200, < 6.5 minutes; tables and traces in $OUT
    python -m benchmarks.gpu --out gpu_out                        # the same, without the wheel install
    python -m benchmarks.gpu --cpu-smoke --out /tmp/smoke         # tiny sizes on CPU, 1-2 steps a case (the test)
    python -m benchmarks.gpu preflight --cpu                      # the preflight on CPU, cuDNN rows traced
    python -m benchmarks.gpu wheels [--check]                     # the wheels the image lacks (wheels.py)

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
fit the time budget is listed as not run, with the reason. gpu.json and gpu.md are rewritten after every timed
case and every probe, so a run cut short still leaves its numbers (the header says how far it got).

The code is in this package (one module a concern, listed in its __init__); this file is the entry point.
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
  sys.exit(main(description=__doc__.split("\n\n")[0]))
