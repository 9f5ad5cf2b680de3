"""Tiny ELECTRA models, run directories and Flax/torch forward passes shared by the export tests."""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from korpat_jax import workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.export import hf_names
from korpat_jax.export.task_info import write_task_info
from korpat_jax.model.config import ElectraConfig
from korpat_jax.model.electra import ElectraPretrainer
from korpat_jax.model.heads import task_model

VOCAB_SIZE = 100
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SPECIAL_IDS = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
KOREAN = ["합성", "##세제", "##액", "을", "사용", "한다", ".", "특허", "청구", "항", "발명", "의"]


def tiny_config(embedding_size: int = 16, hidden_size: int = 32) -> ElectraConfig:
  """2 layers; generator hidden = hidden / 2 so that one side has an embeddings_project and, at E=16, one not."""
  return ElectraConfig.from_config({
      "vocab_size": VOCAB_SIZE, "embedding_size": embedding_size, "hidden_size": hidden_size, "num_layers": 2,
      "num_heads": 4, "intermediate_size": 64, "generator_hidden_fraction": 0.5, "max_position_embeddings": 64,
  })


def _perturbed(params: Any, seed: int) -> Any:
  """Every leaf moved off its init (biases are zeros, LayerNorm scales ones) so no mapping mistake can hide."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda x: (np.asarray(x) + 0.1 * rng.standard_normal(x.shape)).astype(np.float32), params)


def _init_inputs() -> tuple[jax.Array, jax.Array, jax.Array]:
  ids = jnp.ones((1, 8), jnp.int32)
  return ids, jnp.zeros_like(ids), ids


def pretrainer_params(cfg: ElectraConfig, seed: int = 0) -> dict:
  params = jax.jit(ElectraPretrainer(cfg).init)(jax.random.PRNGKey(seed), *_init_inputs())["params"]
  return _perturbed(params, seed + 1)


def task_params(cfg: ElectraConfig, task: str, num_labels: int, seed: int = 0) -> dict:
  params = jax.jit(task_model(task, cfg, num_labels).init)(jax.random.PRNGKey(seed), *_init_inputs())["params"]
  return _perturbed(params, seed + 1)


def random_batch(cfg: ElectraConfig, seed: int = 0, batch: int = 3, length: int = 12) -> dict[str, np.ndarray]:
  """Random ids with both token types and padding at the end of one row."""
  rng = np.random.default_rng(seed)
  ids = rng.integers(5, cfg.vocab_size, size=(batch, length)).astype(np.int32)
  ids[:, 0] = SPECIAL_IDS["cls"]
  types = np.zeros_like(ids)
  types[:, length // 2:] = 1
  mask = np.ones_like(ids)
  mask[1, length - 4:] = 0
  ids[1, length - 4:] = SPECIAL_IDS["pad"]
  return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def write_vocab(directory: str) -> str:
  os.makedirs(directory, exist_ok=True)
  tokens = SPECIAL + KOREAN + [f"tok{i}" for i in range(VOCAB_SIZE - len(SPECIAL) - len(KOREAN))]
  with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(tokens) + "\n")
  return directory


def make_workdir(workdir: str, cfg: ElectraConfig, params: Any, step: int = 7,
                 tokenizer_dir: Optional[str] = None, task: Optional[str] = None,
                 id2label: Optional[dict[int, str]] = None) -> str:
  """A run directory as training leaves it: model.json (+ task) and a Composite checkpoint of the full state."""
  workdir_lib.write_model_info(workdir, cfg, tokenizer_dir, SPECIAL_IDS)
  if task is not None:
    write_task_info(workdir, task, id2label or {0: "start", 1: "end"})
  state = {"params": params, "opt_state": {"mu": jax.tree_util.tree_map(np.zeros_like, params)},
           "step": np.asarray(step, np.int32), "rng": np.array([0, 3], np.uint32)}
  checkpointer = Checkpointer(workdir_lib.checkpoint_dir(workdir), interval=1, keep=3, async_save=False)
  checkpointer.save(step, state, force=True)
  checkpointer.close()
  return workdir


def flax_pretrainer_outputs(cfg: ElectraConfig, params: Any, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  model, variables = ElectraPretrainer(cfg), {"params": params}
  args = (batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])

  def hidden(module: ElectraPretrainer, encoder: str) -> jax.Array:
    embedded = module.embeddings(args[0], args[1], True)
    return getattr(module, encoder)(embedded, args[2], True)

  @jax.jit
  def run(variables: Any) -> dict[str, jax.Array]:
    return {
        "discriminator_logits": model.apply(variables, *args, method=ElectraPretrainer.discriminator_logits),
        "generator_logits": model.apply(variables, *args, None, method=ElectraPretrainer.generator_logits),
        "discriminator_hidden": model.apply(variables, "discriminator", method=hidden),
        "generator_hidden": model.apply(variables, "generator", method=hidden),
    }

  return {k: np.asarray(v) for k, v in run(variables).items()}


def torch_outputs(model: Any, batch: dict[str, np.ndarray]) -> Any:
  import torch
  with torch.no_grad():
    return model(**{k: torch.from_numpy(v.astype(np.int64)) for k, v in batch.items()})


def max_abs_diff(a: Any, b: Any) -> float:
  return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b.detach().numpy() if hasattr(b, "detach")
                                                                      else b, np.float64))))


def flat_params(params: Any) -> dict:
  return hf_names.flatten(params)


# -- run directories with the MWP tokenizer (predict, pipelines) ------------------------------------------------------

def mwp_model_config(vocab_size: int, positions: int = 128) -> ElectraConfig:
  return ElectraConfig.from_config({
      "vocab_size": vocab_size, "embedding_size": 16, "hidden_size": 32, "num_layers": 2, "num_heads": 4,
      "intermediate_size": 64, "generator_hidden_fraction": 0.5, "max_position_embeddings": positions})


def mwp_task_run(root: Any, tok_dir: Any, variant: str, task: str, id2label: Optional[dict[int, str]],
                 overrides: dict, seed: int, texts: Sequence[str] = (), seq_len: int = 64,
                 positions: int = 128) -> str:
  """A fine-tuning run directory ROOT/run that `korpat-jax predict` and `korpat-jax export` take: a perturbed fresh
  task model whose head decides by the input (the classification head centred on `texts`: the [CLS] state of a
  fresh model barely changes with the input, so without it one label would win everywhere; the NER head leaning to
  O, then B, so that some sentences get well-formed tags)."""
  from helpers import finetune_config
  from korpat_jax.tokenizer import MWPTokenizer

  tok = MWPTokenizer.load(str(tok_dir))
  cfg = mwp_model_config(tok.vocab_size, positions)
  params = task_params(cfg, task, len(id2label) if id2label else 2, seed=seed)
  if task == "sequence_classification":
    head = params["classifier"]["out_proj"]
    head["bias"], head["kernel"] = np.zeros_like(head["bias"]), head["kernel"] * 10
    _centre_classifier(cfg, params, tok, texts, seq_len)
  elif task == "token_classification":
    head = params["classifier"]
    head["bias"], head["kernel"] = np.array([2, 1, 0, 1, 0], np.float32), head["kernel"] * 3
  workdir = make_workdir(os.path.join(str(root), "run"), cfg, params, step=3, tokenizer_dir=str(tok_dir), task=task,
                         id2label=id2label)
  config = finetune_config(variant, **{"train.seq_len": seq_len, "train.eval_batch_size": 16, **overrides})
  workdir_lib.write_run_config(workdir, config.to_dict())
  return workdir


def _centre_classifier(cfg: ElectraConfig, params: dict, tok: Any, texts: Sequence[str], seq_len: int) -> None:
  """out_proj's bias := minus the mean logits over `texts`."""
  ids = np.zeros((len(texts), seq_len), np.int32)
  for row, text in enumerate(texts):
    encoded = tok.encode(text, max_length=seq_len).ids
    ids[row, :len(encoded)] = encoded
  logits = jax.jit(task_model("sequence_classification", cfg, params["classifier"]["out_proj"]["bias"].shape[0]
                              ).apply)({"params": params}, ids, np.zeros_like(ids), (ids != 0).astype(np.int32))
  params["classifier"]["out_proj"]["bias"] = -np.asarray(logits).mean(0).astype(np.float32)
