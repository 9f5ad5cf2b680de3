"""Export to HF transformers (PyTorch) directories and import HF ELECTRA weights back into an Orbax checkpoint.

`korpat-jax export` (cli.py) and `korpat-jax import-hf` (import_cli.py); the name and layout mapping is in hf_names.
"""
