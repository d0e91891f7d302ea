"""Exploration: calls built from signatures, kept by the engine only when they pass and add coverage."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from pytest_utgen.config import load_config
from pytest_utgen.engine import Engine, SandboxSpeed
from pytest_utgen.explore import (CALLS_PER_TARGET, MAX_TESTS, PREFIX, argument_values, constructions, explore,
                                  ParameterTypes, module_imports, parameter_types)
from pytest_utgen.regex_examples import EXAMPLES_PER_PATTERN, regex_examples
from pytest_utgen.testfile import TestFile, body_key

MODULE = '''
def scale(values: list, factor: int = 2):
    return [v * factor for v in values]


def greet(name):
    if not name:
        raise ValueError("no name")
    return "hello " + name


def _private(x):
    return x


def countdown(n):
    yield from range(n, 0, -1)


class Account:
    def __init__(self, owner, balance=0):
        self.owner = owner
        self.balance = balance

    def deposit(self, amount: int):
        if amount <= 0:
            raise ValueError("positive only")
        self.balance += amount
        return self.balance

    @property
    def rich(self):
        return self.balance > 100

    @classmethod
    def empty(cls, owner: str):
        return cls(owner)
'''

EVERYTHING = frozenset({"scale", "greet", "_private", "countdown", "Account.__init__", "Account.deposit",
                        "Account.rich", "Account.empty"})


def _tests(file: TestFile) -> dict[str, str]:
    return {name: ast.unparse(node) for name, node in file.unit_nodes.items()}


def test_each_wanted_public_callable_gets_calls_asserted_against_a_placeholder():
    file = explore(MODULE, EVERYTHING)
    tests = _tests(file)
    assert all(name.startswith(PREFIX) for name in tests)
    assert all(text.splitlines()[-1].strip().endswith("== None") for text in tests.values())
    called = {name[len(PREFIX):].rsplit("_", 1)[0] for name in tests}
    assert called == {"scale", "greet", "countdown", "account_init", "account_deposit", "account_rich",
                      "account_empty"}  # never the private helper
    assert sum(name.startswith(PREFIX + "greet_") for name in tests) == CALLS_PER_TARGET
    assert "assert list(countdown(" in tests[PREFIX + "countdown_1"]  # a generator's values, not the object
    assert "assert vars(Account(" in tests[PREFIX + "account_init_1"]
    assert "assert obj.rich == None" in tests[PREFIX + "account_rich_1"]
    assert tests[PREFIX + "account_empty_1"].startswith(f"def {PREFIX}account_empty_1():\n    assert Account.empty(")


def test_arguments_follow_annotations_defaults_and_names_and_the_values_given_first():
    file = explore(MODULE, frozenset({"scale", "greet", "Account.deposit"}), values={str: ["ada"], int: [7]})
    tests = _tests(file)
    first_scale = tests[PREFIX + "scale_1"]
    assert "scale([1, 2, 3])" in first_scale  # annotated list; the optional factor left out at first
    assert "greet('ada')" in tests[PREFIX + "greet_1"]  # a name, and the string the tests pass first
    assert "obj.deposit(7)" in tests[PREFIX + "account_deposit_1"]  # annotated int, the given int first
    assert explore(MODULE, frozenset({"scale"})).source == explore(MODULE, frozenset({"scale"})).source
    assert explore(MODULE, frozenset()) is None


def test_a_union_annotation_gives_both_its_kinds_and_a_float_takes_the_values_a_float_check_tells_apart():
    module = ("def show(value: 'NumberOrString', *, digits: int | float = 2, f: Callable[[str], int] = str):\n"
              "    return value\n")
    calls = [ast.parse(body).body[0].body[0].test.left for body in
             _tests(explore(module, frozenset({"show"}), calls_per_target=40)).values()]
    values = {ast.unparse(call.args[0]) for call in calls}
    assert {"0.0", "float('inf')", "float('nan')", "'abc'"} <= values  # a number, or a string
    assert not values & {"0", "[1, 2, 3]"}  # neither an int nor a list: the annotation says which kinds
    given = {(k.arg, ast.unparse(k.value)) for call in calls for k in call.keywords}
    digits = {value for name, value in given if name == "digits"}
    assert digits & {"0", "1"} and digits & {"1.5", "0.0"}
    callables = {value for name, value in given if name == "f"}
    assert callables and not callables & {"'abc'", "0"}  # a callable, not the str it takes


def test_a_limit_takes_every_target_s_first_call_before_any_target_s_second():
    every = _tests(explore(MODULE, EVERYTHING))
    limited = _tests(explore(MODULE, EVERYTHING, limit=7))
    # Seven targets, seven calls: one each (without the turn, the first two targets would take all seven).
    assert {name.rsplit("_", 1)[0] for name in limited} == {name.rsplit("_", 1)[0] for name in every}
    assert all(name.endswith("_1") for name in limited)
    assert list(limited) == [name for name in every if name in limited]  # in the module's order
    assert set(_tests(explore(MODULE, EVERYTHING, limit=9))) - set(limited) == {
        PREFIX + "scale_2", PREFIX + "greet_2"}


def test_more_calls_per_target_begin_with_the_same_calls():
    four = _tests(explore(MODULE, frozenset({"greet", "Account.deposit"})))
    more = _tests(explore(MODULE, frozenset({"greet", "Account.deposit"}), calls_per_target=8))
    # deposit is called on new objects, and as often on ones that deposit filled (it stores into its object).
    assert len(four) == 3 * CALLS_PER_TARGET and len(more) > len(four)
    # Each target's first call has every parameter's likeliest value, however many calls follow it.
    assert more[PREFIX + "greet_1"] == four[PREFIX + "greet_1"]


def test_calls_tried_before_are_left_out_before_the_limit():
    first = explore(MODULE, EVERYTHING, limit=7)
    tried = frozenset(body_key(node) for node in first.unit_nodes.values())
    again = explore(MODULE, EVERYTHING, limit=7, tried=tried)
    bodies = {body_key(node) for node in again.unit_nodes.values()}
    assert len(bodies) == 7 and not bodies & tried  # each target's second call now
    assert {name.rsplit("_", 1)[0] for name in again.units} == {name.rsplit("_", 1)[0] for name in first.units}
    every = explore(MODULE, EVERYTHING)
    assert explore(MODULE, EVERYTHING, tried=frozenset(body_key(n) for n in every.unit_nodes.values())) is None


def test_methods_run_on_objects_the_kept_tests_build():
    kept = "from bank import Account\n\n\ndef test_a():\n    a = Account('ada', 50)\n    b = Account(owner, 1)\n"
    built = constructions([kept], {"Account"})
    assert built == {"Account": ["Account('ada', 50)"]}  # a call with a name in it is no literal construction
    tests = _tests(explore(MODULE, frozenset({"Account.deposit"}), built=built))
    assert "obj = Account('ada', 50)" in tests[PREFIX + "account_deposit_1"]


def test_what_tests_pass_to_a_parameter_is_tried_first_for_every_parameter_of_that_name():
    module = MODULE + (
        "\n\ndef shout(name, times=1):\n    return greet(name).upper() * times\n"
        "\n\nclass Shop:\n    def __init__(self, owner, name):\n        self.owner = owner\n"
        "\n    def rename(self, name, *, loud=False):\n        return shout(name) if loud else greet(name)\n")
    kept = ("import bank\n\n\ndef test_doc():\n    assert bank.greet('Ada Lovelace') == 'hello Ada Lovelace'\n"
            "    assert Shop('Bob', name='Corner').rename('Deli', loud=True) == 'HELLO DELI'\n"
            "    assert greet(some_name) == x\n")
    named = argument_values(module, [kept, "def broken(:\n"])
    # Positional and keyword arguments, a method's bound first parameter left out; a name is no literal.
    assert named.keys() == {"name", "owner", "loud"} and named["name"][0] == "'Ada Lovelace'"
    assert sorted(named["name"]) == ["'Ada Lovelace'", "'Corner'", "'Deli'"] and named["loud"] == ["True"]
    tests = _tests(explore(module, frozenset({"shout", "Shop.rename"}), named=named))
    assert "shout('Ada Lovelace')" in tests[PREFIX + "shout_1"]  # untyped name: the tests' string, not 'abc'
    assert "obj.rename('Ada Lovelace')" in tests[PREFIX + "shop_rename_1"]
    assert "obj = Shop('Bob', 'Ada Lovelace')" in tests[PREFIX + "shop_rename_1"]
    assert "shout('abc')" in _tests(explore(module, frozenset({"shout"})))[PREFIX + "shout_1"]


def _bank_project(tmp_path, **settings):
    project = tmp_path / "proj"
    (project / "src" / "bank").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'bank'\n\n[tool.pytest.ini_options]\npythonpath = ['src']\n")
    (project / "src" / "bank" / "__init__.py").write_text(MODULE)
    return project, load_config(project, {"endpoint": "http://127.0.0.1:9/v1", "max_calls": 0, "reruns": 1,
                                          "paths": [str(project / "src" / "bank")], **settings})


def test_the_engine_keeps_only_calls_that_pass_and_add_coverage_with_no_model(tmp_path):
    project, config = _bank_project(tmp_path)
    module = Engine(config, select_all=True).run().modules[0]
    assert module.model_calls == 0  # the endpoint is never reached (nothing listens there)
    assert module.tests_explored >= 4 and module.line_after > 60
    kept = (project / "tests" / "utgen" / "test_bank.py").read_text()
    assert "# utgen: observed" in kept and "== None" not in kept.replace("is None", "")
    assert "with pytest.raises(ValueError, match=r'^no name$'):  # utgen: observed" in kept  # greet('') raises
    assert "TypeError" not in kept  # a call with wrong arguments says nothing about the code: dropped
    rerun = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(project / "tests" / "utgen")], cwd=project, capture_output=True, text=True)
    assert rerun.returncode == 0, kept + rerun.stdout[-2000:]


CODES = '''
def kind(n: int):
    if n == 0:
        return "zero"
    if n == 1:
        return "one"
    if n == -1:
        return "minus one"
    if n == 2:
        return "two"
    if n == 10:
        return "ten"
    return "other"
'''


def test_seconds_no_model_call_fits_in_go_to_more_calls_per_target(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'codes'\n")
    (project / "codes.py").write_text(CODES)
    config = load_config(project, {"endpoint": "http://127.0.0.1:9/v1", "max_calls": 0, "reruns": 1,
                                   "amplify": False, "mutation": False, "budget_s": 60, "target_coverage": 100,
                                   "paths": [str(project / "codes.py")]})
    module = Engine(config, select_all=True).run().modules[0]
    # Four calls at first, a fifth with the values they pass (1, 0, 10 before the module's neighbours of
    # its constants); the seconds left explore further, with more of the values.
    assert module.model_calls == 0 and module.tests_explored > CALLS_PER_TARGET + 1
    kept = (project / "tests" / "utgen" / "test_codes.py").read_text()
    assert "kind(2) == 'two'" in kept and module.line_after == 100 and module.seconds < config.budget_s


THERMO = '''
class Reading:
    def __init__(self, spec):
        if not spec.endswith("C"):
            raise ValueError(spec)
        self.celsius = int(spec[:-1])

    def above(self, limit: int):
        if self.celsius > limit:
            return True
        return False
'''

THERMO_REPLY = """```python
from thermo import Reading


def test_reading():
    assert Reading("20C").celsius == 20
```"""


def test_after_the_target_pass_methods_are_explored_on_the_objects_the_model_s_tests_build(tmp_path,
                                                                                         scripted_model):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'thermo'\n")
    (project / "thermo.py").write_text(THERMO)
    server = scripted_model(lambda messages: THERMO_REPLY)
    config = load_config(project, {"endpoint": server.url, "max_calls": 1, "reruns": 1, "amplify": False,
                                   "mutation": False, "paths": [str(project / "thermo.py")]})
    module = Engine(config, select_all=True).run().modules[0]
    # No signature-built string ends in "C": before the model's test nothing builds a Reading, nor calls above().
    assert module.model_calls == 1 and module.tests_explored >= 1
    kept = (project / "tests" / "utgen" / "test_thermo.py").read_text()
    assert "obj = Reading('20C')" in kept and "obj.above(" in kept
    assert module.line_after > 85  # all but ``return False``: 20 is above every int tried


def test_exploration_makes_only_the_calls_that_fit_in_its_share_of_the_budget(tmp_path):
    _, config = _bank_project(tmp_path, budget_s=15)
    engine = Engine(config, select_all=True)
    # Before the first model call, exploration has 30 % of what the final checks (5 s at first) and the last
    # amplification (15 %) leave: under 3 s, about what a child run's start takes. The seconds left after the
    # model's turn (none here: max_calls 0) go to exploration too, within what the final checks leave.
    module = engine.run().modules[0]
    # Each step is sized to the seconds it has, at the speeds measured so far: the budget holds to within a
    # step's misestimate (about 1 s of 15 here, more on a loaded machine).
    assert module.seconds < 1.2 * config.budget_s and module.final_seconds > 0
    assert engine.call_speed.tests_fitting(0.8, MAX_TESTS) == 0


def test_the_sandbox_speed_fits_the_tests_a_run_can_hold_in_the_seconds_left():
    speed = SandboxSpeed(start=2.0, per_test=0.5)
    assert speed.tests_fitting(7.0, 150) == 10 and speed.tests_fitting(100.0, 150) == 150
    assert speed.tests_fitting(1.0, 150) == 0
    speed.update(40, 12.0)  # a run of 40 tests took 12 s: 0.25 s each after the start
    assert speed.per_test == 0.25 and speed.tests_fitting(7.0, 150) == 20
    # A short run (1 s: less than the start it is expected to take) counts for its 5 tests, not for all: the
    # 40 before weigh half, 20 tests for 5 s, and the cost per test goes from 0.25 to 0.2, not to the floor.
    speed.update(5, 1.0)
    assert speed.per_test == 0.2


PARSER = r'''import re

VERSION = re.compile(r"^v?(?P<major>\d+)\.(?P<minor>\d+)(?:-(?P<tag>[a-z]+))?$", re.I)
DATE = re.compile(r"(\d{4})-(\d{2})(?!-)")


def parse_version(version_string):
    match = VERSION.match(version_string)
    if not match:
        raise ValueError(version_string)
    if match.group("tag"):
        return int(match.group("major")), match.group("tag")
    return int(match.group("major")), None


def shout(text):
    return re.sub(r"\s+", " ", text) if re.fullmatch(PATTERN, text) else text
'''


def test_strings_are_written_from_the_module_s_patterns_and_each_matches_its_pattern_in_full():
    examples = regex_examples(PARSER)
    assert examples == regex_examples(PARSER)  # seeded: the same source gives the same strings
    version = [e for e in examples if re.fullmatch(r"v?\d+\.\d+(-[a-z]+)?", e, re.I)]
    date = [e for e in examples if re.fullmatch(r"\d{4}-\d{2}", e)]
    assert version and date and len(version) + len(date) == len(examples) <= 2 * EXAMPLES_PER_PATTERN
    assert any("-" in e for e in version)  # the longest first: the optional tag is taken
    # A pattern that is not a literal (PATTERN), or that re.sub gets (a replacement, not an input), is skipped;
    # a pattern that does not compile is too.
    assert regex_examples("import re\nre.compile('(unclosed')\n") == []
    # Nested unbounded repeats backtrack exponentially on a string they do not match: never run in this process.
    assert regex_examples("import re\nre.compile(r'^(a+)+$')\nre.compile(r'(x|y*)*z')\n") == []
    assert regex_examples("import re\nre.compile(r'^(ab){2}c+$')\n")  # a bounded outer repeat is fine


def test_a_pattern_that_backtracks_for_hours_costs_the_child_s_time_limit_and_gives_no_strings():
    import time

    # 2**40 ways to match 40 a's, each tried before the lookahead that never matches fails the string.
    source = "import re\nre.compile(r'(?:a|a){40}(?!)')\nre.compile(r'[0-9]{3}')\n"
    started = time.perf_counter()
    assert regex_examples(source, timeout=2.0) == []
    assert time.perf_counter() - started < 10
    assert regex_examples("import re\nre.compile(r'[0-9]{3}')\n", timeout=2.0)


def test_the_calls_of_a_string_parameter_try_the_module_s_pattern_strings_first():
    calls = explore(PARSER, frozenset({"parse_version"}), pattern_strings=regex_examples(PARSER)).source
    first = re.search(r"parse_version\((.*)\) == None", calls).group(1)
    assert re.fullmatch(r"v?\d+\.\d+(-[a-z]+)?", eval(first), re.I)  # a name ending in "string" takes a str


def test_decorated_functions_are_called_unless_the_decorator_changes_the_call():
    module = ("import contextlib\nimport functools\n\n\ndef deprecated(f):\n    @functools.wraps(f)\n"
              "    def wrapper(*a, **k):\n        return f(*a, **k)\n    return wrapper\n\n\n"
              "@deprecated\ndef bump(version: str):\n    return version + '.1'\n\n\n"
              "@functools.lru_cache(maxsize=None)\ndef square(n):\n    return n * n\n\n\n"
              "@contextlib.contextmanager\ndef opened(path):\n    yield path\n")
    calls = explore(module, frozenset({"bump", "square", "opened"})).source
    assert "bump('" in calls and "square(" in calls and "opened(" not in calls


SPECIAL = '''
class Path:
    """A path of keys, with operators."""

    def __init__(self, *keys):
        self.keys = keys

    def __repr__(self):
        return "Path" + repr(self.keys)

    def __eq__(self, other):
        return isinstance(other, Path) and self.keys == other.keys

    def __hash__(self):
        return hash(self.keys)

    def __len__(self):
        return len(self.keys)

    def __truediv__(self, key):
        return Path(*self.keys, key)

    def __contains__(self, key):
        return key in self.keys

    def __getattr__(self, name):
        return Path(*self.keys, name)

    def __invert__(self):
        return Path(*reversed(self.keys))

    def __call__(self, document, default=None):
        for key in self.keys:
            document = document.get(key, default) if isinstance(document, dict) else default
        return document

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
'''


def test_special_methods_are_called_through_the_syntax_that_calls_them():
    specials = ["__repr__", "__eq__", "__hash__", "__len__", "__truediv__", "__contains__", "__getattr__",
                "__invert__", "__call__", "__init_subclass__"]
    file = explore(SPECIAL, frozenset(f"Path.{name}" for name in specials))
    tests = _tests(file)
    bodies = "\n".join(tests.values())
    for expression in ["repr(obj)", "obj == Path(", "hash(obj) == hash(Path(", "len(obj)", "obj / ", " in obj",
                       "getattr(obj, '", "~obj", "obj("]:
        assert expression in bodies, expression
    assert not any("init_subclass" in name for name in tests)  # no syntax calls it on its own
    # Every call reaches the method it is for: run each test with the class, recording the methods called.
    called: set[str] = set()
    namespace: dict = {}
    exec(SPECIAL, namespace)
    for name in specials:
        method = getattr(namespace["Path"], name)

        def spy(*args, __method=method, __name=name, **kwargs):
            called.add(__name)
            return __method(*args, **kwargs)

        setattr(namespace["Path"], name, classmethod(spy) if name == "__init_subclass__" else spy)
    exec(file.source, namespace)
    for unit in file.units:
        try:
            namespace[unit]()
        except Exception:  # noqa: BLE001 - the placeholder, or a raise: the oracle adopts either
            pass
    assert called == set(specials) - {"__init_subclass__"}


def test_binary_special_methods_take_other_objects_and_values_of_their_parameter():
    tests = _tests(explore(SPECIAL, frozenset({"Path.__eq__", "Path.__getattr__"}),
                           built={"Path": ["Path('a', 'b')"]}, named={"name": ["'keys'"]}))
    eq = [body for name, body in tests.items() if "path_eq" in name]
    assert any("obj == Path('a', 'b')" in body for body in eq)  # an object of the class
    assert any(re.search(r"obj == (None|0|'abc'|\[)", body) for body in eq)  # a value: here one not a Path
    getattr_calls = [body for name, body in tests.items() if "path_getattr" in name]
    assert "getattr(obj, 'keys')" in getattr_calls[0]  # an attribute name: the tests' value for `name` first
    assert all("getattr(obj, Path" not in body for body in getattr_calls)


def test_what_a_kept_test_asserts_is_an_instance_of_a_class_builds_one():
    kept = ("def test_a():\n    obj = Query()\n    assert isinstance(getattr(obj, 'name'), Query)  # utgen: observed\n"
            "\n\ndef test_b():\n    assert isinstance(where('a') == 1, QueryInstance)\n"
            "\n\ndef test_c(tmp_path):\n    assert isinstance(load(tmp_path), Query)\n"  # a fixture: no expression
            "    assert isinstance((lambda: Query())(), Query)\n")
    built = constructions([kept], {"Query", "QueryInstance"}, frozenset({"where"}))
    # The literal construction and the asserted instance in turn; the test's variable put in.
    assert built == {"Query": ["Query()", "getattr(Query(), 'name')"], "QueryInstance": ["where('a') == 1"]}
    module = ("class Query:\n    def __init__(self, path=()):\n        self.path = path\n\n"
              "    def __getattr__(self, name):\n        return Query(self.path + (name,))\n\n"
              "    def exists(self):\n        if not self.path:\n            raise ValueError('no path')\n"
              "        return self.path\n")
    tests = _tests(explore(module, frozenset({"Query.exists"}), built=built))
    assert any("obj = getattr(Query(), 'name')" in body for body in tests.values())


def test_a_parameter_for_another_object_of_a_class_gets_the_objects_the_kept_tests_build():
    module = ("class Span:\n    def __init__(self, begin, end):\n        self.begin, self.end = begin, end\n\n"
              "    def overlaps(self, other):\n        return self.begin < other.end and other.begin < self.end\n\n"
              "    def merge(self, span: 'Span', strict=False):\n        return Span(min(self.begin, span.begin), 0)\n\n"
              "\ndef gap(first: Span, second: Span) -> int:\n    return second.begin - first.end\n")
    built = {"Span": ["Span(1, 4)", "Span(3, 9)"]}
    tests = _tests(explore(module, frozenset({"Span.overlaps", "Span.merge", "gap"}), built=built))
    assert "obj.overlaps(Span(1, 4))" in tests[PREFIX + "span_overlaps_1"]  # `other`: of the method's class
    assert "obj.merge(Span(1, 4))" in tests[PREFIX + "span_merge_1"]  # annotated with the class
    assert "gap(Span(1, 4), Span(1, 4))" in tests[PREFIX + "gap_1"]
    assert any("Span(3, 9)" in body.split("\n", 1)[-1] for name, body in tests.items() if "overlaps" in name)


def test_a_parameter_named_after_a_class_gets_an_object_of_it_built_from_its_signature_before_any_test():
    module = ("class Cache:\n    def __init__(self, maxsize: int):\n        self.maxsize = maxsize\n\n"
              "\ndef resize(cache, by: int):\n    return Cache(cache.maxsize + by)\n\n"
              "\ndef shrink(parent_cache, by: int):\n    return Cache(parent_cache.maxsize - by)\n")
    tests = _tests(explore(module, frozenset({"resize", "shrink"})))
    # No kept test builds one: the first argument list its __init__'s signature gives (an int for maxsize).
    assert "resize(Cache(0), 0)" in tests[PREFIX + "resize_1"]
    assert "shrink(Cache(0), 0)" in tests[PREFIX + "shrink_1"]  # the name ends in the class's
    # With kept tests that build one, theirs come first.
    tests = _tests(explore(module, frozenset({"resize"}), built={"Cache": ["Cache(8)"]}))
    assert "resize(Cache(8), 0)" in tests[PREFIX + "resize_1"]


CLOSURES = '''
def make_adder(n: int):
    def add(x: int):
        return x + n
    return add


def memoize(size: int):
    def decorator(func):
        seen = {}
        def wrapper(x):
            if x in seen:
                return seen[x]
            seen[x] = result = func(x)
            return result
        return wrapper
    return decorator
'''


def test_what_a_function_returns_is_called_a_decorator_on_a_function_called_twice_alike(tmp_path):
    tests = _tests(explore(CLOSURES, frozenset({"make_adder", "memoize"}), calls_per_target=2))
    made = [body for name, body in tests.items() if name.startswith(PREFIX + "make_adder_made")]
    assert made and all(re.search(r"made = make_adder\(-?\d+\)\n +assert made\(-?\d+\) == None", b) for b in made)
    wrapped = [body for name, body in tests.items() if name.startswith(PREFIX + "memoize_made")]
    assert wrapped
    for body in wrapped:
        first, again, other = re.search(r"assert \[wrapped\((.+)\), wrapped\((.+)\), wrapped\((.+)\)\] == None",
                                        body).groups()
        assert first == again != other  # the second call with the first's argument: the cached branch
    # Run, each call of what the factories made gives a value (the decorated function's, cached or not).
    module = tmp_path / "closures.py"
    module.write_text(CLOSURES)
    test = tmp_path / "test_closures.py"
    test.write_text("from closures import *\n\n\n" + "\n\n\n".join(
        body.replace(" == None", " is not None") for name, body in tests.items() if "_made" in name) + "\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


STATEFUL = '''
import heapq


class BoundedCache:
    def __init__(self, maxsize):
        self.maxsize = maxsize
        self.data = {}

    def __setitem__(self, key, value):
        if key in self.data:
            self.data[key] = value
            return
        if len(self.data) >= self.maxsize:
            del self.data[next(iter(self.data))]
        self.data[key] = value

    def __getitem__(self, key):
        if key not in self.data:
            raise KeyError(key)
        return self.data[key]


class CountingCache(BoundedCache):
    def hits(self, key):
        return key in self.data


class TaskQueue:
    def __init__(self):
        self.heap = []
        self.seen = set()
        self.removed = set()

    def add(self, task, priority=0):
        if task in self.seen:
            return False
        self.seen.add(task)
        heapq.heappush(self.heap, (priority, task))
        return True

    def remove(self, task):
        self.seen.discard(task)
        self.removed.add(task)

    def pop(self):
        while self.heap:
            priority, task = heapq.heappop(self.heap)
            if task in self.removed:
                self.removed.discard(task)
                continue
            self.seen.discard(task)
            return task
        raise IndexError("empty")
'''


def test_methods_are_called_on_objects_that_calls_before_them_filled():
    wanted = frozenset({"BoundedCache.__getitem__", "CountingCache.hits", "TaskQueue.add", "TaskQueue.pop"})
    tests = {name: "\n".join(line.strip() for line in text.splitlines()[1:])
             for name, text in _tests(explore(STATEFUL, wanted)).items()}
    # A mapping (its own __setitem__, or a base's in the module) gets items first, read back with a key it holds;
    # the first filled object is built small, so that more items than it holds are set.
    getitem = [b for n, b in tests.items() if n.startswith(PREFIX + "boundedcache_getitem")]
    filled = [b for b in getitem if "obj['abc'] = " in b]
    assert filled and filled[0].startswith("obj = BoundedCache(3)") and filled[0].endswith("assert obj['abc'] == None")
    assert any(b.count("] = ") == 4 for b in filled)
    assert any("obj['abc'] = " in b and "assert obj.hits('abc') == None" in b
               for n, b in tests.items() if n.startswith(PREFIX + "countingcache_hits"))
    # Other objects get the calls of the methods that store into them, once and twice alike.
    add = [b for n, b in tests.items() if n.startswith(PREFIX + "taskqueue_add")]
    assert any(re.fullmatch(r"obj = TaskQueue\(\)\n(obj\.add\((.+)\)\n)assert obj\.add\(\2\) == None", b) for b in add)
    assert any(re.search(r"(obj\.add\(.+\)\n)\1assert obj\.add", b) for b in add)
    assert any(re.fullmatch(r"obj = TaskQueue\(\)\nobj\.add\(.+\)\nassert obj\.pop\(\) == None", b)
               for n, b in tests.items() if n.startswith(PREFIX + "taskqueue_pop"))
    # Plain calls on a new object come first, taking turns with the filled ones.
    assert not getitem[0].count("] = ") and getitem[1].count("] = ")
    # With more calls, the first storing method followed by each other one: a removed task left in the heap.
    more = _tests(explore(STATEFUL, frozenset({"TaskQueue.pop"}), calls_per_target=12)).values()
    assert any(re.search(r"obj\.add\((.+)\)\n\s*obj\.remove\(\1\)\n\s*assert obj\.pop\(\) == None", b) for b in more)


def _no_model_run(tmp_path, name: str, source: str, **settings):
    """The project of one module ``name`` under src/, and its engine run without the model (nothing listens at
    the endpoint): the module's report."""
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['src']\n")
    (project / "src" / f"{name}.py").write_text(source)
    config = load_config(project, {"endpoint": "http://127.0.0.1:9/v1", "max_calls": 0, "reruns": 1,
                                   "mutation": False, "target_coverage": 100.0, "paths": [str(project / "src")],
                                   **settings})
    return project, Engine(config, select_all=True).run().modules[0]


