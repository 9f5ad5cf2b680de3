r"""Fine-tuning configs (ELECTRA's recipe on the shared trainer). Variants through `get_config(arg)`:

  ner        NER, KLUE-style character BIO TSV (`## ` comments, `CHAR\tTAG`, blank line between sentences)
  ner_conll  NER, word-level CoNLL (`WORD TAG` per line, -DOCSTART- skipped)
  cpc        CPC classification, one label (the first code); TSV with a header, JSONL or a JSON array
  cpc_multi  CPC classification, every code of a document (sigmoid per label)
  pair       sentence pairs, e.g. NLI: [CLS] A [SEP] B [SEP]
  qa         extractive QA, SQuAD v1.1 / KorQuAD 1.0 JSON (PatQuAD-style)
  *_cpu      the recipe a CPU user picks: a small model (configs/pretrain.py:cpu) fine-tuned on a few thousand
             examples (seq 128, batch 32, lr 3e-4, 3 epochs (NER: 10) and at least 200 steps), chosen on the
             transfer benchmark (BENCHMARKS.md); `python -m benchmarks.transfer --finetune-set KEY=VALUE`
             measures another choice.
  *_tiny     the same on a test-sized schedule, for tests and the README's demo.

    korpat-jax finetune --config configs/finetune.py:ner --workdir runs/ner \
        --config.init_from=runs/korpat --config.data.train=ner_train.tsv --config.data.eval=ner_dev.tsv
    korpat-jax finetune --config configs/finetune.py:cpc --workdir runs/cpc --config.init_from=runs/korpat \
        --config.data.train=cpc_train.tsv --config.data.eval=cpc_dev.tsv \
        --config.data.text_fields=title,abstract,claims --config.data.cpc_level=subclass

`init_from` is a pretraining run (its embeddings and discriminator), another fine-tuning run of the same task, or
`korpat-jax import-hf` output; the model's sizes and the tokenizer come from it. Defaults are google-research/
electra's fine-tuning recipe: AdamW lr 1e-4 with layerwise decay 0.8, weight decay 0.01, warmup 10%, linear decay,
batch 32, 3 epochs, the model's dropout. Any key can be overridden on the command line.
"""

import ml_collections

from korpat_jax import config as config_lib

TASKS = {"ner": "token_classification", "ner_conll": "token_classification", "cpc": "sequence_classification",
         "cpc_multi": "sequence_classification", "pair": "sequence_classification", "qa": "question_answering"}

SIZE_SUFFIXES = ("_cpu", "_tiny")

# The *_cpu schedule, measured on the transfer benchmark (BENCHMARKS.md, "The *_cpu fine-tuning schedule"): NER
# still gained from epoch 3 to 6 to 10 (KLUE NER F1 0.392 -> 0.440 -> 0.463), sentiment did not (0.801 at 3 and 6),
# and the 160-document CPC set needs far more than its 15 steps of 3 epochs (0.264 at 3 epochs, 0.771 at 200 steps).
CPU_NER_EPOCHS = 10.0
CPU_MIN_STEPS = 200


