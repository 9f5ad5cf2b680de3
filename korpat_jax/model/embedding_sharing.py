"""How pretraining's discriminator shares the word embeddings with the generator (config.objective.embedding_sharing).

tied  google-research/electra (the default): one word-embedding table E_G that both losses train.
gdes  DeBERTa-v3's gradient-disentangled embedding sharing (He et al. 2021, "DeBERTaV3: Improving DeBERTa using
      ELECTRA-Style Pre-Training with Gradient-Disentangled Embedding Sharing"): the discriminator reads
      E_D = stop_gradient(E_G) + delta. E_G (embeddings/word_embeddings/embedding, also the generator's tied output
      projection) learns only from the generator's MLM loss; delta (EMBEDDING_DELTA_PATH, [V, E], zero at init) only
      from replaced token detection, so the two losses no longer pull one table apart ("tug-of-war").
      As in DeBERTa-v3 only the token table is disentangled: position and token-type embeddings and the embedding
      LayerNorm stay shared, trained by both losses.

A trained gdes discriminator is a plain ELECTRA whose word table is E_G + delta: `fold_embedding_delta` (fine-tuning
and the HF export read that; the generator keeps E_G alone).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from korpat_jax.model.config import ElectraConfig

Path = tuple[str, ...]
K = TypeVar("K", bound=Hashable)

WORD_EMBEDDINGS_PATH: Path = ("embeddings", "word_embeddings", "embedding")
EMBEDDING_DELTA_PATH: Path = ("discriminator_embeddings_delta", "word_embeddings", "embedding")


class EmbeddingDelta(nn.Module):
  """The discriminator's own word-embedding delta [V, E] under gdes, zero at init (the discriminator starts out
  reading exactly E_G, as a tied model would)."""

  cfg: ElectraConfig

  def setup(self):
    self.word_embeddings = nn.Embed(self.cfg.vocab_size, self.cfg.embedding_size, dtype=self.cfg.compute_dtype,
                                    param_dtype=jnp.float32, embedding_init=nn.initializers.zeros_init(),
                                    name="word_embeddings")

  def table(self) -> jax.Array:
    return self.word_embeddings.embedding


def disentangled_words(shared: jax.Array, delta: jax.Array, input_ids: jax.Array, dtype: jnp.dtype) -> jax.Array:
  """stop_gradient(shared)[ids] + delta[ids] at `dtype`: summed in float32 before the cast, so the lookup computes
  what the folded table (shared + delta) does in a plain ELECTRA."""
  words = jax.lax.stop_gradient(jnp.take(shared, input_ids, axis=0)) + jnp.take(delta, input_ids, axis=0)
  return words.astype(dtype)


def has_embedding_delta(params: Mapping[str, Any]) -> bool:
  return EMBEDDING_DELTA_PATH[0] in params


def fold_embedding_delta(params: Mapping[str, Any]) -> dict[str, Any]:
  """The discriminator's view of a nested ElectraPretrainer tree: word embeddings E_G + delta and no delta param
  (the tree as it is when it has none). The generator's subtrees are kept; they are only right with E_G, so take a
  generator from the unfolded tree."""
  if not has_embedding_delta(params):
    return dict(params)
  rest = {k: v for k, v in params.items() if k != EMBEDDING_DELTA_PATH[0]}
  folded = _get(rest, WORD_EMBEDDINGS_PATH) + _get(params, EMBEDDING_DELTA_PATH)
  return _replace(rest, WORD_EMBEDDINGS_PATH, folded)


def fold_flat_embedding_delta(flat: Mapping[K, Any], key: Callable[[Path], K]) -> dict[K, Any]:
  """`fold_embedding_delta` of a flat dict whose keys are `key(path)`: path tuples (`key=tuple`, hf_names.flatten)
  or jax key strings (`key=keystr`, what Task.init_params takes)."""
  word, delta = key(WORD_EMBEDDINGS_PATH), key(EMBEDDING_DELTA_PATH)
  if delta not in flat:
    return dict(flat)
  folded = {k: v for k, v in flat.items() if k != delta}
  folded[word] = flat[word] + flat[delta]
  return folded


def keystr(path: Path) -> str:
  """jax.tree_util.keystr of a path of dict keys: ('a', 'b') -> "['a']['b']"."""
  return "".join(f"['{name}']" for name in path)


def _get(tree: Mapping[str, Any], path: Path) -> Any:
  for name in path:
    tree = tree[name]
  return tree


def _replace(tree: Mapping[str, Any], path: Path, value: Any) -> dict[str, Any]:
  """A copy of `tree` with `value` at `path`; the dicts along the path are copied, everything else is shared."""
  head, *rest = path
  return {**tree, head: _replace(tree[head], tuple(rest), value) if rest else value}
