"""The transforms every runner applies, in this order: read -> clean/split -> tokenize -> pack -> (shard, write).

Pure functions of the inputs and the config: the local runner and the Beam runner call these same functions, and a
document's examples and split depend only on its text, the seed and the config, never on the worker or batch.

Eval split: a document goes to "eval" when a hash of its text, read as a number in [0, 1), is under
`eval_fraction`. When no document does and the corpus has at least `MIN_DOCS_FOR_FORCED_EVAL` documents, the document
with the smallest hash goes to eval; a cheap first pass (`scan_file`) finds it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from typing import Any, Iterable, Iterator

from korpat_jax.corpus import records
from korpat_jax.corpus.cleaning import CleanConfig, clean_paragraph, cleaned_away
from korpat_jax.corpus.examples import PackingConfig, pack_document
from korpat_jax.corpus.readers import RawDocument, ReaderConfig, read_documents
from korpat_jax.corpus.report import PrepStats
from korpat_jax.corpus.sentences import DEFAULT_MAX_SENTENCE_CHARS, split_sentences
from korpat_jax.corpus.tokenizing import CorpusTokenizer

TRAIN, EVAL = "train", "eval"
MIN_DOCS_FOR_FORCED_EVAL = 20


@dataclasses.dataclass(frozen=True)
class PrepConfig:
  packing: PackingConfig = PackingConfig()
  reader: ReaderConfig = ReaderConfig()
  clean: CleanConfig = CleanConfig()
  max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS
  seed: int = 0
  eval_fraction: float = 0.01
  records_per_shard: int = 10_000

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def document_hash(text: str) -> int:
  """64-bit content hash: the document's identity for the eval split and its packing seed."""
  return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _eval_point(doc_hash: int) -> float:
  return (doc_hash >> 11) / float(1 << 53)


@dataclasses.dataclass(frozen=True)
class ScanSummary:
  """What the first pass learns: document count, how many fall in eval by hash, and the smallest hash."""

  documents: int = 0
  eval_documents: int = 0
  min_hash: int | None = None

  def merge(self, other: ScanSummary) -> ScanSummary:
    hashes = [h for h in (self.min_hash, other.min_hash) if h is not None]
    return ScanSummary(self.documents + other.documents, self.eval_documents + other.eval_documents,
                       min(hashes) if hashes else None)


def scan_file(path: str, config: PrepConfig) -> ScanSummary:
  summary = ScanSummary()
  for doc in read_documents(path, config.reader, PrepStats()):  # problems are counted in the main pass
    h = document_hash(doc.text)
    in_eval = _eval_point(h) < config.eval_fraction
    summary = summary.merge(ScanSummary(1, int(in_eval), h))
  return summary


@dataclasses.dataclass(frozen=True)
class EvalRule:
  fraction: float
  forced_hash: int | None  # the one document forced into eval, if any

  @classmethod
  def from_scan(cls, fraction: float, scan: ScanSummary) -> EvalRule:
    forced = None
    if fraction > 0 and scan.eval_documents == 0 and scan.documents >= MIN_DOCS_FOR_FORCED_EVAL:
      forced = scan.min_hash
    return cls(fraction, forced)

  def split(self, doc_hash: int) -> str:
    if self.fraction > 0 and (_eval_point(doc_hash) < self.fraction or doc_hash == self.forced_hash):
      return EVAL
    return TRAIN


@dataclasses.dataclass
class DocumentExamples:
  split: str
  records: list[bytes]  # encoded with records.RecordFormat (the current schema)


def document_sentences(doc: RawDocument, config: PrepConfig, stats: PrepStats,
                       notes: set[str] | None = None) -> list[str]:
  """Clean every line of the document and split it into sentences; what changed on the way goes into `notes`."""
  notes = set() if notes is None else notes

  def count_cut(sentence: str) -> None:
    stats.adjust("long_sentence_cut", f"{doc.where}: {len(sentence)} chars")
    notes.add("long_sentence_cut")

  sentences: list[str] = []
  for paragraph in doc.text.split("\n"):
    cleaned = clean_paragraph(paragraph, config.clean)
    if cleaned:
      sentences.extend(split_sentences(cleaned, config.max_sentence_chars, count_cut))
    elif cleaned_away(paragraph, config.clean):
      notes.add("line_cleaned_away")
  return sentences


