"""Amplify: new tests made from kept ones with no model call (test amplification, as in DSpot).

Four kinds of variant:

- **Inputs.** A kept test shows how to build the objects and call the code; a variant calls it with another
  value (a boundary next to the old one, an empty container, a constant the module itself compares
  against, a value another test of the module passes in), keeping the original's asserts.
- **Siblings.** A call of one of the module's functions (or of a method of one of its classes) becomes a
  call of another that takes the same arguments and still has lines no test runs: the test already
  builds arguments such functions accept (``select(pred, coll)`` -> ``reject(pred, coll)``).
- **Observations.** A variant checks a value the test computes but never asserts on: a variable it
  assigns, what a call it makes returns, the attributes of an object after a method call. It asserts
  ``== None`` there, a placeholder.
- **Probes.** A test that builds an object of a class of the module gets, at its end, a call of one of the
  class's methods that need no argument, a property, or ``len``/``repr``/``str``/``bool``/``list`` where
  the class defines them, that the test does not use yet; with the same placeholder.

The observed-value oracle then gives every variant the expectations the code meets (a value without a
literal repr cannot be adopted, and its variant fails), and the engine keeps only variants that pass
reliably and run a line or branch, or kill a mutant, that no kept test does.
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from dataclasses import dataclass
from itertools import zip_longest

from .oracle import MARK
from .prompt import node_span
from .testfile import TestFile, body_key, nodes_of

MAX_VARIANTS = 150  # per amplification: they run in one child, each under a per-test time limit
SUFFIX = "_amp"
_MAX_STRING = 24  # module strings longer than this are messages, not values the code branches on
_MODULE_CONSTANTS = 8  # per type, the most used first


def amplify(tests: TestFile, module_source: str, skip: frozenset[str] = frozenset(),
            limit: int = MAX_VARIANTS, observe: bool = True, values: dict[type, list] | None = None,
            wanted: frozenset[str] = frozenset()) -> TestFile | None:
    """A test file holding variants of the top-level tests of ``tests`` (its imports, fixtures and
    helpers first, none of its tests), each with one observation added (when ``observe``: only an oracle
    can fill in the placeholders), one input literal changed (to a nearby value, a module constant or one
    of ``values``, what other tests pass in) or, with ``observe``, one call turned to a sibling named in
    ``wanted`` (function names and ``Class.method`` names with uncovered lines); None when there is none.

    Variants are taken a test at a time in turn, so every test gets some before the ``limit``; a variant
    whose body equals a test's or another variant's is left out. Tests named in ``skip`` (amplified
    before), parametrized or decorated tests and tests of classes are not amplified; variants kept
    before are, under their original's name.
    """
    tree, lines = tests.tree, tests.lines
    constants = module_constants(module_source)
    for kind, pooled in (values or {}).items():
        bucket = constants.setdefault(kind, [])
        bucket.extend(v for v in pooled if v not in bucket)
    siblings = sibling_callables(module_source, wanted) if observe and wanted else {}
    seen = {body_key(n) for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    taken = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    imported = {(a.asname or a.name).split(".")[0] for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    probes = class_probes(module_source) if observe else {}
    per_test = [(_observations(node, lines, imported) + _probes(node, lines, probes) if observe else [])
                + _variants(node, lines, constants, siblings)
                for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test") and not node.decorator_list
                and node.name not in skip]
    chosen: list[str] = []
    for round_ in zip_longest(*per_test):
        for variant in round_:
            if variant is None or len(chosen) >= limit:
                continue
            name, text = variant
            try:
                function = ast.parse(text).body[0]
            except SyntaxError:
                continue
            key = body_key(function)
            if key in seen:
                continue
            seen.add(key)
            base = re.sub(rf"{SUFFIX}\d+$", "", name)  # a variant of a variant is named after the original
            new_name, number = f"{base}{SUFFIX}1", 1
            while new_name in taken:
                number += 1
                new_name = f"{base}{SUFFIX}{number}"
            taken.add(new_name)
            chosen.append(text.replace(f"def {name}(", f"def {new_name}(", 1))
    if not chosen:
        return None
    # The file's imports, fixtures and helpers stay; its own tests go (they are kept already).
    helpers = [n for n in tree.body if not (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                                            and n.name.startswith("test"))
               and not (isinstance(n, ast.ClassDef) and n.name.startswith("Test"))]
    head = "\n\n".join("\n".join(lines[s - 1:e]) for s, e in (node_span(n) for n in helpers))
    return TestFile((head + "\n\n\n" if head else "") + "\n\n\n".join(chosen) + "\n")


def module_constants(module_source: str) -> dict[type, list]:
    """The ints, floats and short strings the module's functions use (compare against, index with, pass
    on), most used first, with each compared int's neighbours (a boundary is where a branch turns)."""
    counts: Counter = Counter()
    for node in ast.walk(ast.parse(module_source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            for inner in _own_nodes(body):
                if isinstance(inner, ast.Compare):
                    for side in [inner.left, *inner.comparators]:
                        if isinstance(side, ast.Constant) and type(side.value) is int:
                            counts.update([side.value - 1, side.value + 1])
                if isinstance(inner, ast.Constant) and type(inner.value) in (int, float, str) and not (
                        isinstance(inner.value, str) and (len(inner.value) > _MAX_STRING or "\n" in inner.value)):
                    counts[inner.value] += 1
    found: dict[type, list] = {int: [], float: [], str: []}
    for value, _ in counts.most_common():
        bucket = found[type(value)]
        if len(bucket) < _MODULE_CONSTANTS:
            bucket.append(value)
    return found


def passed_values(sources: list[str]) -> dict[type, list]:
    """The ints, floats, strings and bytes the given tests pass in (not what they expect), most used first:
    a value one test builds (a valid date string, a template) is worth trying in another's call."""
    counts: Counter = Counter()
    for node in nodes_of(sources):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            counts.update(n.value for n in input_literals(node) if isinstance(n, ast.Constant)
                          and type(n.value) in (int, float, str, bytes)
                          and not (isinstance(n.value, (str, bytes)) and len(n.value) > 2 * _MAX_STRING))
    found: dict[type, list] = {int: [], float: [], str: [], bytes: []}
    for value, _ in counts.most_common():
        bucket = found[type(value)]
        if len(bucket) < _MODULE_CONSTANTS:
            bucket.append(value)
    return found


def _own_nodes(nodes: list[ast.AST]):
    """``nodes`` and the nodes under them, not entering nested functions (``module_constants`` visits those
    itself: entering them here would count their constants twice)."""
    for node in nodes:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
            yield from _own_nodes(list(ast.iter_child_nodes(node)))


def replacements(value, constants: dict[type, list]) -> list[str]:
    """Source texts to put in place of the literal ``value``: nearby and edge values of its type, then the
    module's own constants of that type."""
    kind = type(value)
    if kind is bool:
        values = [not value]
    elif kind is int:
        values = [0, 1, -1, value + 1, value - 1, *constants[int]]
    elif kind is float:
        values = [0.0, -value, value + 0.5, *constants[float], *(float(i) for i in constants[int][:2])]
    elif kind is str:
        values = ["", value[:1], value * 2 if len(value) < 12 else value[: len(value) // 2], value.upper(),
                  " " + value, *constants[str]]
    elif kind is bytes:
        values = [b"", value[:1], value * 2, *constants.get(bytes, [])]
    else:
        return []
    texts = []
    for candidate in values:
        if type(candidate) is kind and candidate != value and repr(candidate) not in texts:
            texts.append(repr(candidate))
    if kind is float and math.isfinite(value):
        texts += ["float('inf')", "float('nan')"]  # no literal writes them
    return texts


def _variants(function: ast.FunctionDef, lines: list[str], constants: dict[type, list],
              siblings: dict[str, list[tuple[str, "Arity"]]]) -> list[tuple[str, str]]:
    """(test name, variant text) for each input literal of ``function`` and each replacement, and for each
    call of a module function or method with ``siblings`` and each sibling that takes its arguments; the
    places taken in turn so the first variants change different ones."""
    start, end = node_span(function)
    text = lines[start - 1:end]
    # `with pytest.raises(E):` blocks the oracle wrote: a new input may not raise, so a variant calls bare
    # (the oracle wraps it again when it does raise).
    observed_raises = [n for n in function.body if isinstance(n, ast.With) and len(n.body) == 1
                       and MARK.strip() in lines[n.lineno - 1]]

    def finish(variant: list[str]) -> str:
        for block in reversed(observed_raises):
            inner = block.body[0]
            dedent = inner.col_offset - block.col_offset
            body = [line[dedent:] for line in variant[inner.lineno - start: inner.end_lineno - start + 1]]
            variant = variant[: block.lineno - start] + body + variant[block.end_lineno - start + 1:]
        return "\n".join(line.replace(MARK, "") for line in variant)

    # (line, first column, end column, texts to put there), columns in UTF-8 bytes as the AST counts them
    places = []
    for node in input_literals(function):
        if isinstance(node, ast.Constant):
            options = replacements(node.value, constants)
        else:  # a non-empty container literal: empty, and with only its first item
            options = _container_options(node)
        places.append((node.lineno, node.col_offset, node.end_col_offset, options))
    places.extend(_sibling_places(function, siblings))
    per_place = []
    for lineno, first, last, options in places:
        row = lineno - start
        line = text[row].encode()
        made = []
        for option in options:
            new_line = (line[:first] + option.encode() + line[last:]).decode()
            made.append((function.name, finish(text[:row] + [new_line] + text[row + 1:])))
        per_place.append(made)
    return [v for round_ in zip_longest(*per_place) for v in round_ if v is not None]


@dataclass(frozen=True)
class Arity:
    """What arguments a function accepts: how many positionally, and which keywords."""

    required: int  # positional parameters without a default
    most: float  # positional parameters in all (infinite with ``*args``)
    keywords: frozenset[str] | None  # names a keyword argument may have (None: any, with ``**kwargs``)

    def accepts(self, call: ast.Call) -> bool:
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return False
        named = {k.arg for k in call.keywords}
        if self.keywords is not None and not named <= self.keywords:
            return False
        return self.required <= len(call.args) + len(named) and len(call.args) <= self.most


def _arity(node: ast.FunctionDef | ast.AsyncFunctionDef, bound: bool) -> Arity:
    arguments = node.args
    positional = [a.arg for a in arguments.posonlyargs + arguments.args][1 if bound else 0:]
    required = max(len(positional) - len(arguments.defaults), 0)
    keywords = None if arguments.kwarg else frozenset(
        [a.arg for a in arguments.args][1 if bound else 0:] + [a.arg for a in arguments.kwonlyargs])
    return Arity(required, float("inf") if arguments.vararg else len(positional), keywords)


def sibling_callables(module_source: str, wanted: frozenset[str]) -> dict[str, list[tuple[str, Arity]]]:
    """For each public function of the module (by name) and each public method of its classes (by
    ``.name``), the other functions or methods of the same class that are in ``wanted``, with their
    arities: what a call may be turned into."""
    functions: dict[str, Arity] = {}
    classes: dict[str, dict[str, Arity]] = {}
    for node in ast.parse(module_source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            functions[node.name] = _arity(node, bound=False)
        elif isinstance(node, ast.ClassDef):
            methods = classes.setdefault(node.name, {})
            for item in node.body:
                if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) or item.name.startswith("_"):
                    continue
                decorators = {ast.unparse(d) for d in item.decorator_list}
                if decorators - {"staticmethod", "classmethod"}:  # properties, setters, wrappers
                    continue
                methods[item.name] = _arity(item, bound="staticmethod" not in decorators)
    found: dict[str, list[tuple[str, Arity]]] = {}
    for name in functions:
        found[name] = [(other, arity) for other, arity in functions.items() if other != name and other in wanted]
    for cls, methods in classes.items():
        for name in methods:
            found.setdefault(f".{name}", []).extend(
                (other, arity) for other, arity in methods.items()
                if other != name and f"{cls}.{other}" in wanted)
    return {name: options for name, options in found.items() if options}


def _sibling_places(function: ast.FunctionDef, siblings: dict[str, list[tuple[str, Arity]]]):
    """(line, first column, end column, names) where a call's function name may be swapped for a sibling's:
    the calls ``function`` makes on one line, outside what it expects."""
    if not siblings:
        return []
    expected = _expected_ids(function)
    places = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Call) or id(node) in expected or node.lineno != node.end_lineno:
            continue
        func = node.func
        if isinstance(func, ast.Name):
            key = func.id
        elif isinstance(func, ast.Attribute) and func.end_lineno == func.lineno:
            key = f".{func.attr}"
        else:
            continue
        names = [other for other, arity in siblings.get(key, []) if arity.accepts(node)]
        if names:
            last = func.end_col_offset
            first = last - len(key.lstrip(".").encode())
            places.append((func.lineno, first, last, names))
    return places


def _observations(function: ast.FunctionDef, lines: list[str], imported: set[str]) -> list[tuple[str, str]]:
    """(test name, variant text) for each value ``function`` computes at its top level and never asserts
    on: after ``name = f(...)``, ``assert name == None`` (``assert vars(name) == None`` when ``f`` is a
    class, by its capital); a bare one-line call ``f(...)`` becomes ``assert f(...) == None``, and after
    ``obj.m(...)`` (``obj`` not an imported module), ``assert vars(obj) == None``."""
    start, end = node_span(function)
    text = lines[start - 1:end]
    # Names already checked with `assert name == ...`; weaker checks (`> 0`, `is not None`) get a variant.
    asserted = {a.test.left.id for a in ast.walk(function) if isinstance(a, ast.Assert)
                and isinstance(a.test, ast.Compare) and isinstance(a.test.ops[0], ast.Eq)
                and isinstance(a.test.left, ast.Name)}
    made = []
    for statement in function.body:
        row = statement.end_lineno - start + 1  # where a line after the statement goes
        indent = text[statement.lineno - start][: statement.col_offset]
        checks = []
        assigned = _call_assignment(statement)
        if assigned is not None:
            name, called = assigned
            if called[:1].isupper():
                checks = [f"assert vars({name}) == None"]
            elif name not in asserted:
                checks = [f"assert {name} == None"]
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) \
                and not ast.unparse(statement.value.func).startswith(("print", "pytest.")):
            call = statement.value
            if statement.lineno == statement.end_lineno:
                line = text[statement.lineno - start]
                wrapped = f"{indent}assert {line[statement.col_offset:].rstrip()} == None"
                made.append(text[: statement.lineno - start] + [wrapped] + text[row:])
            if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) \
                    and call.func.value.id not in imported:
                checks = [f"assert vars({call.func.value.id}) == None"]
        made.extend(text[:row] + [indent + check] + text[row:] for check in checks)
    return [(function.name, "\n".join(variant)) for variant in made]


