"""Explore: calls of the module's functions and methods built from their signatures, with no model call (random
testing, as in Randoop and Pynguin, without their search).

Each public function or method that still has lines no test runs gets a few calls whose arguments come from
what the signature says (an annotation, a default's type, what a parameter's name usually holds), what the
body says (the types it checks a parameter against, and one it does not; a date for a parameter whose
``.year`` it reads), the values the module itself uses (strings its regular expressions match first) and the
values the kept tests pass in. A method is called on an object built the way a kept test builds one, else from
its class's ``__init__`` signature; a special method through the syntax that calls it (``a == b``, ``len(a)``,
``a[k]``, ``hash(a)``). Every call is asserted ``== None``, a placeholder: the observed-value oracle replaces
it with what the code returned, or wraps the call in ``pytest.raises`` of what it raised (a ``TypeError`` the
interpreter raises says the arguments were wrong, and that test is dropped; one the code raises itself is
kept). The engine keeps a call only if it passes and runs a line or branch no kept test runs; the
amplification rounds then vary the kept calls' inputs and turn them into calls of siblings. It explores again
after the model's tests are kept, with the objects they build and the values they pass, leaving out calls
tried before.
"""

from __future__ import annotations

import ast
import builtins
import copy
import datetime
import decimal
import fractions
import keyword
import random
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import zip_longest

from .testfile import TestFile, body_key, nodes_of

PREFIX = "test_explore_"
MAX_TESTS = 150  # per module: they run in one child, each under a per-test time limit
CALLS_PER_TARGET = 4
_POOL = 6  # values per parameter a call picks from, per CALLS_PER_TARGET calls
_BASICS: dict[str, list[str]] = {
    "int": ["0", "1", "-1", "3", "10"],
    "float": ["0.0", "1.5", "-2.5", "float('inf')", "float('nan')"],  # the values a float check tells apart
    "str": ["'abc'", "''", "'a b'", "'1'"],
    "bytes": ["b'abc'", "b''"],
    "bool": ["True", "False"],
    "list": ["[1, 2, 3]", "[]", "['a', 'b']", "[3, 1, 2, 1]"],
    "dict": ["{'a': 1, 'b': 2}", "{}", "{'a': {'b': 1}}"],
    "tuple": ["(1, 2)", "()"],
    "set": ["{1, 2}", "set()"],
    "callable": ["lambda *a: a[0] if a else None", "bool", "str"],
    "none": ["None"],
    "lock": ["threading.RLock()"],
}
_ANNOTATIONS = [  # (word in an annotation, kind)
    ("callable", "callable"), ("bool", "bool"), ("int", "int"), ("float", "float"), ("number", "float"),
    ("bytes", "bytes"), ("str", "str"), ("dict", "dict"), ("mapping", "dict"), ("list", "list"),
    ("sequence", "list"), ("iterable", "list"), ("tuple", "tuple"), ("set", "set"),
]
_CONTAINERS = {"callable", "dict", "list", "tuple", "set"}  # an annotation starting with one: what it holds is not it
_NAMES = {  # parameter names and the kinds their values usually are, most likely first
    "int": {"n", "i", "j", "k", "count", "num", "number", "size", "index", "idx", "start", "end", "stop", "step",
            "width", "height", "length", "limit", "level", "depth", "times", "year", "month", "day", "week",
            "hour", "minute", "second", "offset", "pos", "position", "begin", "lo", "hi", "low", "high", "maxsize",
            "max_length", "precision", "digits", "base"},
    "str": {"s", "string", "text", "name", "prefix", "suffix", "sep", "separator", "path", "url", "uri",
            "template", "pattern", "fmt", "format", "char", "chars", "word", "line", "expr", "expression",
            "doc", "source", "delimiter", "encoding", "label", "title", "pointer", "query", "field"},
    "callable": {"f", "func", "fn", "function", "pred", "predicate", "callback", "mapper", "factory", "key",
                 "default_factory", "hook", "cond", "test", "method", "wrapped", "fun"},
    "list": {"seq", "coll", "items", "iterable", "lst", "values", "elements", "xs", "seqs", "colls", "args",
             "sequence", "iterables", "children", "data", "elems", "parts", "keys"},
    "dict": {"d", "dct", "mapping", "mappings", "dicts", "kwargs", "attrs", "options", "params", "doc_dict",
             "obj", "document", "context", "env"},
    "bool": {"flag", "strict", "reverse", "recursive", "inplace", "force", "verbose", "quiet", "raise_errors"},
    "lock": {"lock", "rlock", "mutex"},
}
_STRING_SUFFIXES = ("string", "str", "text", "name", "path", "url", "pattern", "format")  # date_string, filename
_ANY = ["int", "str", "list", "dict", "none"]
_CALL_CHANGING_DECORATORS = {"contextmanager", "asynccontextmanager", "overload", "fixture", "abstractmethod",
                             "setter", "deleter", "property", "cached_property", "staticmethod", "classmethod"}
