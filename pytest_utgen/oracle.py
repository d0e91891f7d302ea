"""The observed-value oracle: a test that fails only because its expected values are wrong gets the values
the code really returned (or, where the code raised, ``pytest.raises`` of that exception).

A small model often calls the right function with sensible inputs and then guesses the result wrong. The
failing tests run once more :func:`instrument`-ed: each ``assert left == right`` becomes a soft check that
records what ``left`` evaluated to (when it has a literal repr that reads back equal, or a repr that is a
constructor call building an equal object, with the import it needs; else, where a test can name it, the
value's type; and the warnings computing it gave) and lets the test go on, so one run sees every wrong
expectation of a test; a statement that raises is recorded with the exception's type and exact message.
:func:`adopt` rewrites those statements; each change is marked ``# utgen: observed`` and returned as an
:class:`Adopted`, so the model's original expectation can be shown as a possible bug.
"""

from __future__ import annotations

import ast
import datetime
import re
from dataclasses import dataclass

from .sandbox import Observation, RaisedBy
from .testfile import TestFile

MARK = "  # utgen: observed"
OBSERVE = "__utgen_observe__"  # the recording check instrumented tests call (the sandbox child defines it)
# Exceptions that say the test itself is wrong (a bad call, a missing name), not what the code does, unless
# the code raised one by a ``raise`` statement of its own (``raise TypeError("expected a string")``).
TEST_MISTAKES = {"NameError", "UnboundLocalError", "ImportError", "ModuleNotFoundError", "AttributeError",
                 "TypeError", "SyntaxError", "RecursionError"}
# Of those, the ones a value the code cannot take makes the interpreter raise inside it: what the code does with
# such a value when a test passes it on purpose (see ``adopt``'s ``code_errors``).
CODE_ERRORS = {"TypeError", "AttributeError"}


@dataclass(frozen=True)
class Adopted:
    """One expectation replaced by observed behaviour."""

    unit: str
    line: int
    expected: str  # the model's expectation, as written
    observed: str  # what the code did: a value's repr, or "raised T"


def instrument(file: TestFile, units: set[str]) -> TestFile:
    """``file`` with every ``assert left == right`` of the test ``units`` turned into the soft, recording
    ``__utgen_observe__(line, lambda: left, right)``, on the same lines (so tracebacks keep their lines)."""
    lines = list(file.lines)
    for unit, function in file.unit_nodes.items():
        if unit not in units:
            continue
        caught = _raises_targets(function)
        for node in ast.walk(function):
            if _is_equality_assert(node) and node.lineno == node.test.lineno \
                    and not _renders_exception_info(node.test.left, caught):
                check = f"{OBSERVE}({node.lineno}, lambda: ({ast.unparse(node.test.left)}), " \
                        f"{ast.unparse(node.test.comparators[0])})"
                indent = lines[node.lineno - 1][: node.col_offset]
                span = node.end_lineno - node.lineno + 1
                lines[node.lineno - 1: node.end_lineno] = [indent + check] + [""] * (span - 1)
    return TestFile("\n".join(lines) + "\n")


def adopt(file: TestFile, module: str, observations: dict[str, list[Observation]],
          today: datetime.date | None = None, code_errors: bool = False) -> tuple[TestFile, list[Adopted]]:
    """``file`` with what the instrumented run of each test observed (unit -> observations) adopted:
    mismatched ``==`` expectations replaced by the observed values (inside ``pytest.warns`` when computing the
    value warned), a placeholder (``== None``) whose value has no literal repr by ``isinstance`` of its type,
    the statement that raised wrapped in ``pytest.raises`` (with its exact message, when it has one). Returns
    the new file and what was replaced. What it cannot rewrite (no literal repr, a line seen more than once as
    in a loop, a raise nested in a block) or must not (a value read off the clock, see :func:`from_clock`) is
    left as it is. ``code_errors``: the tests' values were drawn without intent (tests built without the
    model), so a TypeError or AttributeError the interpreter raised inside the code is what it does with them,
    not the test's mistake; in the model's tests it is most often a wrong call the model's repair mends."""
    today = today or datetime.date.today()
    lines = list(file.lines)
    functions = file.unit_nodes
    edits: list[tuple[int, int, list[str]]] = []  # (first line, last line, replacement lines), 1-based
    adopted: list[Adopted] = []
    needs_pytest = False
    imports: set[str] = set()
    for unit, observation in _adoptable(observations):
        function = functions.get(unit)
        statement = _statement_at(function, observation.line) if function else None
        if statement is None:
            continue
        if observation.value is not None:
            if from_clock(observation.value, ast.get_source_segment(file.source, function), today):
                continue
            change = _adopt_value(statement, observation.value, lines)
            if change is None:
                continue
            edit, expected, uses_pytest = change
            needs_pytest |= uses_pytest
            imports.update(observation.imports)
            edit, warns = _expect_warnings(edit, function, statement, observation, module, imports)
            needs_pytest |= warns
            edits.append(edit)
            adopted.append(Adopted(unit, statement.lineno, expected, observation.value))
        elif observation.value_type is not None and _is_placeholder(statement):
            kind, import_line = _type_reference(observation.value_type, module)
            if import_line:
                imports.add(import_line)
            edit, warns = _expect_warnings(_adopt_type(statement, kind, lines), function, statement, observation,
                                           module, imports)
            needs_pytest |= warns
            edits.append(edit)
            adopted.append(Adopted(unit, statement.lineno, _expectation(statement, lines), f"a {kind}"))
        elif observation.raised is not None and _adoptable_raise(observation, code_errors) \
                and "<" not in observation.raised and statement in function.body:
            exception, import_line = _type_reference(observation.raised, module)
            if import_line:
                imports.add(import_line)
            body_end = function.body[-1].end_lineno
            message = observation.message
            if message is not None and from_clock(message, ast.get_source_segment(file.source, function), today):
                message = None
            edits.append(_adopt_raise(statement, exception, lines, body_end, message))
            needs_pytest = True
            adopted.append(Adopted(unit, statement.lineno, _expectation(statement, lines),
                                   f"raised {observation.raised}"))
    if not edits:
        return file, []
    for first, last, replacement in sorted(edits, reverse=True):
        lines[first - 1: last] = replacement
    head = sorted(imports) + (["import pytest"] if needs_pytest and not _imports_pytest(file.tree) else [])
    return TestFile("\n".join(head + lines).strip() + "\n"), adopted


