"""HF ELECTRA directory (e.g. a KoELECTRA-style checkpoint) -> a korpat-jax run directory with an Orbax checkpoint.

  ElectraForPreTraining / ElectraModel  -> the ElectraPretrainer's embeddings + discriminator (+ its head when present)
  ElectraForMaskedLM                    -> embeddings + generator side (with --generator: both sides in one tree)
  a task head's class (its HeadSpec, korpat_jax.model.heads) -> that head's tree + the task in model.json
Subtrees that the HF model does not have (e.g. the generator of a discriminator-only import) are left out of the
checkpoint; the trainer initialises them when it starts from it.

The tokenizer: vocab.txt (with the MWP tokenizer's own files when `korpat-jax export` wrote the directory), else the
WordPiece vocabulary of tokenizer.json (what transformers 5 saves instead of vocab.txt), written out as
OUT/tokenizer/vocab.txt; a tokenizer.json of another kind stops the import in one line, and a directory with
neither says that no tokenizer was recorded. With `tokenizer` (`--tokenizer DIR`, from `korpat-jax tokenizer extend`
of the model's own tokenizer) the run gets DIR's larger vocabulary instead: the word embeddings and the generator's
output bias grow by extension.json (each new row the mean of its base pieces' rows, korpat_jax.vocab_extension) and
OUT/tokenizer is a copy of DIR.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
from typing import Any, Optional

import numpy as np

from korpat_jax import files, vocab_extension, workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.errors import KorpatError
from korpat_jax.export import hf_config, hf_names, hf_tokenizer
from korpat_jax.export.task_info import write_task_info
from korpat_jax.model.config import ElectraConfig, EncoderConfig
from korpat_jax.model.heads import HEADS, HeadSpec

# The weights that say what an HF checkpoint is when config.json names no class this project reads: the pretraining
# heads', then each task head's output kernel (its HeadSpec).
_PRETRAINING_WEIGHTS = (("discriminator_predictions.dense.weight", "discriminator"),
                        ("generator_lm_head.bias", "generator"))
# Names some HF checkpoints carry that hold no parameter of this project (buffers, the tied lm head).
_IGNORABLE = {"electra.embeddings.position_ids", "electra.embeddings.token_type_ids", "generator_lm_head.weight"}
# google-research/electra generator sizes by discriminator hidden size (electra.md, Sizes).
_GENERATOR_FRACTION = {256: 0.25, 768: 1 / 3, 1024: 0.25}


@dataclasses.dataclass
class HFModel:
  directory: str
  config: dict[str, Any]
  state: dict[str, np.ndarray]
  kind: str  # discriminator | generator | a task type
  has_head: bool  # False for a bare ElectraModel


@dataclasses.dataclass(frozen=True)
class Imported:
  workdir: str
  kinds: list[str]
  num_params: int
  ignored: list[str]
  notes: list[str]


def read_hf_dir(directory: str) -> HFModel:
  """config.json and the weights (safetensors, sharded safetensors or pytorch_model.bin) of an HF directory."""
  config_path = os.path.join(directory, "config.json")
  if not os.path.isfile(config_path):
    raise KorpatError(f"{config_path}: missing; --model must be a transformers model directory")
  try:
    with open(config_path, encoding="utf-8") as f:
      config = json.load(f)
  except json.JSONDecodeError as e:
    raise KorpatError(f"{config_path}: not valid JSON ({e})") from None
  state = _read_weights(directory)
  if state and not any(name.startswith("electra.") for name in state):  # saved from a bare ElectraModel
    state = {f"electra.{name}": value for name, value in state.items()}
  kind, has_head = _kind(config, state, config_path)
  return HFModel(directory, config, state, kind, has_head)


def import_hf(model_dir: str, out: str, generator_dir: Optional[str] = None,
              generator_hidden_fraction: Optional[float] = None, tokenizer: Optional[str] = None) -> Imported:
  """Writes OUT/model.json, OUT/tokenizer/vocab.txt (when the HF directory has one, or `tokenizer`'s files: an
  extension of the model's vocabulary that the imported run grows onto) and OUT/checkpoints/0."""
  out = files.resolve(out)
  ckpt_dir = workdir_lib.checkpoint_dir(out)
  if files.listdir(ckpt_dir):
    raise KorpatError(f"{ckpt_dir}: already holds checkpoints; import into an empty --out")
  main = read_hf_dir(files.local_copy(model_dir, "model directory"))  # safetensors and torch read local files
  gen = read_hf_dir(files.local_copy(generator_dir, "model directory")) if generator_dir else None
  notes: list[str] = []
  if gen is not None:
    if main.kind != "discriminator":
      raise KorpatError(f"{model_dir}: --generator goes with a discriminator --model, this is {main.kind}")
    if gen.kind != "generator":
      raise KorpatError(f"{generator_dir}: --generator must be an ElectraForMaskedLM directory, this is {gen.kind}")
  cfg = _electra_config(main, gen, generator_hidden_fraction, notes)

  task_labels = None
  flat: dict[hf_names.Path, np.ndarray] = {}
  for model in (main, gen):
    if model is None:
      continue
    num_labels = 2
    spec = HEADS.get(model.kind)
    if spec is not None and spec.fixed_labels is None:
      task_labels = _id2label(model, spec)
      num_labels = len(task_labels)
    expected = hf_config.expected_shapes(cfg, model.kind, num_labels)
    if not model.has_head:
      expected = {p: s for p, s in expected.items() if p[0] != "discriminator_predictions"}
    if model is gen:  # the embeddings are shared: the discriminator's copy wins
      expected = {p: s for p, s in expected.items() if p[0] != "embeddings"}
      notes += _compare_shared_embeddings(main, gen)
    flat.update(hf_names.from_hf(model.state, expected, hf_config.layout(model.kind), model.directory))
    if model.kind == "generator":
      _check_tied_lm_head(model)

  used = {hf_names.hf_name(p, hf_config.layout(m.kind)) for m in (main, gen) if m for p in flat
          if p[0] in hf_config.layout(m.kind)}
  ignored = sorted({n for m in (main, gen) if m for n in m.state} - used - _IGNORABLE)
  if ignored:
    notes.append(f"ignored {len(ignored)} weights this model has no place for: {', '.join(ignored[:5])}"
                 + (" ..." if len(ignored) > 5 else ""))

  vocab = _hf_vocab(main.directory, notes)  # before anything is written: a foreign tokenizer stops the import
  if tokenizer:
    cfg, flat = _grow_onto(tokenizer, cfg, flat, vocab, notes)
    tokenizer_dir = _copy_tokenizer(tokenizer, out)
    vocab = hf_tokenizer.read_vocab(files.join(tokenizer_dir, hf_tokenizer.VOCAB_TXT))
  else:
    tokenizer_dir = _copy_vocab(main.directory, out, vocab)
  special_ids = (hf_tokenizer.special_ids_from_vocab(vocab) if tokenizer_dir
                 else {"pad": int(main.config.get("pad_token_id") or 0)})
  workdir_lib.write_model_info(out, cfg, tokenizer_dir, special_ids)
  if main.kind in HEADS:
    spec = HEADS[main.kind]
    problem = main.config.get("problem_type")
    write_task_info(out, main.kind, task_labels or dict(enumerate(spec.fixed_labels or ())),
                    problem if problem in spec.problem_types else None)

  checkpointer = Checkpointer(ckpt_dir, interval=1, keep=1, async_save=False)
  checkpointer.save(0, {"params": hf_names.unflatten(flat), "step": 0}, force=True)
  checkpointer.close()
  kinds = [main.kind] + ([gen.kind] if gen else [])
  return Imported(out, kinds, int(sum(v.size for v in flat.values())), ignored, notes)


def _read_weights(directory: str) -> dict[str, np.ndarray]:
  single = os.path.join(directory, "model.safetensors")
  shards = sorted(glob.glob(os.path.join(directory, "model-*-of-*.safetensors")))
  if os.path.isfile(single):
    return _read_safetensors(single)
  if shards:
    state = {}
    for shard in shards:
      state.update(_read_safetensors(shard))
    return state
  bin_path = os.path.join(directory, "pytorch_model.bin")
  if os.path.isfile(bin_path):
    try:
      import torch  # pylint: disable=import-outside-toplevel
    except ImportError:
      raise KorpatError(f"{bin_path}: reading .bin weights needs torch (pip install korpat-jax[export])") from None
    loaded = torch.load(bin_path, map_location="cpu", weights_only=True)
    return {name: value.float().numpy() for name, value in loaded.items()}
  raise KorpatError(f"{directory}: no model.safetensors, model-*-of-*.safetensors or pytorch_model.bin")


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
  from safetensors import safe_open  # pylint: disable=import-outside-toplevel
  try:
    with safe_open(path, framework="np") as f:
      return {name: f.get_tensor(name) for name in f.keys()}
  except (TypeError, ValueError):  # bfloat16 has no numpy dtype: read through torch
    try:
      from safetensors.torch import load_file  # pylint: disable=import-outside-toplevel
    except ImportError:
      raise KorpatError(f"{path}: reading these weights needs torch (pip install korpat-jax[export])") from None
    return {name: value.float().numpy() for name, value in load_file(path).items()}
  except Exception as e:  # a truncated or foreign file
    raise KorpatError(f"{path}: unreadable safetensors file ({type(e).__name__}: {e})") from None


def _kind(config: dict[str, Any], state: dict[str, np.ndarray], source: str) -> tuple[str, bool]:
  for arch in config.get("architectures") or []:
    if arch in hf_config.KIND_OF_ARCHITECTURE:
      kind = hf_config.KIND_OF_ARCHITECTURE[arch]
      return kind, kind != "discriminator" or "discriminator_predictions.dense.weight" in state
  for name, kind in _PRETRAINING_WEIGHTS + tuple((_output_weight(spec), kind) for kind, spec in HEADS.items()):
    if name in state:
      return kind, True
  if "electra.embeddings.word_embeddings.weight" in state:
    return "discriminator", False
  raise KorpatError(f"{source}: architectures {config.get('architectures')} and the weight names are not an ELECTRA "
                    f"this project reads ({', '.join(sorted(hf_config.KIND_OF_ARCHITECTURE))})")


def _electra_config(main: HFModel, gen: Optional[HFModel], fraction: Optional[float],
                    notes: list[str]) -> ElectraConfig:
  source = os.path.join(main.directory, "config.json")
  main_enc = hf_config.encoder_from_hf(main.config, source)
  if main.kind == "generator":
    notes.append("a generator alone: the discriminator sizes in model.json are copied from the generator's")
    return hf_config.electra_config_from_hf(main.config, source, main_enc, main_enc)
  if gen is not None:
    gen_source = os.path.join(gen.directory, "config.json")
    for key in ("vocab_size", "embedding_size", "max_position_embeddings", "type_vocab_size"):
      if main.config.get(key) != gen.config.get(key):
        raise KorpatError(f"{gen_source}: {key} is {gen.config.get(key)}, the discriminator's is "
                          f"{main.config.get(key)}")
    gen_enc = hf_config.encoder_from_hf(gen.config, gen_source)
  else:
    fraction = fraction or _GENERATOR_FRACTION.get(main_enc.hidden_size, 0.25)
    hidden = max(1, round(main_enc.hidden_size * fraction))
    gen_enc = EncoderConfig(hidden, main_enc.num_layers, max(1, hidden // 64), 4 * hidden)
  return hf_config.electra_config_from_hf(main.config, source, main_enc, gen_enc)


def _output_weight(spec: HeadSpec, leaf: str = "kernel") -> str:
  """The HF name of a head's output kernel (or, with leaf "bias", of its bias)."""
  return hf_names.hf_name(spec.output_kernel[:-1] + (leaf,), hf_config.layout(spec.task_type))


def _id2label(model: HFModel, spec: HeadSpec) -> dict[int, str]:
  raw = model.config.get("id2label")
  head = _output_weight(spec, "bias")
  if head not in model.state:
    raise KorpatError(f"{model.directory}: missing weight {head}")
  num_labels = int(model.state[head].shape[0])
  if not raw:
    return {i: f"LABEL_{i}" for i in range(num_labels)}
  id2label = {int(i): str(label) for i, label in raw.items()}
  if sorted(id2label) != list(range(num_labels)):
    raise KorpatError(f"{os.path.join(model.directory, 'config.json')}: id2label has ids {sorted(id2label)}, the "
                      f"weight {head} has {num_labels} labels")
  return id2label


def _compare_shared_embeddings(main: HFModel, gen: HFModel) -> list[str]:
  name = "electra.embeddings.word_embeddings.weight"
  a, b = main.state.get(name), gen.state.get(name)
  if a is None or b is None or a.shape != b.shape or np.array_equal(a, b):
    return []
  return [f"the generator's embeddings differ from the discriminator's (max abs diff "
          f"{float(np.max(np.abs(a - b))):.3g}); the shared embeddings are the discriminator's"]


def _check_tied_lm_head(model: HFModel) -> None:
  lm_head = model.state.get("generator_lm_head.weight")
  words = model.state["electra.embeddings.word_embeddings.weight"]
  if lm_head is not None and not np.array_equal(lm_head, words):
    raise KorpatError(f"{model.directory}: generator_lm_head.weight differs from the word embeddings; this "
                      f"project's generator ties them (tie_word_embeddings)")


TOKENIZER_JSON = "tokenizer.json"
_FINETUNE_HINT = "fine-tune from it with --config.data.tokenizer_dir=DIR (a directory holding a WordPiece vocab.txt)"


def _hf_vocab(model_dir: str, notes: list[str]) -> Optional[list[str]]:
  """The vocabulary of an HF directory in id order: vocab.txt, else tokenizer.json's WordPiece vocab; None (with
  a note) when it has neither. KorpatError for a tokenizer.json that is not a WordPiece this project can read."""
  vocab_path = os.path.join(model_dir, hf_tokenizer.VOCAB_TXT)
  if os.path.isfile(vocab_path):
    return hf_tokenizer.read_vocab(vocab_path)
  path = os.path.join(model_dir, TOKENIZER_JSON)
  if not os.path.isfile(path):
    notes.append(f"{model_dir}: no {hf_tokenizer.VOCAB_TXT} or {TOKENIZER_JSON}, so no tokenizer is recorded; "
                 f"{_FINETUNE_HINT}")
    return None
  try:
    with open(path, encoding="utf-8") as f:
      model = json.load(f).get("model") or {}
  except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
    raise KorpatError(f"{path}: not a tokenizers JSON file ({type(e).__name__}); put the model's "
                      f"{hf_tokenizer.VOCAB_TXT} beside config.json and import again") from None
  kind, vocab = model.get("type"), model.get("vocab")
  if kind != "WordPiece" or not isinstance(vocab, dict) or not vocab:
    raise KorpatError(f"{path}: a {kind or 'unknown'} tokenizer, not WordPiece: korpat-jax reads a WordPiece "
                      f"vocabulary only; put a WordPiece {hf_tokenizer.VOCAB_TXT} beside config.json, or import "
                      f"without a tokenizer file and {_FINETUNE_HINT}")
  prefix = model.get("continuing_subword_prefix", "##")
  ids = sorted(vocab.values()) if all(isinstance(i, int) for i in vocab.values()) else None
  if prefix != "##" or ids != list(range(len(vocab))):
    what = (f"its continuing_subword_prefix is {prefix!r}, not '##'" if prefix != "##"
            else "its vocab ids are not 0..N-1 without gaps")
    raise KorpatError(f"{path}: {what}, which the WordPiece of korpat-jax cannot use; put a "
                      f"{hf_tokenizer.VOCAB_TXT} beside config.json and import again")
  notes.append(f"no {hf_tokenizer.VOCAB_TXT} in {model_dir}: the vocabulary ({len(vocab)} tokens) was read from "
               f"{TOKENIZER_JSON}'s WordPiece model")
  return sorted(vocab, key=vocab.__getitem__)


def _copy_vocab(model_dir: str, out: str, vocab: Optional[list[str]]) -> Optional[str]:
  """OUT/tokenizer/vocab.txt (copied, or written from tokenizer.json's `vocab`), plus the MWP tokenizer's own files
  when the directory came from `korpat-jax export` (so that the Mecab-ko user dictionary stays attached)."""
  if vocab is None:
    return None
  tokenizer_dir = files.join(out, "tokenizer")
  files.makedirs(tokenizer_dir)
  if not os.path.isfile(os.path.join(model_dir, hf_tokenizer.VOCAB_TXT)):
    files.write_text(files.join(tokenizer_dir, hf_tokenizer.VOCAB_TXT), "".join(f"{token}\n" for token in vocab))
    return tokenizer_dir
  for name in (hf_tokenizer.VOCAB_TXT, "mwp_tokenizer.json", "user.dic"):
    if os.path.isfile(os.path.join(model_dir, name)):
      files.copy_file(os.path.join(model_dir, name), files.join(tokenizer_dir, name))
  return tokenizer_dir


def _grow_onto(tokenizer: str, cfg: ElectraConfig, flat: dict[hf_names.Path, np.ndarray],
               vocab: Optional[list[str]], notes: list[str]
               ) -> tuple[ElectraConfig, dict[hf_names.Path, np.ndarray]]:
  """The model config and weights grown onto the extended vocabulary of `tokenizer` (its extension.json)."""
  ext = vocab_extension.read_extension(tokenizer)
  if ext is None:
    raise KorpatError(f"--tokenizer {tokenizer}: no {vocab_extension.EXTENSION_JSON}; give a tokenizer that "
                      f"`korpat-jax tokenizer extend` made from this model's tokenizer")
  if ext.base_vocab_size != cfg.vocab_size:
    raise KorpatError(f"--tokenizer {tokenizer}: {ext.path} extends a vocabulary of {ext.base_vocab_size} tokens, "
                      f"the model's vocab_size is {cfg.vocab_size}")
  if vocab is not None and ext.base_vocab_sha256 and _vocab_sha256(vocab) != ext.base_vocab_sha256:
    raise KorpatError(f"--tokenizer {tokenizer}: {ext.path} extends another vocabulary than the model's "
                      f"(base_vocab_sha256 differs); extend the model's own vocab.txt")
  grown = dict(flat)
  for path, value in flat.items():
    kind = vocab_extension.vocab_key("".join(f"['{p}']" for p in path))
    if kind and np.shape(value)[0] == ext.base_vocab_size:
      grown[path] = vocab_extension.grow_rows(value, ext.pieces, zero=kind == "zero")
  notes.append(f"vocabulary grown {ext.base_vocab_size} -> {ext.vocab_size} tokens by {ext.path} (new rows: the "
               f"mean of their base pieces' rows)")
  return dataclasses.replace(cfg, vocab_size=ext.vocab_size), grown


def _vocab_sha256(vocab: list[str]) -> str:
  """korpat_jax.tokenizer.wordpiece.vocab_sha256 (without importing the tokenizer)."""
  while vocab and vocab[-1] == "":
    vocab = vocab[:-1]
  return hashlib.sha256("".join(t.rstrip("\r") + "\n" for t in vocab).encode("utf-8")).hexdigest()


EXTENDED_TOKENIZER_FILES = (hf_tokenizer.VOCAB_TXT, "mwp_tokenizer.json", "user.dic", vocab_extension.EXTENSION_JSON)


def _copy_tokenizer(tokenizer: str, out: str) -> str:
  """OUT/tokenizer: the extended tokenizer's files (a user dictionary it references by absolute path stays there)."""
  tokenizer_dir = files.join(out, "tokenizer")
  files.makedirs(tokenizer_dir)
  for name in EXTENDED_TOKENIZER_FILES:
    if files.isfile(files.join(tokenizer, name)):
      files.copy_file(files.join(tokenizer, name), files.join(tokenizer_dir, name))
  return tokenizer_dir
