"""How fast korpat-jax's own stages run (each module is run as `python -m benchmarks.speed.NAME --help`):

  pretrain_speed           train-step throughput and MFU of the pretraining configs (synthetic stream, on device)
  loader_speed             the Grain ArrayRecord loader against naive reads, sequences/s at seq 512
  prepare_speed            corpus preparation (`korpat-jax prepare`) by stage and end to end
  tokenizer_speed          the MWP tokenizer against bare Mecab-ko and the seed recipe; batch_encode on N cores
  tokenizer_userdic_scale  compiling a user dictionary of the seed's size (6.7M entries): time and peak memory
  projection               the seed's run on 16 H200 and TPU v5p slices, from analytic FLOPs (nothing measured)
  patent_sentences         long patent-like sentences for the tokenizer and prepare benchmarks (not a benchmark)
"""
