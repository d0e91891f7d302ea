"""Exploration: calls built from signatures, kept by the engine only when they pass and add coverage."""

from __future__ import annotations

import ast
import subprocess
import sys

from pytest_utgen.config import load_config
from pytest_utgen.engine import Engine
from pytest_utgen.explore import CALLS_PER_TARGET, PREFIX, constructions, explore
from pytest_utgen.testfile import TestFile

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


def test_methods_run_on_objects_the_kept_tests_build():
    kept = "from bank import Account\n\n\ndef test_a():\n    a = Account('ada', 50)\n    b = Account(owner, 1)\n"
    built = constructions([kept], {"Account"})
    assert built == {"Account": ["Account('ada', 50)"]}  # a call with a name in it is no literal construction
    tests = _tests(explore(MODULE, frozenset({"Account.deposit"}), built=built))
    assert "obj = Account('ada', 50)" in tests[PREFIX + "account_deposit_1"]


def test_the_engine_keeps_only_calls_that_pass_and_add_coverage_with_no_model(tmp_path):
    project = tmp_path / "proj"
    (project / "src" / "bank").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'bank'\n\n[tool.pytest.ini_options]\npythonpath = ['src']\n")
    (project / "src" / "bank" / "__init__.py").write_text(MODULE)
    config = load_config(project, {"endpoint": "http://127.0.0.1:9/v1", "max_calls": 0, "reruns": 1,
                                   "paths": [str(project / "src" / "bank")]})
    module = Engine(config, select_all=True).run().modules[0]
    assert module.model_calls == 0  # the endpoint is never reached (nothing listens there)
    assert module.tests_explored >= 4 and module.line_after > 60
    kept = (project / "tests" / "utgen" / "test_bank.py").read_text()
    assert "# utgen: observed" in kept and "== None" not in kept.replace("is None", "")
    assert "with pytest.raises(ValueError):  # utgen: observed" in kept  # greet('') raises
    assert "TypeError" not in kept  # a call with wrong arguments says nothing about the code: dropped
    rerun = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(project / "tests" / "utgen")], cwd=project, capture_output=True, text=True)
    assert rerun.returncode == 0, kept + rerun.stdout[-2000:]
