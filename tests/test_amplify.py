"""Test amplification (pytest_utgen.amplify) and the engine's amplification step."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import GOOD_REPLIES, module_of
from pytest_utgen.amplify import (
    amplify,
    class_probes,
    input_literals,
    module_constants,
    replacements,
    sibling_callables,
    passed_values,
)
from pytest_utgen.config import load_config
from pytest_utgen.engine import Engine
from pytest_utgen.testfile import TestFile

MODULE = '''
LIMIT = 50


def bulk(unit, quantity):
    """Docstring strings are not values: 'ignored'."""
    if quantity >= LIMIT:
        return unit * quantity * 8 // 10
    if quantity >= 10:
        return unit * quantity * 9 // 10
    return unit * quantity


def kind(name):
    if name == "vip":
        return 2
    raise ValueError("unknown kind of customer, with a long message")
'''

TESTS = '''import pytest
from shop import bulk, kind


@pytest.fixture
def unit():
    return 100


def test_bulk(unit):
    """A docstring 'stays'."""
    assert bulk(unit, 3) == 300  # utgen: observed


def test_kind_raises():
    with pytest.raises(ValueError, match="unknown"):
        kind("guest")


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert bulk(1, n) == n
'''


def test_input_literals_are_what_a_test_passes_in_not_what_it_expects():
    function = ast.parse(
        'def test_x():\n    """doc"""\n    total = f(3, "a", [1, 2], {"k": 1}, None)\n'
        '    assert g(4) == 12\n    with pytest.raises(ValueError, match="bad"):\n        h(5)\n'
        '    a, b = pair()\n    assert k(6.0) == pytest.approx(0.5)\n').body[0]
    found = [ast.unparse(n) for n in input_literals(function)]
    assert found == ["3", "'a'", "[1, 2]", "1", "2", "{'k': 1}", "'k'", "1", "4", "5", "6.0"]


def test_module_constants_are_the_values_the_code_uses_with_boundaries_next_to_compared_ints():
    constants = module_constants(MODULE)
    assert {9, 10, 11} <= set(constants[int])  # `quantity >= 10`
    assert "vip" in constants[str]
    assert "ignored" not in " ".join(constants[str])  # the docstring
    assert all(len(s) <= 24 for s in constants[str])  # the error message is not a value


def test_module_constants_count_a_nested_functions_values_once():
    nested = ('def outer():\n    def inner():\n        return "twice?"\n    return "once" + "once" + inner()\n\n\n'
              'def other():\n    return "twice?"\n')
    # "once" is used twice, "twice?" twice (inner and other): counted once per use, "once" stays first.
    assert module_constants(nested)[str] == ["once", "twice?"]


def test_replacements_are_nearby_and_edge_values_of_the_same_type_then_the_modules_own():
    constants = {int: [10, 50], float: [], str: ["vip"]}
    assert replacements(3, constants) == ["0", "1", "-1", "4", "2", "10", "50"]
    assert replacements(True, constants) == ["False"]
    assert replacements("guest", constants)[:2] == ["''", "'g'"]
    assert "'vip'" in replacements("guest", constants)
    assert replacements(None, constants) == []
    assert replacements(0.5, constants)[:2] == ["0.0", "-0.5"]
    assert replacements(0.5, constants)[-2:] == ["float('inf')", "float('nan')"]  # no literal writes them


def test_amplify_writes_renamed_variants_with_one_input_changed_and_the_files_helpers():
    out = amplify(TestFile(TESTS), MODULE).source
    tree = ast.parse(out)
    names = TestFile(out).units
    assert "unit" in [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]  # the fixture stays
    assert "test_bulk" not in names and "test_param_amp1" not in names  # originals and parametrized tests go
    assert names[:2] == ["test_bulk_amp1", "test_kind_raises_amp1"]  # one test after another
    bulk_variants = [ast.unparse(n) for n in tree.body
                     if isinstance(n, ast.FunctionDef) and n.name.startswith("test_bulk")]
    assert any("bulk(unit, 10)" in v for v in bulk_variants)  # a boundary the module compares against
    assert all("== 300" in v for v in bulk_variants)  # expectations stay for the oracle to replace
    assert "utgen: observed" not in out  # the old mark would stop the oracle adopting the new value
    assert 'pytest.raises(ValueError, match="unknown")' in out  # pytest.raises and match= are not inputs
    assert len(set(map(lambda v: v.split(":", 1)[1], bulk_variants))) == len(bulk_variants)  # no copies
    assert len(amplify(TestFile(TESTS), MODULE, limit=3).units) == 3
    assert amplify(TestFile(TESTS), MODULE, skip=frozenset({"test_bulk", "test_kind_raises"})) is None
    assert amplify(TestFile("def test_nothing():\n    assert True\n"), MODULE) is None


def test_observation_variants_assert_a_placeholder_on_values_the_test_computes_but_never_checks():
    tests = ("import os\nfrom shop import Cart, total\n\n\ndef test_cart():\n    cart = Cart()\n"
             "    cart.add('apple', 3)\n    os.getcwd()\n    n = total(cart)\n    assert n == 3\n"
             "    m = total(cart)\n    assert m > 0\n")
    out = amplify(TestFile(tests), MODULE, limit=100).source
    bodies = {ast.unparse(n).split("\n", 1)[1] for n in ast.parse(out).body if isinstance(n, ast.FunctionDef)}
    observed = {b for b in bodies if "== None" in b}
    expected_checks = [
        "cart = Cart()\n    assert vars(cart) == None\n    cart.add('apple', 3)",  # a class: its attributes
        "assert cart.add('apple', 3) == None",  # what a bare call returns
        "cart.add('apple', 3)\n    assert vars(cart) == None\n    os.getcwd()",  # the object after a method call
        "m = total(cart)\n    assert m == None",  # a value only weakly asserted on
    ]
    for check in expected_checks:
        assert sum(check in b for b in observed) == 1, check
    assert len(observed) == len(expected_checks) + 1  # and `assert os.getcwd() == None`
    assert not any("vars(os)" in b or "assert n == None" in b for b in bodies)  # a module; n has its `==`
    assert not any("== None" in b for b in amplify(TestFile(tests), MODULE, limit=100, observe=False).source.split("def ")[1:])


BOX = '''
class Box:
    def __init__(self, items=()):
        self.items = list(items)

    def __len__(self):
        return len(self.items)

    def __repr__(self):
        return f"Box({self.items!r})"

    @property
    def empty(self):
        return not self.items

    @empty.setter
    def empty(self, value):
        self.items = []

    def add(self, item):
        self.items.append(item)

    def first(self, default=None):
        return self.items[0] if self.items else default

    @staticmethod
    def make():
        return Box()

    def _private(self):
        return 1
'''


def test_class_probes_are_what_reaches_a_classes_code_without_an_argument():
    assert class_probes(BOX) == {"Box": ["len({})", "repr({})", "{}.empty", "{}.first()"]}


def test_a_test_that_builds_an_object_gets_a_probe_variant_for_each_probe_it_does_not_use():
    tests = "from m import Box\n\n\ndef test_box():\n    box = Box([1])\n    box.add(2)\n    assert len(box) == 2\n"
    out = amplify(TestFile(tests), BOX, limit=100).source
    ends = [ast.unparse(n).splitlines()[-1].strip() for n in ast.parse(out).body if isinstance(n, ast.FunctionDef)]
    probes = [e for e in ends if e != "assert len(box) == 2"]
    assert probes == ["assert repr(box) == None", "assert box.empty == None", "assert box.first() == None"]


def test_a_kept_variant_is_amplified_again_under_its_originals_name():
    tests = "from shop import bulk\n\n\ndef test_bulk_amp1():\n    assert bulk(2, 3) == 6\n"
    names = amplify(TestFile(tests), MODULE, limit=3).units
    assert names == ["test_bulk_amp2", "test_bulk_amp3", "test_bulk_amp4"]


def test_an_observation_variant_kills_a_mutant_the_weak_test_lets_through(tmp_path, scripted_model):
    project = tmp_path / "proj"
    (project / "src" / "scale").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'scale'\n")
    (project / "src" / "scale" / "__init__.py").write_text("def double(x):\n    return x * 2\n")
    reply = "```python\nfrom scale import double\n\n\ndef test_double():\n    result = double(3)\n    assert result > 0\n```"
    server = scripted_model(lambda messages: reply)
    runs = {}
    for amplify_on in (False, True):
        config = load_config(project, {"endpoint": server.url, "reruns": 1, "max_calls": 1, "amplify": amplify_on, "explore": False,
                                       "paths": [str(project / "src" / "scale")],
                                       "output_dir": f"tests/utgen_{amplify_on}"})
        runs[amplify_on] = Engine(config, select_all=True).run().modules[0]
    assert runs[True].mutants_killed > runs[False].mutants_killed
    kept = (project / "tests" / "utgen_True" / "test_scale.py").read_text()
    assert "assert result == 6  # utgen: observed" in kept


def test_variants_call_bare_what_the_oracle_wrapped_in_pytest_raises_and_keep_the_models_own():
    tests = ("import pytest\nfrom shop import kind\n\n\ndef test_observed():\n"
             "    with pytest.raises(ValueError):  # utgen: observed\n        kind('guest')\n\n\n"
             "def test_written():\n    with pytest.raises(ValueError):\n        kind('guest')\n")
    out = amplify(TestFile(tests), MODULE, limit=4).source
    observed = [ast.unparse(n) for n in ast.parse(out).body if isinstance(n, ast.FunctionDef)
                and n.name.startswith("test_observed")]
    assert observed and all("raises" not in v for v in observed)  # the new input may not raise
    assert "def test_observed_amp1():\n    kind('')\n" in out
    assert "def test_written_amp1():\n    with pytest.raises(ValueError):\n        kind('')\n" in out


def test_amplified_variants_that_add_coverage_are_kept_with_observed_expectations(tmp_path, scripted_model):
    project = tmp_path / "shopkit"
    shutil.copytree(Path(__file__).parents[1] / "examples" / "shopkit", project,
                    ignore=shutil.ignore_patterns("__pycache__", "utgen", ".pytest_cache"))
    weak = ("```python\nfrom shopkit.pricing import bulk_price\n\n\n"
            "def test_bulk_price():\n    assert bulk_price(100, 3) == 300\n```")

    def respond(messages):
        return weak if module_of(messages) == "shopkit.pricing" else GOOD_REPLIES[module_of(messages)]

    server = scripted_model(respond)
    paths = [str(project / "src" / "shopkit" / "pricing.py")]
    runs = {}
    for amplify_on in (False, True):
        config = load_config(project, {"endpoint": server.url, "reruns": 1, "max_calls": 1, "mutation": True, "explore": False,
                                       "amplify": amplify_on, "paths": paths,
                                       "output_dir": f"tests/utgen_{amplify_on}"})  # no cache hit
        runs[amplify_on] = Engine(config, select_all=True).run().modules[0]
    plain, amplified = runs[False], runs[True]
    assert plain.tests_amplified == 0 and amplified.tests_amplified >= 2
    assert amplified.model_calls == plain.model_calls  # no model call buys the variants
    # bulk_price's three branches (quantity < 0, >= 10, >= 50) need inputs the one weak test never passes.
    assert amplified.branch_after > plain.branch_after and amplified.mutants_killed > plain.mutants_killed
    kept = (project / "tests" / "utgen_True" / "test_shopkit_pricing.py").read_text()
    assert "_amp" in kept and "# utgen: observed" in kept
    rerun = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(project / "tests" / "utgen_True")], cwd=project, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout[-2000:]


def test_a_variant_that_hangs_is_stopped_by_the_per_test_limit(tmp_path, scripted_model):
    project = tmp_path / "proj"
    (project / "src" / "countdown").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'countdown'\n")
    (project / "src" / "countdown" / "__init__.py").write_text(
        "def steps(n):\n    count = 0\n    while n != 0:\n        n -= 1\n        count += 1\n    return count\n")
    reply = "```python\nfrom countdown import steps\n\n\ndef test_steps():\n    assert steps(3) == 3\n```"
    server = scripted_model(lambda messages: reply)
    config = load_config(project, {"endpoint": server.url, "reruns": 1, "max_calls": 1, "timeout": 30, "explore": False,
                                   "paths": [str(project / "src" / "countdown")]})
    module = Engine(config, select_all=True).run().modules[0]
    kept = (project / "tests" / "utgen" / "test_countdown.py").read_text()
    assert "steps(-1)" not in kept  # never ends: stopped after the per-test limit, not kept
    assert module.sandbox_seconds < 60  # a hang costs the 2 s test limit, not the 30 s run timeout
    assert "def test_steps" in kept


COLLS = '''
def select(pred, coll):
    return [x for x in coll if pred(x)]


def reject(pred, coll):
    return [x for x in coll if not pred(x)]


def count(coll, start=0):
    return start + len(coll)


def split_at(n, coll, *, lazy=False):
    return coll[:n], coll[n:]


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def drop(self, item):
        self.items.remove(item)

    def peek(self):
        return self.items[-1]
'''


def test_sibling_callables_pair_functions_and_methods_with_the_wanted_ones_that_take_their_arguments():
    siblings = sibling_callables(COLLS, frozenset({"reject", "split_at", "Stack.drop"}))
    assert [name for name, _ in siblings["select"]] == ["reject", "split_at"]
    assert [name for name, _ in siblings["reject"]] == ["split_at"]  # select is not wanted
    assert [name for name, _ in siblings[".push"]] == ["drop"]
    arities = dict(siblings["select"])
    call = ast.parse("select(bool, [1])").body[0].value
    assert arities["reject"].accepts(call) and arities["split_at"].accepts(call)
    assert not arities["split_at"].accepts(ast.parse("f(1, [1], 3)").body[0].value)  # too many positionals
    assert arities["split_at"].accepts(ast.parse("f(1, [1], lazy=True)").body[0].value)
    assert not arities["reject"].accepts(ast.parse("f(bool, coll=[1], lazy=True)").body[0].value)  # no `lazy`


def test_sibling_variants_call_a_wanted_function_with_the_arguments_the_test_built():
    tests = ("from colls import select, count\nfrom colls import Stack\n\n\ndef test_select():\n"
             "    assert select(bool, [0, 1]) == [1]\n    assert count([1, 2]) == 2\n\n\n"
             "def test_stack():\n    s = Stack()\n    s.push(3)\n    assert s.peek() == 3\n")
    wanted = frozenset({"reject", "Stack.drop"})
    out = amplify(TestFile(tests), COLLS, limit=200, values={}, wanted=wanted).source
    assert "assert reject(bool, [0, 1]) == [1]" in out  # the expectation stays for the oracle to replace
    assert "    s.drop(3)\n" in out
    assert "reject([1, 2])" not in out  # count's one argument is not what reject takes
    assert "peek" not in out.replace("s.peek() == 3", "")  # peek is not wanted: no call is turned into it
    assert "reject(" not in amplify(TestFile(tests), COLLS, limit=200).source  # nothing wanted: no sibling


def test_values_other_tests_pass_in_are_tried_as_inputs():
    sources = ["def test_a():\n    assert parse('2011W08') == 8\n    assert parse('2011W08', 3) == 9\n",
               "def test_b():\n    assert parse(b'x') == 'two'\n", "not python ("]
    values = passed_values(sources)
    assert values[str] == ["2011W08"] and values[int] == [3] and values[bytes] == [b"x"]  # not 8, 9 or 'two'
    tests = "from shop import kind\n\n\ndef test_kind():\n    assert kind('guest') == 1\n"
    out = amplify(TestFile(tests), MODULE, limit=100, values=values).source
    assert "kind('2011W08')" in out
