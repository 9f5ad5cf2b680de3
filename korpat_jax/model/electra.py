"""ELECTRA in Flax Linen, named so that every parameter maps one to one onto HF transformers' `modeling_electra`.

Parameter tree of `ElectraPretrainer` (HF name in brackets):
  embeddings/{word,position,token_type}_embeddings/embedding   [electra.embeddings.*_embeddings.weight]
  embeddings/LayerNorm/{scale,bias}                            [electra.embeddings.LayerNorm.{weight,bias}]
  {generator,discriminator}/embeddings_project/{kernel,bias}    (only when embedding_size != hidden_size)
  {generator,discriminator}/layer_{i}/attention/self/{query,key,value}/{kernel,bias}
  {generator,discriminator}/layer_{i}/attention/output/{dense,LayerNorm}/...
  {generator,discriminator}/layer_{i}/intermediate/dense/...
  {generator,discriminator}/layer_{i}/output/{dense,LayerNorm}/...
  generator_predictions/{dense,LayerNorm}/...   generator_lm_head/bias
  discriminator_predictions/{dense,dense_prediction}/...
  discriminator_embeddings_delta/word_embeddings/embedding      (only with embedding_sharing "gdes"; no HF name)
The embeddings are shared by generator and discriminator (ELECTRA's default); nothing else is tied, except the
generator's output projection, which is the transposed word-embedding table. With embedding_sharing "gdes" the
discriminator reads stop_gradient(word table) + its own delta instead (model/embedding_sharing.py).
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from korpat_jax.model.config import ElectraConfig, EncoderConfig
from korpat_jax.model import ops
from korpat_jax.model.dropout import Dropout
from korpat_jax.model.embedding_sharing import EmbeddingDelta, disentangled_words


def dense(features: int, cfg: ElectraConfig, name: str) -> nn.Dense:
  """A Dense layer with ELECTRA's init, float32 parameters and the model's compute dtype (heads use it too)."""
  return nn.Dense(features, dtype=cfg.compute_dtype, param_dtype=jnp.float32,
                  kernel_init=nn.initializers.normal(cfg.initializer_range), dot_general=ops.dense_dot, name=name)


def _layer_norm(cfg: ElectraConfig, name: str = "LayerNorm") -> nn.LayerNorm:
  return nn.LayerNorm(epsilon=cfg.layer_norm_eps, dtype=cfg.compute_dtype, param_dtype=jnp.float32, name=name)


def _gelu(x: jax.Array) -> jax.Array:
  return ops.gelu(x)


def padding_lengths(mask: jax.Array) -> jax.Array:
  """Real tokens per example, int32 [B], from a right-padded [B, S] attention mask.

  At least 1: an all-padding row (fine-tuning fills its last batch with them) then attends to its first token
  instead of handing cuDNN an empty softmax; nothing reads such a row.
  """
  return jnp.maximum(mask.astype(jnp.int32).sum(axis=-1, dtype=jnp.int32), 1)


def padding_arguments(mask: jax.Array, impl: str) -> dict[str, jax.Array]:
  """How `jax.nn.dot_product_attention` learns which tokens of the [B, S] `mask` are padding, for `impl`.

  auto / xla: the boolean key mask [B, 1, 1, S] (the numerics the model always had). cudnn: the per-example
  `query_seq_lengths` / `key_value_seq_lengths` (cuDNN's padding mask), because cuDNN takes a mask only as an
  additive bias of shape [*, *, S, S] and a broadcast [B, 1, 1, S] one fails when the step is traced ("Bias must
  have same seq length as QKV", jax-ml/jax#28974). Padding is always on the right here, so the lengths say the
  same at every real query position; padded query positions may differ (cuDNN leaves them out, the mask does not),
  and nothing reads them: attention reads keys only at real tokens, and the losses and QA's span scores mask
  padding out.
  """
  if impl == "cudnn":
    lengths = padding_lengths(mask)
    return {"query_seq_lengths": lengths, "key_value_seq_lengths": lengths}
  return {"mask": mask[:, None, None, :].astype(bool)}


class Embeddings(nn.Module):
  """word + position + token type -> LayerNorm -> dropout, at embedding_size."""

  cfg: ElectraConfig

  def setup(self):
    cfg, init = self.cfg, nn.initializers.normal(self.cfg.initializer_range)
    embed = lambda n, name: nn.Embed(n, cfg.embedding_size, dtype=cfg.compute_dtype, param_dtype=jnp.float32,
                                     embedding_init=init, name=name)
    self.word_embeddings = embed(cfg.vocab_size, "word_embeddings")
    self.position_embeddings = embed(cfg.max_position_embeddings, "position_embeddings")
    self.token_type_embeddings = embed(cfg.type_vocab_size, "token_type_embeddings")
    self.LayerNorm = _layer_norm(cfg)
    self.dropout = Dropout(cfg.dropout_rate, cfg.dropout_rng)

  def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array, deterministic: bool,
               word_delta: Optional[jax.Array] = None) -> jax.Array:
    """`word_delta` [V, E]: read stop_gradient(word table) + word_delta instead of the word table (gdes)."""
    positions = jnp.arange(input_ids.shape[-1])[None, :]
    words = self.word_embeddings(input_ids) if word_delta is None else \
        disentangled_words(self.word_embeddings.embedding, word_delta, input_ids, self.cfg.compute_dtype)
    x = words + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
    return self.dropout(self.LayerNorm(x), deterministic=deterministic)

  def attend(self, x: jax.Array) -> jax.Array:
    """x [..., E] -> logits [..., V] against the (tied) word-embedding table."""
    return self.word_embeddings.attend(x)


class SelfAttentionQKV(nn.Module):
  """Multi-head self attention (HF `attention.self`): query/key/value projections and the attention itself."""

  cfg: ElectraConfig
  enc: EncoderConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool) -> jax.Array:
    cfg, enc = self.cfg, self.enc
    batch, length, _ = x.shape
    split = lambda t: t.reshape(batch, length, enc.num_heads, enc.head_dim)
    q, k, v = (split(dense(enc.hidden_size, cfg, n)(x)) for n in ("query", "key", "value"))
    use_dropout = cfg.attention_dropout_rate > 0.0 and not deterministic
    if use_dropout:
      # The fused kernels have no dropout on the attention probabilities; ELECTRA's recipe has 0.1.
      attention_mask = mask[:, None, None, :].astype(bool)  # [B, 1, 1, S]: keys that are not padding
      logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(enc.head_dim).astype(q.dtype)
      logits = jnp.where(attention_mask, logits, jnp.finfo(logits.dtype).min)
      probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(q.dtype)
      probs = Dropout(cfg.attention_dropout_rate, cfg.dropout_rng)(probs, deterministic=False)
      out = jnp.einsum("bhqk,bkhd->bqhd", probs, v)
    else:
      impl = None if cfg.attention_impl == "auto" else cfg.attention_impl  # None: JAX's default, XLA (config.py)
      out = jax.nn.dot_product_attention(q, k, v, **padding_arguments(mask, cfg.attention_impl),
                                         implementation=impl)
    return out.reshape(batch, length, enc.hidden_size)


class AddNorm(nn.Module):
  """dense -> dropout -> LayerNorm(x + residual): HF's `attention.output` and `output`."""

  cfg: ElectraConfig
  features: int

  @nn.compact
  def __call__(self, x: jax.Array, residual: jax.Array, deterministic: bool) -> jax.Array:
    x = dense(self.features, self.cfg, "dense")(x)
    x = Dropout(self.cfg.dropout_rate, self.cfg.dropout_rng)(x, deterministic=deterministic)
    return _layer_norm(self.cfg)(x + residual)


class Attention(nn.Module):
  cfg: ElectraConfig
  enc: EncoderConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool) -> jax.Array:
    attended = SelfAttentionQKV(self.cfg, self.enc, name="self")(x, mask, deterministic)
    return AddNorm(self.cfg, self.enc.hidden_size, name="output")(attended, x, deterministic)


class Intermediate(nn.Module):
  cfg: ElectraConfig
  enc: EncoderConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return _gelu(dense(self.enc.intermediate_size, self.cfg, "dense")(x))


class Layer(nn.Module):
  """One post-LN transformer layer."""

  cfg: ElectraConfig
  enc: EncoderConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool) -> jax.Array:
    x = Attention(self.cfg, self.enc, name="attention")(x, mask, deterministic)
    h = Intermediate(self.cfg, self.enc, name="intermediate")(x)
    return AddNorm(self.cfg, self.enc.hidden_size, name="output")(h, x, deterministic)


