"""Where a fine-tuning run's examples come from: plain files (`data.train/eval/test`) or a TFDS dataset
(`data.tfds`, prepared from `data.tfds_manual_dir` into `data.tfds_data_dir`).

    korpat-jax finetune --config configs/finetune.py:ner --workdir W --config.init_from=RUN \
        --config.data.tfds=klue_ner --config.data.tfds_manual_dir=klue/ner

The first run prepares the dataset (ArrayRecord, file order) through the project's readers; later runs read it
(the manual directory may then be left out; when it is given, its files must be the ones the dataset was made from).
`data.tfds_data_dir` "" is TFDS's own default ($TFDS_DATA_DIR, else ~/tensorflow_datasets), so one prepared
dataset serves every run. tensorflow-datasets is imported only here and only for `data.tfds`; TensorFlow itself is
never needed (`as_data_source` reads ArrayRecord without it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import os
from typing import Any, Union

from korpat_jax.errors import ConfigError
from korpat_jax.finetune.report import DataReport

log = logging.getLogger("korpat_jax")

SPLITS = ("train", "eval", "test")
DEFAULT_SPLITS = {"train": "train", "eval": "validation", "test": "test"}  # each used where the dataset has it
DATASETS = {"klue_ner": "klue_ner", "klue_nli": "klue_nli", "korquad": "korquad", "cpc_tsv": "cpc_tsv"}  # -> module
LOCATION_KEYS = ("tfds_manual_dir", "tfds_data_dir")  # where the data lies, not what it is (not in cache keys)
TFDS_KEYS = (*LOCATION_KEYS, "tfds_splits")


@dataclasses.dataclass(frozen=True)
class TfdsSplit:
  """One split of a prepared dataset, as a run's train/eval/test input."""

  dataset: str         # builder name
  version: str
  split: str           # TFDS split spec, e.g. "validation" or "train[:80%]"
  data_dir: str        # the prepared dataset's directory (NAME/VERSION)
  builder: Any = dataclasses.field(compare=False, repr=False)

  def __str__(self) -> str:
    return f"tfds:{self.dataset}:{self.version}/{self.split}"

  def fingerprint(self) -> dict[str, Any]:
    """The split's identity for the feature cache and resume checks (`size`, `head_sha256` as a file's)."""
    meta = dict(self.builder.info.metadata)
    made_from = json.dumps({"dataset": self.dataset, "version": self.version, "split": self.split,
                            "manual_files": meta.get("manual_files", {})}, sort_keys=True)
    base = self.split.split("[")[0]
    return {"path": str(self), "data_dir": self.data_dir, "size": int(self.builder.info.splits[base].num_bytes),
            "head_sha256": hashlib.sha256(made_from.encode()).hexdigest()}

  def examples(self, config: Any, report: DataReport) -> list[Any]:
    """The split's rows as the task's in-memory examples (what the task's `read` gives for a file), with the
    builder's report of the manual file merged into `report`."""
    module = _module(self.dataset)
    meta = dict(self.builder.info.metadata)
    base = self.split.split("[")[0]
    source = self.builder.as_data_source(split=self.split)
    rows = [source[i] for i in range(len(source))]
    if self.split == base:
      report.merge(meta.get("reports", {}).get(base, {}))
    else:  # a slice: the whole split's report of the manual file is in the dataset's metadata.json
      report.read += len(rows)
      report.used += len(rows)
    kwargs = {"columns": meta.get("columns", {}).get(base)} if self.dataset == "cpc_tsv" else {}
    return module.to_examples(rows, config, report, **kwargs)


Input = Union[str, TfdsSplit]


def check_keys(config: Any) -> None:
  """`data.tfds` and `data.train/eval/test` are exclusive; the tfds_* keys need `data.tfds`; the dataset fits
  the task. One line naming the keys otherwise."""
  d = config.data
  if not d.tfds:
    for key in TFDS_KEYS:
      if d[key]:
        raise ConfigError(f"config.data.{key}={d[key]}: only used with config.data.tfds (which is empty)")
    return
  for split in SPLITS:
    if d[split]:
      raise ConfigError(f"config.data.tfds={d.tfds} and config.data.{split}={d[split]}: give one of them (a TFDS "
                        f"dataset or files); map its splits with config.data.tfds_splits")
  name, version = parse_name(d.tfds)
  task = _module(name).TASK
  if task != config.task:
    raise ConfigError(f"config.data.tfds={d.tfds}: a {task} dataset; this config ({config.variant}) is "
                      f"{config.task}")
  parse_splits(d.tfds_splits)
  if d.tfds_manual_dir and not os.path.isdir(_path(d.tfds_manual_dir)):
    raise ConfigError(f"config.data.tfds_manual_dir={d.tfds_manual_dir}: no such directory")


def parse_name(spec: str) -> tuple[str, str]:
  """"NAME" or "NAME:VERSION" -> (name, version or "")."""
  name, _, version = spec.strip().partition(":")
  if name not in DATASETS:
    raise ConfigError(f"config.data.tfds={spec}: unknown dataset {name!r} (one of {', '.join(DATASETS)})")
  return name, version


