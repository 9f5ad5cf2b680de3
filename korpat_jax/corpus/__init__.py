"""Corpus -> pre-tokenized ELECTRA examples in ArrayRecord shards."""
