"""`korpat-jax export --format onnx`: the HF export's directory plus model.onnx, for onnxruntime serving.

The HF directory (config.json, model.safetensors, tokenizer files, README) is written by to_hf.export exactly as for
`--format hf`; its PyTorch model is then exported by torch.onnx's dynamo exporter (torch.export -> ONNX, through
onnxscript) with the batch and sequence axes dynamic. The older TorchScript exporter (dynamo=False) is not used: it
bakes transformers 5's attention-mask construction into the graph and the exported logits come out wrong (by
~0.1 on a tiny model, even at the traced shape). Before model.onnx is kept, onnxruntime runs it on two padded
batches of other shapes than the traced one and must reproduce PyTorch; the README gains an ONNX section (names,
axes, a snippet). `out` may be a URL: model.onnx is written locally and uploaded whole, as the HF files are.

`--quantize int8` adds model.int8.onnx: onnxruntime's dynamic quantization (int8 weights, activations quantized per
call) of model.onnx. It is another model, not the exported one: its outputs move by ~1e-3 to 1e-2, so it is checked
for agreement (argmax of the outputs against model.onnx on the check batches), not equality, and the export says
by how much it moved; measure it on your own eval set before serving it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import logging
import warnings
from typing import Any, Optional

import numpy as np

from korpat_jax import files
from korpat_jax.errors import KorpatError
from korpat_jax.export import to_hf

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
QUANTIZE = ("none", "int8")
INT8_MIN_AGREEMENT = 0.9  # argmax agreement with model.onnx on the check batches below which int8 is refused
OPSET = 18  # LayerNormalization is one op from 17; onnxruntime >= 1.14 runs 18
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")  # the HF tokenizer's keys: feed its dict as it is
OUTPUT_NAMES = {"ElectraForQuestionAnswering": ("start_logits", "end_logits")}  # any other class: ("logits",)
REQUIRED = ("torch", "transformers", "onnx", "onnxruntime", "onnxscript")
MIN_TORCH = (2, 6)  # torch.onnx.export(dynamo=True) with dynamic_shapes, external_data, optimize
INSTALL = "pip install 'korpat-jax[onnx]'"
EXAMPLE_SHAPE = (2, 16)  # the traced shape; batch 2, not 1, so that torch.export cannot specialise the batch axis
CHECK_SHAPES = ((3, 7), (1, 10_000))  # onnxruntime vs PyTorch; lengths are capped at the model's positions
CHECK_TOL = 1e-4  # max abs difference, relative to max(1, the largest |logit|)

log = logging.getLogger("korpat_jax")


@dataclasses.dataclass(frozen=True)
class OnnxExported:
  hf: to_hf.Exported         # the HF directory model.onnx sits in
  path: str                  # DIR/model.onnx
  outputs: tuple[str, ...]   # ONNX output names, e.g. ("logits",) or ("start_logits", "end_logits")
  num_bytes: int
  max_abs_diff: float        # onnxruntime vs PyTorch on the check batches
  int8: Optional["Int8Model"] = None


@dataclasses.dataclass(frozen=True)
class Int8Model:
  path: str                  # DIR/model.int8.onnx
  num_bytes: int
  max_abs_diff: float        # against model.onnx on the check batches
  agreement: float           # share of argmax decisions (rows, or tokens) equal to model.onnx's there


def require_onnx() -> None:
  """A one-line error naming the missing packages and the extra, before anything is written."""
  missing = [name for name in REQUIRED if not _importable(name)]
  if missing:
    raise KorpatError(f"--format onnx needs {', '.join(missing)} (not installed); {INSTALL}")
  import torch
  if tuple(int(part) for part in torch.__version__.split(".")[:2]) < MIN_TORCH:
    raise KorpatError(f"--format onnx needs torch >= {'.'.join(map(str, MIN_TORCH))} (its dynamo ONNX exporter), "
                      f"found {torch.__version__}; {INSTALL}")


def export_onnx(workdir: str, out: str, step: Optional[int] = None, part: Optional[str] = None,
                overwrite: bool = False, quantize: str = "none") -> list[OnnxExported]:
  """to_hf.export's directories (same arguments, same layout), each with a checked model.onnx (and with
  `quantize="int8"` model.int8.onnx)."""
  if quantize not in QUANTIZE:
    raise KorpatError(f"--quantize {quantize}: expected one of {', '.join(QUANTIZE)}")
  require_onnx()
  return [convert(done, quantize) for done in to_hf.export(workdir, out, step=step, part=part, overwrite=overwrite)]


def output_names(architecture: str) -> tuple[str, ...]:
  return OUTPUT_NAMES.get(architecture, ("logits",))


def convert(done: to_hf.Exported, quantize: str = "none") -> OnnxExported:
  """Writes DIR/model.onnx from the HF directory DIR, checks it under onnxruntime and documents it in the README
  (and model.int8.onnx beside it with `quantize="int8"`)."""
  model = load_torch_model(files.local_copy(done.directory), done.architecture)
  outputs = output_names(done.architecture)
  path = files.join(done.directory, ONNX_FILE)
  int8 = None
  with files.atomic_path(path) as tmp:  # removed, never left half-checked, when the export or the check fails
    write_onnx(model, tmp, outputs)
    diff = check_against_torch(tmp, model, outputs)
    num_bytes = files.file_size(tmp)
    if quantize == "int8":
      int8 = write_int8(tmp, files.join(done.directory, INT8_FILE), outputs, model.config,
                        binary_tokens=done.architecture == "ElectraForPreTraining")
  _append_card(done.directory, outputs, model.config.max_position_embeddings, int8)
  return OnnxExported(done, path, outputs, num_bytes, diff, int8)


def write_int8(fp32_path: str, path: str, outputs: tuple[str, ...], config: Any, binary_tokens: bool = False
               ) -> Int8Model:
  """model.int8.onnx: dynamic int8 quantization of `fp32_path`, compared with it on the check batches; refused in
  one line when fewer than INT8_MIN_AGREEMENT of its decisions agree. Decisions: the argmax of each row (sequence
  classification, QA start / end) or of each unpadded token (token classification); `binary_tokens`: the sign of
  each unpadded token's logit (the discriminator)."""
  import onnxruntime
  from onnxruntime.quantization import QuantType, quantize_dynamic
  with files.atomic_path(path) as tmp:
    with _quiet():
      quantize_dynamic(fp32_path, tmp, weight_type=QuantType.QInt8)
    sessions = [onnxruntime.InferenceSession(p, providers=["CPUExecutionProvider"]) for p in (fp32_path, tmp)]
    worst, same, total = 0.0, 0, 0
    for seed, (rows, length) in enumerate(CHECK_SHAPES, start=1):
      batch = _check_batch(rows, min(length, config.max_position_embeddings), config, seed)
      want, got = (session.run(list(outputs), batch) for session in sessions)
      keep = batch["attention_mask"].astype(bool)
      for a, b in zip(got, want):
        worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b))))
        if binary_tokens:
          decided = ((a > 0) == (b > 0))[keep]
        elif a.ndim == 3:
          decided = (a.argmax(-1) == b.argmax(-1))[keep]
        else:
          decided = a.argmax(-1) == b.argmax(-1)
        same, total = same + int(decided.sum()), total + int(decided.size)
    agreement = same / max(total, 1)
    if agreement < INT8_MIN_AGREEMENT:
      raise KorpatError(f"{path}: the int8 model agrees with model.onnx on only {agreement:.1%} of its decisions on "
                        f"the check batches (max abs diff {worst:.2e}); serve model.onnx, or drop --quantize")
    num_bytes = files.file_size(tmp)
  return Int8Model(path, num_bytes, worst, agreement)


