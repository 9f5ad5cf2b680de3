"""The prepared directory's bookkeeping: the run fingerprint that makes reruns resume, and `manifest.json`.

`read_manifest` (records.py) reads what `build_manifest` writes; the keys it relies on are "schema", "seq_len",
"id_dtype", "vocab_size", "vocab_hash", "special_ids" and "splits" -> {split: {"shards": [...]}}.

Counts in the manifest (report.py defines them; `build_manifest` raises AccountingError when they do not add up):
- documents_read == documents_written + sum(documents_skipped.values()); "documents" is documents_written.
- documents_adjusted: written documents that lost or changed lines, by reason (one document may have several).
- tokens: ids in the records, [CLS]/[SEP] included == the sum of splits[*]["tokens"]
  == tokens_read (sentence tokens before packing) - tokens_truncated (cut at seq-len) + special_tokens.
- skipped / adjusted: events (lines, documents, files, sentences) by reason, with the first few places.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import shutil
import sys
from importlib import metadata
from typing import Any, Callable, Sequence

from korpat_jax import files as files_lib
from korpat_jax.corpus import records, tfds_metadata, writer
from korpat_jax.corpus.pipeline import PrepConfig
from korpat_jax.corpus.report import AccountingError, PrepStats
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


def run_identity(files: Sequence[str], config: PrepConfig, tokenizer: CorpusTokenizer) -> dict[str, Any]:
  """Everything that decides the records: inputs, config, vocab, schema (as JSON values)."""
  identity = {"schema": records.SCHEMA, "inputs": input_listing(files), "config": config.to_json(),
              "vocab_hash": tokenizer.vocab_hash, "vocab_size": tokenizer.vocab_size}
  return json.loads(json.dumps(identity, default=str))


def fingerprint(files: Sequence[str], config: PrepConfig, tokenizer: CorpusTokenizer) -> str:
  """Changes when anything that decides the records changes: inputs, config, vocab, schema."""
  return _hash_identity(run_identity(files, config, tokenizer))


def _hash_identity(identity: dict[str, Any]) -> str:
  return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
  if isinstance(tree, dict):
    return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f"{prefix}{key}.").items()}
  return {prefix[:-1]: tree}


def _short(value: Any) -> str:
  text = str(value)
  return f"{text[:12]}…" if len(text) > 14 else text


def describe_difference(there: dict[str, Any] | None, now: dict[str, Any]) -> str:
  """What differs between the run that wrote a directory and this one, e.g. "seq_len 128 there, 512 now"."""
  if not there:
    return "the earlier run left no record of its settings"
  diffs = []
  if there.get("schema") != now["schema"]:
    diffs.append(f"record schema {there.get('schema')} there, {now['schema']} now")
  for key, label in (("vocab_hash", "tokenizer vocab hash"), ("vocab_size", "tokenizer vocab size")):
    if there.get(key) != now[key]:
      diffs.append(f"{label} {_short(there.get(key))} there, {_short(now[key])} now")
  old_config, new_config = _leaves(there.get("config") or {}), _leaves(now["config"])
  for key in sorted(set(old_config) | set(new_config)):
    if old_config.get(key) != new_config.get(key):
      diffs.append(f"{key.rsplit('.', 1)[-1]} {old_config.get(key)} there, {new_config.get(key)} now")
  if "inputs" in there:
    old = {e["path"]: e for e in there["inputs"]}
    new = {e["path"]: e for e in now["inputs"]}
    changed = sorted(p for p in set(old) & set(new) if old[p] != new[p])
    parts = [f"{len(names)} {what} (e.g. {names[0]})" for what, names in (
        ("added", sorted(set(new) - set(old))), ("removed", sorted(set(old) - set(new))), ("changed", changed))
        if names]
    if parts:
      diffs.append("corpus files differ: " + ", ".join(parts))
  return "; ".join(diffs) or "the settings match, the earlier run's fingerprint does not"


def _previous_identity(out_dir: str, state: dict[str, Any]) -> dict[str, Any] | None:
  """The earlier run's identity: from the state file, else (older versions) what its manifest says."""
  if "identity" in state:
    return state["identity"]
  try:
    with open(os.path.join(out_dir, records.MANIFEST), encoding="utf-8") as f:
      manifest = json.load(f)
    return {"schema": manifest.get("schema"), "config": manifest["prep"]["config"],
            "vocab_hash": manifest.get("vocab_hash"), "vocab_size": manifest.get("vocab_size")}
  except (OSError, ValueError, KeyError, TypeError):
    return None


def _owned(name: str) -> bool:
  return (name in (records.MANIFEST, STATE, WORK_DIR, tfds_metadata.DATASET_INFO, tfds_metadata.FEATURES)
          or ".array_record" in name)


def _warn(message: str) -> None:
  print(f"[prepare] {message}", file=sys.stderr, flush=True)


