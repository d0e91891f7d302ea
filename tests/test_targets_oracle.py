"""Target extraction, the target prompt, and the observed-value oracle's rewrites (pure functions)."""

from __future__ import annotations

import ast
import datetime
import re

from pytest_utgen.oracle import MARK, OBSERVE, adopt, instrument
from pytest_utgen.prompt import build_target_messages
from pytest_utgen.sandbox import Observation, RaisedBy
from pytest_utgen.targets import find_targets, module_header
from pytest_utgen.testfile import TestFile
from pytest_utgen.validate import absolute_imports, import_missing_names

MODULE = '''"""Shapes."""
import math

UNIT = "cm"


def area(r):
    """Area of a circle.

    More text.
    """
    return math.pi * r * r


class Box:
    """A box."""
    kind = "box"

    def __init__(self, w, h):
        self.w, self.h = w, h

    def size(self):
        return self.w * self.h

    def noop(self):
        pass

    @staticmethod
    def unit():
        return UNIT
'''


def test_targets_are_functions_and_methods_with_their_class_context():
    targets = {t.qualname: t for t in find_targets(MODULE)}
    assert list(targets) == ["area", "Box.__init__", "Box.size", "Box.unit"]  # noop has nothing to test
    assert (targets["area"].start, targets["area"].end) == (7, 12)
    size = targets["Box.size"]
    assert (size.start, size.end) == (22, 23)
    assert size.code.startswith('class Box:\n    """A box."""\n    kind = "box"\n    def __init__(self, w, h):\n        ...')
    assert size.code.endswith("    def size(self):\n        return self.w * self.h")
    assert targets["Box.unit"].start == 28  # the decorator's line


def test_the_header_is_imports_and_constants_and_method_prompts_of_a_class_share_their_start():
    assert module_header(MODULE) == "import math\nUNIT = 'cm'\n"
    targets = find_targets(MODULE)
    size, unit = (build_target_messages(module_header(MODULE), "shapes", t)[-1]["content"] for t in targets[2:4])
    shared = "Module `shapes`:\n```python\nimport math\nUNIT = 'cm'\n\n\nclass Box:\n    \"\"\"A box.\"\"\"\n"
    assert size.startswith(shared) and unit.startswith(shared)
    assert "def __init__(self, w, h):\n        ...\n    def size(self):" in size
    assert size.endswith("Write the test file for `Box.size`. Import what you test with `from shapes import ...`.")
    missed = build_target_messages(module_header(MODULE), "shapes", targets[1], "20: self.w, self.h = w, h")
    assert missed[-1]["content"].endswith("These lines of `Box.__init__` are never run by the tests:\n"
                                          "20: self.w, self.h = w, h")


USES = '''def helper(x, scale=2):
    """Scale a number.

    Long explanation.
    """
    return x * scale * 7


class Missing(KeyError):
    """No such item."""


class Shelf:
    def __init__(self, items):
        self.items = dict(items)

    def count(self):
        return len(self.items)

    def get(self, key):
        if key not in self.items:
            raise Missing(key)
        return helper(self.items[key])

    def report(self):
        return f"{self.count()} items, first {self.get(min(self.items))}"


def total(shelf: Shelf):
    return sum(helper(v) for v in shelf.items.values())
'''


def test_a_target_shows_the_signatures_of_the_module_names_it_uses_and_the_methods_it_calls():
    targets = {t.qualname: t for t in find_targets(USES)}
    helper_stub = 'def helper(x, scale=2):\n    """Scale a number."""\n    ...\n\n\n'
    shelf_stub = 'class Shelf:\n    def __init__(self, items):\n        ...\n\n\n'
    assert targets["total"].code.startswith(helper_stub + shelf_stub + "def total(shelf: Shelf):")
    assert "x * scale * 7" not in targets["total"].code  # a signature, not the body
    # Every method of a class shows what any of them uses, so their prompts share the start up to the class.
    missing_stub = 'class Missing(KeyError):\n    """No such item."""\n\n\n'
    class_start = helper_stub + missing_stub + "class Shelf:\n    def __init__(self, items):\n        ...\n"
    assert all(targets[name].code.startswith(class_start) for name in ("Shelf.count", "Shelf.get", "Shelf.report"))
    # A method sees the signatures of the methods it calls through self, in class order, before its own code.
    report = targets["Shelf.report"].code
    assert report.endswith("    def count(self):\n        ...\n    def get(self, key):\n        ...\n"
                           "    def report(self):\n        return f\"{self.count()} items, first "
                           "{self.get(min(self.items))}\"")
    assert "def count" not in targets["Shelf.get"].code


