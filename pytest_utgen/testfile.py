"""A test file as a value: its text, parsed at most once, with its test units, their spans and its imports.

Every step after generation (validate, oracle, amplify, keep set, write) takes and returns ``TestFile``
values; a step that changes the text makes a new value. The syntax tree and the units are computed on
first use and kept, so no step parses a file that another step has parsed already.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field
from functools import cached_property

from .prompt import node_span

FUNCTION = (ast.FunctionDef, ast.AsyncFunctionDef)


def unit_of(nodeid: str) -> str:
    """The test unit a pytest node id belongs to (file and parameters stripped)."""
    return nodeid.split("::", 1)[-1].split("[", 1)[0]


def body_key(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """A test's body as a value: two tests with the same key do the same thing."""
    return ast.dump(ast.Module(body=node.body, type_ignores=[]))


def nodes_of(sources: list[str]):
    """Every syntax node of each of ``sources`` that parses (one that does not is skipped)."""
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        yield from ast.walk(tree)


@dataclass(frozen=True)
class TestFile:
    """One test file. Two values are equal when their texts are."""

    __test__ = False  # a class of the plugin, not a test class for pytest to collect

    source: str

    @cached_property
    def tree(self) -> ast.Module:
        """The file's syntax tree (``SyntaxError`` when it has none)."""
        return ast.parse(self.source)

    @cached_property
    def lines(self) -> list[str]:
        return self.source.splitlines()

    @cached_property
    def unit_nodes(self) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
        """Each test unit (``test_x`` for a function, ``TestC::test_m`` for a method) and its node, in order."""
        units: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for node in self.tree.body:
            if isinstance(node, FUNCTION) and node.name.startswith("test"):
                units[node.name] = node
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                units.update((f"{node.name}::{item.name}", item) for item in node.body
                             if isinstance(item, FUNCTION) and item.name.startswith("test"))
        return units

    @property
    def units(self) -> list[str]:
        """The test units, in file order."""
        return list(self.unit_nodes)

    def unit_sources(self, names: set[str]) -> dict[str, str]:
        """The source text of each named test unit (methods come with no class)."""
        found = {}
        for name, node in self.unit_nodes.items():
            if name in names:
                start, end = node_span(node)
                found[name] = "\n".join(self.lines[start - 1: end])
        return found

    @cached_property
    def imports(self) -> str:
        """The top-level import statements."""
        return "\n".join("\n".join(self.lines[n.lineno - 1: n.end_lineno]) for n in self.tree.body
                         if isinstance(n, (ast.Import, ast.ImportFrom)))

    def prune(self, keep: set[str]) -> TestFile:
        """This file with every test unit not in ``keep`` removed; helpers, fixtures and imports stay."""
        if set(self.unit_nodes) <= keep:
            return self
        drop: list[tuple[int, int]] = []
        for node in self.tree.body:
            if isinstance(node, FUNCTION) and node.name.startswith("test"):
                if node.name not in keep:
                    drop.append(node_span(node))
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                methods = [item for item in node.body if isinstance(item, FUNCTION) and item.name.startswith("test")]
                dropped = [m for m in methods if f"{node.name}::{m.name}" not in keep]
                if methods and len(dropped) == len(methods):
                    drop.append(node_span(node))
                else:
                    drop.extend(node_span(m) for m in dropped)
        text = self._cut(drop)
        while "\n\n\n\n" in text:
            text = text.replace("\n\n\n\n", "\n\n\n")
        return TestFile(text.strip() + "\n")

    def without(self, nodes: list[ast.stmt]) -> TestFile:
        """This file with the lines of top-level ``nodes`` removed (comments elsewhere stay)."""
        return TestFile(self._cut([node_span(node) for node in nodes]).strip() + "\n")

    def _cut(self, spans: list[tuple[int, int]]) -> str:
        """The text without the lines of ``spans`` (1-based, inclusive)."""
        lines = list(self.lines)
        for start, end in sorted(spans, reverse=True):
            del lines[start - 1: end]
        return "\n".join(lines)

    def merge(self, other: TestFile) -> Merged:
        """One file with the tests of both; ``other``'s clashing names get a numeric suffix.

        A test of ``other`` whose body is identical to one in this file is left out (named in ``duplicates``).
        """
        bodies = {body_key(n) for n in ast.walk(self.tree) if isinstance(n, FUNCTION)}
        taken = {n.name for n in self.tree.body if isinstance(n, (*FUNCTION, ast.ClassDef))}
        imported = {name for n in self.tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                    for name in _imported(n)}
        binding = {_bound_name(key): key for key in imported}
        new_imports, body, duplicates = [], [], []
        clashing: dict[str, str] = {}  # name -> an import of ``other`` that binds it to what this file does not
        for node in other.tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                # Only the names this file does not import already, the same way.
                fresh = []
                for alias, key in zip(node.names, _imported(node)):
                    name = _bound_name(key)
                    if key in imported:
                        continue
                    if binding.get(name, key) != key:  # ``import datetime`` here, ``from datetime import datetime``
                        single = copy.copy(node)
                        single.names = [alias]
                        clashing[name] = ast.unparse(single)
                        continue
                    fresh.append(alias)
                    imported.add(key)
                    binding[name] = key
                if fresh:
                    narrowed = copy.copy(node)  # not ``node.names = fresh``: the tree is ``other``'s, kept
                    narrowed.names = fresh
                    new_imports.append(ast.unparse(narrowed))
                continue
            if isinstance(node, (*FUNCTION, ast.ClassDef)):
                if node.name in taken and not node.name.startswith("test") and not node.name.startswith("Test"):
                    continue
                if not isinstance(node, ast.ClassDef) and body_key(node) in bodies:
                    if node.name.startswith("test"):
                        duplicates.append(node.name)
                    continue
                base, name, suffix = node.name, node.name, 2
                while name in taken:
                    name, suffix = f"{base}_{suffix}", suffix + 1
                taken.add(name)
                start, end = node_span(node)
                # Source text, not ast.unparse: comments (the oracle's "# utgen: observed") stay.
                text = _text_with_local_imports(other.lines, node, start, end, clashing)
                keyword = "class" if isinstance(node, ast.ClassDef) else "def"
                body.append(text.replace(f"{keyword} {base}", f"{keyword} {name}", 1) if name != base else text)
                continue
            body.append(ast.unparse(node))
        head = "\n".join(new_imports)
        first = self.source.strip()
        source = (head + "\n" + first if head else first) + "\n\n\n" + "\n\n\n".join(body) + "\n"
        return Merged(TestFile(source), duplicates)