def remove_leftovers(out_dir: str, log: Callable[[str], None] = _warn) -> None:
  """Removes the temporary files of a prepare that was killed before it could (SIGKILL, a lost machine): shards and
  JSON being written (`*.array_record.tmp-PID`, `manifest.json.tmp-PID`) and intermediate files (`*.spill.tmp`).
  Only under the run lock (korpat_jax.run_lock), which keeps every other prepare off `out_dir`."""
  found = []
  for folder in (out_dir, os.path.join(out_dir, WORK_DIR)):
    names = os.listdir(folder) if os.path.isdir(folder) else []
    found += [os.path.join(folder, n) for n in names
              if writer.is_temporary(n) and (folder != out_dir or _owned(writer.final_name(n)))]
  if found:
    nbytes = sum(os.path.getsize(p) for p in found)
    for path in found:
      os.remove(path)
    log(f"removed {len(found)} temporary file(s) ({nbytes / 1e6:.1f} MB) of an interrupted run, e.g. "
        f"{os.path.basename(found[0])}")


def remove_damaged_shards(out_dir: str, log: Callable[[str], None] = _warn) -> bool:
  """Checks a finished directory's shards against its manifest (corpus/verify.py); removes the damaged ones and the
  manifest, so that the run writes them again. Returns whether it removed any."""
  from korpat_jax.corpus import verify  # pylint: disable=import-outside-toplevel - verify reads what this writes
  bad = verify.verify_records(out_dir).bad
  for check in bad:
    log(f"{check.path}: {check.problem}: removed, to be written again")
    if os.path.exists(check.path):
      os.remove(check.path)
  if bad:
    os.remove(os.path.join(out_dir, records.MANIFEST))
  return bool(bad)


def claim_output_dir(out_dir: str, identity: dict[str, Any], overwrite: bool) -> bool:
  """Create or resume `out_dir` for the run `identity` (run_identity). Returns True when it already holds the
  finished records of this very run, checked against its manifest (damaged shards are removed and the run goes on to
  write them again); raises, saying what differs, when it holds another run's (unless `overwrite`).
  """
  run_fingerprint = _hash_identity(identity)
  os.makedirs(out_dir, exist_ok=True)
  remove_leftovers(out_dir)
  state_path = os.path.join(out_dir, STATE)
  previous, state = None, {}
  if os.path.exists(state_path):
    with open(state_path, encoding="utf-8") as f:
      state = json.load(f)
    previous = state.get("fingerprint")
  elif any(_owned(n) for n in os.listdir(out_dir)):
    previous = "unknown"
  if previous is not None and previous != run_fingerprint:
    if not overwrite:
      raise KorpatError(f"{out_dir}: holds records of a different corpus, tokenizer or config "
                        f"({describe_difference(_previous_identity(out_dir, state), identity)}); "
                        "use another --out or pass --overwrite")
    for name in os.listdir(out_dir):
      if _owned(name):
        path = os.path.join(out_dir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
  with writer.write_errors(state_path):
    files_lib.write_json(state_path, {"fingerprint": run_fingerprint, "identity": identity}, indent=None)
  finished = previous == run_fingerprint and os.path.exists(os.path.join(out_dir, records.MANIFEST))
  return finished and not remove_damaged_shards(out_dir)


def _version(package: str) -> str | None:
  try:
    return metadata.version(package)
  except metadata.PackageNotFoundError:
    return None


def build_manifest(*, files: Sequence[str], config: PrepConfig, tokenizer: CorpusTokenizer, stats: PrepStats,
                   shards: dict[str, list[dict[str, Any]]], runner: str, run_fingerprint: str,
                   tokenizer_dir: str | None = None) -> dict[str, Any]:
  """The manifest of a finished run; raises AccountingError when the counts do not add up (a bug, not bad input)."""
  stats.check()
  splits = {}
  for split, entries in sorted(shards.items()):
    if entries:
      splits[split] = {"documents": stats.documents_by_split.get(split, 0),
                       "examples": sum(e["examples"] for e in entries),
                       "tokens": sum(e["tokens"] for e in entries),  # ids in the records, [CLS]/[SEP] included
                       "shards": entries}
  for split in sorted(set(splits) | set(stats.tokens_written) | set(stats.examples)):
    on_disk = (splits.get(split, {}).get("examples", 0), splits.get(split, {}).get("tokens", 0))
    counted = (stats.examples.get(split, 0), stats.tokens_written.get(split, 0))
    if on_disk != counted:
      raise AccountingError(f"split {split}: the shards hold {on_disk[0]} examples of {on_disk[1]} ids, "
                            f"the counts say {counted[0]} of {counted[1]}")
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
      "documents_read": summary["documents_read"],
      "documents_written": summary["documents"],
      "documents_skipped": summary["documents_skipped"],
      "documents_adjusted": summary["documents_adjusted"],
      "sentences": summary["sentences"],
      "tokens": sum(s["tokens"] for s in splits.values()),
      "tokens_read": summary["tokens_read"],
      "tokens_truncated": summary["tokens_truncated"],
      "special_tokens": summary["special_tokens"],
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
  """The TFDS metadata, then `manifest.json`: written last, it marks the directory complete."""
  with writer.write_errors(out_dir):
    tfds_metadata.write(out_dir, manifest)
  path = os.path.join(out_dir, records.MANIFEST)
  with writer.write_errors(path):
    files_lib.write_json(path, manifest, indent=1)
  return path