def test_the_engine_reaches_what_only_a_filled_object_runs_with_no_model(tmp_path):
    project, module = _no_model_run(tmp_path, "stateful", STATEFUL, amplify=False)
    # An existing key set again, the eviction, a hit, a task added twice, a pop: each needs calls before it.
    assert module.model_calls == 0 and module.line_after == 100.0
    kept = (project / "tests" / "utgen" / "test_stateful.py").read_text()
    rerun = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(project / "tests" / "utgen")], cwd=project, capture_output=True, text=True)
    assert rerun.returncode == 0, kept + rerun.stdout[-2000:]


SPANS = '''
from datetime import timedelta


class Span:
    def __init__(self, days=0):
        self.days = days

    def __add__(self, other):
        if isinstance(other, Span):
            return Span(self.days + other.days)
        if isinstance(other, timedelta):
            return Span(self.days + other.days)
        return other.replace(year=other.year + self.days)

    def __sub__(self, other):
        if isinstance(other, Span):
            return Span(self.days - other.days)
        return NotImplemented


def label(text):
    if not isinstance(text, str):
        raise TypeError("expected a string")
    return text.upper()
'''


def test_a_parameter_takes_the_types_its_function_checks_and_those_with_the_attributes_it_uses():
    tree = ast.parse(SPANS + "\n\ndef when(moment, dt):\n    if type(moment) in (int, float):\n        return moment\n"
                             "    return moment.year, dt.days\n")
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    imports = module_imports(tree)
    assert imports == {"timedelta": "datetime.timedelta"}
    # Span's own attributes are used where the check made it a Span; what is left (year, replace) is a date's.
    assert parameter_types(functions["__add__"], imports) == {
        "other": ParameterTypes(checked=("Span", "timedelta"), by_attributes=("datetime.date", "datetime.datetime"))}
    assert parameter_types(functions["label"], imports) == {"text": ParameterTypes(checked=("str",))}  # str has upper
    # ``dt.days``: a timedelta, as the module imports it.
    assert parameter_types(functions["when"], imports) == {
        "moment": ParameterTypes(("int", "float"), ("datetime.date", "datetime.datetime")),
        "dt": ParameterTypes(by_attributes=("timedelta",))}
    # A module that binds ``datetime`` to the class cannot spell ``datetime.date``: left out.
    assert parameter_types(functions["when"], {"datetime": "datetime.datetime"})["moment"].by_attributes == (
        "datetime",)


