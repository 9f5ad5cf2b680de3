"""Run directory (Orbax checkpoint + model.json) -> HF transformers directories.

The checkpoint is read onto one host CPU device whatever mesh saved it, checked against the model config shape by
shape, renamed and transposed by hf_names, and written as config.json + model.safetensors + tokenizer files + README.
`out` may be a URL (gs://...): each file is written locally and uploaded whole (korpat_jax.files).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping, Optional

import numpy as np
from safetensors.numpy import save_file

from korpat_jax import files, workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.errors import KorpatError
from korpat_jax.export import hf_config, hf_names, hf_serving, hf_tokenizer
from korpat_jax.export.model_card import model_card
from korpat_jax.export.task_info import read_task_info
from korpat_jax.model.config import ElectraConfig
from korpat_jax.model.embedding_sharing import fold_flat_embedding_delta
from korpat_jax.model.heads import HEADS, HeadSpec

log = logging.getLogger("korpat_jax")
PARTS = ("discriminator", "generator", "both")
WORD_EMBEDDINGS = "electra.embeddings.word_embeddings.weight"


@dataclasses.dataclass(frozen=True)
class Exported:
  directory: str
  architecture: str
  step: int
  num_tensors: int
  num_bytes: int


def export(workdir: str, out: str, step: Optional[int] = None, part: Optional[str] = None,
           overwrite: bool = False) -> list[Exported]:
  """Writes `out` (one model) or `out/discriminator` + `out/generator` (part "both"). A non-empty `out` is refused
  unless `overwrite` (then it is emptied first): merging two exports would mix their files."""
  out = files.resolve(out)
  if files.listdir(out):
    if not overwrite:
      raise KorpatError(f"--out {out}: not empty; choose another directory or pass --overwrite to replace it")
    files.rmtree(out)
  cfg, tokenizer_dir, special_ids = workdir_lib.read_model_info(workdir)
  task = read_task_info(workdir)
  if step is None and task is not None:
    step = workdir_lib.best_step(workdir)  # a fine-tuned run exports its best checkpoint by default
  step, params = restore_params(workdir, step)
  flat = hf_names.flatten(params)
  source = files.join(workdir_lib.checkpoint_dir(workdir), str(step))
  kinds = _kinds(flat, task and task.type, part, source)
  id2label = _id2label(flat, HEADS[kinds[0]], task and task.id2label, source) if kinds[0] in HEADS else None
  serving = hf_serving.read_serving_info(workdir, cfg)
  exported = []
  for kind in kinds:
    directory = out if len(kinds) == 1 else files.join(out, kind)
    exported.append(write_hf_dir(flat, cfg, kind, directory, step=step, source=source, id2label=id2label,
                                 problem_type=task and task.problem_type,
                                 tokenizer_dir=tokenizer_dir, special_ids=special_ids, serving=serving))
  return exported


def restore_params(workdir: str, step: Optional[int]) -> tuple[int, Any]:
  """(step, params as numpy) of a run directory, on one host CPU device whatever mesh saved them."""
  directory = workdir_lib.checkpoint_dir(files.resolve(workdir))
  if not files.isdir(directory):
    raise KorpatError(f"{directory}: no checkpoints directory; is {workdir!r} a korpat-jax run directory?")
  checkpointer = Checkpointer(directory, interval=1, keep=1, read_only=True)
  try:
    return checkpointer.restore_params_on_host(step)
  finally:
    checkpointer.close()


def write_hf_dir(flat: Mapping[hf_names.Path, Any], cfg: ElectraConfig, kind: str, out: str, *, step: int,
                 source: str, id2label: Optional[Mapping[int, str]] = None, problem_type: Optional[str] = None,
                 tokenizer_dir: Optional[str] = None, special_ids: Optional[Mapping[str, int]] = None,
                 serving: Optional[hf_serving.ServingInfo] = None) -> Exported:
  """One HF directory of the `kind` model (see hf_config) from a flat Flax parameter dict. `serving`: the run's
  training length and QA / NER window settings (default: the model's positions)."""
  special_ids = special_ids or {}
  serving = serving or hf_serving.ServingInfo(cfg.max_position_embeddings)
  if kind != "generator":  # a gdes run's discriminator reads E_G + delta (a plain ELECTRA); its generator E_G alone
    flat = fold_flat_embedding_delta(flat, tuple)
  num_labels = len(id2label) if id2label else 2
  expected = hf_config.expected_shapes(cfg, kind, num_labels)
  layout = hf_config.layout(kind)
  hf_names.check_shapes(flat, expected, source)
  unexpected = sorted("/".join(p) for p in hf_names.in_layout(flat, layout) if p not in expected)
  if unexpected:
    raise KorpatError(f"{source}: parameter {unexpected[0]} is not in the model config's {kind} "
                      f"({len(unexpected)} unexpected in all); does model.json match the checkpoint?")
  state = hf_names.to_hf({path: flat[path] for path in expected}, layout)
  if kind == "generator":  # HF ties it to the word embeddings; a copy keeps loaders that do not tie correct too
    state["generator_lm_head.weight"] = state[WORD_EMBEDDINGS].copy()
  state = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}

  files.makedirs(out)
  with files.atomic_path(files.join(out, "model.safetensors")) as tmp:
    save_file(state, tmp, metadata={"format": "pt"})
  pad = hf_tokenizer.special_id(special_ids, "pad")
  warning = hf_tokenizer.write_tokenizer_files(tokenizer_dir, out, special_ids, serving.model_max_length)
  config = hf_config.hf_config(cfg, kind, 0 if pad is None else pad, id2label, problem_type)
  if warning:
    log.warning("%s: %s", out, warning)
  else:  # a QA or NER export's pipeline needs the remote tokenizer
    config.update(hf_serving.write_pipeline_files(out, kind, serving))
  workdir_lib.write_json(files.join(out, "config.json"), config)
  fixed = kind in HEADS and HEADS[kind].fixed_labels is not None
  labels = [id2label[i] for i in sorted(id2label)] if id2label and not fixed else None
  files.write_text(files.join(out, "README.md"),
                   model_card(cfg, kind, step, source, has_tokenizer=warning is None, labels=labels))
  return Exported(out, hf_config.ARCHITECTURES[kind], step, len(state), sum(v.nbytes for v in state.values()))