def load_torch_model(directory: str, architecture: str) -> Any:
  """The exported class in eval mode, with eager attention: a plain MatMul-Softmax-MatMul graph, which every ONNX
  runtime and its fusions know (SDPA exports to the same numbers with more reshapes)."""
  import transformers
  model_class = getattr(transformers, architecture, None)
  if model_class is None:
    raise KorpatError(f"{directory}: transformers {transformers.__version__} has no class {architecture}")
  bar = transformers.utils.logging.is_progress_bar_enabled()
  transformers.utils.logging.disable_progress_bar()  # a "Loading weights" bar per directory says nothing here
  try:
    return model_class.from_pretrained(directory, attn_implementation="eager").eval()
  finally:
    if bar:
      transformers.utils.logging.enable_progress_bar()


def write_onnx(model: Any, path: str, outputs: tuple[str, ...]) -> None:
  """torch.onnx (dynamo) export with dynamic batch and sequence axes (sequence <= the model's positions)."""
  import torch
  positions = model.config.max_position_embeddings
  batch = torch.export.Dim("batch")
  sequence = torch.export.Dim("sequence", max=positions)
  example = _torch_inputs(_check_batch(EXAMPLE_SHAPE[0], min(EXAMPLE_SHAPE[1], positions), model.config, seed=0))
  with _quiet():
    torch.onnx.export(_NamedOutputs.wrap(model, outputs), tuple(example[name] for name in INPUT_NAMES), path,
                      input_names=list(INPUT_NAMES), output_names=list(outputs), opset_version=OPSET, dynamo=True,
                      dynamic_shapes={name: {0: batch, 1: sequence} for name in INPUT_NAMES},
                      external_data=False, optimize=True, verbose=False)


