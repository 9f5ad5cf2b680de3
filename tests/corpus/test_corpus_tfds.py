"""A prepared records directory is also a TFDS dataset: `tfds.builder_from_directory(dir).as_data_source(split)`
reads it, decoding with TFDS's numpy parser, in a process where TensorFlow cannot be imported."""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from corpus_fakes import WordHashFactory, write_corpus
from korpat_jax import input_pipeline
from korpat_jax.corpus import records, tfds_metadata
from korpat_jax.corpus.examples import PackingConfig
from korpat_jax.corpus.local import run_local
from korpat_jax.corpus.pipeline import PrepConfig
from korpat_jax.corpus.readers import expand_corpus
from korpat_jax.corpus.writer import read_records
from korpat_jax.errors import KorpatError

CONFIG = PrepConfig(packing=PackingConfig(seq_len=40), records_per_shard=15, eval_fraction=0.1)


class _Hide(importlib.abc.MetaPathFinder):
  """The import finders, except that `name` and its submodules are not found, as if not installed."""

  def __init__(self, name: str, finders: list):
    self.name, self.finders = name, finders

  def find_spec(self, fullname, path=None, target=None):
    if fullname == self.name or fullname.startswith(self.name + "."):
      return None
    for finder in self.finders:
      spec = finder.find_spec(fullname, path, target)
      if spec is not None:
        return spec
    return None

  def invalidate_caches(self):
    for finder in self.finders:
      if hasattr(finder, "invalidate_caches"):
        finder.invalidate_caches()


def hide(name: str) -> None:
  sys.meta_path[:] = [_Hide(name, list(sys.meta_path))]


@pytest.fixture
def without_tensorflow(monkeypatch):
  """TensorFlow unimportable for the test, whether or not it is installed."""
  if "tensorflow" in sys.modules:
    pytest.skip("tensorflow was imported earlier in this process, so this test cannot show TFDS reads without it")
  monkeypatch.setattr(sys, "meta_path", [_Hide("tensorflow", list(sys.meta_path))])
  assert importlib.util.find_spec("tensorflow") is None
  with pytest.raises(ImportError):
    import tensorflow  # noqa: F401
  yield
  assert "tensorflow" not in sys.modules


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  corpus = expand_corpus([write_corpus(tmp_path_factory.mktemp("corpus"), n_docs=40, damaged=False)])
  out = str(tmp_path_factory.mktemp("records"))
  manifest = run_local(corpus, CONFIG, WordHashFactory(), out, workers=0, quiet=True)
  assert set(manifest["splits"]) == {"train", "eval"} and len(manifest["splits"]["train"]["shards"]) > 1
  return out, manifest, corpus


def _tfds():
  return pytest.importorskip("tensorflow_datasets", reason="tensorflow-datasets is not installed "
                             "(pip install -e '.[test]'); the records are written without it")


def _records_ids(out: str, manifest: dict, split: str, what: int = 0) -> list[np.ndarray]:
  """Each record's ids (what=0) or boundary flags (what=1)."""
  fmt = records.RecordFormat(np.dtype(manifest["id_dtype"]))
  return [fmt.decode(r)[what] for shard in manifest["splits"][split]["shards"]
          for r in read_records(os.path.join(out, shard["file"]))]


def test_tfds_opens_every_split_as_a_random_access_source(prepared, without_tensorflow):
  tfds = _tfds()
  out, manifest, _ = prepared
  builder = tfds.builder_from_directory(out)
  assert builder.info.name == tfds_metadata.NAME and str(builder.info.version) == "3.0.0"
  assert builder.info.file_format.value == "array_record"
  assert sorted(builder.info.splits) == sorted(manifest["splits"])
  sources = builder.as_data_source()
  for split, entry in manifest["splits"].items():
    info = builder.info.splits[split]
    assert info.shard_lengths == [s["examples"] for s in entry["shards"]]
    assert [os.path.basename(f) for f in info.filenames] == [s["file"] for s in entry["shards"]]
    source = builder.as_data_source(split)
    assert len(source) == len(sources[split]) == entry["examples"]
    want = _records_ids(out, manifest, split)
    got = [source[i]["input_ids"] for i in range(len(source))]
    assert all(g.dtype == np.uint16 for g in got)
    assert [g.tolist() for g in got] == [w.tolist() for w in want]
    assert sum(map(len, got)) == entry["tokens"]
    flags = [source[i]["boundaries"] for i in range(len(source))]  # schema 3's second feature
    assert all(f.dtype == np.uint8 for f in flags)
    assert [f.tolist() for f in flags] == [w.tolist() for w in _records_ids(out, manifest, split, what=1)]
    assert [len(x["input_ids"]) for x in source.__getitems__([2, 0, 1])] == [len(want[i]) for i in (2, 0, 1)]


