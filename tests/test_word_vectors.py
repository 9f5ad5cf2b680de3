"""Word vectors from the records (korpat_jax/word_vectors.py) and the pretraining run that starts from them."""

import itertools

import jax
import numpy as np
import pytest

from korpat_jax import word_vectors
from korpat_jax.errors import ConfigError
from korpat_jax.restore import computed_init
from korpat_jax.tasks import make_task
from korpat_jax.train import compile_steps
from korpat_jax import sharding
from tests.helpers import pretrain_config

WORD_KEY = "['embeddings']['word_embeddings']['embedding']"


def test_cooccurrence_counts_every_pair_within_the_window_once_per_direction():
  rng = np.random.default_rng(0)
  sequences = [rng.integers(0, 7, size=n) for n in (1, 2, 5, 9, 12)]
  expected = np.zeros((7, 7))
  for ids in sequences:
    for i, j in itertools.combinations(range(len(ids)), 2):
      if j - i <= 3:
        expected[ids[i], ids[j]] += 1
        expected[ids[j], ids[i]] += 1
  counts = word_vectors.cooccurrence(iter(sequences), 7, window=3)
  np.testing.assert_array_equal(counts.toarray(), expected)


def test_ppmi_keeps_only_positive_associations():
  counts = word_vectors.cooccurrence([np.array([0, 1, 0, 1, 0, 1]), np.array([2, 3, 2, 3])], 4, window=1)
  p = word_vectors.ppmi(counts, context_smoothing=1.0).toarray()
  assert p[0, 1] > 0 and p[2, 3] > 0       # neighbours in the text
  assert p[0, 2] == 0 and p[1, 3] == 0     # never together: no entry, not a negative one
  assert (p >= 0).all()


def _two_topics(n: int, seed: int = 0) -> list[np.ndarray]:
  """Sentences drawn from one of two disjoint word groups (ids 0-9 and 10-19), each with a shared function word 20."""
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    group = np.arange(10) + 10 * (i % 2)
    ids = rng.choice(group, size=12)
    ids[::4] = 20
    out.append(ids)
  return out


def test_vectors_put_words_of_one_topic_together_at_the_inits_scale():
  vectors, seen, pairs = word_vectors.ppmi_vectors(_two_topics(400), 24, dim=8, std=0.02,
                                                   settings=word_vectors.Settings(window=3))
  assert vectors.shape == (24, 8) and vectors.dtype == np.float32 and pairs > 0
  assert seen[:21].all() and not seen[21:].any()
  unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
  cos = unit @ unit.T
  same = [cos[i, j] for i in range(20) for j in range(20) if i != j and i // 10 == j // 10]
  other = [cos[i, j] for i in range(20) for j in range(20) if i // 10 != j // 10]
  assert min(same) > max(other), (min(same), max(other))
  assert vectors[seen].std() == pytest.approx(0.02, rel=1e-3)
  assert vectors[~seen].std() == pytest.approx(0.02, rel=0.5)  # unseen rows: random like the init
  again, _, _ = word_vectors.ppmi_vectors(_two_topics(400), 24, dim=8, std=0.02,
                                          settings=word_vectors.Settings(window=3))
  np.testing.assert_array_equal(vectors, again)  # deterministic: every host computes the same table


@pytest.fixture(scope="module")
def records(tmp_path_factory):
  from korpat_jax.corpus.demo import build_demo_data
  root = tmp_path_factory.mktemp("wv_records")
  build_demo_data(str(root / "records"), str(root / "tokenizer"), vocab_size=800, seq_len=64)
  return root / "records"


def test_from_records_reads_the_train_split_without_special_tokens(records):
  from korpat_jax.corpus.records import read_manifest
  manifest = read_manifest(str(records))
  special = manifest.special_ids.values()
  settings = word_vectors.Settings(window=2, max_tokens=3_000)
  vectors, stats = word_vectors.from_records(str(records), special, manifest.vocab_size, 16, 0.02, settings)
  assert vectors.shape == (manifest.vocab_size, 16)
  assert 3_000 <= stats.tokens < 3_000 + manifest.seq_len and 0 < stats.seen <= manifest.vocab_size
  taken = list(word_vectors.record_sequences(str(records), special, 3_000))
  assert sum(len(s) for s in taken) == stats.tokens and len(taken) == stats.examples
  assert not np.isin(np.concatenate(taken), list(special)).any()
  everything = list(word_vectors.record_sequences(str(records), special, 10**9))
  assert len(everything) == manifest.num_examples("train")


def test_a_bad_record_is_left_out_and_named(records, tmp_path, caplog):
  import shutil
  from korpat_jax.corpus.records import read_manifest
  from tests.helpers import flip_a_record
  copy = tmp_path / "records"
  shutil.copytree(records, copy)
  manifest = read_manifest(str(copy))
  shard = manifest.shard_paths("train")[0]
  at = flip_a_record(shard)
  with caplog.at_level("WARNING", logger="korpat_jax"):
    everything = list(word_vectors.record_sequences(str(copy), manifest.special_ids.values(), 10**9))
  assert len(everything) == manifest.num_examples("train") - 1
  assert (f"word vectors: 1 bad record(s) left out (e.g. {shard}: record {at}: unreadable ArrayRecord data); "
          f"check every shard with `korpat-jax verify --records {copy}`") in caplog.text


def _ppmi_config(records, **extra):
  return pretrain_config("tiny", **{
      "data.source": "records", "data.records_dir": str(records), "model.vocab_size": -1, "train.seq_len": 64,
      "train.num_steps": 2, "word_vectors.source": "ppmi", "word_vectors.max_tokens": 5_000, **extra})


def test_a_fresh_pretraining_run_starts_from_the_records_word_vectors(records, tmp_path):
  config = _ppmi_config(records)
  task = make_task(config, str(tmp_path))
  task.validate(jax.device_count())
  task.make_input(0)
  steps = compile_steps(task, sharding.make_mesh(config.mesh))
  state = computed_init(task, steps.init(), steps.state_sharding)
  table = np.asarray(state.params["embeddings"]["word_embeddings"]["embedding"])
  from korpat_jax.corpus.records import read_manifest
  manifest = read_manifest(str(records))
  expected, _ = word_vectors.from_records(str(records), manifest.special_ids.values(), manifest.vocab_size,
                                          config.model.embedding_size, 0.02,
                                          word_vectors.Settings(4, 5_000, 0.75), config.seed)
  np.testing.assert_array_equal(table, expected)
  fresh = np.asarray(steps.init().params["embeddings"]["word_embeddings"]["embedding"])
  assert not np.array_equal(table, fresh)
  off = make_task(_ppmi_config(records, **{"word_vectors.source": "none"}), str(tmp_path / "off"))
  off.make_input(0)
  assert off.computed_params({WORD_KEY: fresh}) == {}


@pytest.mark.parametrize("overrides, key", [
    ({"word_vectors.source": "glove"}, "config.word_vectors.source='glove'"),
    ({"init_from": "/some/run"}, "config.init_from"),
    ({"data.source": "synthetic", "model.vocab_size": 128}, "config.data.source='records'"),
    ({"word_vectors.window": 0}, "config.word_vectors.window=0"),
    ({"optimizer.word_embedding_lr_scale": -1.0}, "config.optimizer.word_embedding_lr_scale=-1.0"),
])
def test_bad_word_vector_settings_name_the_key(records, tmp_path, overrides, key):
  task = make_task(_ppmi_config(records, **overrides), str(tmp_path))
  with pytest.raises(ConfigError, match=None) as e:
    task.validate(jax.device_count())
  assert key in str(e.value) and "\n" not in str(e.value)
