"""model.attention_impl=cudnn on CPU: the traced model and train step reach cuDNN's shape checks (jax-ml/jax#28974),
and the sequence-length formulation of the padding that cuDNN gets equals the boolean-mask one at real tokens.

cuDNN cannot run here, but JAX's cuDNN attention checks its operand shapes while tracing, after asking for the
cuDNN version; with that one lookup stubbed, `jax.eval_shape` / `jax.make_jaxpr` trace the fused-attention call
on CPU (its abstract evaluation needs no GPU), so a padding mask the kernel cannot take fails here as on a GPU.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src.cudnn import fused_attention_stablehlo

from helpers import pretrain_config
from korpat_jax import masking, objective
from korpat_jax.model import ElectraConfig, ElectraPretrainer
from korpat_jax.model.electra import padding_arguments, padding_lengths
from korpat_jax.optimizer import make_optimizer
from korpat_jax.pretraining_step import create_train_state, make_train_step

SMALL = dict(vocab_size=128, embedding_size=16, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
             generator_hidden_fraction=0.5, dtype="bfloat16", attention_impl="cudnn", attention_dropout_rate=0.0)
CUDNN_9_10 = 91000


@pytest.fixture
def cudnn_on_cpu(monkeypatch):
  """The one GPU-only lookup on the trace path: `check_cudnn_version` raises 'cuDNN is not detected.' on CPU."""
  monkeypatch.setattr(fused_attention_stablehlo, "check_cudnn_version", lambda: CUDNN_9_10)


def _padded_batch(batch: int = 4, seq_len: int = 16) -> dict[str, jax.Array]:
  """Right-padded rows of different lengths, one of them all padding (fine-tuning's filler rows)."""
  lengths = jnp.array([seq_len, seq_len // 2, 3, 0][:batch])
  mask = (jnp.arange(seq_len)[None, :] < lengths[:, None]).astype(jnp.int32)
  ids = jnp.where(mask == 1, 7, 0).astype(jnp.int32)
  return {"input_ids": ids, "token_type_ids": jnp.zeros_like(ids), "attention_mask": mask}


@pytest.mark.skipif(fused_attention_stablehlo.cuda_versions is not None, reason="cuDNN is installed here")
def test_stub_is_needed_so_the_cpu_trace_reaches_cudnn():
  q = jnp.zeros((2, 16, 2, 16), jnp.bfloat16)
  with pytest.raises(RuntimeError, match="cuDNN is not detected"):
    jax.eval_shape(lambda q: jax.nn.dot_product_attention(q, q, q, implementation="cudnn"), q)


def test_cudnn_model_forward_and_backward_trace(cudnn_on_cpu):
  model = ElectraPretrainer(ElectraConfig.from_config(SMALL))
  b = _padded_batch()
  args = (b["input_ids"], b["token_type_ids"], b["attention_mask"])
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), *args))["params"]
  loss = lambda p: model.apply({"params": p}, *args, method=ElectraPretrainer.discriminator_logits).sum()
  grads = jax.eval_shape(jax.grad(loss), params)
  assert jax.tree.structure(grads) == jax.tree.structure(params)
  jaxpr = str(jax.make_jaxpr(jax.grad(loss))(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)))
  # the cuDNN kernels themselves were traced, forward and backward, not an XLA fallback
  assert "dot_product_attention_fwd_wrapper" in jaxpr and "dot_product_attention_bwd_wrapper" in jaxpr


def test_cudnn_pretraining_train_step_traces(cudnn_on_cpu):
  config = pretrain_config("tiny", **{"model.vocab_size": 128, "model.dtype": "bfloat16",
                                      "model.attention_impl": "cudnn", "model.attention_dropout_rate": 0.0})
  model = ElectraPretrainer(ElectraConfig.from_config(config.model))
  tx, schedule = make_optimizer(config.optimizer, 100)
  seq_len = 16
  strategy = masking.make_masking(config.objective, objective.SpecialIds(), seq_len)
  step = make_train_step(model, tx, schedule, strategy, temperature=config.objective.temperature,
                         disc_weight=config.objective.disc_weight)
  state = jax.eval_shape(lambda: create_train_state(model, tx, 0, seq_len))
  new_state, metrics = jax.eval_shape(step, state, _padded_batch(seq_len=seq_len))
  assert jax.tree.structure(new_state.params) == jax.tree.structure(state.params)
  assert metrics["loss"].shape == ()


def test_padding_lengths_count_real_tokens_and_never_zero():
  np.testing.assert_array_equal(padding_lengths(_padded_batch()["attention_mask"]), [16, 8, 3, 1])
  assert padding_lengths(_padded_batch()["attention_mask"]).dtype == jnp.int32


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_lengths_equal_the_mask_at_real_query_positions(dtype):
  """cuDNN's arguments, run by the XLA implementation, against the xla path's boolean mask: equal wherever the
  query is a real token (padded queries may differ; nothing reads them)."""
  batch, seq_len, heads, head_dim = 4, 16, 2, 16
  q, k, v = (jax.random.normal(jax.random.key(i), (batch, seq_len, heads, head_dim), dtype) for i in range(3))
  mask = _padded_batch(batch, seq_len)["attention_mask"]
  as_mask = jax.nn.dot_product_attention(q, k, v, **padding_arguments(mask, "xla"), implementation="xla")
  as_lengths = jax.nn.dot_product_attention(q, k, v, **padding_arguments(mask, "cudnn"), implementation="xla")
  real = np.asarray(mask, bool)
  assert real.sum() > 0 and (~real).sum() > 0
  np.testing.assert_array_equal(np.asarray(as_lengths[real], np.float32), np.asarray(as_mask[real], np.float32))
  assert np.isfinite(np.asarray(as_lengths, np.float32)).all()


def test_xla_and_auto_keep_the_boolean_key_mask():
  mask = _padded_batch()["attention_mask"]
  for impl in ("xla", "auto"):
    args = padding_arguments(mask, impl)
    assert set(args) == {"mask"} and args["mask"].shape == (4, 1, 1, 16) and args["mask"].dtype == jnp.bool_


def test_cudnn_head_sizes_are_checked_with_the_key_named():
  from korpat_jax.errors import ConfigError
  from korpat_jax.model.config import check_model_block
  good = {"vocab_size": 128, "embedding_size": 16, "hidden_size": 384, "num_layers": 1, "num_heads": 6,
          "intermediate_size": 64, "generator_hidden_fraction": 1 / 3, "dtype": "bfloat16",
          "attention_impl": "cudnn", "attention_dropout_rate": 0.0}
  check_model_block(good)  # heads of 64; the generator: 128 hidden, 2 heads of 64
  with pytest.raises(ConfigError, match=r"head size 12 \(model.hidden_size / model.num_heads\)"):
    check_model_block({**good, "hidden_size": 36, "num_heads": 3})
  with pytest.raises(ConfigError, match="head size 85 \\(the generator's"):
    check_model_block({**good, "hidden_size": 256, "num_heads": 4})
  check_model_block({**good, "hidden_size": 256, "num_heads": 4, "attention_impl": "xla"})  # only cuDNN cares