class Encoder(nn.Module):
  """embeddings_project (when E != H) and the layer stack; input is the shared embedding output."""

  cfg: ElectraConfig
  enc: EncoderConfig

  @nn.compact
  def __call__(self, embedded: jax.Array, mask: jax.Array, deterministic: bool) -> jax.Array:
    x = embedded
    if self.cfg.embedding_size != self.enc.hidden_size:
      x = dense(self.enc.hidden_size, self.cfg, "embeddings_project")(x)
    layer_cls = nn.remat(Layer, static_argnums=(3,)) if self.cfg.remat else Layer
    for i in range(self.enc.num_layers):
      x = layer_cls(self.cfg, self.enc, name=f"layer_{i}")(x, mask, deterministic)
    return x


class GeneratorPredictions(nn.Module):
  """dense(Hg -> E) + GELU + LayerNorm(E); the vocab projection happens against the tied embeddings."""

  cfg: ElectraConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return _layer_norm(self.cfg)(_gelu(dense(self.cfg.embedding_size, self.cfg, "dense")(x)))


class DiscriminatorPredictions(nn.Module):
  """dense(H -> H) + GELU + dense(H -> 1): one replaced-token logit per position."""

  cfg: ElectraConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = _gelu(dense(self.cfg.discriminator.hidden_size, self.cfg, "dense")(x))
    return dense(1, self.cfg, "dense_prediction")(h)[..., 0]


