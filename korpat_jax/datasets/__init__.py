"""The fine-tuning sets as TFDS builders over local files (an alternative to `data.train/eval/test`):

  klue_ner  KLUE NER: characters + BIO tags              (configs/finetune.py:ner)
  klue_nli  KLUE NLI: premise, hypothesis, label         (configs/finetune.py:pair)
  korquad   KorQuAD 1.0: id, question, context, answers  (configs/finetune.py:qa)
  cpc_tsv   patent text fields + CPC codes from TSV      (configs/finetune.py:cpc, cpc_multi)

Each builder parses its manual files through the project's readers (same validation, same data_report counts)
and is read back without TensorFlow (`as_data_source` over ArrayRecord). `source` chooses a run's input. Importing
this package does not import tensorflow-datasets; the builder modules do.
"""
