"""One case, ready to compile: its task (the trainer's own PretrainingTask or fine-tuning task), the compiled steps'
initial state, the batch on device and the lowered train step."""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from .grid import DEMO, REPO, Case, Profile
from .measure import step_flops


def attention_settings(attention: str, on_cpu: bool) -> dict[str, Any]:
  """model.attention_impl / attention_dropout_rate of a row; cuDNN runs as XLA on CPU (the smoke run)."""
  impl = {"cudnn": "cudnn", "xla": "xla", "explicit": "xla"}[attention]
  if on_cpu and impl == "cudnn":
    impl = "xla"
  return {"attention_impl": impl, "attention_dropout_rate": 0.1 if attention == "explicit" else 0.0}


def pretrain_task(case: Case, prof: Profile, on_cpu: bool, workdir: str):
  """configs/pretrain.py:base on the synthetic stream, one device, the case's attention / remat / batch."""
  from korpat_jax import config as config_lib
  from korpat_jax.tasks.pretraining import PretrainingTask
  config = config_lib.load(f"{REPO / 'configs' / 'pretrain.py'}:base")
  config.data.source = "synthetic"
  config.model.update(dtype="bfloat16", remat=case.remat, **attention_settings(case.attention, on_cpu),
                      **prof.pretrain_model)
  config.train.update(batch_size=case.batch, seq_len=prof.seq_len)
  config.mesh.update(data=1, fsdp=1)
  task = PretrainingTask(config, workdir)
  task.validate(1)
  return task, next(task.make_input(0).train)


