"""Flax <-> HF transformers parameter names and layouts, as pure functions over flat dicts.

A flat Flax dict maps a path tuple, e.g. ("discriminator", "layer_0", "attention", "self", "query", "kernel"), to an
array; a flat HF dict maps a dotted name, e.g. "electra.encoder.layer.0.attention.self.query.weight", to an array.
A `Layout` says which top-level Flax subtree becomes which HF prefix; below it the names agree one to one, except
  layer_{i}           -> encoder.layer.{i}
  kernel [in, out]    -> weight [out, in]   (transposed)
  scale / embedding   -> weight
The encoder's own `embeddings_project` sits at the HF model root (`electra.embeddings_project`), which is where the
encoder subtree lands, so it needs no special case.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from korpat_jax.errors import KorpatError

Path = tuple[str, ...]
Layout = Mapping[str, str]  # top-level Flax module -> HF prefix

# ElectraForPreTraining, from the ElectraPretrainer tree (a gdes run's discriminator_embeddings_delta has no HF name:
# the exporter folds it into the word embeddings first, model/embedding_sharing.py).
DISCRIMINATOR_LAYOUT: Layout = {
    "embeddings": "electra.embeddings",
    "discriminator": "electra",
    "discriminator_predictions": "discriminator_predictions",
}
# ElectraForMaskedLM, from the ElectraPretrainer tree (the tied lm_head weight is added by the exporter).
GENERATOR_LAYOUT: Layout = {
    "embeddings": "electra.embeddings",
    "generator": "electra",
    "generator_predictions": "generator_predictions",
    "generator_lm_head": "generator_lm_head",
}
# The encoder of a korpat_jax.model.heads tree; each head adds its own prefixes (hf_config.layout).
ENCODER_LAYOUT: Layout = {
    "embeddings": "electra.embeddings",
    "discriminator": "electra",
}

_LEAF = {"kernel": "weight", "scale": "weight", "embedding": "weight", "bias": "bias"}
_LAYER = re.compile(r"layer_(\d+)")


def flatten(tree: Mapping[str, Any], prefix: Path = ()) -> dict[Path, Any]:
  flat: dict[Path, Any] = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      flat.update(flatten(value, prefix + (key,)))
    else:
      flat[prefix + (key,)] = value
  return flat


def unflatten(flat: Mapping[Path, Any]) -> dict[str, Any]:
  tree: dict[str, Any] = {}
  for path, value in flat.items():
    node = tree
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = value
  return tree


def hf_name(path: Path, layout: Layout) -> str:
  """The HF state-dict name of one Flax parameter."""
  if path[0] not in layout or path[-1] not in _LEAF:
    raise ValueError(f"no HF name for Flax parameter {'/'.join(path)}")
  parts = [layout[path[0]]]
  for key in path[1:-1]:
    match = _LAYER.fullmatch(key)
    parts += ["encoder", "layer", match.group(1)] if match else [key]
  parts.append(_LEAF[path[-1]])
  return ".".join(parts)


def hf_shape(path: Path, shape: tuple[int, ...]) -> tuple[int, ...]:
  return tuple(reversed(shape)) if path[-1] == "kernel" else tuple(shape)


def _convert(path: Path, array: Any) -> np.ndarray:
  """Flax -> HF and HF -> Flax alike: a kernel transposes, everything else is copied as is."""
  array = np.asarray(array)
  return np.ascontiguousarray(array.T) if path[-1] == "kernel" else array


def in_layout(flat: Mapping[Path, Any], layout: Layout) -> dict[Path, Any]:
  return {path: value for path, value in flat.items() if path[0] in layout}


def to_hf(flat: Mapping[Path, Any], layout: Layout) -> dict[str, np.ndarray]:
  """The HF state dict of the Flax parameters under `layout`'s top-level modules (others are left out)."""
  return {hf_name(path, layout): _convert(path, value) for path, value in in_layout(flat, layout).items()}


def from_hf(state: Mapping[str, Any], expected: Mapping[Path, tuple[int, ...]], layout: Layout,
            source: str) -> dict[Path, np.ndarray]:
  """Flax parameters `expected` (path -> Flax shape) read from an HF state dict.

  A missing name or a shape that differs from the one the config implies is a one-line KorpatError naming the key.
  """
  flat: dict[Path, np.ndarray] = {}
  for path, shape in expected.items():
    name = hf_name(path, layout)
    if name not in state:
      raise KorpatError(f"{source}: missing weight {name} (the config needs shape {list(hf_shape(path, shape))})")
    value = np.asarray(state[name])
    if tuple(value.shape) != hf_shape(path, shape):
      raise KorpatError(f"{source}: {name} has shape {list(value.shape)}, the config needs "
                        f"{list(hf_shape(path, shape))}")
    flat[path] = _convert(path, value).astype(np.float32)
  return flat


def check_shapes(flat: Mapping[Path, Any], expected: Mapping[Path, tuple[int, ...]], source: str) -> None:
  """Every expected Flax parameter is present with its shape; else a one-line KorpatError naming the key."""
  for path, shape in expected.items():
    key = "/".join(path)
    if path not in flat:
      raise KorpatError(f"{source}: parameter {key} is missing (the model config needs shape {list(shape)})")
    got = tuple(np.shape(flat[path]))
    if got != tuple(shape):
      raise KorpatError(f"{source}: parameter {key} has shape {list(got)}, the model config needs {list(shape)}")