def _call_assignment(statement: ast.stmt) -> tuple[str, str] | None:
    """For ``name = f(...)`` or ``name = a.f(...)``: (``name``, ``f``); else None."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
            and isinstance(statement.targets[0], ast.Name) and isinstance(statement.value, ast.Call):
        return statement.targets[0].id, ast.unparse(statement.value.func).split(".")[-1]
    return None


# A dunder the class defines -> how a test reaches it ("{}": the object).
_DUNDER_PROBES = {"__len__": "len({})", "__repr__": "repr({})", "__str__": "str({})", "__bool__": "bool({})",
                  "__iter__": "list({})"}
_MAX_PROBES = 12  # per test


def class_probes(module_source: str) -> dict[str, list[str]]:
    """Per class of the module, the expressions that reach its code without an argument (``{}`` stands
    for the object): its public methods whose parameters all have defaults, its properties, and the
    builtins behind the dunders it defines."""
    probes: dict[str, list[str]] = {}
    for node in ast.parse(module_source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        found = []
        for item in node.body:
            if not isinstance(item, ast.FunctionDef):
                continue
            decorators = {ast.unparse(d) for d in item.decorator_list}
            if item.name in _DUNDER_PROBES:
                found.append(_DUNDER_PROBES[item.name])
            elif item.name.startswith("_") or decorators & {"staticmethod", "classmethod"} \
                    or any(d.endswith((".setter", ".deleter")) for d in decorators):
                continue
            elif "property" in decorators:
                found.append(f"{{}}.{item.name}")
            elif not decorators:
                arguments = item.args
                required = len(arguments.posonlyargs) + len(arguments.args) - len(arguments.defaults) - 1
                if required <= 0 and all(d is not None for d in arguments.kw_defaults):
                    found.append(f"{{}}.{item.name}()")
        probes[node.name] = found
    return probes


def _probes(function: ast.FunctionDef, lines: list[str], probes: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(test name, variant text) for each probe of a class whose object ``function`` builds at its top level
    (``name = Class(...)``) and does not use yet, asserted at the end of the test."""
    start, end = node_span(function)
    text = lines[start - 1:end]
    body = ast.unparse(function)
    indent = text[function.body[0].lineno - start][: function.body[0].col_offset]
    made = []
    for statement in function.body:
        assigned = _call_assignment(statement)
        if assigned is not None:
            name, called = assigned
            for probe in probes.get(called, [])[:_MAX_PROBES]:
                expression = probe.format(name)
                if expression not in body:
                    made.append((function.name, "\n".join(text + [f"{indent}assert {expression} == None"])))
    return made