TESTS = '''import pytest
from shapes import area, Box


def test_int():
    assert Box(2, 3).size() == 5


def test_str():
    assert str(Box(1, 1).size()) == "one"


def test_float():
    assert area(1) == 3.14


def test_container():
    assert [Box(1, 2).size()] == []


def test_object():
    assert Box(1, 1) == Box(1, 1)


def test_raises():
    box = Box(1, None)
    box.size()
    assert box.w == 1


def test_wrong_call():
    area(1, 2, 3)
'''


def test_wrong_expectations_become_observed_literals_and_raises():
    observations = {
        "test_int": [Observation(6, value="6", matched=False)],
        "test_str": [Observation(10, value="'1'", matched=False)],
        "test_float": [Observation(14, value="3.141592653589793", matched=False)],
        "test_container": [Observation(18, value="[2]", matched=False)],
        "test_object": [Observation(22, value=None, matched=False)],  # no literal repr: left for the model
        "test_raises": [Observation(27, raised="TypeError")],  # a test's own mistake is not adopted
        "test_wrong_call": [Observation(31, raised="TypeError")],
    }
    adopted_file, adopted = adopt(TestFile(TESTS), "shapes", observations)
    fixed = adopted_file.source
    assert f"    assert Box(2, 3).size() == 6{MARK}\n" in fixed
    assert f"    assert str(Box(1, 1).size()) == '1'{MARK}\n" in fixed
    assert f"    assert area(1) == pytest.approx(3.141592653589793){MARK}\n" in fixed
    assert f"    assert [Box(1, 2).size()] == [2]{MARK}\n" in fixed
    assert "    assert Box(1, 1) == Box(1, 1)\n" in fixed and "    area(1, 2, 3)\n" in fixed
    assert [(a.unit, a.expected, a.observed) for a in adopted] == [
        ("test_int", "5", "6"), ("test_str", '"one"', "'1'"), ("test_float", "3.14", "3.141592653589793"),
        ("test_container", "[]", "[2]"),
    ]
    ast.parse(fixed)


def test_an_error_the_interpreter_raised_inside_the_code_is_adopted_only_for_values_drawn_without_intent():
    tests = "from shapes import area\n\n\ndef test_none():\n    assert area(None) == None\n"
    message = "unsupported operand type(s) for *: 'NoneType' and 'NoneType'"
    inside = {"test_none": [Observation(5, raised="TypeError", message=message, raised_by=RaisedBy.CODE)]}
    assert adopt(TestFile(tests), "shapes", inside) == (TestFile(tests), [])  # the model's test: its repair mends it
    fixed, adopted = adopt(TestFile(tests), "shapes", inside, code_errors=True)
    assert "    with pytest.raises(TypeError, match=r\"^unsupported operand type\\(s\\) for \\*: 'NoneType' and " \
        f"'NoneType'$\"):{MARK}\n        area(None)\n" in fixed.source
    assert [a.observed for a in adopted] == ["raised TypeError"]
    # The test's own statement raised it (a wrong call), or it is no error of a value (a recursion): a mistake.
    own = {"test_none": [Observation(5, raised="TypeError", raised_by=RaisedBy.TEST)]}
    deep = {"test_none": [Observation(5, raised="RecursionError", raised_by=RaisedBy.CODE)]}
    assert adopt(TestFile(tests), "shapes", own, code_errors=True)[1] == []
    assert adopt(TestFile(tests), "shapes", deep, code_errors=True)[1] == []


