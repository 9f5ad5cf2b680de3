"""ELECTRA pretraining's step (the pretraining task's): the loss of a batch (masking, generator, sampling,
discriminator) and its update with gradient accumulation, and the evaluation step.

Everything here is traced once and runs on device: no host syncs, metrics come back as device arrays. The masking
strategy (korpat_jax.masking) is built once by the task and passed in.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from korpat_jax import objective
from korpat_jax.input_pipeline import SKIPPED_RECORDS
from korpat_jax.masking import MaskingStrategy
from korpat_jax.model import ElectraPretrainer
from korpat_jax.train_state import TrainState, accumulated_grads, apply_gradients, new_state

Batch = Mapping[str, jax.Array]  # input_ids, token_type_ids, attention_mask: int32 [B, S]


def init_params(model: ElectraPretrainer, rng: jax.Array, seq_len: int) -> Any:
  ids = jnp.zeros((1, seq_len), jnp.int32)
  return model.init(rng, ids, ids, jnp.ones_like(ids))["params"]


def create_train_state(model: ElectraPretrainer, tx: optax.GradientTransformation, seed: int,
                       seq_len: int) -> TrainState:
  rng = jax.random.PRNGKey(seed)
  return new_state(init_params(model, jax.random.fold_in(rng, 0), seq_len), tx, jax.random.fold_in(rng, 1))


def electra_sums(model: ElectraPretrainer, params: Any, batch: Batch, masked: objective.Masked,
                 sample_keys: jax.Array, rng: jax.Array, *, temperature: float, deterministic: bool
                 ) -> dict[str, jax.Array]:
  """Loss sums and counts of one (micro-)batch: generator MLM, sampling, discriminator.

  `sample_keys` [B, 2] holds one sampling key per example, so the replaced tokens of an example do not depend on
  how the batch is split into micro-batches or devices. `rng` drives dropout.
  """
  gen_rng, disc_rng = jax.random.split(rng)
  variables = {"params": params}
  gen_logits = model.apply(variables, masked.input_ids, batch["token_type_ids"], batch["attention_mask"],
                           masked.positions, deterministic, rngs={"dropout": gen_rng},
                           method=ElectraPretrainer.generator_logits)
  gen_loss_sum, gen_correct = objective.mlm_loss_sum(gen_logits, masked.labels, masked.weights)
  sampled = jax.vmap(objective.sample_tokens, in_axes=(0, 0, None))(sample_keys, gen_logits, temperature)
  fake_ids, is_fake = objective.replace_tokens(batch["input_ids"], masked, sampled)
  disc_logits = model.apply(variables, fake_ids, batch["token_type_ids"], batch["attention_mask"], deterministic,
                            rngs={"dropout": disc_rng}, method=ElectraPretrainer.discriminator_logits)
  return {
      "gen_loss_sum": gen_loss_sum,
      "gen_correct": gen_correct,
      "disc_loss_sum": objective.discriminator_loss_sum(disc_logits, is_fake, batch["attention_mask"]),
      "num_masked": masked.weights.sum(),
      "num_tokens": batch["attention_mask"].sum().astype(jnp.float32),
      **objective.discriminator_counts(disc_logits, is_fake, batch["attention_mask"]),
  }


def make_train_step(model: ElectraPretrainer, tx: optax.GradientTransformation, schedule: optax.Schedule,
                    masking: MaskingStrategy, *, temperature: float, disc_weight: float, grad_accum_steps: int = 1,
                    skip_nonfinite: bool = False
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
  """A pure `(state, batch) -> (state, metrics)`; jit it with shardings in the trainer.

  Masking is drawn for the whole batch first, so the loss denominators (masked positions, non-pad tokens) are those
  of the global batch and accumulating `grad_accum_steps` micro-batches gives the gradient of the full batch.
  """
  disc_weight = float(disc_weight)

  def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
    batch = dict(batch)
    skipped = batch.pop(SKIPPED_RECORDS, None)  # the input's count of bad records left out, not a model input
    rng = jax.random.fold_in(state.rng, state.step)
    mask_rng, sample_rng, micro_rng = jax.random.split(rng, 3)
    sample_keys = jax.random.split(sample_rng, batch["input_ids"].shape[0])
    masked = masking.mask(mask_rng, batch)
    num_masked = jnp.maximum(masked.weights.sum(), 1.0)
    num_tokens = jnp.maximum(batch["attention_mask"].sum().astype(jnp.float32), 1.0)

    def loss_fn(params, inputs, micro_rng):
      micro_batch, micro_masked, micro_keys = inputs
      sums = electra_sums(model, params, micro_batch, micro_masked, micro_keys, micro_rng,
                          temperature=temperature, deterministic=False)
      loss = sums["gen_loss_sum"] / num_masked + disc_weight * sums["disc_loss_sum"] / num_tokens
      return loss, sums

    grads, sums = accumulated_grads(jax.grad(loss_fn, has_aux=True), state.params,
                                    (dict(batch), masked, sample_keys), micro_rng, grad_accum_steps)
    metrics = objective.finalize_metrics(sums, disc_weight)
    new, update_metrics = apply_gradients(state, grads, tx, metrics["loss"], skip_nonfinite)
    metrics.update(update_metrics, learning_rate=schedule(state.step))
    if skipped is not None:  # data.on_bad_record=skip: the records skipped so far, all processes together
      metrics[SKIPPED_RECORDS] = skipped.sum()
    return new, metrics

  return train_step


def make_eval_step(model: ElectraPretrainer, masking: MaskingStrategy, *, temperature: float
                   ) -> Callable[[Any, Batch, jax.Array], dict[str, jax.Array]]:
  """`(params, batch, rng) -> summed counts`, without dropout; sum over batches, then objective.finalize_metrics."""
  def eval_step(params, batch, rng):
    mask_rng, sample_rng, rng = jax.random.split(rng, 3)
    masked = masking.mask(mask_rng, batch)
    sample_keys = jax.random.split(sample_rng, batch["input_ids"].shape[0])
    return electra_sums(model, params, batch, masked, sample_keys, rng, temperature=temperature,
                        deterministic=True)
  return eval_step