def test_tfds_source_feeds_a_grain_map_dataset(prepared, without_tensorflow):
  tfds = _tfds()
  grain = pytest.importorskip("grain")
  out, manifest, _ = prepared
  source = tfds.builder_from_directory(out).as_data_source("train")
  dataset = (grain.MapDataset.source(source)
             .shuffle(seed=3)
             .map(lambda example: (len(example["input_ids"]), int(example["input_ids"][0]))))
  lengths_and_first = list(dataset)
  assert len(lengths_and_first) == manifest["splits"]["train"]["examples"]
  assert sum(n for n, _ in lengths_and_first) == manifest["splits"]["train"]["tokens"]
  assert {first for _, first in lengths_and_first} == {manifest["special_ids"]["cls"]}


def test_tfds_and_the_pretraining_loader_read_the_same_ids(prepared, without_tensorflow):
  tfds = _tfds()
  out, manifest, _ = prepared
  source = tfds.builder_from_directory(out).as_data_source("eval")
  n = len(source)
  batch = next(input_pipeline.make_iterator(out, split="eval", global_batch_size=n, seed=0, shuffle=False,
                                            num_epochs=1, process_index=0, process_count=1))
  for row in range(n):
    length = int(batch["attention_mask"][row].sum())
    assert batch["input_ids"][row, :length].tolist() == source[row]["input_ids"].tolist()


def test_metadata_is_what_tfds_itself_writes(prepared, tmp_path):
  tfds = _tfds()
  out, manifest, _ = prepared
  described = tfds_metadata.features_json("<u2")["featuresDict"]["features"]
  feature = tfds.features.FeaturesDict({name: tfds.features.Tensor(
      shape=(None,), dtype=dtype, encoding="bytes", doc=described[name]["description"])
      for name, dtype in ((records.FEATURE, np.uint16), (records.BOUNDARIES, np.uint8))})
  feature.save_config(str(tmp_path))
  ours = json.load(open(os.path.join(out, tfds_metadata.FEATURES)))
  assert ours == json.load(open(tmp_path / tfds_metadata.FEATURES))
  info = tfds.builder_from_directory(out).info
  sizes = {s["file"]: os.path.getsize(os.path.join(out, s["file"])) for e in manifest["splits"].values()
           for s in e["shards"]}
  assert info.splits.total_num_examples == sum(e["examples"] for e in manifest["splits"].values())
  assert info.dataset_size == sum(sizes.values())


def test_records_and_metadata_are_written_without_tfds(prepared, tmp_path):
  out, _, corpus = prepared
  script = textwrap.dedent(f"""
      import sys
      sys.path.insert(0, {os.path.dirname(__file__)!r})
      sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))!r})
      from test_corpus_tfds import CONFIG, hide
      hide("tensorflow")
      hide("tensorflow_datasets")
      from corpus_fakes import WordHashFactory
      from korpat_jax.corpus.local import run_local
      run_local({list(corpus)!r}, CONFIG, WordHashFactory(), {str(tmp_path / "out")!r}, workers=0, quiet=True)
      assert not any(m.startswith("tensorflow") for m in sys.modules), sorted(sys.modules)
      """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  for name in (tfds_metadata.DATASET_INFO, tfds_metadata.FEATURES):
    assert open(tmp_path / "out" / name).read() == open(os.path.join(out, name)).read(), name


def test_old_records_directory_is_refused_with_rerun_prepare(prepared, tmp_path):
  out, manifest, _ = prepared
  old = dict(manifest, schema="korpat-electra-records/1")
  (tmp_path / records.MANIFEST).write_text(json.dumps(old))
  with pytest.raises(KorpatError, match=r"records schema 'korpat-electra-records/1', this version reads "
                                      r"'korpat-electra-records/3' \(and 'korpat-electra-records/2' for token "
                                      r"masking\); re-run `korpat-jax prepare`"):
    input_pipeline.make_iterator(str(tmp_path), global_batch_size=2, seed=0, process_index=0, process_count=1)


def test_prepare_over_old_records_says_what_differs_and_overwrite_rewrites(prepared, tmp_path):
  out, manifest, corpus = prepared
  old_dir = tmp_path / "old"
  run_local(corpus, CONFIG, WordHashFactory(), str(old_dir), workers=0, quiet=True)
  state = json.loads((old_dir / ".prepare-state.json").read_text())  # as a schema-1 run would have left it
  state["identity"]["schema"], state["fingerprint"] = "korpat-electra-records/1", "0" * 64
  (old_dir / ".prepare-state.json").write_text(json.dumps(state))
  with pytest.raises(KorpatError, match="record schema korpat-electra-records/1 there, korpat-electra-records/3 now"):
    run_local(corpus, CONFIG, WordHashFactory(), str(old_dir), workers=0, quiet=True)
  os.remove(old_dir / tfds_metadata.DATASET_INFO)
  run_local(corpus, CONFIG, WordHashFactory(), str(old_dir), workers=0, quiet=True, overwrite=True)
  rewritten = (old_dir / tfds_metadata.DATASET_INFO).read_text()
  assert rewritten == open(os.path.join(out, tfds_metadata.DATASET_INFO)).read()
