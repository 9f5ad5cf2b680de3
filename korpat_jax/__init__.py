"""korpat-jax: Korean patent ELECTRA in JAX/Flax."""

__version__ = "0.1.0"