def test_calls_try_each_type_a_parameter_is_checked_against_and_one_it_is_not():
    calls = _tests(explore(SPANS, frozenset({"Span.__add__", "label"}), calls_per_target=8))
    operands = " ".join(calls.values())
    for operand in ("obj + timedelta(", "obj + datetime.date(", "obj + Span("):
        assert operand in operands
    assert any(re.search(r"label\((None|1)\)", call) for call in calls.values())  # not a str


def test_the_engine_covers_each_side_of_a_type_check_and_keeps_the_type_errors_the_code_raises(tmp_path):
    project, module = _no_model_run(tmp_path, "spans", SPANS)
    kept = (project / "tests" / "utgen" / "test_spans.py").read_text()
    assert module.model_calls == 0 and module.line_after == 100.0, kept
    assert "pytest.raises(TypeError, match=r'^expected a string$')" in kept  # raised by the code: its behaviour
    assert "unsupported operand type" in kept  # Span - None: __sub__ said NotImplemented
    rerun = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(project / "tests" / "utgen")], cwd=project, capture_output=True, text=True)
    assert rerun.returncode == 0, kept + rerun.stdout[-2000:]


def test_a_double_star_parameter_gets_the_keys_its_function_reads_from_it():
    module = '''
def connect(url, **options):
    timeout = options.pop("timeout", 10)
    if "retries" in options:
        return url, timeout, options["retries"]
    return url, timeout


def build(*args, **kwargs):
    return dict(*args, **kwargs)
'''
    calls = list(_tests(explore(module, frozenset({"connect", "build"}), calls_per_target=8)).values())
    connect = [call for call in calls if "connect(" in call]
    assert any("connect('abc', timeout=" in call for call in connect) and any("retries=" in call for call in connect)
    # One that reads no key by name (it passes them on) gets a couple of plain names.
    assert any(re.search(r"build\(.*\ba=", call) for call in calls if "build(" in call)


def test_each_optional_parameter_is_given_once_beside_the_first_call():
    module = '''
def render(text, upper=False, *, sep=None, width=0):
    return text
'''
    calls = list(_tests(explore(module, frozenset({"render"}))).values())
    assert "render('abc')" in calls[0]  # the required parameter alone first
    # Then, taking turns with the drawn calls, one option at a time: a flag flipped, a None default given.
    singles = [call for call in calls if re.search(r"render\('abc', \w+=[^,]+\) ==", call)]
    assert any("upper=True" in call for call in singles) and any("sep=" in call for call in singles)
    # A flag comes before the other options, whatever its place; a lock parameter gets a lock.
    module = "def cached(cache, key=None, lock=None, info=False):\n    return cache\n"
    calls = list(_tests(explore(module, frozenset({"cached"}), calls_per_target=8)).values())
    assert "info=True" in calls[1] and any("lock=threading.RLock()" in call for call in calls), calls