_KEYWORDS = ["a", "b"]  # given to a ``**`` parameter whose function reads no key from it by name
_UNBOUND_PREFIXES = ("is_", "has_", "allow_", "use_", "ignore_", "no_")
_OTHER = {"other", "that", "rhs", "lhs", "another"}  # a method's parameter that takes another object of its class
# The types a function checks a parameter against (``isinstance(x, T)``, ``type(x) is T``), by the last part
# of the name the module writes: a kind of ``_BASICS``, or calls that build one (``{}``: the name as written,
# so the test imports it as the module does). Each side of the check is then tried.
_CHECKED_KINDS = {
    "str": "str", "string_types": "str", "text_type": "str", "unicode": "str", "basestring": "str",
    "bytes": "bytes", "bytearray": "bytes", "binary_type": "bytes", "int": "int", "integer_types": "int",
    "Integral": "int", "bool": "bool", "float": "float", "Real": "float", "Number": "float", "list": "list",
    "Sequence": "list", "MutableSequence": "list", "Iterable": "list", "Collection": "list", "tuple": "tuple",
    "dict": "dict", "Mapping": "dict", "MutableMapping": "dict", "set": "set", "frozenset": "set", "Set": "set",
    "AbstractSet": "set", "MutableSet": "set", "Callable": "callable", "NoneType": "none",
}
_CHECKED_CALLS = {
    "datetime": ["{}(2020, 1, 31, 12, 30, 15)"], "date": ["{}(2020, 1, 31)", "{}(2021, 12, 31)"],
    "timedelta": ["{}(days=1, hours=2)", "{}(seconds=-90)"], "time": ["{}(12, 30, 15)"],
    "Decimal": ["{}('1.5')"], "Fraction": ["{}(1, 3)"], "Iterator": ["iter([1, 2, 3])"],
    "Generator": ["(x for x in [1, 2, 3])"], "OrderedDict": ["{}([('a', 1), ('b', 2)])"],
}
_CONTRASTS = [("none", "None"), ("int", "1"), ("str", "'abc'")]  # a value outside what a check accepts
# Types a parameter may be given for the attributes the code uses on it, with their public attributes (not
# bytes: it has a str's methods, and a str is far more often meant).
_DUCK_TYPES = [(dotted, frozenset(a for a in dir(kind) if not a.startswith("_"))) for dotted, kind in [
    ("str", str), ("list", list), ("dict", dict), ("set", set), ("int", int), ("float", float),
    ("datetime.date", datetime.date), ("datetime.datetime", datetime.datetime),
    ("datetime.timedelta", datetime.timedelta), ("datetime.time", datetime.time), ("decimal.Decimal", decimal.Decimal),
    ("fractions.Fraction", fractions.Fraction)]]
_MOST_DUCK_TYPES = 3
_MAX_ARGUMENT = 80  # characters: a longer literal argument is not worth passing elsewhere
_BUILTIN_NAMES = frozenset(dir(builtins))