def process_documents(docs: Iterable[RawDocument], config: PrepConfig, tokenizer: CorpusTokenizer,
                      eval_rule: EvalRule, stats: PrepStats) -> list[DocumentExamples]:
  """Clean, split, tokenize (one batch call for all the documents' sentences) and pack.

  Every document is either written (`stats.documents`) or skipped under one reason (`stats.documents_skipped`).
  """
  fmt = records.RecordFormat(records.id_dtype_for(tokenizer.vocab_size))
  docs = list(docs)
  per_doc_notes = [set(doc.notes) for doc in docs]
  per_doc = [document_sentences(doc, config, stats, notes) for doc, notes in zip(docs, per_doc_notes)]
  per_doc_tokens = _tokenize(docs, per_doc, tokenizer, stats)
  cls_id, sep_id = tokenizer.special_ids["cls"], tokenizer.special_ids["sep"]
  out = []
  for doc, sentences, tokens, notes in zip(docs, per_doc, per_doc_tokens, per_doc_notes):
    if tokens is None:  # the tokenizer failed on this document (counted)
      stats.drop_document("tokenizer_error")
      continue
    tokens = [t for t in tokens if t[0]]
    if not tokens:
      reason = "empty_document" if not sentences else "no_tokens"
      stats.skip(reason, f"{doc.where}: nothing left after cleaning" if not sentences else doc.where)
      stats.drop_document(reason)
      continue
    ids = [t[0] for t in tokens]
    doc_hash = document_hash(doc.text)
    split = eval_rule.split(doc_hash)
    rng = random.Random(doc_hash ^ (config.seed * 0x9E3779B97F4A7C15 % (1 << 64)))
    packed = pack_document(ids, config.packing, rng, cls_id, sep_id, [t[1] for t in tokens])
    if packed.tokens_truncated:
      notes.add("truncated_at_seq_len")
    stats.documents += 1
    stats.documents_by_split[split] += 1
    stats.documents_adjusted.update(notes)
    stats.sentences += len(ids)
    stats.tokens_read += sum(len(s) for s in ids)
    stats.tokens_truncated += packed.tokens_truncated
    stats.special_tokens += packed.special_tokens
    stats.tokens_written[split] += sum(len(e) for e in packed.examples)
    stats.examples[split] += len(packed.examples)
    out.append(DocumentExamples(split, list(map(fmt.encode, packed.examples, packed.boundaries))))
  return out


def _tokenize(docs: list[RawDocument], per_doc: list[list[str]], tokenizer: CorpusTokenizer,
              stats: PrepStats) -> list[list[tuple[list[int], bytes]] | None]:
  """(ids, boundary flags) of every sentence, from one tokenizer call for all sentences of the batch; if it fails,
  document by document, counting failures."""
  flat = [s for sentences in per_doc for s in sentences]
  try:
    flat_tokens = tokenizer.encode_batch_with_boundaries(flat) if flat else []
  except Exception:  # pylint: disable=broad-except
    flat_tokens = None
  if flat_tokens is not None and len(flat_tokens) == len(flat):
    out, pos = [], 0
    for sentences in per_doc:
      out.append(flat_tokens[pos:pos + len(sentences)])
      pos += len(sentences)
    return out
  out = []
  for doc, sentences in zip(docs, per_doc):
    try:
      out.append(tokenizer.encode_batch_with_boundaries(sentences) if sentences else [])
    except Exception as e:  # pylint: disable=broad-except
      stats.skip("tokenizer_error", f"{doc.where}: {type(e).__name__}: {e}"[:300])
      out.append(None)
  return out


def batched_documents(path: str, config: PrepConfig, stats: PrepStats, batch_size: int) -> Iterator[list[RawDocument]]:
  batch: list[RawDocument] = []
  for doc in read_documents(path, config.reader, stats):
    batch.append(doc)
    if len(batch) >= batch_size:
      yield batch
      batch = []
  if batch:
    yield batch


def process_file(path: str, config: PrepConfig, tokenizer: CorpusTokenizer, eval_rule: EvalRule, stats: PrepStats,
                 batch_size: int = 64) -> Iterator[tuple[str, int, bytes]]:
  """(split, rank within this file and split, record) for every example of one file, in document order."""
  ranks = {TRAIN: 0, EVAL: 0}
  for batch in batched_documents(path, config, stats, batch_size):
    for doc in process_documents(batch, config, tokenizer, eval_rule, stats):
      for record in doc.records:
        yield doc.split, ranks[doc.split], record
        ranks[doc.split] += 1