def get_config(arg: str = "ner") -> ml_collections.ConfigDict:
  variant = arg or "ner"
  suffix = next((s for s in SIZE_SUFFIXES if variant.endswith(s)), "")
  base, size = variant[:len(variant) - len(suffix)], suffix[1:]
  if base not in TASKS:
    raise ValueError(f"unknown variant {variant!r}; expected one of "
                     f"{[*TASKS, *(t + s for s in SIZE_SUFFIXES for t in TASKS)]}")

  c = ml_collections.ConfigDict()
  c.task = TASKS[base]
  c.variant = variant
  c.seed = 0
  c.init_from = ""         # run directory whose model (sizes, tokenizer, weights) starts this run
  c.random_init = False    # take sizes and tokenizer from init_from but not its weights (a from-scratch baseline)

  # Sizes (-1: from init_from's model.json; set them only to train without init_from). dropout_rate -1: the
  # model's own. Changing a size against init_from stops with one line naming both.
  c.model = dict(
      vocab_size=-1, embedding_size=-1, hidden_size=-1, num_layers=-1, num_heads=-1, intermediate_size=-1,
      max_position_embeddings=-1, dropout_rate=-1.0, attention_dropout_rate=-1.0, classifier_dropout=-1.0,
      dtype="float32", attention_impl="auto", remat=False,
  )
  c.data = dict(
      train="", eval="", test="",   # input files (test: scored once with the best checkpoint)
      # ... or a TFDS dataset over local files (korpat_jax/datasets), exclusive with train/eval/test:
      tfds="",                      # klue_ner | klue_nli | korquad | cpc_tsv, or NAME:VERSION (prepared on first use)
      tfds_manual_dir="",           # the dataset's manual files; needed to prepare it, checked against it after
      tfds_data_dir="",             # where prepared datasets live; "" = $TFDS_DATA_DIR or ~/tensorflow_datasets
      tfds_splits="",               # train=SPEC,eval=SPEC,test=SPEC ("" = train, validation, test where present)
      tokenizer_dir="",             # "" = the init run's tokenizer
      format="auto",                # NER: auto | char_bio | conll; classification/QA: by file extension
      labels="",                    # comma-separated label set; "" = read from the training file
      # classification
      text_fields="text", label_field="label", id_field="id", label_separator=";",
      pair=False,                   # sentence pairs: [CLS] text_fields[0] [SEP] text_fields[1] [SEP] (pair variants)
      cpc_level="subclass",         # section | class | subclass | group | subgroup | none (any label set)
      long_text="head",             # head | head_tail | windows (logits averaged over overlapping windows)
      window_stride=-1,             # NER and long_text=windows: tokens between window starts (-1: half a window)
      max_skipped_fraction=0.05,    # more of a split's examples left out (bad tags, labels, rows) stops the run
      worker_count=0, prefetch=2,
  )
  c.optimizer = dict(learning_rate=1e-4, layerwise_lr_decay=0.8, weight_decay=0.01, warmup_fraction=0.1,
                     warmup_steps=0, b1=0.9, b2=0.999, eps=1e-6, bias_correction=False, grad_clip_norm=1.0)
  c.train = dict(
      batch_size=32, seq_len=512,   # seq_len: max tokens per feature (capped by the model's positions)
      num_epochs=3.0, num_steps=-1,  # num_steps -1: from num_epochs and the training set ...
      min_steps=0,                  # ... but at least this many (a few hundred examples need more than 3 epochs)
      eval_batch_size=64, grad_accum_steps=1, log_every=50,
      eval_every=0,                 # 0: once per epoch (and at the end)
      checkpoint_every=0,           # 0: at every evaluation; the best by the task's main metric is kept too
      keep_checkpoints=1, async_checkpoints=True,
      **config_lib.train_extras(),
  )
  c.head = dict(multi_label=False,          # cpc_multi: a sigmoid per label, not one softmax
                multi_label_threshold=0.5,  # cpc_multi: a label is predicted at sigmoid >= threshold
                # QA (SQuAD/KorQuAD): doc_stride is the STEP between window starts, as google's run_squad and
                # google-research/electra; HF's `stride` is the overlap instead (overlap = window - doc_stride).
                max_query_length=64, doc_stride=128, n_best_size=20, max_answer_length=30)
  c.mesh = config_lib.mesh_block()
  c.distributed = config_lib.distributed_block()
  c.profile = config_lib.profile_block()

  if base == "ner":
    c.data.format = "char_bio"
  elif base == "ner_conll":
    c.data.format = "conll"
  elif base == "cpc_multi":
    c.head.multi_label = True
  elif base == "pair":
    c.data.update(text_fields="sentence1,sentence2", cpc_level="none", pair=True)
  if base == "qa":
    c.train.update(batch_size=32, num_epochs=2.0)
  if size == "cpu":  # a small model (configs/pretrain.py:cpu, 128 positions) on a few thousand examples
    c.train.update(batch_size=32, seq_len=128, num_epochs=3.0, min_steps=CPU_MIN_STEPS, eval_batch_size=64,
                   log_every=20)
    c.optimizer.update(learning_rate=3e-4)
    if base in ("ner", "ner_conll"):
      c.train.num_epochs = CPU_NER_EPOCHS
  elif size == "tiny":
    c.train.update(batch_size=16, seq_len=64, num_epochs=3.0, eval_batch_size=32, log_every=10)
    c.optimizer.update(learning_rate=3e-4)
  if base == "qa" and size:  # 128-token windows: a question of up to 32 tokens, windows 48 tokens apart
    c.train.seq_len = 128
    c.head.update(max_query_length=32, doc_stride=48)
  return c
