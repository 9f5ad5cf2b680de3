"""Serving (inference) speed of an exported model (each module is run as `python -m benchmarks.serving.NAME --help`):

  onnx_speed  onnxruntime (`export --format onnx`) against PyTorch (the HF export) and the JAX forward, on CPU
"""