def check_against_torch(path: str, model: Any, outputs: tuple[str, ...]) -> float:
  """Max abs difference of onnxruntime and PyTorch over CHECK_SHAPES (padded, both token types); a KorpatError
  above CHECK_TOL, so that a wrong graph is never written."""
  import onnxruntime
  import torch
  session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
  worst = 0.0
  for seed, (rows, length) in enumerate(CHECK_SHAPES, start=1):
    batch = _check_batch(rows, min(length, model.config.max_position_embeddings), model.config, seed)
    got = session.run(list(outputs), batch)
    with torch.inference_mode():
      want = _NamedOutputs.wrap(model, outputs)(**_torch_inputs(batch))
    for name, a, b in zip(outputs, got, want):
      b = b.numpy()
      diff = float(np.max(np.abs(a.astype(np.float64) - b)))
      if diff > CHECK_TOL * max(1.0, float(np.max(np.abs(b)))):
        raise KorpatError(f"{path}: onnxruntime's {name} differs from PyTorch's by {diff:.2e} on a "
                          f"{rows}x{batch['input_ids'].shape[1]} batch; the ONNX export is wrong, please report it")
      worst = max(worst, diff)
  return worst


def onnx_card(outputs: tuple[str, ...], positions: int, int8: Optional[Int8Model] = None) -> str:
  """The README section of an ONNX export: what to feed, what comes out, how to run it."""
  names = ", ".join(f"`{name}`" for name in outputs)
  quantized = "" if int8 is None else f"""
`{INT8_FILE}` is the same graph with int8 weights (onnxruntime's dynamic quantization): faster on CPUs with int8
dot-product instructions (AVX-512 VNNI, AVX-VNNI), but another model: on random check batches its outputs moved by
up to {int8.max_abs_diff:.1e} from {ONNX_FILE}'s and {int8.agreement:.1%} of its decisions agreed. Measure it on your
own eval set before serving it; it loads as `{ONNX_FILE}` does.
"""
  return f"""
## ONNX

`{ONNX_FILE}` (opset {OPSET}) is this model for [onnxruntime](https://onnxruntime.ai): inputs `input_ids`,
`attention_mask`, `token_type_ids` (int64, `[batch, sequence]`, both axes dynamic, sequence <= {positions});
outputs {names} (float32), as the PyTorch model's. The tokenizer's output (loaded as above) feeds it as
it is:

```python
import onnxruntime as ort
from transformers import AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("PATH_TO_THIS_DIR", trust_remote_code=True)
session = ort.InferenceSession("PATH_TO_THIS_DIR/{ONNX_FILE}", providers=["CPUExecutionProvider"])
feeds = dict(tokenizer(["..."], padding=True, truncation=True, return_tensors="np"))
{", ".join(outputs)} = session.run({list(outputs)!r}, feeds)
```
""" + quantized


class _NamedOutputs:
  """Positional (input_ids, attention_mask, token_type_ids) -> the named logits as a tuple: what torch.onnx traces.
  Built on use so that importing this module does not import torch."""

  @staticmethod
  def wrap(model: Any, outputs: tuple[str, ...]) -> Any:
    import torch

    class NamedOutputs(torch.nn.Module):
      def __init__(self) -> None:
        super().__init__()
        self.model = model

      def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> tuple[Any, ...]:
        result = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            return_dict=True)
        return tuple(result[name] for name in outputs)

    return NamedOutputs().eval()


def _check_batch(rows: int, length: int, config: Any, seed: int) -> dict[str, np.ndarray]:
  """Random ids, both token types, the last row padded over its second half (when it has one)."""
  rng = np.random.default_rng(seed)
  ids = rng.integers(0, config.vocab_size, size=(rows, length), dtype=np.int64)
  types = np.zeros_like(ids)
  types[:, length // 2:] = 1
  mask = np.ones_like(ids)
  if length > 1:
    mask[-1, max(1, length // 2):] = 0
    ids[-1, max(1, length // 2):] = config.pad_token_id or 0
  return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _torch_inputs(batch: dict[str, np.ndarray]) -> dict[str, Any]:
  import torch
  return {name: torch.from_numpy(value) for name, value in batch.items()}


def _append_card(directory: str, outputs: tuple[str, ...], positions: int, int8: Optional[Int8Model] = None) -> None:
  path = files.join(directory, "README.md")
  card = files.read_text(path) if files.isfile(path) else ""
  files.write_text(path, card.rstrip("\n") + "\n" + onnx_card(outputs, positions, int8))


def _importable(name: str) -> bool:
  try:
    importlib.import_module(name)
  except ImportError:
    return False
  return True


@contextlib.contextmanager
def _quiet():
  """The exporter prints its progress to stdout and warns about things that do not concern a user (torchvision
  ops, deprecations inside torch.export); the check afterwards is what tells whether the export is right."""
  torch_log = logging.getLogger("torch")
  level = torch_log.level
  torch_log.setLevel(logging.ERROR)
  try:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
      warnings.simplefilter("ignore")
      yield
  finally:
    torch_log.setLevel(level)