def explore(module_source: str, wanted: frozenset[str], values: dict[type, list] | None = None,
            built: dict[str, list[str]] | None = None, limit: int = MAX_TESTS,
            pattern_strings: list[str] = (), tried: frozenset[str] = frozenset(),
            named: dict[str, list[str]] | None = None, calls_per_target: int = CALLS_PER_TARGET) -> TestFile | None:
    """A test file (no imports yet: the engine adds the module's names) with up to ``calls_per_target`` calls
    of each public function and method named in ``wanted`` (``f``, ``Cls.meth``; ``Cls.__init__`` for the
    constructor), each asserted against a placeholder, at most ``limit`` in all (every target's first call
    before any target's second); None when there is nothing to call. ``values``: the ints, floats, strings
    and bytes worth trying first (the module's, the tests'); ``built``: per class, expressions that build one
    (from the kept tests); ``pattern_strings``: strings the module's regular expressions match, tried before
    any other string; ``named``: per parameter name, values tests pass to it (:func:`argument_values`), tried
    before anything else for a parameter of that name. A call whose body (``testfile.body_key``) is in ``tried``
    is left out. Calls are the same for the same inputs."""
    pools = _Pools(named=dict(named or {}), objects={cls: list(makers) for cls, makers in (built or {}).items()})
    depth = 3 * max(1, calls_per_target // CALLS_PER_TARGET)  # given values tried per kind: more with more calls
    for kind, pooled in (values or {}).items():
        name = {int: "int", float: "float", str: "str", bytes: "bytes"}.get(kind)
        if name:
            pools.kinds[name] = _unique([repr(v) for v in pooled[:depth]] + pools.kinds[name])
    pools.kinds["str"] = _unique([repr(v) for v in pattern_strings[:depth]] + pools.kinds["str"])
    tree = ast.parse(module_source)
    pools.imports = module_imports(tree)
    for node in tree.body:  # a class no kept test builds yet: one object from its signature, to pass along
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and node.name not in pools.objects:
            init = next((item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"),
                        None)
            args = _calls(init, node.name, pools, bound=True, most=1)[0] if init is not None else ""
            pools.objects[node.name] = [f"{node.name}({args})"]
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    tests: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in wanted \
                and not node.name.startswith("_") and not _changes_the_call(node):
            calls = _calls(node, node.name, pools, bound=False, most=calls_per_target)
            tests.extend((node.name.lower(), [f"assert {_result(node, f'{node.name}({args})')} == None"])
                         for args in calls)
            inner = _returned_function(node)
            if inner is not None:
                tests.extend((f"{node.name.lower()}_made", body)
                             for body in _made_calls(node.name, calls, inner, pools, calls_per_target))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            tests.extend(_class_tests(node, _lineage(node, classes), wanted, pools, calls_per_target))
    tests = [(name, body) for name, body in tests if _body_key(body) not in tried]
    functions: list[str] = []
    taken: set[str] = set()
    for name, body in _in_turn(tests, limit):
        test_name, number = f"{PREFIX}{name}_1", 1
        while test_name in taken:
            number += 1
            test_name = f"{PREFIX}{name}_{number}"
        taken.add(test_name)
        functions.append(f"def {test_name}():\n" + "\n".join("    " + line for line in body))
    return TestFile("\n\n\n".join(functions) + "\n") if functions else None


@dataclass
class _Pools:
    """The values calls draw from, as source: per kind of value, and per parameter name (what the kept tests
    pass to a parameter of that name, tried first for it)."""

    kinds: dict[str, list[str]] = field(default_factory=lambda: {kind: list(v) for kind, v in _BASICS.items()})
    named: dict[str, list[str]] = field(default_factory=dict)
    objects: dict[str, list[str]] = field(default_factory=dict)  # per class of the module, what builds one
    imports: dict[str, str] = field(default_factory=dict)  # the module's imported names (module_imports)


def _body_key(body: list[str]) -> str:
    return body_key(ast.parse("def test():\n" + "\n".join("    " + line for line in body)).body[0])


def _in_turn(tests: list[tuple[str, list[str]]], limit: int) -> list[tuple[str, list[str]]]:
    """The first ``limit`` tests taken a target at a time in turn (each target's first call, then each one's
    second...), so that a small limit still calls every target; in their order."""
    depth: Counter[str] = Counter()
    ranked = []
    for index, (name, _) in enumerate(tests):
        ranked.append((depth[name], index))
        depth[name] += 1
    chosen = sorted(index for _, index in sorted(ranked)[:max(0, limit)])
    return [tests[index] for index in chosen]


def constructions(test_sources: list[str], classes: set[str],
                  names: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Per class named in ``classes``, expressions that build one, from the given tests: the calls of it with
    literal arguments only (``Week(2011, 8)``), and what a test asserts is an instance of it
    (``assert isinstance(getattr(obj, 'name'), Query)`` after ``obj = Query()``: ``getattr(Query(), 'name')``),
    a test's variables put in where they use only the classes, ``names`` (the module's functions) and builtins.
    Up to three of each kind, shortest first, taken in turn: objects the code accepts, to call methods on."""
    literal: dict[str, list[str]] = {}
    observed: dict[str, list[str]] = {}
    for node in nodes_of(test_sources):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes \
                and all(_is_literal(a) for a in [*node.args, *(k.value for k in node.keywords)]) \
                and all(k.arg for k in node.keywords):
            literal.setdefault(node.func.id, []).append(ast.unparse(node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for cls, text in _asserted_instances(node, classes, classes | names):
                observed.setdefault(cls, []).append(text)
    found = {}
    for cls in literal.keys() | observed.keys():
        firsts = [sorted(_unique(kind.get(cls, [])), key=len)[:3] for kind in (literal, observed)]
        found[cls] = _alternate(*firsts)
    return found


def _asserted_instances(function: ast.FunctionDef | ast.AsyncFunctionDef, classes: set[str],
                        names: set[str]) -> list[tuple[str, str]]:
    """(class, expression) for each ``assert isinstance(expression, Class)`` of ``function`` whose expression,
    with the variables assigned once before it put in, names nothing but ``names`` and builtins."""
    assigned: dict[str, ast.expr] = {}
    counts = Counter(target.id for statement in function.body if isinstance(statement, ast.Assign)
                     for target in statement.targets if isinstance(target, ast.Name))
    found = []
    for statement in function.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                and isinstance(statement.targets[0], ast.Name) and counts[statement.targets[0].id] == 1:
            assigned[statement.targets[0].id] = statement.value
        test = statement.test if isinstance(statement, ast.Assert) else None
        if not (isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "isinstance"
                and len(test.args) == 2 and isinstance(test.args[1], ast.Name) and test.args[1].id in classes):
            continue
        expression = _Inline(assigned).visit(copy.deepcopy(test.args[0]))
        used = {n.id for n in ast.walk(expression) if isinstance(n, ast.Name)}
        text = ast.unparse(expression)
        if used <= names | _BUILTIN_NAMES and not any(isinstance(n, ast.Lambda) for n in ast.walk(expression)) \
                and len(text) <= _MAX_ARGUMENT:
            found.append((test.args[1].id, text))
    return found


class _Inline(ast.NodeTransformer):
    """Puts the assigned expression in place of each variable read."""

    def __init__(self, assigned: dict[str, ast.expr]):
        self.assigned = assigned

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return copy.deepcopy(self.assigned[node.id]) if node.id in self.assigned else node


def argument_values(module_source: str, test_sources: list[str]) -> dict[str, list[str]]:
    """Per parameter name of the module's functions and methods, the literal arguments (as source) that the
    given tests pass to it, most used first: a call ``replace('1.2.3', major=2)`` says that a ``version``
    parameter takes ``'1.2.3'``, in ``replace`` and in every other function with a parameter of that name.
    Calls are matched by the called name alone (``f``, ``obj.meth``, ``module.f``, ``Cls`` for its
    ``__init__``); a name the module defines more than once counts with each of its signatures."""
    signatures: dict[str, list[tuple[list[str], set[str]]]] = {}  # name -> (positional names, keyword names)
    for node in ast.parse(module_source).body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    static = any(ast.unparse(d) == "staticmethod" for d in item.decorator_list)
                    name = node.name if item.name == "__init__" else item.name
                    signatures.setdefault(name, []).append(_parameters(item, bound=not static))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            signatures.setdefault(node.name, []).append(_parameters(node, bound=False))
    counts: dict[str, Counter[str]] = {}
    for call in nodes_of(test_sources):
        if not isinstance(call, ast.Call):
            continue
        called = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
        for positional, keywords in signatures.get(called, []):
            pairs = list(zip(positional, call.args)) + [(k.arg, k.value) for k in call.keywords if k.arg in keywords]
            for parameter, value in pairs:
                if not isinstance(value, ast.Starred) and _is_literal(value):
                    text = ast.unparse(value)
                    if len(text) <= _MAX_ARGUMENT:
                        counts.setdefault(parameter, Counter())[text] += 1
    return {parameter: [text for text, _ in counted.most_common()] for parameter, counted in counts.items()}


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef, bound: bool) -> tuple[list[str], set[str]]:
    """A signature's positional parameter names (without the bound first one) and every name a keyword
    argument can give."""
    positional = _positional(function, bound)
    keywords = {a.arg for a in function.args.args if a in positional} | {a.arg for a in function.args.kwonlyargs}
    return [a.arg for a in positional], keywords


def _positional(function: ast.FunctionDef | ast.AsyncFunctionDef, bound: bool) -> list[ast.arg]:
    """The positional parameters a call passes, without the bound first one (``self``, ``cls``)."""
    return (function.args.posonlyargs + function.args.args)[1 if bound else 0:]


# How a test gets Python to call a special method of ``obj``: an expression, ``{}`` standing for an operand
# (another object of the class, or a value of the method's second parameter).
_UNARY = {
    "__repr__": "repr(obj)", "__str__": "str(obj)", "__len__": "len(obj)", "__bool__": "bool(obj)",
    "__iter__": "list(obj)", "__reversed__": "list(reversed(obj))", "__abs__": "abs(obj)", "__neg__": "-obj",
    "__pos__": "+obj", "__invert__": "~obj", "__int__": "int(obj)", "__float__": "float(obj)",
    "__index__": "operator.index(obj)", "__round__": "round(obj)", "__copy__": "copy.copy(obj)",
    "__deepcopy__": "copy.deepcopy(obj)", "__dir__": "sorted(dir(obj))", "__next__": "next(obj)",
    "__reduce__": "pickle.loads(pickle.dumps(obj))", "__reduce_ex__": "pickle.loads(pickle.dumps(obj))",
    "__getstate__": "pickle.loads(pickle.dumps(obj))", "__setstate__": "pickle.loads(pickle.dumps(obj))",
}
_BINARY = {
    "__eq__": "obj == {}", "__ne__": "obj != {}", "__lt__": "obj < {}", "__le__": "obj <= {}", "__gt__": "obj > {}",
    "__ge__": "obj >= {}", "__add__": "obj + {}", "__radd__": "{} + obj", "__sub__": "obj - {}",
    "__rsub__": "{} - obj", "__mul__": "obj * {}", "__rmul__": "{} * obj", "__truediv__": "obj / {}",
    "__rtruediv__": "{} / obj", "__floordiv__": "obj // {}", "__mod__": "obj % {}", "__pow__": "obj ** {}",
    "__matmul__": "obj @ {}", "__and__": "obj & {}", "__rand__": "{} & obj", "__or__": "obj | {}",
    "__ror__": "{} | obj", "__xor__": "obj ^ {}", "__lshift__": "obj << {}", "__rshift__": "obj >> {}",
    "__divmod__": "divmod(obj, {})", "__contains__": "{} in obj", "__getitem__": "obj[{}]", "__missing__": "obj[{}]",
    "__getattr__": "getattr(obj, {})", "__format__": "format(obj, {})",
}
_IN_PLACE = {"__iadd__": "+=", "__isub__": "-=", "__imul__": "*=", "__ior__": "|=", "__iand__": "&=",
             "__ixor__": "^="}
_NAMES_AN_ATTRIBUTE = {"__getattr__", "__setattr__", "__delattr__", "__format__"}  # their operand is a str


def _class_tests(node: ast.ClassDef, lineage: list[ast.ClassDef], wanted: frozenset[str], pools: _Pools,
                 most: int) -> list[tuple[str, list[str]]]:
    """Tests of the class ``node``'s methods named in ``wanted``: each called on a new object, and (taking
    turns with those) on one that calls before it have filled (``lineage``: the class and its bases in the
    module, whose methods the object has too)."""
    methods = {item.name: item for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
    init = methods.get("__init__")
    makers = list(pools.objects.get(node.name, []))
    if init is not None:
        makers += [f"{node.name}({args})" for args in _calls(init, node.name, pools, bound=True, most=most)]
    elif not makers:
        makers = [f"{node.name}()"]
    makers = _unique(makers)
    prefix = node.name.lower()
    filled = _Filled(node.name, lineage, makers, pools, most)
    tests: list[tuple[str, list[str]]] = []
    if f"{node.name}.__init__" in wanted:
        # What the constructor stored: vars() of the object is a dict, literal when its fields are.
        tests.extend((f"{prefix}_init", [f"assert vars({maker}) == None"]) for maker in makers[:most])
    for name, method in methods.items():
        if f"{node.name}.{name}" not in wanted:
            continue
        if name.startswith("__") and name.endswith("__"):
            bodies = _alternate(_special_calls(method, makers, pools, most), filled.special_bodies(method))
            tests.extend((f"{prefix}_{name.strip('_')}", body) for body in bodies)
            continue
        if name.startswith("_"):
            continue
        decorators = {ast.unparse(d) for d in method.decorator_list}
        if decorators & {"staticmethod", "classmethod"}:
            bound = "classmethod" in decorators
            tests.extend((f"{prefix}_{name}", [f"assert {node.name}.{name}({args}) == None"])
                         for args in _calls(method, f"{node.name}.{name}", pools, bound=bound, most=most,
                                            owner=node.name))
        elif "property" in decorators:
            tests.extend((f"{prefix}_{name}", [f"obj = {maker}", f"assert obj.{name} == None"])
                         for maker in makers[:most])
        elif not _changes_the_call(method):
            calls = _calls(method, f"{node.name}.{name}", pools, bound=True, most=most, owner=node.name)
            # Each argument list on another object, and each object at least once.
            bodies = [[f"obj = {makers[number % len(makers)]}",
                       f"assert {_result(method, f'obj.{name}({calls[number % len(calls)]})')} == None"]
                      for number in range(max(len(calls), min(len(makers), most)))]
            tests.extend((f"{prefix}_{name}", body) for body in _alternate(bodies, filled.method_bodies(method)))
    return tests


_MAPPING_BASES = {"dict", "OrderedDict", "defaultdict", "UserDict", "MutableMapping", "Counter", "ChainMap"}
# Calls that change what they are called on (``self.items.append(x)``, ``heapq.heappush(self.heap, x)``).
_CHANGING_CALLS = {"append", "appendleft", "add", "update", "insert", "extend", "pop", "popleft", "popitem", "remove",
                   "discard", "clear", "setdefault", "move_to_end", "sort", "reverse", "heappush", "heappop",
                   "heapify", "heapreplace", "heappushpop", "insort"}
_FILL = 4  # items a mapping gets before the call: enough to pass a small maxsize


def _lineage(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> list[ast.ClassDef]:
    """``node`` and the bases of it that the module defines, nearest first."""
    lineage: list[ast.ClassDef] = []
    queue = [node]
    while queue:
        cls = queue.pop(0)
        if cls not in lineage:
            lineage.append(cls)
            queue.extend(classes[base] for base in _base_names(cls) if base in classes)
    return lineage


def _base_names(node: ast.ClassDef) -> list[str]:
    return [ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases]


class _Filled:
    """Test bodies that call a method on an object that calls before it have filled: a mapping (a class with
    ``__setitem__``, or a dict's subclass) gets items, other objects the calls of their methods that store
    into them (``add``, ``push``, ``set_x``), once and twice alike, and the first of those followed by each
    other one (``add(x); remove(x)``). A method reached only with items in the object (a cache's hit, an
    eviction, ``pop`` of a queue) or with one already there (a second ``add`` of a task) runs only so: Randoop
    and Pynguin build such sequences by search, here they are drawn in turn."""

    def __init__(self, cls: str, lineage: list[ast.ClassDef], makers: list[str], pools: _Pools, most: int):
        self.cls, self.most = cls, most
        methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for node in lineage:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    methods.setdefault(item.name, item)
        # The first object built with a small size (0 is the ints' first: a cache of maxsize 0 holds nothing).
        sized = replace(pools, kinds={**pools.kinds, "int": _unique(["3", *pools.kinds["int"]])})
        first = _calls(methods["__init__"], cls, sized, bound=True, most=1)[0] if "__init__" in methods else ""
        self.makers = _unique([f"{cls}({first})", *makers])
        self.mapping = "__setitem__" in methods or any(base in _MAPPING_BASES
                                                        for node in lineage for base in _base_names(node))
        keys = _unique(pools.named.get("key", []) + pools.kinds["str"])
        # Values of several kinds: a mapping may convert a dict or a list it is given (a nested mapping).
        values = _unique(pools.named.get("value", []) + [pools.kinds[kind][0]
                                                          for kind in ("int", "dict", "str", "list")])
        self.keys, self.values = keys[:_FILL], values
        # A method's key parameter gets a key the object holds.
        self.pools = replace(pools, named={**pools.named, "key": keys[:1] + pools.named.get("key", [])})
        setups: list[list[str]] = []
        if self.mapping:
            items = [f"obj[{key}] = {values[number % len(values)]}" for number, key in enumerate(self.keys)]
            setups += [items[:2], items]
        stores = [f"obj.{name}({_calls(method, f'{cls}.{name}', self.pools, bound=True, most=1, owner=cls)[0]})"
                  for name, method in methods.items()
                  if not name.startswith("_") and _is_plain_method(method) and _stores_into_self(method)]
        for call in stores:
            setups += [[call], [call, call]]
        # The first such call followed by each other one (``add(x); remove(x)``, then ``pop()``): what one
        # leaves behind for the other (a removed entry still in a heap) only such a sequence reaches.
        setups += [[stores[0], other] for other in stores[1:]]
        self.setups = setups

    def special_bodies(self, method: ast.FunctionDef | ast.AsyncFunctionDef) -> list[list[str]]:
        """Bodies that reach the special method ``method`` on a filled object: a mapping's item methods with
        a key it holds."""
        if not self.setups:
            return []
        key = self.keys[0]
        reaches = {"__getitem__": [f"assert obj[{key}] == None"], "__contains__": [f"assert ({key} in obj) == None"],
                   "__delitem__": [f"del obj[{key}]", "assert list(obj) == None"],
                   "__setitem__": [f"obj[{key}] = {self.values[-1]}", f"assert obj[{key}] == None"]}
        if method.name in _UNARY:
            last = [f"assert ({_UNARY[method.name]}) == None"]
        elif method.name in reaches and self.mapping:
            last = reaches[method.name]
        else:
            return []
        return self._bodies([last])

    def method_bodies(self, method: ast.FunctionDef | ast.AsyncFunctionDef) -> list[list[str]]:
        """Bodies that call the public method ``method`` on a filled object."""
        if not self.setups:
            return []
        calls = _calls(method, f"{self.cls}.{method.name}.filled", self.pools, bound=True, most=self.most,
                       owner=self.cls)
        return self._bodies([[f"assert {_result(method, f'obj.{method.name}({args})')} == None"] for args in calls])

    def _bodies(self, lasts: list[list[str]]) -> list[list[str]]:
        bodies: list[list[str]] = []
        for number in range(self.most):
            body = [f"obj = {self.makers[number % len(self.makers)]}", *self.setups[number % len(self.setups)],
                    *lasts[number % len(lasts)]]
            if body not in bodies:
                bodies.append(body)
        return bodies


def _is_plain_method(method: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A method called on an object by its signature: not static, a class method, a property or a context
    manager."""
    return not isinstance(method, ast.AsyncFunctionDef) and not _changes_the_call(method) \
        and bool(method.args.posonlyargs + method.args.args)


def _stores_into_self(method: ast.FunctionDef) -> bool:
    """Whether ``method`` changes its object: sets or deletes an attribute or item of it, or calls what
    changes one (``self.items.append(x)``, ``heapq.heappush(self._heap, x)``)."""
    me = (method.args.posonlyargs + method.args.args)[0].arg
    for node in ast.walk(method):
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            changed = [node.func.value] if isinstance(node.func, ast.Attribute) else []
            targets = changed + node.args[:1] if name in _CHANGING_CALLS else []
        else:
            continue
        if any(not isinstance(target, ast.Name) and _rooted_at(target, me) for target in targets):
            return True
    return False


def _rooted_at(node: ast.expr, name: str) -> bool:
    """Whether ``node`` is ``name`` or an attribute or item of it, at any depth."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return isinstance(node, ast.Name) and node.id == name


def _alternate(*lists: list) -> list:
    """The items of ``lists`` taken in turn, one from each."""
    return [item for group in zip_longest(*lists) for item in group if item is not None]


def _special_calls(method: ast.FunctionDef | ast.AsyncFunctionDef, makers: list[str], pools: _Pools,
                   most: int) -> list[list[str]]:
    """Up to ``most`` test bodies that make Python call the special method ``method`` (``__eq__`` by ``==``,
    ``__len__`` by ``len``...) on objects from ``makers``, each asserting a placeholder on what it gives;
    none for a special method no plain syntax reaches (``__init_subclass__``, descriptors, ``__aenter__``)."""
    name = method.name
    parameters = _positional(method, bound=True)
    if name in _NAMES_AN_ATTRIBUTE:  # an attribute's name, or a format spec
        operands = _unique((pools.named.get(parameters[0].arg, []) if parameters else []) + pools.kinds["str"])
    else:  # another object of the class first (``a == b``, ``a | b``), then values the parameter takes
        types = parameter_types(method, pools.imports).get(parameters[0].arg) if parameters else None
        taken = _values(parameters[0], None, pools, _POOL * max(1, most // CALLS_PER_TARGET), types=types) \
            if parameters else []
        operands = _alternate(makers, [value for value in taken if value not in makers])
    others = [_operand(value) for value in _unique(operands)]
    values = _values(parameters[1], None, pools, _POOL) if len(parameters) > 1 else []
    calls = _calls(method, f"{makers[0]}.{name}", pools, bound=True, most=most) if name == "__call__" else []
    bodies: list[list[str]] = []
    for number in range(most):
        maker = makers[number % len(makers)]
        other = others[number % len(others)] if others else None
        if name == "__hash__":
            # Equal objects hash equal: two objects built alike (a hash differs between interpreters).
            body = [f"obj = {maker}", f"assert hash(obj) == hash({maker})"]
        elif name == "__call__":
            body = [f"obj = {maker}", f"assert obj({calls[number % len(calls)]}) == None"]
        elif name in _UNARY:
            body = [f"obj = {maker}", f"assert ({_UNARY[name]}) == None"]
        elif name in _BINARY and other is not None:
            body = [f"obj = {maker}", f"assert ({_BINARY[name].format(other)}) == None"]
        elif name in _IN_PLACE and other is not None:
            body = [f"obj = {maker}", f"obj {_IN_PLACE[name]} {other}", "assert obj == None"]
        elif name in ("__setitem__", "__setattr__") and other is not None and values:
            value = values[number % len(values)]
            if name == "__setitem__":
                body = [f"obj = {maker}", f"obj[{other}] = {value}", f"assert obj[{other}] == None"]
            else:
                body = [f"obj = {maker}", f"setattr(obj, {other}, {value})", f"assert getattr(obj, {other}) == None"]
        elif name == "__delitem__" and other is not None:
            body = [f"obj = {maker}", f"del obj[{other}]", f"assert ({other} in obj) == None"]
        elif name == "__delattr__" and other is not None:
            body = [f"obj = {maker}", f"delattr(obj, {other})", f"assert hasattr(obj, {other}) == None"]
        else:
            return bodies
        if body not in bodies:
            bodies.append(body)
    return bodies


def _operand(source: str) -> str:
    """``source`` ready to stand beside an operator: in parentheses unless it is an atom."""
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return f"({source})"
    atoms = (ast.Constant, ast.Name, ast.Call, ast.List, ast.Dict, ast.Tuple, ast.Set, ast.Attribute, ast.Subscript)
    return source if isinstance(node, atoms) else f"({source})"


def _changes_the_call(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a decorator of ``function`` makes calling it by its signature pointless: a context manager, a
    fixture, an overload stub. Most decorators (``functools.wraps`` wrappers, caches, deprecation warnings)
    keep the call; a call one of them breaks raises TypeError and is dropped."""
    names = {ast.unparse(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1] for d in function.decorator_list}
    return bool(names & _CALL_CHANGING_DECORATORS)


def _calls(function: ast.FunctionDef | ast.AsyncFunctionDef, key: str, pools: _Pools,
           bound: bool, most: int, owner: str | None = None) -> list[str]:
    """Up to ``most`` distinct argument lists for ``function`` (as source, without parentheses): the first with
    each required parameter's most likely value, then in turn one that gives one optional parameter as well
    (each once, flags first; a ``**`` parameter's keys count as such, see :func:`_keyword_names`) and one drawn
    at random (seeded by ``key``), some with optional parameters given too."""
    arguments = function.args
    positional = _positional(function, bound)
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    width = _POOL * max(1, most // CALLS_PER_TARGET)  # more calls draw from more values
    types = parameter_types(function, pools.imports)
    options = [(a, d, _values(a, d, pools, width, owner, types.get(a.arg))) for a, d in zip(positional, defaults)]
    keyword_only = [(a, d, _values(a, d, pools, width, owner, types.get(a.arg)))
                    for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults)]
    first = [choices[0] for _, default, choices in options if default is None] \
        + [f"{arg.arg}={choices[0]}" for arg, default, choices in keyword_only if default is None]
    # A flag or an option usually picks a branch: each is given once, not left to the draws; flags first.
    optionals = sorted([(arg, default, choices) for arg, default, choices in options + keyword_only
                        if default is not None and arg not in arguments.posonlyargs],
                       key=lambda option: not _is_flag(option[1]))
    singles = [", ".join(first + [f"{arg.arg}={value}"]) for arg, default, choices in optionals
               for value in [next((c for c in choices if c != ast.unparse(default)), None)] if value is not None]
    # A ``**`` parameter: the keys the body reads from it, each given alone once and now and then in the draws.
    named_already = {a.arg for a in positional} | {a.arg for a in arguments.kwonlyargs}
    extras = [(name, _values(ast.arg(arg=name), None, pools, width)) for name in _keyword_names(function)
              if name not in named_already]
    singles += [", ".join(first + [f"{name}={choices[0]}"]) for name, choices in extras]
    rng = random.Random(zlib.crc32(key.encode()))
    drawn: list[str] = []
    for _ in range(most * 3):
        parts: list[str] = []
        optional = rng.random() < 0.5
        for arg, default, choices in options:
            if default is not None and not optional:
                break  # positional: the ones after an omitted one are omitted too
            parts.append(rng.choice(choices))
        if arguments.vararg is not None:
            parts.extend(rng.choice(_values(arguments.vararg, None, pools, width)) for _ in range(rng.randint(0, 2)))
        for arg, default, choices in keyword_only:
            if default is None or (optional and rng.random() < 0.5):
                parts.append(f"{arg.arg}={rng.choice(choices)}")
        parts.extend(f"{name}={rng.choice(choices)}" for name, choices in extras if rng.random() < 0.5)
        drawn.append(", ".join(parts))
        if len(_unique(drawn)) >= most:
            break
    return _unique([", ".join(first), *_alternate(singles, drawn)])[:most]


def _keyword_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """The keys ``function`` reads by name from its ``**`` parameter (``kw.get('size')``, ``kw.pop('size', 1)``,
    ``kw['size']``, ``'size' in kw``), else ``_KEYWORDS`` (one that passes them on, or stores them all); none
    without such a parameter."""
    if function.args.kwarg is None:
        return []
    kwarg = function.args.kwarg.arg
    names: list[str] = []
    for node in ast.walk(function):
        key = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("get", "pop", "setdefault") and _is_name(node.func.value, kwarg) \
                and node.args and isinstance(node.args[0], ast.Constant):
            key = node.args[0].value
        elif isinstance(node, ast.Subscript) and _is_name(node.value, kwarg) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)) \
                and isinstance(node.left, ast.Constant) and _is_name(node.comparators[0], kwarg):
            key = node.left.value
        if isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key):
            names.append(key)
    return _unique(names) or list(_KEYWORDS)


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_flag(default: ast.expr) -> bool:
    return isinstance(default, ast.Constant) and isinstance(default.value, bool)


