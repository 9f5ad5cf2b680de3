r"""ELECTRA pretraining configs. Variants through `get_config(arg)`:

  demo           small ELECTRA on the bundled Korean demo corpus, CPU-friendly; builds the demo tokenizer and
                 records under the workdir when they are absent. Samples at temperature 3 and masks 25% (google:
                 1 and 15%) so that the discriminator visibly learns within its 300 steps (see below).
      korpat-jax pretrain --config configs/pretrain.py:demo --workdir workdirs/demo
  cpu            the demo's model on your own records (`korpat-jax prepare --seq-len 128`), vocab size taken from
                 them, never builds demo data: a first run on your corpus on a CPU. Starts the shared embedding
                 table from word vectors of the records (word_vectors.source=ppmi) and trains it at 0.1x the lr.
      korpat-jax pretrain --config configs/pretrain.py:cpu --workdir runs/cpu --config.data.records_dir=records
  tiny           CI-sized model on the synthetic token stream (tests and benchmarks only).
      XLA_FLAGS=--xla_force_host_platform_device_count=16 \
      korpat-jax pretrain --config configs/pretrain.py:tiny --workdir /tmp/tiny
  small / base / large   google-research/electra sizes on prepared records (set data.records_dir).
      korpat-jax pretrain --config configs/pretrain.py:base --workdir gs://.../base \
          --config.data.records_dir=/data/patents/records
  korpatelectra  the seed run: base size, vocab 35,000, seq 512, global batch 128, 1M steps, 16-device data mesh.
      bash launch/slurm_2x8_gpu.sh configs/pretrain.py:korpatelectra /shared/runs/korpat \
          --config.data.records_dir=/shared/patents/records

Any key can be overridden on the command line: `--config.train.batch_size=64`.
"""

import ml_collections

from korpat_jax import config as config_lib
from korpat_jax.model.config import ElectraConfig

# The `cpu` recipe's path (README, "Pretraining on a CPU"): `korpat-jax tokenizer train --vocab-size CPU_VOCAB_SIZE`,
# then `korpat-jax prepare --seq-len 128 CPU_PREPARE_ARGS`, then `pretrain --config configs/pretrain.py:cpu`.
CPU_VOCAB_SIZE = 16_000
CPU_PREPARE_ARGS = ""