def detect_task(flat: Mapping[hf_names.Path, Any]) -> Optional[str]:
  """The task type of a fine-tuned tree, or None for an ElectraPretrainer tree: the head whose output layer (its
  spec's output kernel, without the leaf) the tree holds; the deepest such layer wins (classifier/out_proj is a
  sequence head, a bare classifier a token head)."""
  for spec in sorted(HEADS.values(), key=lambda s: -len(s.output_kernel)):
    layer = spec.output_kernel[:-1]
    if any(path[:len(layer)] == layer for path in flat):
      return spec.task_type
  return None


def _kinds(flat: Mapping[hf_names.Path, Any], task_type: Optional[str], part: Optional[str],
           source: str) -> list[str]:
  tops = {path[0] for path in flat}
  detected = detect_task(flat)
  if detected is not None:
    if task_type is not None and task_type != detected:
      raise KorpatError(f"{source}: the checkpoint holds a {detected} head but model.json says task {task_type}")
    if part is not None:
      raise KorpatError(f"{source}: --part applies to pretraining checkpoints; this one is fine-tuned ({detected})")
    return [detected]
  if task_type is not None:
    raise KorpatError(f"{source}: model.json says task {task_type} but the checkpoint has no task head")
  kinds = ["discriminator", "generator"] if part == "both" else [part or "discriminator"]
  for kind in kinds:
    if kind not in tops:
      raise KorpatError(f"{source}: the checkpoint has no {kind} parameters (top-level: {sorted(tops)})")
  return kinds


def _id2label(flat: Mapping[hf_names.Path, Any], spec: HeadSpec, id2label: Optional[Mapping[int, str]],
              source: str) -> dict[int, str]:
  out_kernel = spec.output_kernel
  if out_kernel not in flat:
    raise KorpatError(f"{source}: the {spec.task_type} head has no parameter {'/'.join(out_kernel)}")
  num_labels = int(np.shape(flat[out_kernel])[-1])
  if spec.fixed_labels is not None:
    return dict(enumerate(spec.fixed_labels))
  if not id2label:
    log.warning("%s: model.json has no task id2label; naming the %d labels LABEL_i", source, num_labels)
    return {i: f"LABEL_{i}" for i in range(num_labels)}
  if len(id2label) != num_labels:
    raise KorpatError(f"{source}: model.json task id2label has {len(id2label)} labels, the checkpoint's head "
                      f"{'/'.join(out_kernel)} has {num_labels}")
  return dict(id2label)
