"""korpat_jax.hooks: which hooks run after which step, and the demo's probe as a hook (the loop's side is in
tests/test_train.py)."""

import types

import ml_collections
import pytest

from korpat_jax.hooks import Hooks, StepInfo
from korpat_jax.probe import print_probe


def _info(step, final=False, workdir="", build_demo=False):
  config = ml_collections.ConfigDict({"data": {"build_demo": build_demo}})
  return StepInfo(step, 10, types.SimpleNamespace(), {}, final, config, workdir, None)


def test_due_hooks_by_step_and_all_at_the_end():
  seen = []
  hooks = Hooks().add(lambda i: seen.append(("a", i.step)), every=2).add(lambda i: seen.append(("b", i.step)),
                                                                        every=0)
  assert [h.every for h in hooks] == [2, 0] and len(hooks) == 2
  assert not hooks.run(_info(3)) and hooks.run(_info(4)) and hooks.run(_info(10, final=True))
  assert seen == [("a", 4), ("a", 10), ("b", 10)]
  assert len(Hooks(list(hooks))) == 2
  with pytest.raises(ValueError, match=r"Hooks.add\(every=1.5\)"):
    hooks.add(print, every=1.5)


def test_the_probe_hook_prints_when_a_demo_run_ends(pretrained, capsys):
  print_probe(_info(30, final=False, workdir=str(pretrained), build_demo=True))
  print_probe(_info(30, final=True, workdir=str(pretrained), build_demo=False))
  assert capsys.readouterr().out == ""
  print_probe(_info(30, final=True, workdir=str(pretrained), build_demo=True))
  out = capsys.readouterr().out.splitlines()
  assert out[0].startswith("probe of") and "(step 30)" in out[0]
  assert out[-1].startswith("  discriminator flags as replaced: ")