def _adoptable_raise(observation: Observation, code_errors: bool) -> bool:
    if observation.raised not in TEST_MISTAKES or observation.raised_by == RaisedBy.RAISE:
        return True
    return code_errors and observation.raised_by == RaisedBy.CODE and observation.raised in CODE_ERRORS


def from_clock(value: str, test_source: str, today: datetime.date) -> bool:
    """Whether an observed value holds this year (``Week(2026, 50)``, ``'2026-12-07'``) that the test never
    wrote: a value read off the clock (``Week.thisweek()``) passes today and fails next week, so it is no
    expectation to keep, though every rerun today agrees with it."""
    year = re.compile(rf"(?<!\d){today.year}(?!\d)")
    return bool(year.search(value)) and not year.search(test_source or "")


def _adoptable(observations: dict[str, list[Observation]]):
    """(unit, observation) for each mismatch seen once on its line, and each test's raise."""
    for unit, seen in observations.items():
        per_line: dict[int, int] = {}
        for observation in seen:
            per_line[observation.line] = per_line.get(observation.line, 0) + 1
        for observation in seen:
            if observation.raised or (not observation.matched and per_line[observation.line] == 1):
                yield unit, observation


def _raises_targets(function: ast.FunctionDef) -> set[str]:
    """Names bound by ``with pytest.raises(...) as NAME`` in ``function``."""
    names = set()
    for node in ast.walk(function):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and ast.unparse(call.func).split(".")[-1] == "raises" \
                        and isinstance(item.optional_vars, ast.Name):
                    names.add(item.optional_vars.id)
    return names


def _renders_exception_info(expression: ast.expr, caught: set[str]) -> bool:
    """Whether ``expression`` uses a ``pytest.raises`` result as a whole (``str(excinfo)``): its text is
    pytest's, with the traceback's length in it, which changes with the call depth (under mutmut's
    trampolines, for one), so it is no expectation about the code. ``excinfo.value`` and the like are."""
    attributes = {id(n.value) for n in ast.walk(expression) if isinstance(n, ast.Attribute)}
    return any(isinstance(n, ast.Name) and n.id in caught and id(n) not in attributes for n in ast.walk(expression))


def _is_equality_assert(node: ast.AST) -> bool:
    return (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1
            and isinstance(node.test.ops[0], ast.Eq))


def _statement_at(function: ast.FunctionDef, line: int) -> ast.stmt | None:
    """The innermost statement of ``function`` spanning ``line``."""
    best = None
    for node in ast.walk(function):
        if isinstance(node, ast.stmt) and node is not function and node.lineno <= line <= node.end_lineno:
            if best is None or node.lineno >= best.lineno:
                best = node
    return best


