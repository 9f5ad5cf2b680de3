"""HF transformers (PyTorch) twin of korpat-jax fine-tuning, for finetune_speed.py and finetune_parity.py beside it.

The same model (transformers' ElectraFor{TokenClassification,SequenceClassification,QuestionAnswering} with the
config that `korpat-jax export` writes), the same batches (the task's own numpy batches, as torch tensors) and the
same optimizer as korpat_jax.optimizer: global-norm clip 1.0 -> Adam with google's moments (no bias correction, eps
outside the square root) -> decoupled weight decay, not on LayerNorm or biases -> linear warmup and decay, the first
step at learning rate 0 -> layerwise decay lr * decay^(L + 2 - depth) through one param group per (depth, decay).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np
import torch

from korpat_jax.model.heads import head

_LAYER = re.compile(r"^electra\.encoder\.layer\.(\d+)\.")


def electra_config(cfg: Any, task_type: str, pad_id: int, labels: Optional[list[str]] = None,
                   attn_implementation: str = "eager"):
  """transformers.ElectraConfig of a korpat ElectraConfig, from the exporter's own config.json fields."""
  import transformers
  from korpat_jax.export.hf_config import hf_config
  id2label = dict(enumerate(labels)) if labels is not None and head(task_type).fixed_labels is None else None
  fields = hf_config(cfg, task_type, pad_id, id2label)
  fields.pop("architectures")
  hf = transformers.ElectraConfig(**fields)
  hf._attn_implementation = attn_implementation
  return hf


def make_model(task_type: str, hf_cfg: Any) -> torch.nn.Module:
  import transformers
  return getattr(transformers, head(task_type).hf_class)(hf_cfg)


def from_pretrained(task_type: str, directory: str, labels: Optional[list[str]], attn_implementation: str = "eager"
                    ) -> torch.nn.Module:
  """A task model whose encoder is an exported discriminator (the head freshly initialised by HF)."""
  import transformers
  kwargs: dict[str, Any] = {"attn_implementation": attn_implementation}
  if labels is not None and head(task_type).fixed_labels is None:
    kwargs.update(num_labels=len(labels), id2label=dict(enumerate(labels)),
                  label2id={label: i for i, label in enumerate(labels)})
  return getattr(transformers, head(task_type).hf_class).from_pretrained(directory, **kwargs)


def _task_layout(flat: Mapping[Any, Any]) -> Any:
  """The exporter's name layout for the task head this flat Flax tree holds."""
  from korpat_jax.export import hf_config, to_hf
  return hf_config.layout(to_hf.detect_task(flat))


def load_flax_params(model: torch.nn.Module, params: Any) -> None:
  """Copies a korpat task model's parameters (a Flax tree) into the HF model through the exporter's names."""
  from korpat_jax.export import hf_names
  flat = hf_names.flatten(params)
  state = {k: torch.from_numpy(np.array(v)) for k, v in hf_names.to_hf(flat, _task_layout(flat)).items()}
  missing, unexpected = model.load_state_dict(state, strict=False)
  missing = [k for k in missing if not k.endswith("position_ids")]
  if missing or unexpected:
    raise ValueError(f"korpat -> HF state dict: missing {missing[:3]}, unexpected {unexpected[:3]}")


# -- optimizer --------------------------------------------------------------------------------------------------


def depth(name: str, num_layers: int) -> int:
  """google-research/electra's depth of an HF parameter: embeddings (and embeddings_project) 0, layer i at i + 1,
  the task head at L + 2 (korpat_jax.optimizer.layer_depth on HF names)."""
  match = _LAYER.match(name)
  if match:
    return int(match.group(1)) + 1
  if name.startswith(("electra.embeddings.", "electra.embeddings_project.")):
    return 0
  return num_layers + 2


def decays(name: str) -> bool:
  """Weight decay on everything but LayerNorm parameters and biases (korpat_jax.optimizer.decay_mask)."""
  return not (name.endswith(".bias") or ".LayerNorm." in name or name.startswith("LayerNorm."))


def param_groups(model: torch.nn.Module, num_layers: int, layerwise_decay: float, weight_decay: float
                 ) -> list[dict[str, Any]]:
  """One group per (lr multiplier, weight decay); each group carries `lr_scale` and its parameter `names`."""
  groups: dict[tuple[float, float], dict[str, Any]] = {}
  for name, p in model.named_parameters():
    scale = layerwise_decay ** (num_layers + 2 - depth(name, num_layers))
    wd = weight_decay if decays(name) else 0.0
    group = groups.setdefault((scale, wd), {"params": [], "names": [], "lr_scale": scale, "weight_decay": wd,
                                            "lr": 0.0})
    group["params"].append(p)
    group["names"].append(name)
  return list(groups.values())


def check_groups_match_korpat(groups: Iterable[Mapping[str, Any]], flax_params: Any, num_layers: int,
                              layerwise_decay: float) -> int:
  """Asserts that every HF parameter has the lr multiplier and decay flag korpat_jax.optimizer gives its Flax twin;
  returns the number of parameters checked."""
  import jax
  from korpat_jax.export import hf_names
  from korpat_jax.optimizer import decay_mask, layerwise_lr_multipliers
  mult = hf_names.flatten(jax.tree.map(float, layerwise_lr_multipliers(flax_params, num_layers, layerwise_decay)))
  mask = hf_names.flatten(decay_mask(flax_params))
  layout = _task_layout(hf_names.flatten(flax_params))
  want = {hf_names.hf_name(path, layout): (mult[path], bool(mask[path])) for path in mult}
  got = {name: (g["lr_scale"], g["weight_decay"] > 0) for g in groups for name in g["names"]}
  if set(want) != set(got):
    raise AssertionError(f"parameter names differ: {sorted(set(want) ^ set(got))[:4]}")
  for name, (scale, decayed) in want.items():
    if not np.isclose(got[name][0], scale) or got[name][1] != decayed:
      raise AssertionError(f"{name}: HF group (lr x{got[name][0]:.4g}, decay {got[name][1]}), korpat "
                           f"(lr x{scale:.4g}, decay {decayed})")
  return len(want)