def _values(arg: ast.arg, default: ast.expr | None, pools: _Pools, width: int,
            owner: str | None = None, types: ParameterTypes | None = None) -> list[str]:
    """The values worth passing to ``arg``, most likely first, from what its annotation, default and name say
    (``owner``: the class of the method, whose objects an ``other`` parameter takes) and what the function's
    body says (``types``): a value of each type it is checked against and one of none, one of each type
    with the attributes the body uses on it."""
    annotation = _annotation(arg)
    types = types or ParameterTypes()
    # A class the annotation names, or the parameter does (``cache``: a Cache, ``start_interval``: an Interval).
    objects = [cls for cls in pools.objects if re.search(rf"\b{cls}\b", annotation)
               or re.fullmatch(rf"(\w+_)?{cls.lower()}", arg.arg.lower())]
    if owner in pools.objects and arg.arg in _OTHER:
        objects.append(owner)
    objects += [name for name in types.checked if name in pools.objects]
    # What tests pass to a parameter of this name (in any function of the module) is what it takes.
    named = pools.named.get(arg.arg, [])[:width]
    values = [maker for cls in objects for maker in pools.objects[cls]] + named[:2]
    # By what each name is (``from datetime import date as day``: a date).
    lasts = [(name, _origin(name, pools.imports).rsplit(".", 1)[-1]) for name in types.checked + types.by_attributes]
    # One value of each type before any type's second: a few calls try every type.
    values += _alternate(*[pools.kinds[_CHECKED_KINDS[last]][:2] if last in _CHECKED_KINDS
                           else [call.format(name) for call in _CHECKED_CALLS.get(last, [])] for name, last in lasts])
    if types.checked:
        checked_kinds = {_CHECKED_KINDS.get(last) for _, last in lasts[:len(types.checked)]}
        values.append(next((value for kind, value in _CONTRASTS if kind not in checked_kinds), "None"))
    values += named
    for kind in _kinds(arg, default, annotation):
        values.extend(pools.kinds[kind][:width])
    return _unique(values)[: width * 2]