def finetune_task(case: Case, prof: Profile, on_cpu: bool, data: dict[str, Any], workdir: str):
  """configs/finetune.py ner / cpc / qa without init_from, on the files finetune_data wrote."""
  from korpat_jax import config as config_lib
  from korpat_jax.tasks import make_task
  variant = {"ner": "ner", "cls": "cpc", "qa": "qa"}[case.task]
  config = config_lib.load(f"{REPO / 'configs' / 'finetune.py'}:{variant}")
  config.model.update(dtype="bfloat16", remat=case.remat, **attention_settings(case.attention, on_cpu),
                      **prof.finetune_model)
  config.model.vocab_size = max(config.model.vocab_size, int(data["vocab_size"]))
  config.data.update(train=data[case.task], tokenizer_dir=data["tokenizer"])
  if case.task == "cls":
    config.data.text_fields = "title,abstract"
  seq = prof.finetune_seq_len
  if case.task == "qa":
    config.head.update(max_query_length=seq // 8, doc_stride=seq // 4)
  config.train.update(batch_size=case.batch, eval_batch_size=case.batch, seq_len=seq)
  task = make_task(config, workdir)
  task.validate(1)
  return task, dict(next(task.make_input(0).train))


def finetune_data(work: str, prof: Profile) -> dict[str, Any]:
  """The demo tokenizer and small training files cut from the demo sets (QA: SQuAD JSON made from CPC abstracts)."""
  from korpat_jax.tokenizer import demo_corpus_files, train_tokenizer
  tok = os.path.join(work, "tokenizer")
  vocab = train_tokenizer(demo_corpus_files(), tok, vocab_size=prof.tokenizer_vocab, show_progress=False,
                          log=lambda m: None).vocab_size
  n = prof.examples
  ner = os.path.join(work, "ner_train.tsv")
  blocks = (DEMO / "ner_train.tsv").read_text(encoding="utf-8").strip("\n").split("\n\n")
  Path(ner).write_text("\n\n".join(blocks[:n]) + "\n", encoding="utf-8")
  rows = (DEMO / "cpc_train.tsv").read_text(encoding="utf-8").splitlines()
  cls = os.path.join(work, "cpc_train.tsv")
  Path(cls).write_text("\n".join(rows[:n + 1]) + "\n", encoding="utf-8")
  qa = os.path.join(work, "qa_train.json")
  Path(qa).write_text(json.dumps(squad_from_abstracts(rows[1:n + 1]), ensure_ascii=False), encoding="utf-8")
  return {"tokenizer": tok, "vocab_size": vocab, "ner": ner, "cls": cls, "qa": qa}


def squad_from_abstracts(rows: Sequence[str], seed: int = 0) -> dict[str, Any]:
  """One question per CPC demo row: the abstract is the context, one of its words the answer (shapes only)."""
  rng = random.Random(seed)
  paragraphs = []
  for i, row in enumerate(rows):
    fields = row.split("\t")
    if len(fields) < 3 or not fields[2].strip():
      raise ValueError(f"CPC demo row {i + 1}: expected tab-separated id, title, abstract, got {row[:80]!r}")
    title, abstract = fields[1], fields[2]
    words = abstract.split(" ")
    k = rng.randrange(len(words))
    start = sum(len(w) + 1 for w in words[:k])
    question = f"{title}에서 {words[k - 1] if k else ''} 다음은?"
    answers = [{"text": words[k], "answer_start": start}]
    paragraphs.append({"context": abstract, "qas": [{"id": f"q{i}", "question": question, "answers": answers}]})
  return {"version": "gpu_bench", "data": [{"title": "cpc demo", "paragraphs": paragraphs}]}


@contextlib.contextmanager
def vocab_on_all_positions(enabled: bool) -> Iterator[None]:
  """While tracing: the generator's vocab projection on all S positions, gathered at the N masked ones afterwards.

  The same values as ElectraPretrainer.generator_logits (the head is per position), with [B, S, V] logits in the
  step instead of [B, N, V]: what the masked-positions gather saves.
  """
  if not enabled:
    yield
    return
  import jax.numpy as jnp
  from korpat_jax.model import ElectraPretrainer
  original = ElectraPretrainer.generator_logits

  def all_positions(module, input_ids, token_type_ids, attention_mask, positions=None, deterministic=True):
    logits = original(module, input_ids, token_type_ids, attention_mask, None, deterministic)
    return logits if positions is None else jnp.take_along_axis(logits, positions[..., None], axis=1)

  ElectraPretrainer.generator_logits = all_positions
  try:
    yield
  finally:
    ElectraPretrainer.generator_logits = original


def build(case: Case, prof: Profile, on_cpu: bool, data: Optional[dict[str, Any]], work: str,
          initial: Optional[dict[str, Any]] = None) -> dict[str, Any]:
  """The case's task, compiled steps, initial state, on-device batch and lowered (not yet compiled) train step.

  `initial` keeps one pristine initial state per state layout: cases that differ only in attention, remat or batch
  start from a copy of the same `init()` result instead of compiling and running init again.
  """
  import jax
  import jax.numpy as jnp
  from korpat_jax import input_pipeline, sharding
  from korpat_jax.train import compile_steps
  t0 = time.perf_counter()
  workdir = tempfile.mkdtemp(prefix=case.task + "-", dir=work)
  if case.task == "pretrain":
    task, host = pretrain_task(case, prof, on_cpu, workdir)
  else:
    task, host = finetune_task(case, prof, on_cpu, data, workdir)
  mesh = sharding.make_mesh({"data": 1, "fsdp": 1}, jax.devices()[:1])
  steps = compile_steps(task, mesh)
  layout = str(jax.tree.map(lambda x: (x.shape, x.dtype), steps.abstract_state))
  if initial is None or layout not in initial:
    state = steps.init()
    if initial is not None:
      initial[layout] = jax.tree.map(jnp.copy, state)
  else:
    state = jax.tree.map(jnp.copy, initial[layout])  # the train step donates its state: each case its own copy
  jax.block_until_ready(state)
  batch = input_pipeline.to_global(host, steps.batch_sharding)
  with vocab_on_all_positions(case.vocab_all):
    lowered = steps.train_step.lower(state, batch)
  seq = prof.seq_len if case.task == "pretrain" else prof.finetune_seq_len
  return {"case": case, "task": task, "state": state, "batch": batch, "lowered": lowered, "seq": seq,
          "flops": step_flops(task, case, seq), "setup_s": time.perf_counter() - t0, "times": [], "losses": []}