def test_a_raising_statement_becomes_pytest_raises_and_what_followed_it_goes():
    tests = "from shapes import Box, ShapeError\n\n\ndef test_bad():\n    b = Box(-1, 1)\n    assert b.size() == 1\n"
    fixed_file, adopted = adopt(TestFile(tests), "shapes", {"test_bad": [Observation(5, raised="shapes:ShapeError")]})
    fixed = fixed_file.source
    assert fixed.endswith(f"def test_bad():\n    with pytest.raises(ShapeError):{MARK}\n        b = Box(-1, 1)\n")
    assert fixed.startswith("from shapes import ShapeError\nimport pytest\n")
    assert adopted[0].observed == "raised shapes:ShapeError"
    builtin, _ = adopt(TestFile("def test_x():\n    assert int('x') == 1\n"), "m",
                       {"test_x": [Observation(2, raised="ValueError")]})
    assert builtin.source == f"import pytest\ndef test_x():\n    with pytest.raises(ValueError):{MARK}\n        int('x')\n"
    other, _ = adopt(TestFile("def test_y():\n    load('{')\n"), "m",
                     {"test_y": [Observation(2, raised="json.decoder:JSONDecodeError")]})
    assert "import json.decoder\n" in other.source and "pytest.raises(json.decoder.JSONDecodeError)" in other.source


def test_names_of_the_module_used_but_never_imported_are_imported():
    module = "class Box:\n    pass\n\n\ndef area(r):\n    return r\n\n\nLIMIT = 3\n"
    tests = "from m import area\n\n\ndef test_x(tmp_path):\n    assert Box() and area(LIMIT) == 3 and len([]) == 0\n"
    assert import_missing_names(TestFile(tests), module, "m").source.startswith("from m import Box, LIMIT\nfrom m import area\n")
    star = TestFile("from m import *\n\n\ndef test_y():\n    Box()\n")
    assert import_missing_names(star, module, "m") is star


def test_relative_imports_of_a_test_file_are_made_absolute_from_the_modules_package():
    tests = ("import pytest\nfrom .queries import Query, where\nfrom . import utils\nfrom ..other import x\n\n\n"
             "def test_q():\n    assert Query()\n")
    fixed = absolute_imports(TestFile(tests), "tinydb").source
    assert fixed.startswith("import pytest\nfrom tinydb.queries import Query, where\nfrom tinydb import utils\n"
                            "from ..other import x\n")  # above the top-level package: left as it is
    assert absolute_imports(TestFile(tests), "a.b").lines[3] == "from a.other import x"
    assert absolute_imports(TestFile("from x import y\n"), "").source == "from x import y\n"


def test_names_the_module_imports_and_standard_modules_used_but_never_imported_are_imported():
    module = ("import re\nfrom datetime import timedelta as td, date\nfrom .errors import ParseError\n\n\n"
              "def parse(text):\n    return td(days=1)\n")
    tests = ("import pytest\n\n\ndef test_x():\n    assert parse('P1D') == td(days=1)\n"
             "    assert re.match('a', 'a') and math.isclose(1, 1) and date\n"
             "    with pytest.raises(ParseError):\n        parse(undefined_name)\n")
    head = import_missing_names(TestFile(tests), module, "pkg.dates").source.split("import pytest\n")[0].splitlines()
    assert head == ["from pkg.dates import parse", "from pkg.dates import ParseError", "from datetime import date",
                    "import re", "from datetime import timedelta as td", "import math"]
    # A docstring example calls through the top-level package (``pkg.parse``), imported in another example.
    seeds = ("def test_doc_parse():\n    assert pkg.parse('P1D') == pkg.dates.td(days=1)\n\n\n"
             "def test_doc_first():\n    import pkg\n    assert pkg.parse('P2D')\n")
    assert import_missing_names(TestFile(seeds), module, "pkg.dates").source.startswith("import pkg\n\n\ndef test")
    # A package named like a standard library module (``calendar.week``) is imported once.
    calendar = import_missing_names(TestFile("def test_c():\n    assert calendar.week.now()\n"), module, "calendar.week")
    assert calendar.source.count("import calendar\n") == 1