# layers, hidden, heads, FFN, embedding size, generator hidden fraction, lr, batch, seq, steps (electra.md)
SIZES = {
    "tiny": (2, 32, 2, 64, 16, 0.5, 1e-3, 32, 64, 30),
    "small": (12, 256, 4, 1024, 128, 0.25, 5e-4, 128, 128, 1_000_000),
    "base": (12, 768, 12, 3072, 768, 1 / 3, 2e-4, 256, 512, 766_000),
    "large": (24, 1024, 16, 4096, 1024, 0.25, 2e-4, 2048, 512, 400_000),
}


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
  variant = arg or "tiny"
  variants = [*SIZES, "demo", "cpu", "korpatelectra"]
  if variant not in variants:
    raise ValueError(f"unknown variant {variant!r}; expected one of {variants}")
  size = {"demo": "tiny", "cpu": "tiny", "korpatelectra": "base"}.get(variant, variant)
  layers, hidden, heads, ffn, emb, gen_frac, lr, batch, seq, steps = SIZES[size]

  c = ml_collections.ConfigDict()
  c.seed = 0
  c.init_from = ""  # a run directory (or `korpat-jax import-hf` output) whose params start this run

  # The options (positions, dropout, eps, dtype, attention_impl, remat) are ElectraConfig's defaults:
  #   dtype: compute dtype, "bfloat16" on GPU/TPU (params stay float32);
  #   attention_impl: auto | xla | cudnn (auto is JAX's default, which is XLA; cudnn needs bf16/fp16 and
  #     attention_dropout_rate=0; see ElectraConfig.attention_impl);
  #   dropout_rng: hash (keep-masks from a counter hash: 8-10x cheaper than threefry) | threefry (flax's).
  c.model = dict(
      vocab_size=35_000, embedding_size=emb, hidden_size=hidden, num_layers=layers, num_heads=heads,
      intermediate_size=ffn, generator_hidden_fraction=gen_frac, generator_layers_fraction=1.0,
      **ElectraConfig.option_defaults(),
  )
  # objective.masking: which positions the generator predicts, about mask_prob of each sequence's tokens
  # (korpat_jax/masking.py, unit_masking.py); the chosen tokens become [MASK] 85% of the time, per token:
  #   token     single WordPiece tokens, uniformly (ELECTRA, Clark et al. 2020; BERT's original masking)
  #   morpheme  whole Mecab-ko morphemes: all their WordPiece pieces or none (whole-word masking: BERT's WWM
  #             release; Cui et al. 2019, "Pre-Training with Whole Word Masking for Chinese BERT")
  #   eojeol    whole eojeols, the space-separated words of Korean: the same whole-word masking on Korean's words
  #   span      contiguous spans of geometric(0.2) length on 1..10 tokens, mean 3.8 (SpanBERT, Joshi et al. 2020)
  # morpheme and eojeol read the records' boundary flags: records of schema 3 (`korpat-jax prepare` since then).
  # objective.embedding_sharing: how the discriminator shares the word embeddings with the generator
  # (korpat_jax/model/embedding_sharing.py):
  #   tied      one table trained by both losses (ELECTRA, Clark et al. 2020; google's, the default)
  #   gdes      gradient-disentangled embedding sharing (DeBERTaV3, He et al. 2021): the discriminator reads
  #             stop_gradient(E_G) + its own delta (zero at init), so only the generator's MLM loss trains E_G. Only
  #             the token table: position and token-type embeddings and the embedding LayerNorm stay shared, as in
  #             DeBERTa-v3. Fine-tuning and the HF export read the folded table E_G + delta (a plain ELECTRA);
  #             optimizer.word_embedding_lr_scale scales the delta's step too.
  c.objective = dict(
      masking="token",      # token | morpheme | eojeol | span (above)
      embedding_sharing="tied",  # tied | gdes (above)
      max_predictions=-1,   # prediction slots per sequence; -1: from seq_len and mask_prob, as google's
      mask_prob=0.15, temperature=1.0, disc_weight=50.0)
  # word_embedding_lr_scale: the shared word-embedding table's step relative to the rest (< 1 keeps word vectors).
  c.optimizer = dict(learning_rate=lr, warmup_steps=10_000, weight_decay=0.01, b1=0.9, b2=0.999, eps=1e-6,
                     bias_correction=False, grad_clip_norm=1.0, word_embedding_lr_scale=1.0)
  # The shared word-embedding table's start: none (random, as google's) | ppmi (word vectors from the records'
  # co-occurrences, korpat_jax/word_vectors.py; about 15 s per 10M tokens on one core).
  c.word_vectors = dict(source="none", window=4, max_tokens=10_000_000, context_smoothing=0.75)
  c.train = dict(batch_size=batch, seq_len=seq, num_steps=steps, grad_accum_steps=1, log_every=100,
                 eval_every=0, eval_steps=20, checkpoint_every=10_000, keep_checkpoints=3, async_checkpoints=True,
                 **config_lib.train_extras())
  c.data = dict(
      source="records",   # records (korpat-jax prepare output) | synthetic (tests and benchmarks only)
      records_dir="",     # may use {workdir}
      tokenizer_dir="",   # recorded for export; "" = the one named in the records' manifest
      build_demo=False,   # build the demo tokenizer and records from the bundled corpus when records are absent
      demo_vocab_size=8000,
      worker_count=0, prefetch=2,
      on_bad_record="fail",  # a record that cannot be read or decoded: fail (one line) | skip (counted, padding)
  )
  c.mesh = config_lib.mesh_block()
  c.distributed = config_lib.distributed_block()
  c.profile = config_lib.profile_block()

  if variant == "tiny":
    c.model.vocab_size = 128
    c.model.max_position_embeddings = 128
    # ELECTRA's uncorrected Adam takes 3-6x larger steps for the first few hundred steps, which its 10k-step warmup
    # absorbs; with a warmup of a few steps it stalls the discriminator at the base rate, so short runs correct.
    c.optimizer.update(warmup_steps=5, bias_correction=True)
    c.train.update(log_every=5, checkpoint_every=10, keep_checkpoints=2)
    c.data.source = "synthetic"
  elif variant in ("demo", "cpu"):
    c.model.update(vocab_size=8000, embedding_size=64, hidden_size=128, num_heads=2, intermediate_size=512,
                   generator_hidden_fraction=0.25, max_position_embeddings=128)
    c.optimizer.update(learning_rate=1e-3, warmup_steps=50, bias_correction=True)
    c.train.update(batch_size=32, seq_len=128, num_steps=300, log_every=20, eval_every=100, eval_steps=4,
                   checkpoint_every=100)
    if variant == "demo":
      c.data.update(records_dir="{workdir}/data/records", build_demo=True)  # tokenizer: {workdir}/data/tokenizer
      # In 300 steps the generator gets to the corpus's unigram level (loss 9.0 -> 7.0; the unigram entropy is 7.05
      # nats) and no further, so google's temperature-1 samples are frequent tokens in random places, which the
      # discriminator cannot yet tell from the text: it stays at its base rate (benchmarks.parity.demo_recipe, PyTorch
      # alike). Sampling at temperature 3 and masking 25% (ELECTRA-Large's rate) make the replacements detectable
      # within the demo: disc loss 0.41 against 0.56 for always saying "original", precision 0.64, recall 0.48.
      c.objective.update(temperature=3.0, mask_prob=0.25)
    else:  # the demo's sizes on your own records (seq_len 128): the vocab comes from them, nothing is built
      c.model.vocab_size = -1
      c.train.num_steps = 14_048  # the transfer table's 60-minute row (256 ms a step on 2 Intel AVX-512 cores)
      # Word vectors first, then ELECTRA on top with the table kept near them (BENCHMARKS.md, issue 16): google's
      # recipe at this size and budget learns less lexical knowledge than it disturbs (worse than a random init);
      # with the word vectors the init beats a random one on sentiment and NER at 15, 30 and 60 minutes (CPC: too
      # noisy).
      c.word_vectors.source = "ppmi"
      c.optimizer.word_embedding_lr_scale = 0.1
  elif variant == "korpatelectra":
    c.model.vocab_size = 35_000
    c.model.dtype = "bfloat16"
    c.train.update(batch_size=128, seq_len=512, num_steps=1_000_000, log_every=100, checkpoint_every=10_000,
                   eval_every=50_000)
    c.mesh.data = 16
  elif variant in ("small", "base", "large"):
    c.model.dtype = "bfloat16"
    if variant == "large":
      c.objective.mask_prob = 0.25
  return c
