"""Mutants of a module under test, all in one switchable copy of it (mutant schemata).

:func:`find_mutants` lists small changes a good test suite notices (mutmut's kind of operators: a
comparison, an arithmetic or boolean operator, a constant, a ``not``, a returned value), inside function
bodies only, since module-level code runs once at import. :func:`schemata` writes the module once with
every mutant behind a switch, ``__utgen_mutant__ == id``, read from builtins at run time: one child
process imports it once and runs the tests against each mutant in turn (see ``_child``), instead of one
interpreter per mutant. With the switch at 0 the module behaves as written.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

SWITCH = "__utgen_mutant__"  # the builtin name the schemata module reads; 0: no mutant active

_COMPARE_SWAPS = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_BINOP_SWAPS = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
    ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitAnd,
}
_SYMBOLS = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is",
    ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.Add: "+", ast.Sub: "-", ast.Mult: "*",
    ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.And: "and", ast.Or: "or",
}


@dataclass(frozen=True)
class Mutant:
    """One small change to the module: where, what, and the changed line for a prompt."""

    id: int  # from 1; 0 means the module as written
    line: int
    description: str  # "`<` -> `<=`"
    original: str  # the source line as written
    mutated: str  # the same line, changed (best effort for multi-line expressions)

    def diff(self) -> str:
        """The change as a two-line unified diff body."""
        return f"-{self.original}\n+{self.mutated}"


def find_mutants(source: str, lines: set[int] | None = None) -> list[Mutant]:
    """Every mutant of the function bodies in ``source`` (only on ``lines`` when given), in file order."""
    builder = _Schemata(source.splitlines(), lines)
    builder.visit(ast.parse(source))
    return builder.mutants


def schemata(source: str, mutants: list[Mutant], filename: str):
    """``source`` compiled with each of ``mutants`` switchable by ``builtins.__utgen_mutant__``.

    Compiled from the changed tree, so every line keeps its number: coverage measured while it runs is the
    module's own. Raises ValueError if the mutants were not found in this source (they come from
    :func:`find_mutants`).
    """
    builder = _Schemata(source.splitlines(), None, wanted={m.id for m in mutants})
    tree = builder.visit(ast.parse(source))
    if {m.id for m in builder.mutants} != {m.id for m in mutants}:
        raise ValueError("the mutants do not belong to this source")
    return compile(ast.fix_missing_locations(tree), filename, "exec")


class _Schemata(ast.NodeTransformer):
    """Numbers every mutation site of the function bodies in file order; wraps the wanted ones in switches."""

    def __init__(self, lines: list[str], only_lines: set[int] | None, wanted: set[int] | None = None):
        self.lines = lines
        self.only_lines = only_lines
        self.wanted = wanted
        self.mutants: list[Mutant] = []
        self.next_id = 1
        self.depth = 0  # inside a function body when > 0

    # Where mutants go: function bodies; not defaults, decorators or annotations (they run at import).
    def visit_FunctionDef(self, node):
        self.depth += 1
        node.body = [self.visit(statement) for statement in node.body]
        self.depth -= 1
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        return node

    def visit_JoinedStr(self, node):  # f-string parts must stay constants
        return node

    def visit_AnnAssign(self, node):
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_Expr(self, node):  # a docstring or other bare constant: nothing to mutate
        if isinstance(node.value, ast.Constant):
            return node
        return self.generic_visit(node)

    def visit_match_case(self, node):  # patterns must stay patterns
        node.guard = self.visit(node.guard) if node.guard else None
        node.body = [self.visit(statement) for statement in node.body]
        return node

    def visit_Compare(self, node):
        node = self.generic_visit(node)
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE_SWAPS:
            return node
        old = type(node.ops[0])
        new = _COMPARE_SWAPS[old]
        changed = copy.copy(node)
        changed.ops = [new()]
        return self._site(node, changed, f"`{_SYMBOLS[old]}` -> `{_SYMBOLS[new]}`")

    def visit_BinOp(self, node):
        node = self.generic_visit(node)
        old = type(node.op)
        if old not in _BINOP_SWAPS or _is_string_format(node):
            return node
        new = _BINOP_SWAPS[old]
        changed = copy.copy(node)
        changed.op = new()
        return self._site(node, changed, f"`{_SYMBOLS[old]}` -> `{_SYMBOLS[new]}`")

    def visit_BoolOp(self, node):
        node = self.generic_visit(node)
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        changed = copy.copy(node)
        changed.op = new()
        return self._site(node, changed, f"`{_SYMBOLS[type(node.op)]}` -> `{_SYMBOLS[new]}`")

    def visit_UnaryOp(self, node):
        node = self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return self._site(node, node.operand, "`not x` -> `x`")
        return node

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, bool):
            return self._site(node, ast.Constant(not value), f"`{value}` -> `{not value}`")
        if isinstance(value, int):
            return self._site(node, ast.Constant(value + 1), f"`{value}` -> `{value + 1}`")
        if isinstance(value, str) and value:
            return self._site(node, ast.Constant("XX" + value + "XX"), f"`{value!r}` -> `{'XX' + value + 'XX'!r}`")
        return node

    def visit_Return(self, node):
        node = self.generic_visit(node)
        if node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None):
            return node
        site = self._site(node.value, ast.Constant(None), "returns `None`")
        node.value = site
        return node

    def _site(self, node: ast.expr, changed: ast.expr, description: str) -> ast.expr:
        """Number a mutation site; in the schemata, return ``changed if SWITCH == id else node`` for it."""
        if self.depth == 0:
            return node
        mutant_id = self.next_id  # numbered before any filter: the same site has the same id in every pass
        self.next_id += 1
        if self.only_lines is not None and node.lineno not in self.only_lines:
            return node
        if self.wanted is not None and mutant_id not in self.wanted:
            return node
        self.mutants.append(self._describe(mutant_id, node, changed, description))
        if self.wanted is None:
            return node
        switch = ast.Compare(ast.Name(SWITCH, ast.Load()), [ast.Eq()], [ast.Constant(mutant_id)])
        return ast.copy_location(ast.IfExp(switch, changed, node), node)

    def _describe(self, mutant_id: int, node: ast.expr, changed: ast.expr, description: str) -> Mutant:
        original = self.lines[node.lineno - 1] if node.lineno <= len(self.lines) else ""
        mutated = original
        if node.lineno == node.end_lineno:
            start, end = node.col_offset, node.end_col_offset
            encoded = original.encode("utf-8")  # col offsets count UTF-8 bytes
            mutated = (encoded[:start].decode("utf-8", "replace") + ast.unparse(_plain(changed))
                       + encoded[end:].decode("utf-8", "replace"))
        return Mutant(mutant_id, node.lineno, description, original, mutated)


def _plain(node: ast.expr) -> ast.expr:
    """``node`` with any switches inside it resolved to the code as written (for showing the change)."""

    class Unswitch(ast.NodeTransformer):
        def visit_IfExp(self, expr):
            test = expr.test
            if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == SWITCH):
                return self.visit(expr.orelse)
            return self.generic_visit(expr)

    return Unswitch().visit(copy.deepcopy(node))


def _is_string_format(node: ast.BinOp) -> bool:
    """``"%s" % x``: formatting, not arithmetic."""
    return isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
