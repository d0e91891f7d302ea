"""Seeds: tests taken from the module's own docstring examples (``>>>``), before any model call.

A documented example shows a valid call and what it gives: the cheapest test there is, and the inputs the
model and amplification most often get wrong (a date string in the right format, a template with the
right syntax). Each example that shows a result becomes a test of its own, after the examples before it in
the same docstring that only set something up; the expected output becomes an ``assert ... ==`` when it
is a literal, else a check of the repr's text (what doctest compares), or, for a repr over several lines,
a placeholder for the observed-value oracle. An example that shows a traceback
is called bare: the oracle wraps it in ``pytest.raises`` of the type it raises. Like every candidate, the
seed file then runs in the sandbox, and only tests that pass are kept.
"""

from __future__ import annotations

import ast
import doctest

from .testfile import TestFile

_PREFIX = "test_doc_"
_MAX_SEEDS = 60  # per module: a docstring-heavy module should not fill the file before the model writes


def doctest_seeds(source: str) -> TestFile | None:
    """A test file (no imports yet: the engine adds the module's names) with one test per documented
    example that shows a result, in file order; None when the module documents none."""
    parser = doctest.DocTestParser()
    tests: list[str] = []
    taken: set[str] = set()
    for qualname, node in _documented(ast.parse(source)):
        docstring = ast.get_docstring(node, clean=True)
        if not docstring or ">>>" not in docstring:
            continue
        try:
            examples = parser.get_examples(docstring)
        except ValueError:  # a malformed example (bad indentation): doctest itself would refuse it
            continue
        setup: list[str] = []
        for example in examples:
            if example.options.get(doctest.SKIP):
                continue
            try:
                statements = ast.parse(example.source).body
            except SyntaxError:
                break  # the examples after it may use what it defines
            check = _check(statements, example)
            if check is None:
                if not example.want:  # a set-up step: what it binds, the later examples use
                    setup.append(example.source.rstrip("\n"))
                continue
            name = _name(qualname, taken)
            body = "\n".join(setup + [check])
            tests.append(f"def {name}():\n" + "\n".join("    " + line for line in body.splitlines()))
            if len(tests) >= _MAX_SEEDS:
                break
    return TestFile("\n\n\n".join(tests) + "\n") if tests else None


def _documented(tree: ast.Module):
    """(qualname, node) for the module, its functions, its classes and their methods."""
    yield "module", tree
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            yield node.name, node
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{item.name}", item


def _check(statements: list[ast.stmt], example: doctest.Example) -> str | None:
    """The test statement an example with a shown result becomes; None for a set-up step or one whose
    result cannot be checked (printed output)."""
    if example.exc_msg is not None:
        # It raises: called bare, the oracle wraps it in pytest.raises of the type it raises.
        return example.source.rstrip("\n") if len(statements) == 1 else None
    if not example.want or len(statements) != 1 or not isinstance(statements[0], ast.Expr):
        return None
    expression = statements[0].value
    if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name) and expression.func.id == "print":
        return None
    want = example.want.strip()
    try:
        ast.literal_eval(want)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        # Not a literal (``Week(2011, 8)``): doctest compares the repr's text, and so does the test; a
        # repr over several lines is left to the oracle (a placeholder it replaces with what it gets).
        if "\n" in want:
            return f"assert {_operand(expression)} == None"
        return f"assert repr({ast.unparse(expression)}) == {want!r}"
    return f"assert {_operand(expression)} == {ast.unparse(ast.parse(want, mode='eval'))}"


def _operand(expression: ast.expr) -> str:
    """The expression as the left side of ``==``: in parentheses when it binds less tightly (``a == b`` shown
    as ``True`` would otherwise become the chain ``a == b == True``)."""
    weaker = (ast.Compare, ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr)
    loose = isinstance(expression, weaker) or (isinstance(expression, ast.UnaryOp)
                                               and isinstance(expression.op, ast.Not))
    return f"({ast.unparse(expression)})" if loose else ast.unparse(expression)


def _name(qualname: str, taken: set[str]) -> str:
    base = _PREFIX + qualname.replace(".", "_").lower()
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name
