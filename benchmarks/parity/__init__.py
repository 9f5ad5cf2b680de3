"""korpat-jax against a PyTorch / HF transformers peer doing the same work (each module is run as
`python -m benchmarks.parity.NAME --help`; torch and transformers needed):

  torch_electra_step  the pretraining step against the same step in PyTorch (HF ELECTRA modules), on CPU
  finetune_speed      the fine-tuning train step against HF transformers', per head
  finetune_parity     NER scores of the same init fine-tuned by korpat-jax and by HF transformers
  demo_recipe         the demo's learning curve against a PyTorch ELECTRA with the same sizes, data and recipe
  export_hf           export / import-hf at real sizes: wall time, transformers' outputs against Flax's
  hf_finetune         the HF fine-tuning twin that finetune_speed and finetune_parity share (not a benchmark)
"""