def test_instrumented_asserts_record_and_go_on_keeping_their_lines():
    source = ("def test_a():\n    x = 2\n    assert x + 1 == (\n        4)\n    assert x == 2, 'msg'\n\n\n"
              "def test_b():\n    assert 1 == 2\n")
    instrumented = instrument(TestFile(source), {"test_a"}).source
    assert instrumented.splitlines()[2:5] == [f"    {OBSERVE}(3, lambda: (x + 1), 4)", "",
                                              f"    {OBSERVE}(5, lambda: (x), 2)"]
    assert instrumented.count("\n") == source.count("\n") and "    assert 1 == 2" in instrumented
    seen = []
    exec(compile(instrumented, "t.py", "exec"), {OBSERVE: lambda line, f, want: seen.append((line, f(), want))})
    assert seen == []  # defining the tests runs nothing
    namespace = {OBSERVE: lambda line, f, want: seen.append((line, f(), want))}
    exec(compile(instrumented, "t.py", "exec"), namespace)
    namespace["test_a"]()
    assert seen == [(3, 3, 4), (5, 2, 2)]


def test_the_text_of_a_pytest_raises_result_is_never_observed_but_its_value_is():
    # str(excinfo) holds pytest's traceback length ("tblen=2"), which mutmut's trampolines change: adopted, it
    # made the eval's mutmut run fail on a kept tinydb file.
    source = ("import pytest\n\n\ndef test_a():\n    with pytest.raises(ValueError) as e:\n        int('x')\n"
              "    assert str(e) == 'guess'\n    assert str(e.value) == 'guess'\n    assert e.type == KeyError\n")
    lines = instrument(TestFile(source), {"test_a"}).source.splitlines()
    assert lines[6] == "    assert str(e) == 'guess'"
    assert lines[7] == f"    {OBSERVE}(8, lambda: (str(e.value)), 'guess')"
    assert lines[8] == f"    {OBSERVE}(9, lambda: (e.type), KeyError)"


def test_a_line_observed_more_than_once_is_not_adopted():
    source = "def test_loop():\n    for i in range(2):\n        assert i == 5\n"
    seen = [Observation(3, value="0", matched=False), Observation(3, value="1", matched=False)]
    assert adopt(TestFile(source), "m", {"test_loop": seen}) == (TestFile(source), [])


def test_a_value_read_off_the_clock_is_not_adopted_unless_the_test_wrote_its_year():
    # Seen on fresh-8 (isoweek): ``Week.thisweek() == isoweek.Week(2026, 50)`` passed every rerun that day and
    # fails the next week.
    today = datetime.date(2026, 12, 7)
    clock = "def test_now():\n    assert Week.thisweek() == None\n"
    observed = {"test_now": [Observation(2, value="isoweek.Week(2026, 50)", matched=False,
                                         imports=["import isoweek"])]}
    assert adopt(TestFile(clock), "isoweek", observed, today=today) == (TestFile(clock), [])
    dated = "def test_dated():\n    assert Week(2026, 50).monday().isoformat() == None\n"
    observed = {"test_dated": [Observation(2, value="'2026-12-07'", matched=False)]}
    file, adopted = adopt(TestFile(dated), "isoweek", observed, today=today)
    assert [a.observed for a in adopted] == ["'2026-12-07'"] and "== '2026-12-07'" in file.source
    other_year = {"test_now": [Observation(2, value="isoweek.Week(2011, 8)", matched=False)]}
    assert adopt(TestFile(clock), "isoweek", other_year, today=today)[1][0].observed == "isoweek.Week(2011, 8)"