def _adopt_value(statement: ast.stmt, value: str, lines: list[str]):
    """``assert left == right`` with ``right`` replaced by the observed value: (edit, expected, uses pytest)."""
    if not _is_equality_assert(statement):
        return None
    right = statement.test.comparators[0]
    if right.lineno != right.end_lineno or MARK.strip() in lines[statement.end_lineno - 1]:
        return None
    try:
        is_float = isinstance(ast.literal_eval(value), float)
    except ValueError:  # an object's constructor call (the sandbox checked it builds an equal object)
        is_float = False
    replacement = f"pytest.approx({value})" if is_float else value
    line = lines[right.lineno - 1].encode()
    expected = line[right.col_offset: right.end_col_offset].decode()
    new = (line[: right.col_offset] + replacement.encode() + line[right.end_col_offset:]).decode()
    block = lines[statement.lineno - 1: statement.end_lineno]
    offset = right.lineno - statement.lineno
    block[offset] = new
    block[-1] = block[-1] + MARK
    return (statement.lineno, statement.end_lineno, block), expected, is_float


def _is_placeholder(statement: ast.stmt) -> bool:
    """``assert left == None``: the placeholder of a test built without the model (or a model's guess)."""
    return _is_equality_assert(statement) and isinstance(statement.test.comparators[0], ast.Constant) \
        and statement.test.comparators[0].value is None


def _adopt_type(statement: ast.Assert, kind: str, lines: list[str]):
    """``assert left == None`` as ``assert isinstance(left, kind)``: for a value with no literal repr, what
    the code gave is at least of that type (a method that returns a new query, a parsed node)."""
    indent = lines[statement.lineno - 1][: statement.col_offset]
    check = f"{indent}assert isinstance({ast.unparse(statement.test.left)}, {kind}){MARK}"
    return statement.lineno, statement.end_lineno, [check]


def _expect_warnings(edit: tuple[int, int, list[str]], function: ast.FunctionDef, statement: ast.stmt,
                     observation: Observation, module: str, imports: set[str]):
    """``edit`` of ``statement`` inside ``with pytest.warns`` of the first warning computing the value gave
    (its exact message too, when it has one), unless the test already expects warnings there; whether it is."""
    if not observation.warnings or any(
            isinstance(node, (ast.With, ast.AsyncWith)) and node.lineno < statement.lineno <= node.end_lineno
            and any(word in ast.unparse(item.context_expr) for item in node.items
                    for word in ("warns", "deprecated_call", "catch_warnings", "filterwarnings"))
            for node in ast.walk(function)):
        return edit, False
    kind, message = observation.warnings[0]
    category, import_line = _type_reference(kind, module)
    if import_line:
        imports.add(import_line)
    first, last, block = edit
    indent = re.match(r"\s*", block[0]).group(0)
    header = f"{indent}with pytest.warns({category}{_match_argument(message)}):{MARK}"
    wrapped = [header] + ["    " + line for line in block]
    return (first, last, wrapped), True


def _adopt_raise(statement: ast.stmt, exception: str, lines: list[str], body_end: int, message: str | None):
    """The statement that raised, inside ``with pytest.raises`` (matching the whole ``message``, when there is
    one to expect: a changed message is a changed behaviour); what came after it never ran and goes."""
    indent = lines[statement.lineno - 1][: statement.col_offset]
    if isinstance(statement, ast.Assert):
        call = statement.test.left if isinstance(statement.test, ast.Compare) else statement.test
        body = [ast.unparse(call)]
    else:
        body = [line[statement.col_offset:] for line in lines[statement.lineno - 1: statement.end_lineno]]
    header = f"{indent}with pytest.raises({exception}{_match_argument(message)}):{MARK}"
    block = [header] + [f"{indent}    {line}" for line in body]
    return statement.lineno, body_end, block


def _match_argument(message: str | None) -> str:
    """``, match=...`` matching exactly ``message`` (for ``pytest.raises``/``pytest.warns``); none without one."""
    return f", match={_quoted(_escaped(message))}" if message else ""


def _quoted(pattern: str) -> str:
    """``pattern`` as a string literal: raw (no backslash doubled) where one reads back the same."""
    for quote in "'\"" if pattern.isprintable() else "":
        raw = f"r{quote}{pattern}{quote}"
        try:
            if quote not in pattern and ast.literal_eval(raw) == pattern:
                return raw
        except (SyntaxError, ValueError):
            continue
    return repr(pattern)


def _escaped(message: str) -> str:
    """``message`` as a regular expression that matches it exactly (only what is special escaped)."""
    return "^" + re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", message) + "$"


def _expectation(statement: ast.stmt, lines: list[str]) -> str:
    return " ".join(line.strip() for line in lines[statement.lineno - 1: statement.end_lineno])


def _type_reference(type_name: str, module: str) -> tuple[str, str | None]:
    """How the test names a type (``type_name``: "module:qualname", or a builtin's name), and the import that
    makes the name available."""
    owner, _, qualname = type_name.rpartition(":")
    if not owner:
        return qualname, None
    top = qualname.split(".")[0]
    if owner == module:
        return qualname, f"from {module} import {top}"
    return f"{owner}.{qualname}", f"import {owner}"


def _imports_pytest(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.Import) and any(a.name == "pytest" and not a.asname for a in n.names)
               for n in tree.body)
