"""Fine-tuning every init on every set with every seed: `korpat-jax finetune` with configs/finetune.py's `*_cpu`
variants (`*_tiny` with 1 epoch for --smoke), scored from the run's W/eval/metrics.json (the best evaluation the run
kept: accuracy for classification and pairs, entity F1 `f1` for NER)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Optional, Sequence

from .pretrain import DONE, is_done
from .worker import REPO, Job

FINETUNE_CONFIG = REPO / "configs" / "finetune.py"
# set -> (configs/finetune.py variant without its size suffix, the set's own overrides)
SETS = {
    "nsmc": ("cpc", (("data.cpc_level", "none"),)),
    "klue_ner": ("ner", ()),
    "klue_nli": ("pair", ()),
    "cpc": ("cpc", (("data.text_fields", "title,abstract"),)),
}
SMOKE_OVERRIDES = (("train.num_epochs", "1"),)


@dataclasses.dataclass(frozen=True)
class Init:
  """A starting point: `framework` korpat / torch / random, `budget` (0 for random), the run to start from."""
  framework: str
  budget: float
  label: str        # e.g. korpat_15m, torch_300steps, random_0m (+ the recipe's suffix)
  run: Path         # init_from
  random_init: bool = False


def overrides_suffix(overrides: Sequence[tuple[str, str]]) -> str:
  """"" without --finetune-set, else "_f" + a hash of them."""
  if not overrides:
    return ""
  return "_f" + hashlib.sha256(json.dumps(list(overrides)).encode()).hexdigest()[:8]


def workdir(out: Path, init: Init, name: str, seed: int, overrides: Sequence[tuple[str, str]]) -> Path:
  return out / "finetune" / (init.label + overrides_suffix(overrides)) / name / f"seed{seed}"


def job(out: Path, init: Init, name: str, files: tuple[Path, Path], seed: int, smoke: bool,
        overrides: Sequence[tuple[str, str]]) -> Optional[Job]:
  """The run's `korpat-jax finetune` job, or None when it is done."""
  w = workdir(out, init, name, seed, overrides)
  if is_done(w):
    return None
  base, own = SETS[name]
  variant = base + ("_tiny" if smoke else "_cpu")
  pairs = [("init_from", str(init.run)), ("seed", str(seed)), ("data.train", str(files[0])),
           ("data.eval", str(files[1])), ("data.tokenizer_dir", str(out / "tok")), *own,
           *(SMOKE_OVERRIDES if smoke else ()), *((("random_init", "true"),) if init.random_init else ()),
           *overrides]
  argv = ["finetune", "--config", f"{FINETUNE_CONFIG}:{variant}", "--workdir", str(w),
          *(f"--config.{k}={v}" for k, v in pairs)]
  return Job(f"finetune {init.label}/{name}/seed{seed}", argv, str(w / "finetune.log"), str(w / DONE))


def read_score(w: Path) -> Optional[dict]:
  """{"metric", "score", "step", "scores"} of a finished run (W/eval/metrics.json), None when it is not done."""
  path = w / "eval" / "metrics.json"
  if not is_done(w) or not path.exists():
    return None
  saved = json.loads(path.read_text(encoding="utf-8"))
  metric = saved.get("main")
  if metric not in saved:
    raise SystemExit(f"{path}: no main metric ({metric!r}) among {sorted(saved)}")
  done = json.loads((w / DONE).read_text(encoding="utf-8"))
  scores = {k: v for k, v in saved.items() if isinstance(v, (int, float)) and k != "step"}
  return {"metric": metric, "score": float(saved[metric]), "step": int(saved.get("step", 0)), "scores": scores,
          "seconds": done.get("seconds")}
