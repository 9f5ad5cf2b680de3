"""The TFDS metadata of a prepared directory: `dataset_info.json` and `features.json`, written as plain JSON.

With them `tfds.builder_from_directory(records_dir).as_data_source(split)` opens the shards as a random-access source
(for Grain or PyTorch) that yields {"input_ids": uint16 or uint32 ids, "boundaries": uint8 flags, both unpadded},
decoded by TFDS's numpy parser without TensorFlow. The records already are what TFDS writes for those features
(records.py); the shard names keep ours through TFDS's per-split `filepathTemplate`. Writing needs neither tfds nor
TensorFlow.

The JSON is the protobuf JSON form of TFDS's DatasetInfo and of its FeaturesDict/Tensor feature (tensorflow_datasets
4.9: core/proto/dataset_info.proto, feature.proto); int64 fields are strings, as protobuf's JSON writer gives them.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from korpat_jax import boundaries, files
from korpat_jax.corpus import records

DATASET_INFO = "dataset_info.json"
FEATURES = "features.json"
NAME = "korpat_electra_records"
FILE_FORMAT = "array_record"
FILEPATH_TEMPLATE = "{SPLIT}-{SHARD_X_OF_Y}.array_record"  # = records.shard_name
_TENSOR = "tensorflow_datasets.core.features.tensor_feature.Tensor"
_FEATURES_DICT = "tensorflow_datasets.core.features.features_dict.FeaturesDict"


def version(schema: str = records.SCHEMA) -> str:
  """The dataset version TFDS shows: the records schema's number as MAJOR.0.0."""
  return f"{schema.rsplit('/', 1)[1]}.0.0"


def _tensor(dtype: np.dtype | str, description: str) -> dict[str, Any]:
  """A variable-length Tensor feature of `dtype` stored as its bytes."""
  tensor = {"shape": {"dimensions": ["-1"]}, "dtype": np.dtype(dtype).name, "encoding": "bytes"}
  return {"pythonClassName": _TENSOR, "tensor": tensor, "description": description}


def features_json(id_dtype: np.dtype | str, with_boundaries: bool = True) -> dict[str, Any]:
  """`features.json`: `input_ids`, a variable-length Tensor of the id dtype stored as its bytes, and (schema 3)
  `boundaries`, one uint8 of flags per id."""
  features = {}
  if with_boundaries:
    features[records.BOUNDARIES] = _tensor(
        boundaries.DTYPE, f"one flag byte per id: {boundaries.MORPHEME_START} = starts a Mecab-ko morpheme, "
        f"{boundaries.EOJEOL_START} = starts an eojeol (space-separated word); [CLS] and [SEP] start both")
  features[records.FEATURE] = _tensor(id_dtype, "[CLS] A [SEP] B [SEP] token ids, unpadded; token types are 0 up "
                                                "to and including the first [SEP], 1 after it")
  return {"pythonClassName": _FEATURES_DICT, "featuresDict": {"features": features}}


def dataset_info_json(manifest: Mapping[str, Any], shard_bytes: Mapping[str, int]) -> dict[str, Any]:
  """`dataset_info.json` for a manifest (build_manifest's dict); `shard_bytes`: file name -> size on disk."""
  splits = []
  for name, split in manifest["splits"].items():
    shards = split["shards"]
    splits.append({"name": name, "shardLengths": [str(int(s["examples"])) for s in shards],
                   "numBytes": str(sum(shard_bytes[s["file"]] for s in shards)),
                   "filepathTemplate": FILEPATH_TEMPLATE})
  special = ", ".join(f"{k} {v}" for k, v in manifest["special_ids"].items())
  schema = manifest.get("schema", records.SCHEMA)
  description = (f"Packed ELECTRA pretraining examples written by `korpat-jax prepare` ({schema}): "
                 f"at most {manifest['seq_len']} ids of a {manifest['vocab_size']}-token vocabulary "
                 f"(vocab hash {manifest['vocab_hash']}; {special}). manifest.json beside this file has the counts "
                 "and the preparation settings.")
  return {"name": NAME, "version": version(schema), "description": description, "fileFormat": FILE_FORMAT,
          "splits": splits}


def write(out_dir: str, manifest: Mapping[str, Any]) -> None:
  """Write both files for the shards `manifest` lists in `out_dir`."""
  names = [s["file"] for split in manifest["splits"].values() for s in split["shards"]]
  shard_bytes = {name: os.path.getsize(os.path.join(out_dir, name)) for name in names}
  with_boundaries = manifest.get("schema", records.SCHEMA) != records.SCHEMA_WITHOUT_BOUNDARIES
  files.write_json(os.path.join(out_dir, FEATURES), features_json(manifest["id_dtype"], with_boundaries), indent=1)
  files.write_json(os.path.join(out_dir, DATASET_INFO), dataset_info_json(manifest, shard_bytes), indent=1)
