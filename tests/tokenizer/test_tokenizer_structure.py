"""The tokenizer package's shape: no import cycles, no reaching into another object's private members, one
worker-pool helper, the public names other packages use."""

from __future__ import annotations

import ast
from pathlib import Path

import korpat_jax.tokenizer

PACKAGE = Path(korpat_jax.tokenizer.__file__).parent
PREFIX = "korpat_jax.tokenizer."


def _modules() -> dict[str, ast.Module]:
  return {p.stem: ast.parse(p.read_text(encoding="utf-8")) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def _imports(tree: ast.Module) -> set[str]:
  """Tokenizer modules imported anywhere in the module (function-level imports included)."""
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
      out.add(node.module[len(PREFIX):])
    elif isinstance(node, ast.ImportFrom) and node.module == "korpat_jax.tokenizer":
      out.update(alias.name for alias in node.names)
  return out


def test_no_import_cycles():
  graph = {name: _imports(tree) & set(_modules()) for name, tree in _modules().items()}
  done: set[str] = set()

  def visit(name: str, path: tuple[str, ...]) -> None:
    assert name not in path, " -> ".join(path + (name,))
    if name not in done:
      for dep in graph[name]:
        visit(dep, path + (name,))
      done.add(name)

  for name in graph:
    visit(name, ())


def test_no_private_members_of_other_objects():
  for name, tree in _modules().items():
    for node in ast.walk(tree):
      if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
          and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
        raise AssertionError(f"{name}.py:{node.lineno}: {ast.unparse(node)}")


def test_one_worker_pool_helper():
  users = {name for name, tree in _modules().items() for node in ast.walk(tree)
           if isinstance(node, (ast.Import, ast.ImportFrom))
           and any((getattr(node, "module", None) or alias.name).startswith("multiprocessing") for alias in node.names)}
  assert users == {"pool"}


def test_public_names():
  from korpat_jax.tokenizer import (SPECIAL_TOKENS, Encoding, MWPTokenizer, build_user_dictionary,  # noqa: F401
                                    demo_corpus_files, presegment, train_tokenizer)
  from korpat_jax.tokenizer.mwp import (CONFIG_NAME, VOCAB_NAME, bert_wordpiece, process_context,  # noqa: F401
                                        read_vocab, vocab_sha256, write_vocab)
  assert SPECIAL_TOKENS == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
  assert not hasattr(Encoding, "materialize")


def test_wordpiece_pieces_are_cached_and_public(demo_tok):
  wp = demo_tok.wordpiece
  morphs = demo_tok.segment("상기 질화갈륨층을 형성한다.").split(" ")
  pieces = wp.pieces(morphs)
  assert pieces == [wp.pieces_of(m) for m in morphs]
  assert [i for p in pieces for i in p.ids] == demo_tok.encode("상기 질화갈륨층을 형성한다.", add_special_tokens=False).ids
  assert wp.token_to_id("[CLS]") == demo_tok.cls_id == 2
  assert wp.decode(demo_tok.encode("기판").ids) == demo_tok.decode(demo_tok.encode("기판").ids)
