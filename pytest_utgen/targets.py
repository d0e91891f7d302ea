"""Targets: a module cut into the units the loop prompts for, one top-level function or method at a time.

A prompt for a target is small: the module's imports and constants (:func:`module_header`), and the
target's own code, for a method with its class's header, fields and ``__init__`` signature first. The
prompts of one module share their beginning up to the target (of one class, up to the method), which
llama.cpp reuses from its cache instead of processing it again.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

from .prompt import node_span

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
_MAX_CONSTANT_CHARS = 160


@dataclass(frozen=True)
class Target:
    """A top-level function or a method: what a focused prompt asks tests for."""

    qualname: str  # "parse" or "Inventory.reserve"
    start: int  # first line (decorators included)
    end: int  # last line
    code: str  # what the prompt shows: the definition, with its class context for a method

    @property
    def lines(self) -> range:
        return range(self.start, self.end + 1)


def find_targets(source: str) -> list[Target]:
    """Every top-level function and every method with a body worth testing, in file order."""
    tree = ast.parse(source)
    lines = source.splitlines()
    targets = []
    for node in tree.body:
        if isinstance(node, _DEFS):
            targets.append(Target(node.name, *node_span(node), _text(lines, node)))
        elif isinstance(node, ast.ClassDef):
            context = _class_context(lines, node)
            for item in node.body:
                if isinstance(item, _DEFS) and not _is_trivial(item):
                    code = context + "\n" + _text(lines, item) if item.name != "__init__" else \
                        "\n".join(_class_context(lines, node).splitlines()[:-len(_signature(item).splitlines())]
                                  + [_text(lines, item)])
                    targets.append(Target(f"{node.name}.{item.name}", *node_span(item), code))
    return targets


def module_header(source: str) -> str:
    """The module's imports and short top-level constants: the context every target prompt starts with."""
    parts = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.module != "__future__"):
            parts.append(ast.unparse(node))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and len(ast.unparse(node)) <= _MAX_CONSTANT_CHARS:
            parts.append(ast.unparse(node))
    return "\n".join(parts) + ("\n" if parts else "")


def _text(lines: list[str], node: ast.stmt) -> str:
    start, end = node_span(node)
    return "\n".join(lines[start - 1: end])


def _is_trivial(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A method with nothing to test on its own: ``pass``, ``...``, or a docstring only."""
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return not body or all(isinstance(s, ast.Pass) for s in body)


def _class_context(lines: list[str], node: ast.ClassDef) -> str:
    """A class's header (decorators, bases), docstring, class-level fields and ``__init__``'s signature:
    what a test of one of its methods needs to build an instance (the body of ``__init__`` in full drew
    the model to test ``__init__`` again in every method's prompt)."""
    start = node_span(node)[0]
    header = lines[start - 1: node.lineno] if start < node.lineno else [lines[node.lineno - 1]]
    kept = []
    for item in node.body:
        if isinstance(item, (ast.Assign, ast.AnnAssign, ast.Expr)):
            kept.append(_text(lines, item))
        elif isinstance(item, _DEFS) and item.name in ("__init__", "__post_init__"):
            kept.append(_signature(item, "    "))
    return "\n".join(header + kept)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef, indent: str = "") -> str:
    stub = copy.copy(node)  # the same signature and decorators, with the body elided
    stub.body = [ast.Expr(ast.Constant(...))]
    doc = ast.get_docstring(node)
    if doc:
        stub.body.insert(0, ast.Expr(ast.Constant(doc.strip().splitlines()[0])))
    return "\n".join(indent + line for line in ast.unparse(stub).splitlines())
