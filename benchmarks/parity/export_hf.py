"""Export / import-hf at real ELECTRA sizes: wall time and how closely transformers reproduces the Flax outputs.

  python -m benchmarks.parity.export_hf [--sizes small,base] [--repeats 3]

For each size: random ElectraPretrainer params (vocab 35,000, biases and LayerNorms perturbed) saved as a train-state
checkpoint; then `export --part both`, transformers loading, the max abs difference of the discriminator and
generator logits against the Flax model on one random [2, 128] batch (fp32), and `import-hf` back with a bitwise
round-trip check. Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from korpat_jax import workdir as workdir_lib
from korpat_jax.checkpoint import Checkpointer
from korpat_jax.export import hf_names
from korpat_jax.export.from_hf import import_hf
from korpat_jax.export.to_hf import export, restore_params
from korpat_jax.model.config import ElectraConfig
from korpat_jax.model.electra import ElectraPretrainer

SIZES = {
    "small": {"embedding_size": 128, "hidden_size": 256, "num_layers": 12, "num_heads": 4,
              "intermediate_size": 1024, "generator_hidden_fraction": 0.25},
    "base": {"embedding_size": 768, "hidden_size": 768, "num_layers": 12, "num_heads": 12,
             "intermediate_size": 3072, "generator_hidden_fraction": 1 / 3},
}


def _timed(fn, repeats: int) -> tuple[float, object]:
  times, result = [], None
  for _ in range(repeats):
    start = time.perf_counter()
    result = fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times), result


def run(size: str, repeats: int, root: str) -> dict[str, object]:
  import torch
  import transformers
  cfg = ElectraConfig.from_config({"vocab_size": 35000, **SIZES[size]})
  ids = jnp.ones((1, 8), jnp.int32)
  params = jax.jit(ElectraPretrainer(cfg).init)(jax.random.PRNGKey(0), ids, ids, ids)["params"]
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map(lambda x: np.asarray(x) + np.float32(0.02) * rng.standard_normal(
      x.shape, np.float32), params)
  num_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
  workdir = os.path.join(root, size, "run")
  workdir_lib.write_model_info(workdir, cfg, None, {"pad": 0})
  checkpointer = Checkpointer(workdir_lib.checkpoint_dir(workdir), interval=1, keep=1, async_save=False)
  checkpointer.save(1, {"params": params, "step": 1}, force=True)
  checkpointer.close()

  out = os.path.join(root, size, "hf")
  export_s, _ = _timed(lambda: export(workdir, out, part="both"), repeats)
  load_s, disc = _timed(lambda: transformers.ElectraForPreTraining.from_pretrained(
      os.path.join(out, "discriminator")).eval(), 1)
  gen = transformers.ElectraForMaskedLM.from_pretrained(os.path.join(out, "generator")).eval()

  batch_rng = np.random.default_rng(1)
  input_ids = batch_rng.integers(5, cfg.vocab_size, (2, 128)).astype(np.int32)
  types = np.zeros_like(input_ids)
  types[:, 64:] = 1
  mask = np.ones_like(input_ids)
  mask[1, 100:] = 0
  model = ElectraPretrainer(cfg)
  flax_disc = jax.jit(lambda p: model.apply({"params": p}, input_ids, types, mask,
                                            method=ElectraPretrainer.discriminator_logits))(params)
  flax_gen = jax.jit(lambda p: model.apply({"params": p}, input_ids, types, mask, None,
                                           method=ElectraPretrainer.generator_logits))(params)
  with torch.no_grad():
    batch = {"input_ids": torch.from_numpy(input_ids.astype(np.int64)),
             "token_type_ids": torch.from_numpy(types.astype(np.int64)),
             "attention_mask": torch.from_numpy(mask.astype(np.int64))}
    disc_diff = float(np.max(np.abs(np.asarray(flax_disc) - disc(**batch).logits.numpy())))
    gen_diff = float(np.max(np.abs(np.asarray(flax_gen) - gen(**batch).logits.numpy())))

  def import_back():
    imported = tempfile.mkdtemp(dir=os.path.join(root, size))
    import_hf(os.path.join(out, "discriminator"), imported, generator_dir=os.path.join(out, "generator"))
    return imported

  import_s, imported = _timed(import_back, repeats)
  a, b = hf_names.flatten(params), hf_names.flatten(restore_params(imported, 0)[1])
  identical = sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
  return {"size": size, "params": num_params, "export_s": export_s, "load_s": load_s, "disc_diff": disc_diff,
          "gen_diff": gen_diff, "import_s": import_s, "identical": identical}


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="small,base")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args(argv)
  rows = []
  with tempfile.TemporaryDirectory() as root:
    for size in args.sizes.split(","):
      rows.append(run(size, args.repeats, root))
  print(f"| size | params (gen+disc) | export --part both (s, median of {args.repeats}) | transformers load (s) "
        f"| max abs diff disc logits | max abs diff gen logits | import-hf (s) | round trip identical |")
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['size']} | {r['params'] / 1e6:.1f}M | {r['export_s']:.2f} | {r['load_s']:.2f} | "
          f"{r['disc_diff']:.2e} | {r['gen_diff']:.2e} | {r['import_s']:.2f} | {r['identical']} |")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
