"""Targets: a module cut into the units the loop prompts for, one top-level function or method at a time.

A prompt for a target is small and shares its beginning with every other prompt of the module: the
module's outline (imports, constants, and the signature and first docstring line of every definition)
comes first and is the same for all targets, so llama.cpp reuses it from its cache; the target's own
code (for a method: its class's header, fields and ``__init__`` too) comes last.
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
                    code = context + "\n" + _text(lines, item) if item.name != "__init__" else context
                    targets.append(Target(f"{node.name}.{item.name}", *node_span(item), code))
    return targets


def module_outline(source: str) -> str:
    """The module as a reader skims it: imports, short constants, and each definition's signature and first
    docstring line, bodies elided. The stable prefix of every target prompt of the module."""
    tree = ast.parse(source)
    parts = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            parts.append(ast.unparse(node))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and len(ast.unparse(node)) <= _MAX_CONSTANT_CHARS:
            parts.append(ast.unparse(node))
        elif isinstance(node, _DEFS):
            parts.append(_signature(node))
        elif isinstance(node, ast.ClassDef):
            parts.append(_class_outline(node))
    return "\n".join(parts).strip() + "\n"


def _text(lines: list[str], node: ast.stmt) -> str:
    start, end = node_span(node)
    return "\n".join(lines[start - 1: end])


def _is_trivial(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A method with nothing to test on its own: ``pass``, ``...``, or a docstring only."""
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return not body or all(isinstance(s, ast.Pass) for s in body)


def _class_context(lines: list[str], node: ast.ClassDef) -> str:
    """A class's header (decorators, bases), docstring, class-level fields and ``__init__``: what a test of
    one of its methods needs to build an instance."""
    start = node_span(node)[0]
    header = lines[start - 1: node.lineno] if start < node.lineno else [lines[node.lineno - 1]]
    kept = []
    for item in node.body:
        if isinstance(item, (ast.Assign, ast.AnnAssign, ast.Expr)) or (
            isinstance(item, _DEFS) and item.name in ("__init__", "__post_init__")
        ):
            kept.append(_text(lines, item))
    return "\n".join(header + kept)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef, indent: str = "") -> str:
    stub = copy.copy(node)  # the same signature and decorators, with the body elided
    stub.body = [ast.Expr(ast.Constant(...))]
    doc = ast.get_docstring(node)
    if doc:
        stub.body.insert(0, ast.Expr(ast.Constant(doc.strip().splitlines()[0])))
    return "\n".join(indent + line for line in ast.unparse(stub).splitlines())


def _class_outline(node: ast.ClassDef) -> str:
    bases = ", ".join(ast.unparse(b) for b in node.bases + node.keywords)
    decorators = "".join(f"@{ast.unparse(d)}\n" for d in node.decorator_list)
    parts = [f"{decorators}class {node.name}({bases}):" if bases else f"{decorators}class {node.name}:"]
    doc = ast.get_docstring(node)
    if doc:
        first = doc.strip().splitlines()[0]
        parts.append(f'    """{first}"""' if '"' not in first and "\\" not in first else f"    {first!r}")
    for item in node.body:
        if isinstance(item, (ast.Assign, ast.AnnAssign)) and len(ast.unparse(item)) <= _MAX_CONSTANT_CHARS:
            parts.append("    " + ast.unparse(item))
        elif isinstance(item, _DEFS):
            parts.append(_signature(item, "    "))
    if len(parts) == 1:
        parts.append("    ...")
    return "\n".join(parts)
