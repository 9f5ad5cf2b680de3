"""What the four builders share: split files found in `manual_dir` by name, parsed through one of the project's
readers, written in file order as ArrayRecord.

The reader's `DataReport` of each split (read, used, skipped and adjusted by reason, with `file:line` examples) and
the sha256 of each manual file are kept in the prepared dataset's `metadata.json`: a fine-tuning run reports the
same counts as from the plain file, and a dataset prepared from other manual files is refused, not reused.
"""

from __future__ import annotations

import abc
import glob
import hashlib
import os
from typing import Any, Iterator, Mapping, Sequence

import tensorflow_datasets as tfds

from korpat_jax.errors import KorpatError
from korpat_jax.finetune.report import DataReport

FIRST_VERSION = "1.0.0"


def file_digest(path: str) -> dict[str, Any]:
  """Name, size and sha256 of a manual file (what a prepared split was made from)."""
  sha = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      sha.update(block)
  return {"name": os.path.basename(path), "size": os.path.getsize(path), "sha256": sha.hexdigest()}


def find_split_files(manual_dir: str, patterns: Mapping[str, Sequence[str]], dataset: str) -> dict[str, str]:
  """{TFDS split: file} of the split files present in `manual_dir` (at least one; one file per split)."""
  found: dict[str, str] = {}
  for split, globs in patterns.items():
    matches = sorted({m for g in globs for m in glob.glob(os.path.join(glob.escape(manual_dir), g))})
    if len(matches) > 1:
      raise KorpatError(f"{manual_dir}: {len(matches)} files for the {dataset} split {split!r} "
                        f"({', '.join(os.path.basename(m) for m in matches)}); keep one")
    if matches:
      found[split] = matches[0]
  if not found:
    expected = "; ".join(f"{split}: {' or '.join(globs)}" for split, globs in patterns.items())
    raise KorpatError(f"{manual_dir}: no {dataset} file (expected {expected})")
  return found


class ManualFilesBuilder(tfds.core.GeneratorBasedBuilder):
  """A dataset of local files: SPLIT_FILES names them per split; `_read` parses one through a project reader."""

  VERSION = tfds.core.Version(FIRST_VERSION)
  RELEASE_NOTES = {FIRST_VERSION: "First release: parsed by korpat_jax's readers, in file order."}
  SPLIT_FILES: Mapping[str, Sequence[str]] = {}
  DESCRIPTION = ""
  HOMEPAGE = ""

  @abc.abstractmethod
  def _features(self) -> tfds.features.FeaturesDict:
    """The features of one example."""

  @abc.abstractmethod
  def _read(self, split: str, path: str, report: DataReport) -> list[dict[str, Any]]:
    """The records of one manual file, through the project's reader (bad examples counted in `report`)."""

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, description=self.DESCRIPTION, features=self._features(),
                                 homepage=self.HOMEPAGE or None, disable_shuffling=True,
                                 metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager) -> dict[str, Iterator[tuple[int, dict[str, Any]]]]:
    files = find_split_files(os.fspath(dl_manager.manual_dir), self.SPLIT_FILES, self.name)
    self.info.metadata["manual_files"] = {split: file_digest(path) for split, path in files.items()}
    self.info.metadata["reports"] = {}
    return {split: self._generate_examples(split, path) for split, path in files.items()}

  def _generate_examples(self, split: str, path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    report = DataReport(f"{self.name} {split} ({path})")
    records = self._read(split, path, report)
    report.log_summary()
    self.info.metadata["reports"][split] = report.to_dict()
    yield from enumerate(records)  # integer keys in file order: with disable_shuffling, the stored order
