from __future__ import annotations

from corpus_fakes import WordHashTokenizer
from korpat_jax.corpus import records
from korpat_jax.corpus.examples import PackingConfig
from korpat_jax.corpus.pipeline import EVAL, TRAIN, EvalRule, PrepConfig, ScanSummary, process_documents
from korpat_jax.corpus.readers import RawDocument
from korpat_jax.corpus.report import PrepStats

CONFIG = PrepConfig(packing=PackingConfig(seq_len=32))
TRAIN_ONLY = EvalRule(0.0, None)


class _FailsOnWord(WordHashTokenizer):

  def encode(self, text):
    if "폭탄" in text:
      raise ValueError("cannot tokenize")
    return super().encode(text)


def _docs(*texts):
  return [RawDocument("f.txt", i * 10 + 1, t) for i, t in enumerate(texts)]


def test_document_examples_do_not_depend_on_batching():
  docs = _docs(*[f"【000{i}】 문서 {i} 첫 문장이다. 둘째 문장은 {'길다 ' * i}이다.\n청구항 1. 장치(10)." for i in range(8)])
  together = process_documents(docs, CONFIG, WordHashTokenizer(), TRAIN_ONLY, PrepStats())
  one_by_one = [d for doc in docs for d in process_documents([doc], CONFIG, WordHashTokenizer(), TRAIN_ONLY,
                                                             PrepStats())]
  assert [d.records for d in together] == [d.records for d in one_by_one]
  first = records.decode_record(together[0].records[0], "<u2")
  assert first[0] == 2 and first[-1] == 3 and len(first) == 2 + len("문서 0 첫 문장이다. 둘째 문장은 이다. 장치.".split())


def test_tokenizer_failure_skips_only_that_document():
  stats = PrepStats()
  out = process_documents(_docs("좋은 문서이다.", "폭탄 문서이다.", "【0001】", "또 좋은 문서이다."), CONFIG, _FailsOnWord(),
                          TRAIN_ONLY, stats)
  assert len(out) == 2 and stats.documents == 2
  assert stats.skipped == {"tokenizer_error": 1, "empty_document": 1}
  assert stats.where["tokenizer_error"][0].startswith("f.txt:11: ValueError")


def test_eval_rule():
  many = ScanSummary(documents=30, eval_documents=0, min_hash=1234)
  assert EvalRule.from_scan(0.01, many).split(1234) == EVAL
  assert EvalRule.from_scan(0.01, many).split(2**63) == TRAIN
  assert EvalRule.from_scan(0.01, ScanSummary(19, 0, 1234)).forced_hash is None
  assert EvalRule.from_scan(0.0, many).split(1234) == TRAIN  # disabled
  assert EvalRule.from_scan(0.01, ScanSummary(30, 2, 1234)).forced_hash is None
  assert EvalRule(0.5, None).split(0) == EVAL and EvalRule(0.5, None).split(2**64 - 1) == TRAIN