def input_literals(function: ast.FunctionDef) -> list[ast.expr]:
    """The literals a test passes in (constants, and non-empty list/tuple/set/dict displays) on one line
    each, outside what it expects: not the right side of an assert's comparison, not in ``pytest.raises`` or
    ``pytest.approx`` calls, not a ``match=`` pattern, not a docstring."""
    expected = _expected_ids(function)
    body = function.body[1:] if ast.get_docstring(function) is not None else function.body
    found = []
    for statement in body:
        for node in ast.walk(statement):
            if id(node) in expected or not hasattr(node, "lineno") or node.lineno != node.end_lineno:
                continue
            if isinstance(node, ast.Constant) and not isinstance(node.value, type(Ellipsis)) \
                    and node.value is not None:
                found.append(node)
            elif isinstance(node, (ast.List, ast.Tuple, ast.Set)) and node.elts and isinstance(
                    getattr(node, "ctx", ast.Load()), ast.Load) or isinstance(node, ast.Dict) and node.keys:
                found.append(node)
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))


def _expected_ids(function: ast.FunctionDef) -> set[int]:
    """The ids of the nodes of ``function`` that say what it expects: an assert's comparators (or a bare
    assert's test), ``pytest.raises``/``pytest.approx`` calls, ``match=`` patterns."""
    expected: set[int] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            expected.add(id(node.test))  # `assert True`
            for comparator in node.test.comparators if isinstance(node.test, ast.Compare) else ():
                expected.update(id(n) for n in ast.walk(comparator))
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("pytest.raises", "pytest.approx", "raises"):
            expected.update(id(n) for n in ast.walk(node))
        elif isinstance(node, ast.keyword) and node.arg == "match":
            expected.update(id(n) for n in ast.walk(node.value))
    return expected


def _container_options(node: ast.expr) -> list[str]:
    empty = {ast.List: "[]", ast.Tuple: "()", ast.Set: "set()", ast.Dict: "{}"}[type(node)]
    if isinstance(node, ast.Dict):
        if len(node.keys) < 2 or node.keys[0] is None:
            return [empty]
        return [empty, "{" + f"{ast.unparse(node.keys[0])}: {ast.unparse(node.values[0])}" + "}"]
    if len(node.elts) < 2:
        return [empty]
    first = ast.unparse(node.elts[0])
    single = {ast.List: f"[{first}]", ast.Tuple: f"({first},)", ast.Set: f"{{{first}}}"}[type(node)]
    return [empty, single]