@dataclass(frozen=True)
class ParameterTypes:
    """What a function's body says one of its parameters takes, as a test spells the types."""

    checked: tuple[str, ...] = ()  # the types it checks the parameter against, as written
    by_attributes: tuple[str, ...] = ()  # common types with every public attribute it uses on the parameter


def parameter_types(function: ast.FunctionDef | ast.AsyncFunctionDef,
                    imports: dict[str, str] | None = None) -> dict[str, ParameterTypes]:
    """Per parameter of ``function``, the types its body says it takes: those it checks it against, as
    written (``isinstance(p, T)``, ``isinstance(p, (T, U))``, ``type(p) is T``, ``type(p) in (T, U)``), and,
    unless one of those has them, the few common types that have every public attribute the body uses on it
    where no check of its type holds (``p.year`` and ``p.replace``: a date or a datetime), spelled through
    ``imports``, the module's imported names and what each is: ``{'date': 'datetime.date'}``."""
    parameters = {a.arg for a in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]}
    parameters -= {"self", "cls"}  # the object itself
    checked: dict[str, list[str]] = {}
    narrowed: set[tuple[int, str]] = set()  # (node, parameter): where a check of its type holds
    for node in ast.walk(function):
        check = _type_check(node)
        if check is not None and check[0] in parameters:
            checked.setdefault(check[0], []).extend(check[1])
        # Where the check holds: an ``if``'s or a conditional expression's body, the rest of an ``and``.
        if isinstance(node, (ast.If, ast.IfExp)) and _type_check(node.test) is not None:
            places = node.body if isinstance(node, ast.If) else [node.body]
            narrowed.update((id(inner), _type_check(node.test)[0]) for place in places for inner in ast.walk(place))
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            for number, value in enumerate(node.values):
                if _type_check(value) is not None:
                    narrowed.update((id(inner), _type_check(value)[0]) for rest in node.values[number + 1:]
                                    for inner in ast.walk(rest))
    used: dict[str, set[str]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in parameters \
                and not node.attr.startswith("_") and (id(node), node.value.id) not in narrowed:
            used.setdefault(node.value.id, set()).add(node.attr)
    publics = dict(_DUCK_TYPES)
    by_attributes: dict[str, list[str]] = {}
    for name, attributes in used.items():
        having = [dotted for dotted, public in _DUCK_TYPES if attributes <= public]
        origins = {_origin(check, imports or {}) for check in checked.get(name, [])}
        if any(attributes <= publics.get(origin, frozenset()) for origin in origins):
            continue  # a type it is checked against has them
        if len(having) <= _MOST_DUCK_TYPES:  # more say little (``p.real``: any number)
            spelled = [_spelling(dotted, imports or {}) for dotted in having]
            by_attributes[name] = [text for text in spelled if text]
    return {name: ParameterTypes(tuple(_unique(checked.get(name, []))), tuple(_unique(by_attributes.get(name, []))))
            for name in checked.keys() | by_attributes.keys() if checked.get(name) or by_attributes.get(name)}


def _type_check(node: ast.AST) -> tuple[str, list[str]] | None:
    """(name, the types as written) when ``node`` checks a name's type: ``isinstance(name, T)``,
    ``isinstance(name, (T, U))``, ``type(name) is T``, ``type(name) in (T, U)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance" \
            and len(node.args) == 2:
        subject, types = node.args
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 \
            and isinstance(node.ops[0], (ast.Is, ast.IsNot, ast.Eq, ast.NotEq, ast.In, ast.NotIn)) \
            and isinstance(node.left, ast.Call) and isinstance(node.left.func, ast.Name) \
            and node.left.func.id == "type" and len(node.left.args) == 1:
        subject, types = node.left.args[0], node.comparators[0]
    else:
        return None
    if not isinstance(subject, ast.Name):
        return None
    elements = types.elts if isinstance(types, (ast.Tuple, ast.List, ast.Set)) else [types]
    return subject.id, [ast.unparse(t) for t in elements if isinstance(t, (ast.Name, ast.Attribute))]


def module_imports(tree: ast.Module) -> dict[str, str]:
    """The names a module's top-level imports bind, and what each is (``from datetime import date as d``:
    ``{'d': 'datetime.date'}``; ``import os.path``: ``{'os': 'os'}``)."""
    bound: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                bound[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            bound.update((alias.asname or alias.name, f"{node.module}.{alias.name}") for alias in node.names)
    return bound


def _origin(name: str, imports: dict[str, str]) -> str:
    """What the (dotted) ``name`` the module writes is, through its imports."""
    head, _, rest = name.partition(".")
    return imports.get(head, head) + (f".{rest}" if rest else "")


def _spelling(dotted: str, imports: dict[str, str]) -> str | None:
    """How a test names the type ``dotted`` so that its imports (the module's, else a standard library
    module's) find it: through a name the module imports, else in full; None where the module binds the
    full name's first part to something else (``from datetime import datetime``, for ``datetime.date``)."""
    if "." not in dotted:
        return dotted  # a builtin
    for name, origin in imports.items():
        if origin == dotted:
            return name
        if dotted.startswith(origin + "."):
            return name + dotted[len(origin):]
    return None if dotted.split(".")[0] in imports else dotted


def _annotation(arg: ast.arg) -> str:
    return ast.unparse(arg.annotation) if arg.annotation is not None else ""


def _kinds(arg: ast.arg, default: ast.expr | None, annotation: str) -> list[str]:
    """The kinds of value (keys of ``_BASICS``) ``arg`` takes, most likely first, from what its annotation
    (unparsed), default and name say; every common kind when they say nothing."""
    kinds: list[str] = []
    if annotation:
        text = annotation.lower()
        # In the order the annotation names them: both of a union (``int | float``, ``NumberOrString``).
        named = _unique([kind for _, kind in sorted((text.index(word), kind) for word, kind in _ANNOTATIONS
                                                    if word in text)])
        kinds += named[:1] if named[:1] and named[0] in _CONTAINERS else named[:2]
        if "optional" in text or "none" in text:
            kinds.append("none")
    if isinstance(default, ast.Constant) and default.value is not None:
        kinds.append({bool: "bool", int: "int", float: "float", str: "str", bytes: "bytes"}.get(
            type(default.value), "none"))
    elif isinstance(default, (ast.List, ast.Dict, ast.Tuple, ast.Set)):
        kinds.append({ast.List: "list", ast.Dict: "dict", ast.Tuple: "tuple", ast.Set: "set"}[type(default)])
    name = arg.arg.lower()
    kinds += [kind for kind, names in _NAMES.items() if name in names or name.rstrip("s") in names]
    if not kinds and name.endswith(_STRING_SUFFIXES):
        kinds.append("str")
    if name.startswith(_UNBOUND_PREFIXES):
        kinds.append("bool")
    return _unique(kinds or _ANY)


def _returned_function(function: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.FunctionDef | None:
    """The function defined in ``function``'s body that it returns (a closure, a decorator a decorator
    factory makes), if it returns one by name."""
    nested = {item.name: item for item in function.body if isinstance(item, ast.FunctionDef)}
    for node in ast.walk(function):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Name) and node.value.id in nested:
            return nested[node.value.id]
    return None


def _made_calls(name: str, calls: list[str], inner: ast.FunctionDef, pools: _Pools, most: int) -> list[list[str]]:
    """Up to ``most`` test bodies that call what ``name(...)`` returns (the function ``inner``), whose lines
    a call of ``name`` alone never runs. A decorator (its one parameter takes a callable) is applied to a
    function that is then called three times, twice alike: a cache or a counter takes another branch on
    the second call."""
    parameters = _positional(inner, bound=False)
    decorates = len(parameters) == 1 and "callable" in _kinds(parameters[0], None, _annotation(parameters[0]))
    if decorates:
        functions = pools.kinds["callable"]
        arguments = _unique(pools.kinds["int"][:2] + pools.kinds["str"][:2])
    else:
        inner_calls = _calls(inner, f"{name}.{inner.name}", pools, bound=False, most=most)
    bodies: list[list[str]] = []
    for number in range(most):
        made = f"{name}({calls[number % len(calls)]})"
        if decorates:
            first, second = arguments[number % len(arguments)], arguments[(number + 1) % len(arguments)]
            body = [f"wrapped = {made}({functions[number % len(functions)]})",
                    f"assert [wrapped({first}), wrapped({first}), wrapped({second})] == None"]
        else:
            body = [f"made = {made}",
                    f"assert {_result(inner, f'made({inner_calls[number % len(inner_calls)]})')} == None"]
        if body not in bodies:
            bodies.append(body)
    return bodies


def _result(function: ast.FunctionDef | ast.AsyncFunctionDef, call: str) -> str:
    """The expression a test asserts on: a generator function's values as a list, else the call itself."""
    yields = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(function))
    return f"list({call})" if yields else call


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
