"""The GPU benchmark in two calls (bash benchmarks/gpu/run.sh preflight, then bash benchmarks/gpu/run.sh; entry
`python -m benchmarks.gpu`), by concern:

  grid      the run profiles (GPU, CPU smoke, preflight) and the rows (cases) of the tables
  preflight every row kind traced and stepped once, versions, imports, memory, profiler (`... preflight [--cpu]`)
  wheels    the wheels the device image lacks: the pinned list, fetch or build, the install-and-import check
  build     one case's task, compiled-to-be step, initial state and batch
  measure   compile, synchronised step timing, XLA's memory estimate, device memory, FLOPs, a row's numbers
  worker    the process that builds, compiles and times every case interleaved, then writes HLO and a trace
  search    the largest batch that fits: the prediction, the bounded probe search, the probe process
  report    gpu.json and the Markdown tables, written after every change so a timeout still leaves results
  cli       the arguments and the orchestrating process (worker, then probes); dispatches preflight and wheels
"""