def test_a_placeholder_whose_value_has_no_literal_repr_becomes_isinstance_of_its_type():
    tests = ("from shapes import Box\n\n\ndef test_made():\n    assert Box(1, 2).grow() == None\n\n\n"
             "def test_modelled():\n    assert Box(1, 2).grow() == Box(2, 3)\n\n\n"
             "def test_builtin():\n    assert map(str, [1]) == None\n")
    observations = {
        "test_made": [Observation(5, value=None, matched=False, value_type="shapes:Box")],
        # The model's own expectation is no placeholder: a wrong one stays, for the model (or the quarantine).
        "test_modelled": [Observation(9, value=None, matched=False, value_type="shapes:Box")],
        "test_builtin": [Observation(13, value=None, matched=False, value_type="map")],  # a builtin: no import
    }
    fixed_file, adopted = adopt(TestFile(tests), "shapes", observations)
    fixed = fixed_file.source
    assert f"    assert isinstance(Box(1, 2).grow(), Box){MARK}\n" in fixed
    assert "    assert Box(1, 2).grow() == Box(2, 3)\n" in fixed
    assert f"    assert isinstance(map(str, [1]), map){MARK}\n" in fixed
    assert fixed.startswith("from shapes import Box\n")
    assert [(a.unit, a.observed) for a in adopted] == [("test_made", "a Box"), ("test_builtin", "a map")]
    ast.parse(fixed)


def test_a_raise_with_an_exact_message_is_expected_with_it():
    tests = ("from shapes import Box\n\n\ndef test_bad():\n    Box(-1, 1)\n\n\ndef test_dated():\n    Box(0, 0)\n\n\n"
             "def test_special():\n    Box(1, -1)\n")
    today = datetime.date(2026, 12, 7)
    observations = {
        "test_bad": [Observation(5, raised="shapes:ShapeError", message="negative width: -1")],
        "test_dated": [Observation(9, raised="ValueError", message="empty box made on 2026-12-07")],  # the clock
        "test_special": [Observation(13, raised="ValueError", message="height (-1) < 0 [y*]")],
    }
    fixed = adopt(TestFile(tests), "shapes", observations, today=today)[0].source
    assert f"    with pytest.raises(ShapeError, match=r'^negative width: -1$'):{MARK}\n        Box(-1, 1)\n" in fixed
    assert f"    with pytest.raises(ValueError):{MARK}\n        Box(0, 0)\n" in fixed
    assert "match=r'^height \\(-1\\) < 0 \\[y\\*\\]$'" in fixed
    ast.parse(fixed)
    # The pattern matches the message itself and nothing around it (a mutant's "XX" + message + "XX").
    pattern = re.search(r"match=(r'[^']*')", fixed.split("test_special")[1]).group(1)
    assert re.search(ast.literal_eval(pattern), "height (-1) < 0 [y*]")
    assert not re.search(ast.literal_eval(pattern), "XXheight (-1) < 0 [y*]XX")


def test_a_value_computed_with_a_warning_is_expected_inside_pytest_warns():
    tests = ("import warnings\nfrom semverish import bump\n\n\ndef test_bump():\n    assert bump('1.2.3') == None\n\n\n"
             "def test_known():\n    with pytest.deprecated_call():\n        assert bump('1.2.4') == None\n")
    warned = (("DeprecationWarning", "bump is deprecated"), ("UserWarning", None))
    observations = {"test_bump": [Observation(6, value="'1.2.4'", matched=False, warnings=warned)],
                    "test_known": [Observation(11, value="'1.2.5'", matched=False, warnings=warned)]}
    fixed, adopted = adopt(TestFile(tests), "semverish", observations)
    assert (f"    with pytest.warns(DeprecationWarning, match=r'^bump is deprecated$'):{MARK}\n"
            f"        assert bump('1.2.3') == '1.2.4'{MARK}\n") in fixed.source
    # The test expects warnings there already: the value alone.
    assert f"    with pytest.deprecated_call():\n        assert bump('1.2.4') == '1.2.5'{MARK}\n" in fixed.source
    assert "import pytest\n" in fixed.source and len(adopted) == 2
    ast.parse(fixed.source)