@dataclass(frozen=True)
class Merged:
    """Two test files as one, and the tests of the second left out as copies of the first's."""

    file: TestFile
    duplicates: list[str] = field(default_factory=list)


def _bound_name(key: tuple) -> str:
    """The name an import (as ``_imported`` gives it) binds."""
    module, name, alias, _ = key
    return alias or (name if module is not None else name.split(".")[0])


def _text_with_local_imports(lines: list[str], node: ast.stmt, start: int, end: int,
                             clashing: dict[str, str]) -> str:
    """The text of ``node`` (lines ``start``-``end`` of ``lines``) with each function in it that uses a name
    of ``clashing`` given that name's import as its first statement: in a file whose top binds the name
    otherwise, the function still gets what it was written with."""
    edits = []
    for function in ast.walk(node) if clashing else []:
        if isinstance(function, FUNCTION) and function.body[0].lineno > function.lineno:
            used = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)}
            statements = [clashing[name] for name in sorted(used & clashing.keys())]
            if statements:
                edits.append((function.body[0].lineno, " " * function.body[0].col_offset, statements))
    text = list(lines[start - 1: end])
    for line, indent, statements in sorted(edits, reverse=True):
        text[line - start: line - start] = [indent + statement for statement in statements]
    return "\n".join(text)


def _imported(node: ast.Import | ast.ImportFrom) -> list[tuple]:
    """Each name an import binds, as (module, name, alias, level)."""
    module = node.module if isinstance(node, ast.ImportFrom) else None
    level = node.level if isinstance(node, ast.ImportFrom) else 0
    return [(module, alias.name, alias.asname, level) for alias in node.names]
