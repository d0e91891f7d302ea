"""Targets: a module cut into the units the loop prompts for, one top-level function or method at a time.

A prompt for a target is small: the module's imports and constants (:func:`module_header`), the signatures
and first docstring lines of the module's functions and classes the target uses, and the target's own code,
for a method with its class's header, fields, ``__init__`` signature and the signatures of the methods it
calls first. The prompts of one class's methods share their beginning up to the class (the names any of its
methods uses are shown for all of them), which llama.cpp reuses from its cache instead of processing again.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

from .prompt import node_span, node_text, prompt_lines

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
_MAX_CONSTANT_CHARS = 160
_MAX_USED_CHARS = 1200  # signatures of used names shown before a target: enough to call them, not a module


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
    lines = prompt_lines(source, tree)  # long docstrings cut to their summary
    defined = {n.name: n for n in tree.body if isinstance(n, (*_DEFS, ast.ClassDef))}
    targets = []
    for node in tree.body:
        if isinstance(node, _DEFS):
            targets.append(Target(node.name, *node_span(node), _used(defined, node) + node_text(lines, node)))
        elif isinstance(node, ast.ClassDef):
            used = _used(defined, node)
            methods = {item.name: item for item in node.body if isinstance(item, _DEFS)}
            for item in node.body:
                if isinstance(item, _DEFS) and not _is_trivial(item):
                    called = [] if item.name == "__init__" else _self_calls(item, methods)
                    context = _class_context(lines, node, called)
                    if item.name == "__init__":  # its signature stands in the context: the whole method instead
                        context = "\n".join(context.splitlines()[:-len(_signature(item).splitlines())])
                    targets.append(Target(f"{node.name}.{item.name}", *node_span(item),
                                          used + context + "\n" + node_text(lines, item)))
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


def _is_trivial(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A method with nothing to test on its own: ``pass``, ``...``, or a docstring only."""
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return not body or all(isinstance(s, ast.Pass) for s in body)


def _class_context(lines: list[str | None], node: ast.ClassDef, called: list[ast.FunctionDef]) -> str:
    """A class's header (decorators, bases), docstring, class-level fields, ``__init__``'s signature and the
    signatures of the ``called`` methods: what a test of one of its methods needs to build an instance and
    follow the calls (the body of ``__init__`` in full drew the model to test ``__init__`` again in every
    method's prompt)."""
    start = node_span(node)[0]
    header = lines[start - 1: node.lineno] if start < node.lineno else [lines[node.lineno - 1]]
    kept = []
    for item in node.body:
        if isinstance(item, (ast.Assign, ast.AnnAssign, ast.Expr)):
            kept.append(node_text(lines, item))
        elif isinstance(item, _DEFS) and item.name in ("__init__", "__post_init__"):
            kept.append(_signature(item, "    "))
    kept.extend(_signature(method, "    ") for method in called if method.name not in ("__init__", "__post_init__"))
    return "\n".join(header + kept)


def _used(defined: dict[str, ast.stmt], node: ast.stmt) -> str:
    """Stubs of the module's functions and classes that ``node`` names (itself left out): a function's signature
    and first docstring line; a class's header, first docstring line and ``__init__`` signature. In file
    order, up to ``_MAX_USED_CHARS``; each ends with a blank line."""
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - {node.name}
    stubs, size = [], 0
    for other in sorted((defined[n] for n in names if n in defined), key=lambda d: d.lineno):
        stub = _signature(other) if isinstance(other, _DEFS) else _class_stub(other)
        if size + len(stub) > _MAX_USED_CHARS:
            break
        stubs.append(stub + "\n\n\n")
        size += len(stub)
    return "".join(stubs)


def _class_stub(node: ast.ClassDef) -> str:
    doc = ast.get_docstring(node)
    body = [ast.Expr(ast.Constant(doc.strip().splitlines()[0]))] if doc else []
    body += [_stub(item) for item in node.body if isinstance(item, _DEFS) and item.name == "__init__"]
    text = ast.unparse(ast.ClassDef(node.name, node.bases, node.keywords, body or [ast.Expr(ast.Constant(...))], []))
    return "\n".join(line for line in text.splitlines() if line.strip())  # unparse puts blank lines before a def


def _self_calls(method: ast.FunctionDef | ast.AsyncFunctionDef,
                methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]) -> list[ast.FunctionDef]:
    """The other methods of its class that ``method`` reaches through ``self.`` or ``cls.``, in class order."""
    called = {n.attr for n in ast.walk(method)
              if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")}
    return [other for name, other in methods.items() if name in called and name != method.name]


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef, indent: str = "") -> str:
    return "\n".join(indent + line for line in ast.unparse(_stub(node)).splitlines())


def _stub(node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The same signature and decorators, with the body elided to the first docstring line and ``...``."""
    stub = copy.copy(node)
    stub.body = [ast.Expr(ast.Constant(...))]
    doc = ast.get_docstring(node)
    if doc:
        stub.body.insert(0, ast.Expr(ast.Constant(doc.strip().splitlines()[0])))
    return stub
