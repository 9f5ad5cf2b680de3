"""Benchmarks of korpat-jax, run from the repository root as `python -m benchmarks.SUB.NAME` (figures in BENCHMARKS.md,
full tables in results/):

  speed/     korpat-jax's own stages: pretraining step, input pipeline, corpus preparation, MWP tokenizer, user
             dictionary at the seed's size, the projected wall time of the seed's run (a calculator)
  parity/    korpat-jax against a PyTorch / HF transformers peer doing the same work: step time, learning curves,
             fine-tuning scores, exported outputs (needs torch and transformers)
  gpu/       the one-command GPU benchmark (`bash benchmarks/gpu/run.sh`, `python -m benchmarks.gpu`)
  transfer/  pretraining budget -> fine-tuning score (`python -m benchmarks.transfer`) and the linear probe
  common     what the scripts share (repository root, configs with overrides, CPU pinning, machine description)
  results/   the measured tables (data, not code)
"""
