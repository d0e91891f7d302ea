"""Docstring examples as seed tests (pytest_utgen.seeds) and the engine's seed step."""

from __future__ import annotations

import subprocess
import sys

from pytest_utgen.config import load_config
from pytest_utgen.engine import Engine
from pytest_utgen.seeds import doctest_seeds

DOCUMENTED = '''"""Weeks.

>>> week_of(8)
'W08'
"""


class Week:
    """A week.

    >>> Week(3)
    Week(3)
    >>> w = Week(4)
    >>> w.next().number
    5
    >>> Week(0)
    Traceback (most recent call last):
    ValueError: no week 0
    >>> print(Week(2))
    W02
    >>> Week(9).parts()  # doctest: +SKIP
    [9]
    """

    def __init__(self, number):
        if number < 1:
            raise ValueError(f"no week {number}")
        self.number = number

    def __repr__(self):
        return f"Week({self.number})"

    def __str__(self):
        return week_of(self.number)

    def next(self):
        return Week(self.number + 1)

    def halves(self):
        """
        >>> Week(7).halves()
        {'first': 3,
         'second': 4}
        >>> Week(8).halves()
        {'first': 99, 'second': 99}
        """
        return {"first": self.number // 2, "second": self.number - self.number // 2}


def week_of(number):
    return f"W{number:02d}"


def odd(number):
    if number % 2:
        return True
    return False
'''


def test_each_example_with_a_result_is_a_test_after_the_set_up_steps_before_it():
    seeds = doctest_seeds(DOCUMENTED)
    assert seeds.units == ["test_doc_module", "test_doc_week", "test_doc_week_2", "test_doc_week_3",
                           "test_doc_week_halves", "test_doc_week_halves_2"]
    bodies = seeds.unit_sources(set(seeds.units))
    assert bodies["test_doc_module"].splitlines()[1] == "    assert week_of(8) == 'W08'"  # a literal: ==
    assert "assert repr(Week(3)) == 'Week(3)'" in bodies["test_doc_week"]  # not a literal: its repr's text
    assert bodies["test_doc_week_2"].splitlines()[1:] == ["    w = Week(4)", "    assert w.next().number == 5"]
    assert bodies["test_doc_week_3"].splitlines()[-1] == "    Week(0)"  # raises: bare, for the oracle to wrap
    assert "{'first': 3, 'second': 4}" in bodies["test_doc_week_halves"]  # a literal over two lines
    assert not any("print" in b or "parts" in b for b in bodies.values())  # printed output; +SKIP
    assert doctest_seeds("def f():\n    'No examples.'\n") is None


def test_the_engine_keeps_the_examples_that_pass_before_any_model_call(tmp_path, scripted_model):
    project = tmp_path / "proj"
    (project / "src" / "weeks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'weeks'\n\n[tool.pytest.ini_options]\npythonpath = ['src']\n")
    (project / "src" / "weeks" / "__init__.py").write_text(DOCUMENTED)
    reply = ("```python\nfrom weeks import Week, odd\n\n\ndef test_odd():\n    assert odd(3) is True\n"
             "    assert odd(2) is False\n    assert str(Week(2)) == 'W02'\n```")
    server = scripted_model(lambda messages: reply)
    config = load_config(project, {"endpoint": server.url, "reruns": 1, "max_calls": 4, "amplify": False,
                                   "mutation": False, "explore": False, "paths": [str(project / "src" / "weeks")]})
    module = Engine(config, select_all=True).run().modules[0]
    kept = (project / "tests" / "utgen" / "test_weeks.py").read_text()
    assert "with pytest.raises(ValueError, match=r'^no week 0$'):  # utgen: observed\n        Week(0)" in kept
    assert "assert Week(8).halves() == {'first': 4, 'second': 4}  # utgen: observed" in kept  # the docs were wrong
    assert "def test_odd" in kept  # odd has no example: the model was asked for the rest
    assert module.tests_from_docs == 6 and module.line_after == 100.0
    assert not [d for d in module.dropped if "fails as a test" in d.reason]
    without = load_config(project, {"endpoint": server.url, "reruns": 1, "max_calls": 4, "amplify": False,
                                    "mutation": False, "doctests": False, "explore": False, "output_dir": "tests/plain",
                                    "paths": [str(project / "src" / "weeks")]})
    assert Engine(without, select_all=True).run().modules[0].tests_from_docs == 0
    assert "test_doc" not in (project / "tests" / "plain" / "test_weeks.py").read_text()
    rerun = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/utgen"],
                           cwd=project, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout[-2000:]


def test_an_example_whose_expression_is_a_comparison_is_checked_as_a_whole():
    seeds = doctest_seeds('def f():\n    """\n    >>> [1] + [2] == [1, 2]\n    True\n    >>> not []\n    True\n'
                          '    >>> 0 or 3\n    3\n    """\n')
    checks = [line.strip() for body in seeds.unit_sources(set(seeds.units)).values() for line in body.splitlines()
              if line.strip().startswith("assert")]
    # `[1] + [2] == [1, 2] == True` would be a chain, False whatever f does.
    assert checks == ["assert ([1] + [2] == [1, 2]) == True", "assert (not []) == True", "assert (0 or 3) == 3"]
    for check in checks:
        exec(check)
