"""The transfer benchmark (`python -m benchmarks.transfer --help`): pretraining budget -> fine-tuning score, for
korpat-jax, a random init and a PyTorch (HF transformers) ELECTRA peer given the same wall-clock minutes.

  data      DIR/data: the NSMC pretraining corpus and sentiment sets (split by movie), KLUE NER/NLI splits, CPC demo
  pretrain  the `cpu` recipe: tokenizer and records, step timing, korpat-jax runs, the PyTorch peer + import-hf
  finetune  `korpat-jax finetune` jobs per init x set x seed and their scores
  report    results.json, transfer.md (the table) and transfer.png
  worker    runs korpat-jax commands one after another in one process (one JAX import, warm compilation caches)

linear_probe (`python -m benchmarks.transfer.linear_probe --help`), on its own: what a pretraining run's frozen
encoder keeps, read by a linear probe against a random init's.
"""