class GeneratorLMHeadBias(nn.Module):
  vocab_size: int

  @nn.compact
  def __call__(self, logits: jax.Array) -> jax.Array:
    bias = self.param("bias", nn.initializers.zeros_init(), (self.vocab_size,), jnp.float32)
    return ops.add_bias(logits, bias)


class ElectraPretrainer(nn.Module):
  """Generator + discriminator over shared embeddings (the word table disentangled under gdes).

  The pretraining objective (masking, sampling, losses) lives in `korpat_jax.objective` as pure functions; this
  module only offers the two forward passes it needs.
  """

  cfg: ElectraConfig

  def setup(self):
    cfg = self.cfg
    self.embeddings = Embeddings(cfg)
    self.generator = Encoder(cfg, cfg.generator)
    self.generator_predictions = GeneratorPredictions(cfg)
    self.generator_lm_head = GeneratorLMHeadBias(cfg.vocab_size)
    self.discriminator = Encoder(cfg, cfg.discriminator)
    self.discriminator_predictions = DiscriminatorPredictions(cfg)
    if cfg.embedding_sharing == "gdes":
      self.discriminator_embeddings_delta = EmbeddingDelta(cfg)

  def generator_logits(self, input_ids: jax.Array, token_type_ids: jax.Array, attention_mask: jax.Array,
                       positions: Optional[jax.Array] = None, deterministic: bool = True) -> jax.Array:
    """MLM logits (float32) [B, N, V] at `positions` [B, N], or at every position [B, S, V] when None.

    Gathering before the vocab projection keeps the [B, S, V] tensor out of training.
    """
    hidden = self.generator(self.embeddings(input_ids, token_type_ids, deterministic), attention_mask,
                            deterministic)
    if positions is not None:
      hidden = jnp.take_along_axis(hidden, positions[..., None], axis=1)
    logits = self.embeddings.attend(self.generator_predictions(hidden))
    return self.generator_lm_head(logits.astype(jnp.float32))

  def discriminator_logits(self, input_ids: jax.Array, token_type_ids: jax.Array, attention_mask: jax.Array,
                           deterministic: bool = True) -> jax.Array:
    """Replaced-token logits (float32) [B, S]."""
    delta = self.discriminator_embeddings_delta.table() if self.cfg.embedding_sharing == "gdes" else None
    hidden = self.discriminator(self.embeddings(input_ids, token_type_ids, deterministic, delta), attention_mask,
                                deterministic)
    return self.discriminator_predictions(hidden).astype(jnp.float32)

  def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array, attention_mask: jax.Array,
               deterministic: bool = True) -> tuple[jax.Array, jax.Array]:
    """Both heads on the same ids; used to create every parameter at init."""
    return (self.generator_logits(input_ids, token_type_ids, attention_mask, None, deterministic),
            self.discriminator_logits(input_ids, token_type_ids, attention_mask, deterministic))
