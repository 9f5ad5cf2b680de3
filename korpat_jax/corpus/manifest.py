"""The prepared directory's bookkeeping: the run fingerprint that makes reruns resume, and `manifest.json`.

`read_manifest` (records.py) reads what `build_manifest` writes; the keys it relies on are "schema", "seq_len",
"id_dtype", "vocab_size", "vocab_hash", "special_ids" and "splits" -> {split: {"shards": [...]}}.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import shutil
from importlib import metadata
from typing import Any, Sequence

from korpat_jax.corpus import records
from korpat_jax.corpus.pipeline import PrepConfig
from korpat_jax.corpus.report import PrepStats
from korpat_jax.corpus.tokenizing import CorpusTokenizer
from korpat_jax.errors import KorpatError

STATE = ".prepare-state.json"
WORK_DIR = ".prepare-work"


def input_listing(files: Sequence[str]) -> list[dict[str, Any]]:
  out = []
  for path in files:
    st = os.stat(path)
    out.append({"path": path, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
  return out


def fingerprint(files: Sequence[str], config: PrepConfig, tokenizer: CorpusTokenizer) -> str:
  """Changes when anything that decides the records changes: inputs, config, vocab, schema."""
  blob = json.dumps({"schema": records.SCHEMA, "inputs": input_listing(files), "config": config.to_json(),
                     "vocab_hash": tokenizer.vocab_hash, "vocab_size": tokenizer.vocab_size},
                    sort_keys=True, default=str)
  return hashlib.sha256(blob.encode()).hexdigest()


def _owned(name: str) -> bool:
  return name in (records.MANIFEST, STATE, WORK_DIR) or ".array_record" in name


def claim_output_dir(out_dir: str, run_fingerprint: str, overwrite: bool) -> bool:
  """Create or resume `out_dir`. Returns True when it already holds the finished records of this very run."""
  os.makedirs(out_dir, exist_ok=True)
  state_path = os.path.join(out_dir, STATE)
  previous = None
  if os.path.exists(state_path):
    with open(state_path, encoding="utf-8") as f:
      previous = json.load(f).get("fingerprint")
  elif any(_owned(n) for n in os.listdir(out_dir)):
    previous = "unknown"
  if previous is not None and previous != run_fingerprint:
    if not overwrite:
      raise KorpatError(f"{out_dir}: holds records of a different corpus, tokenizer or config; "
                        "use another --out or pass --overwrite")
    for name in os.listdir(out_dir):
      if _owned(name):
        path = os.path.join(out_dir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
  with open(state_path, "w", encoding="utf-8") as f:
    json.dump({"fingerprint": run_fingerprint}, f)
  return previous == run_fingerprint and os.path.exists(os.path.join(out_dir, records.MANIFEST))


def _version(package: str) -> str | None:
  try:
    return metadata.version(package)
  except metadata.PackageNotFoundError:
    return None


def build_manifest(*, files: Sequence[str], config: PrepConfig, tokenizer: CorpusTokenizer, stats: PrepStats,
                   shards: dict[str, list[dict[str, Any]]], runner: str, run_fingerprint: str,
                   tokenizer_dir: str | None = None) -> dict[str, Any]:
  splits = {}
  for split, entries in sorted(shards.items()):
    if entries:
      splits[split] = {"documents": stats.documents_by_split.get(split, 0),
                       "examples": sum(e["examples"] for e in entries),
                       "tokens": sum(e["tokens"] for e in entries),
                       "shards": entries}
  listing = input_listing(files)
  summary = stats.to_json()
  return {
      "schema": records.SCHEMA,
      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "seq_len": config.packing.seq_len,
      "id_dtype": records.id_dtype_for(tokenizer.vocab_size).str,
      "vocab_size": tokenizer.vocab_size,
      "vocab_hash": tokenizer.vocab_hash,
      "special_ids": dict(tokenizer.special_ids),
      "tokenizer_dir": tokenizer_dir,
      "splits": splits,
      "documents": summary["documents"],
      "sentences": summary["sentences"],
      "tokens": summary["tokens"],
      "tokens_truncated": summary["tokens_truncated"],
      "examples": summary["examples"],
      "skipped": summary["skipped"],
      "adjusted": summary["adjusted"],
      "inputs": {"files": len(listing), "bytes": sum(e["bytes"] for e in listing),
                 "list": [{"path": e["path"], "bytes": e["bytes"]} for e in listing]},
      "prep": {"config": config.to_json(), "runner": runner, "fingerprint": run_fingerprint},
      "versions": {"korpat_jax": _version("korpat-jax"), "python": platform.python_version(),
                   "numpy": _version("numpy"), "array_record": _version("array-record"),
                   "apache_beam": _version("apache-beam") if runner == "beam" else None},
  }


def write_manifest(out_dir: str, manifest: dict[str, Any]) -> str:
  path = os.path.join(out_dir, records.MANIFEST)
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(manifest, f, ensure_ascii=False, indent=1)
    f.write("\n")
  os.replace(tmp, path)
  return path