def parse_splits(setting: str) -> dict[str, str]:
  """"train=SPEC,eval=SPEC,test=SPEC" (any of them) -> {run split: TFDS split spec}; "" -> the defaults."""
  if not setting.strip():
    return {}
  out: dict[str, str] = {}
  for item in setting.split(","):
    key, eq, value = item.partition("=")
    key, value = key.strip(), value.strip()
    if not eq or key not in SPLITS or not value or key in out:
      raise ConfigError(f"config.data.tfds_splits={setting!r}: expected train=SPLIT,eval=SPLIT,test=SPLIT "
                        f"(each at most once; e.g. train=train[:80%],eval=train[80%:]), got {item.strip()!r}")
    out[key] = value
  if "train" not in out:
    raise ConfigError(f"config.data.tfds_splits={setting!r}: names no train split")
  return out


def inputs(config: Any) -> dict[str, Input]:
  """{run split: input}: resolved file paths, or the splits of the TFDS dataset (prepared now if it is not)."""
  d = config.data
  if not d.tfds:
    return {split: _path(d[split]) for split in SPLITS if d[split]}
  builder = prepare(config)
  name, _ = parse_name(d.tfds)
  available = set(builder.info.splits.keys())
  mapping = parse_splits(d.tfds_splits)
  if not mapping:
    mapping = {split: tfds_split for split, tfds_split in DEFAULT_SPLITS.items() if tfds_split in available}
  for split, spec in mapping.items():
    if spec.split("[")[0] not in available:
      key = "config.data.tfds_splits" if d.tfds_splits else f"config.data.tfds={d.tfds}"
      raise ConfigError(f"{key}: the {split} split {spec!r} is not in the prepared dataset (it has "
                        f"{', '.join(sorted(available))})")
  if "train" not in mapping:
    raise ConfigError(f"config.data.tfds={d.tfds}: the prepared dataset has no train split (it has "
                      f"{', '.join(sorted(available))}); set config.data.tfds_splits, e.g. "
                      "train=validation[:80%],eval=validation[80%:]")
  version = str(builder.info.version)
  return {split: TfdsSplit(name, version, spec, os.fspath(builder.data_dir), builder)
          for split, spec in mapping.items()}


def prepare(config: Any) -> Any:
  """The dataset's builder, prepared: from the manual files when it is not yet, else checked against them."""
  d = config.data
  tfds = _tfds(d.tfds)
  name, version = parse_name(d.tfds)
  builder_class = getattr(_module(name), "BUILDER")
  supported = [str(builder_class.VERSION), *map(str, getattr(builder_class, "SUPPORTED_VERSIONS", []))]
  if version and version not in supported:
    raise ConfigError(f"config.data.tfds={d.tfds}: version {version} is not one of {', '.join(supported)}")
  data_dir = _path(d.tfds_data_dir) or None
  builder = builder_class(data_dir=data_dir, version=version or None, file_format="array_record")
  manual_dir = _path(d.tfds_manual_dir)
  if builder.is_prepared():
    if manual_dir:
      _check_made_from(builder, manual_dir, d)
    log.info("tfds: %s %s from %s", name, builder.info.version, builder.data_dir)
    return builder
  if not manual_dir:
    raise ConfigError(f"config.data.tfds={d.tfds}: not prepared in {builder.data_dir_root}; set "
                      f"config.data.tfds_manual_dir ({builder.MANUAL_DOWNLOAD_INSTRUCTIONS})")
  from korpat_jax.datasets.manual import find_split_files
  find_split_files(manual_dir, builder.SPLIT_FILES, name)  # our one-line error, before TFDS's own checks
  log.info("tfds: preparing %s %s from %s into %s", name, builder.info.version, manual_dir, builder.data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder_class(data_dir=data_dir, version=version or None, file_format="array_record")


def _check_made_from(builder: Any, manual_dir: str, d: Any) -> None:
  """A prepared dataset whose manual files have changed is refused (it would be reused silently otherwise)."""
  from korpat_jax.datasets.manual import file_digest, find_split_files
  made_from = dict(builder.info.metadata).get("manual_files", {})
  current = {split: file_digest(path)
             for split, path in find_split_files(manual_dir, builder.SPLIT_FILES, builder.name).items()}
  if current != made_from:
    raise ConfigError(f"config.data.tfds_manual_dir={d.tfds_manual_dir}: its files differ from the ones "
                      f"{builder.name} in {builder.data_dir} was prepared from; delete that directory to prepare "
                      "it again, or set another config.data.tfds_data_dir")


def _tfds(spec: str) -> Any:
  try:
    import tensorflow_datasets as tfds
  except ImportError:
    raise ConfigError(f"config.data.tfds={spec}: tensorflow-datasets is not installed (pip install "
                      "tensorflow-datasets; TensorFlow is not needed)") from None
  return tfds


def _module(name: str) -> Any:
  """The dataset's module (builder, TASK, to_examples)."""
  _tfds(name)
  return importlib.import_module(f"korpat_jax.datasets.{DATASETS[name]}")


def _path(path: str) -> str:
  return os.path.abspath(os.path.expanduser(path)) if path else ""


def fingerprint(source: Input) -> dict[str, Any]:
  """The identity of an input for the feature cache: a file's (size, mtime, first MiB) or a TFDS split's."""
  if isinstance(source, TfdsSplit):
    return source.fingerprint()
  from korpat_jax.finetune.features import file_fingerprint
  return file_fingerprint(source)


def describe(config: Any, split: str, source: Input) -> str:
  """The config key an input came from, for error lines."""
  if isinstance(source, TfdsSplit):
    return f"config.data.tfds={config.data.tfds} ({split}: {source.split})"
  return f"config.data.{split}={config.data[split]}"