class GoogleAdamW(torch.optim.Optimizer):
  """google-research/electra's AdamWeightDecayOptimizer: m / (sqrt(v) + eps) from raw moments, plus weight_decay * p,
  times the group's lr. Multi-tensor (torch._foreach_*) like torch.optim.AdamW(foreach=True)."""

  def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
               weight_decay: float = 0.0):
    super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

  @torch.no_grad()
  def step(self, closure: Optional[Callable] = None):
    for group in self.param_groups:
      params = [p for p in group["params"] if p.grad is not None]
      if not params:
        continue
      grads = [p.grad for p in params]
      for p in params:
        if not self.state[p]:
          self.state[p]["m"] = torch.zeros_like(p)
          self.state[p]["v"] = torch.zeros_like(p)
      m = [self.state[p]["m"] for p in params]
      v = [self.state[p]["v"] for p in params]
      b1, b2 = group["betas"]
      torch._foreach_lerp_(m, grads, 1 - b1)                      # m = b1 m + (1 - b1) g
      torch._foreach_mul_(v, b2)
      torch._foreach_addcmul_(v, grads, grads, value=1 - b2)      # v = b2 v + (1 - b2) g^2
      denom = torch._foreach_sqrt(v)
      torch._foreach_add_(denom, group["eps"])
      update = torch._foreach_div(m, denom)                       # m / (sqrt(v) + eps)
      if group["weight_decay"]:
        torch._foreach_add_(update, params, alpha=group["weight_decay"])
      torch._foreach_add_(params, update, alpha=-group["lr"])
    return None


def make_optimizer(groups: list[dict[str, Any]], kind: str = "google", b1: float = 0.9, b2: float = 0.999,
                   eps: float = 1e-6) -> torch.optim.Optimizer:
  """"google": GoogleAdamW (korpat's math); "torch": torch.optim.AdamW(foreach=True) (bias-corrected moments)."""
  if kind == "google":
    return GoogleAdamW(groups, betas=(b1, b2), eps=eps)
  if kind == "torch":
    return torch.optim.AdamW(groups, betas=(b1, b2), eps=eps, foreach=True)
  raise ValueError(f"optimizer kind {kind!r}: expected google or torch")


def learning_rate(step: int, peak: float, warmup_steps: int, total_steps: int) -> float:
  """korpat_jax.optimizer.learning_rate_schedule on the host: peak * min(1, t / warmup) * max(0, 1 - t / total)."""
  return peak * min(1.0, step / max(1, warmup_steps)) * max(0.0, 1.0 - step / max(1, total_steps))


# -- batches and the step ---------------------------------------------------------------------------------------


def to_torch(batch: Mapping[str, np.ndarray], task_type: str) -> dict[str, torch.Tensor]:
  """The HF model's keyword inputs from a korpat batch: ids, types, mask and the task's targets (int64)."""
  t = lambda x: torch.from_numpy(np.asarray(x, np.int64))
  out = {"input_ids": t(batch["input_ids"]), "token_type_ids": t(batch["token_type_ids"]),
         "attention_mask": t(batch["attention_mask"])}
  if task_type == "token_classification" and "labels" in batch:
    out["labels"] = t(batch["labels"])        # -100 outside the first token of each unit: HF's ignore_index
  elif task_type == "sequence_classification" and "label" in batch:
    label = np.asarray(batch["label"]).copy()
    label[label < 0] = -100                   # padding rows and unlabelled examples
    out["labels"] = t(label)
  elif task_type == "sequence_classification" and "labels" in batch:
    out["labels"] = torch.from_numpy(np.asarray(batch["labels"], np.float32))  # multi-hot: HF's BCE
  elif task_type == "question_answering" and "start_position" in batch:
    out["start_positions"], out["end_positions"] = t(batch["start_position"]), t(batch["end_position"])
  return out


def describe_inputs(inputs: Mapping[str, torch.Tensor]) -> str:
  """What the HF model is fed, on one line."""
  parts = [f"{k} {list(v.shape)} {str(v.dtype).replace('torch.', '')}" for k, v in inputs.items()]
  mask = inputs["attention_mask"]
  parts.append(f"real tokens {int(mask.sum())}/{mask.numel()}")
  if "labels" in inputs and inputs["labels"].dtype == torch.int64:
    parts.append(f"scored targets {int((inputs['labels'] >= 0).sum())}")
  return ", ".join(parts)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, inputs: Mapping[str, torch.Tensor],
               lr: float, clip_norm: float = 1.0) -> torch.Tensor:
  """Forward + backward + clip + one optimizer step at `lr` (times each group's lr_scale); returns the loss."""
  loss = model(**inputs).loss
  loss.backward()
  torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
  for group in optimizer.param_groups:
    group["lr"] = lr * group["lr_scale"]
  optimizer.step()
  optimizer.zero_grad(set_to_none=True)
  return loss.detach()


def logits(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor]) -> Any:
  """Deterministic (eval-mode) outputs as numpy: logits, or (start, end) for QA."""
  was_training = model.training
  model.eval()
  with torch.no_grad():
    out = model(**{k: inputs[k] for k in ("input_ids", "token_type_ids", "attention_mask")})
  model.train(was_training)
  if hasattr(out, "start_logits") and out.start_logits is not None:
    return out.start_logits.numpy(), out.end_logits.numpy()
  return out.logits.numpy()
