"""Mutants (pytest_utgen.mutate), the mutant run in the sandbox, and the engine's mutation pass and keep set."""

from __future__ import annotations

import builtins
import re
import shutil
import time
from pathlib import Path

from conftest import GOOD_REPLIES, module_of
from pytest_utgen import engine as engine_module
from pytest_utgen.config import load_config
from pytest_utgen.engine import MUTANT_REPLY_TOKENS, Engine
from pytest_utgen.mutate import SWITCH, find_mutants, schemata
from pytest_utgen.report import StopReason
from pytest_utgen.sandbox import MutationRun, Workspace
from pytest_utgen.validate import contributions, counted

SOURCE = '''"""Doc."""
LIMIT = 10  # module level: runs once at import, never mutated


def clamp(value, low=0, high=LIMIT):
    """Docstring: not mutated."""
    if value < low:
        return low
    if value > high and not isinstance(value, bool):
        return high
    label = f"v={value}"
    return value + 0
'''


def run_as(mutant_id: int, call: str):
    namespace: dict = {}
    setattr(builtins, SWITCH, mutant_id)
    try:
        exec(schemata(SOURCE, find_mutants(SOURCE), "clamp.py"), namespace)
        return eval(call, namespace)
    finally:
        setattr(builtins, SWITCH, 0)


def test_mutants_are_the_operators_of_function_bodies_only():
    mutants = find_mutants(SOURCE)
    described = [(m.line, m.description) for m in mutants]
    assert (7, "`<` -> `<=`") in described and (9, "`>` -> `>=`") in described
    assert (9, "`and` -> `or`") in described and (9, "`not x` -> `x`") in described
    assert (12, "`+` -> `-`") in described and (12, "`0` -> `1`") in described and (8, "returns `None`") in described
    assert all(m.line >= 7 for m in mutants)  # not the constant, the defaults or the docstring
    assert all(m.line != 11 for m in mutants)  # an f-string's parts stay as they are
    boundary = next(m for m in mutants if m.description == "`<` -> `<=`")
    assert boundary.diff() == "-    if value < low:\n+    if value <= low:"


def test_ids_are_the_same_when_only_some_lines_are_asked_for():
    every = {m.id: m for m in find_mutants(SOURCE)}
    some = find_mutants(SOURCE, lines={9})
    assert some and all(m.line == 9 and every[m.id] == m for m in some)


def test_the_schemata_behaves_as_written_until_a_mutant_is_switched_on():
    mutants = {m.description: m for m in find_mutants(SOURCE) if m.line == 7}
    assert run_as(0, "clamp(0)") == 0 and run_as(0, "clamp(-3)") == 0 and run_as(0, "clamp(12)") == 10
    assert run_as(mutants["`<` -> `<=`"].id, "clamp(0)") == 0  # equivalent on this input
    assert run_as(mutants["`<` -> `<=`"].id, "clamp(-3)") == 0
    plus = next(m for m in find_mutants(SOURCE) if m.description == "`+` -> `-`")
    assert run_as(plus.id, "clamp(5, high=3.5)") == 3.5 and run_as(plus.id, "clamp(2)") == 2
    one = next(m for m in find_mutants(SOURCE) if m.description == "`0` -> `1`" and m.line == 12)
    assert run_as(one.id, "clamp(2)") == 3


def _pricing_mutant_run(project: Path, tests: str, timeout: float, test_seconds: float) -> tuple[MutationRun, float]:
    """``tests`` (after the import of apply_discount) run against every mutant of shopkit.pricing; the run and
    its seconds."""
    header = "import time\n\nfrom shopkit.pricing import apply_discount\n\n\n"
    (project / "tests" / "test_probe.py").write_text(header + tests)
    module = project / "src" / "shopkit" / "pricing.py"
    with Workspace(project, [project / "src"]) as workspace:
        started = time.perf_counter()
        run = workspace.run_mutants(["tests/test_probe.py"], "shopkit.pricing", workspace.to_workspace(module),
                                    find_mutants(module.read_text()), timeout=timeout, memory_limit_mb=2048,
                                    test_seconds=test_seconds)
        return run, time.perf_counter() - started


def test_the_mutant_run_reports_per_test_lines_kills_and_survivors(example_project):
    run, _ = _pricing_mutant_run(example_project, (
        "import pytest\n\n\n"
        "def test_exact():\n    assert apply_discount(1000, 10) == 900\n\n\n"
        "def test_raises():\n    with pytest.raises(ValueError):\n        apply_discount(-1, 10)\n\n\n"
        "def test_runs_only():\n    apply_discount(1000, 50)\n\n\n"
        "def test_hangs_under_a_mutant():\n    n = apply_discount(1000, 10)\n    while n != 900:\n        pass\n"),
        timeout=120, test_seconds=1.0)
    module = example_project / "src" / "shopkit" / "pricing.py"
    mutants = find_mutants(module.read_text())
    assert run.error is None and not run.not_run
    exact, raises, runs_only, hangs = (f"tests/test_probe.py::{name}" for name in
                                       ("test_exact", "test_raises", "test_runs_only", "test_hangs_under_a_mutant"))
    assert run.passed == {exact, raises, runs_only, hangs}
    assert run.lines[raises] == {10, 11} and {10, 12, 14, 15} <= run.lines[exact]
    # Without an assertion only a mutant that makes the call raise is told apart.
    assert run.kills.get(runs_only, set()) < run.kills[exact]
    assert run.kills[hangs] == run.kills[exact]  # a mutant that makes it loop is stopped and counts as killed
    boundary = next(m for m in mutants if m.line == 10 and m.description == "`<` -> `<=`")
    assert boundary in run.survived  # apply_discount(0, ...) would tell it apart; no test calls it
    assert not any(m.line in (21, 22, 23) for m in set(mutants) - set(run.survived))  # add_tax: never run
    assert (module.read_text() == (Path(__file__).parents[1] / "examples/shopkit/src/shopkit/pricing.py").read_text())


def test_a_mutant_that_hangs_stops_at_the_first_test_it_hangs(example_project):
    """Every later test that reaches it would wait out the limit too: it is killed already."""
    hanging = "".join(f"def test_waits_{n}():\n    while apply_discount(1000, 10) != 900:\n        pass\n\n\n"
                      for n in range(6))
    run, seconds = _pricing_mutant_run(example_project, hanging, timeout=300, test_seconds=1.0)
    first, *others = (run.kills.get(f"tests/test_probe.py::test_waits_{n}", set()) for n in range(6))
    hung = first - set().union(*others)  # killed by the first test only: it hung, the others never ran
    assert run.error is None and len(hung) >= 2 and first == run.killed
    assert seconds < 6 * len(hung) / 2  # not all six tests waiting out their second under each of them


def test_a_hang_under_a_mutant_costs_a_multiple_of_the_test_s_own_seconds_not_the_whole_limit(example_project):
    waits = "def test_waits():\n    while apply_discount(1000, 10) != 900:\n        pass\n"
    run, seconds = _pricing_mutant_run(example_project, waits, timeout=300, test_seconds=5.0)
    hung = run.kills.get("tests/test_probe.py::test_waits", set())
    assert run.error is None and len(hung) >= 2
    assert seconds < 5.0 * len(hung) / 2  # each hang stopped long before the 5 s limit


def test_a_mutant_run_stopped_early_keeps_what_the_tests_ran_and_the_kills_judged_by_then(example_project):
    slow = "".join(f"def test_slow_{n}():\n    time.sleep(0.2)\n    assert apply_discount(1000, 10) == 900\n\n\n"
                   for n in range(3))
    run, _ = _pricing_mutant_run(example_project, slow, timeout=4.0, test_seconds=2.0)
    # Each mutant of apply_discount's lines takes 0.2 s or more: the run ends before the last of them.
    assert run.error == "timed out" and run.not_run and run.measured
    assert len(run.passed) == 3 and all(run.lines[n] for n in run.passed)
    assert set(m.id for m in run.not_run).isdisjoint(run.killed | {m.id for m in run.survived})
    assert not MutationRun(error="crashed").measured  # nothing ran: nothing to use


WEAK = """```python
from shopkit.pricing import apply_discount


def test_discount():
    assert apply_discount(1000, 10) == 900


def test_discount_again():
    assert 900 == apply_discount(1000, 10)
```"""

STRONG = """```python
import pytest
from shopkit.pricing import apply_discount


def test_boundaries():
    assert apply_discount(0, 100) == 0
    assert apply_discount(1000, 0) == 1000
    assert apply_discount(1000, 100) == 0
    with pytest.raises(ValueError, match="price cannot be negative"):
        apply_discount(-1, 10)
    with pytest.raises(ValueError, match="discount must be between 0 and 100"):
        apply_discount(10, 101)
    with pytest.raises(ValueError):
        apply_discount(10, -1)
    assert apply_discount(1, 50) == 1
```"""


def test_survivors_are_asked_for_as_diffs_and_the_kept_set_is_greedy(tmp_path, scripted_model):
    project = tmp_path / "shopkit"
    shutil.copytree(Path(__file__).parents[1] / "examples" / "shopkit", project,
                    ignore=shutil.ignore_patterns("__pycache__", "utgen", ".pytest_cache"))
    diff_prompts = []

    def respond(messages):
        text = messages[-1]["content"]
        if module_of(messages) != "shopkit.pricing":
            return GOOD_REPLIES[module_of(messages)]
        if "```diff" in text:
            diff_prompts.append(text)
            return STRONG if "`apply_discount`" in text else "Nothing to add."
        return WEAK

    server = scripted_model(respond)
    config = load_config(project, {"endpoint": server.url, "reruns": 1, "max_attempts": 1, "target_coverage": 10, "explore": False,
                                   "paths": [str(project / "src" / "shopkit" / "pricing.py")]})
    report = Engine(config, select_all=True).run()
    pricing = report.modules[0]
    assert diff_prompts and all(re.search(r"```diff\n-.*\n\+.*\n```", p) for p in diff_prompts)
    assert len(diff_prompts) <= config.max_calls
    # A mutant asks for a test or two: a short reply; the other prompts may take the whole max_tokens.
    limits = {"```diff" in r["messages"][-1]["content"]: r["max_tokens"] for r in server.requests}
    assert limits[True] <= MUTANT_REPLY_TOKENS < limits[False]
    kept = (project / "tests" / "utgen" / "test_shopkit_pricing.py").read_text()
    assert "def test_boundaries" in kept
    # The same lines and the same mutants as test_discount (the stronger test_boundaries may cover both): it goes.
    assert "def test_discount_again" not in kept
    assert ("test_discount_again", "adds no line, branch or killed mutant to the other kept tests") in [
        (d.what, d.reason) for d in pricing.dropped]
    source = (project / "src" / "shopkit" / "pricing.py").read_text()
    assert pricing.mutants == len(find_mutants(source))
    assert 0 < pricing.mutants_killed < pricing.mutants and pricing.mutation_score == pytest_approx_score(pricing)
    assert pricing.stopped in (StopReason.MUTANTS_DONE, StopReason.MAX_CALLS, StopReason.MUTANTS_KILLED)
    assert f"{pricing.mutants_killed}/{pricing.mutants}" in report.table()


def pytest_approx_score(module_report) -> float:
    return 100.0 * module_report.mutants_killed / module_report.mutants


def test_the_mutant_prompt_is_the_target_prompt_with_the_change_as_a_diff_last():
    from pytest_utgen.prompt import build_mutant_messages, build_target_messages
    from pytest_utgen.targets import find_targets, module_header

    target = next(t for t in find_targets(SOURCE) if t.qualname == "clamp")
    mutant = next(m for m in find_mutants(SOURCE) if m.description == "`>` -> `>=`")
    asked = build_mutant_messages(module_header(SOURCE), "clamp", target, mutant)
    plain = build_target_messages(module_header(SOURCE), "clamp", target)
    assert asked[0] == plain[0]
    shared = plain[-1]["content"].split("Write the test file for", 1)[0]
    assert asked[-1]["content"].startswith(shared)  # the stable prefix llama.cpp reuses
    assert asked[-1]["content"].endswith(
        "The tests pass even when line 9 of `clamp` is changed like this:\n```diff\n"
        "-    if value > high and not isinstance(value, bool):\n+    if value >= high and not isinstance(value, bool):\n"
        "```\nWrite a test that passes on the code as written and fails on the changed line: call it with inputs "
        "that reach that line and assert the exact result.")


def test_the_greedy_keep_set_takes_the_biggest_gain_first_and_stops_when_nothing_is_added():
    from pytest_utgen.validate import greedy_cover

    contributions = {
        "test_small": {("line", 1)},
        "test_big": {("line", 1), ("line", 2), ("arc", (2, 3))},
        "test_same_as_big": {("line", 2), ("arc", (2, 3))},
        "test_killer": {("line", 2), ("mutant", 7)},  # no new line, but a mutant no other test kills
        "test_nothing": set(),
    }
    units = list(contributions) + ["test_without_coverage"]
    assert greedy_cover(units, contributions) == ["test_big", "test_killer"]
    assert greedy_cover(["test_same_as_big", "test_big"], contributions) == ["test_big"]  # more gain wins
    assert greedy_cover(["test_small", "test_nothing"], contributions) == ["test_small"]
    assert greedy_cover([], contributions) == []


def test_a_mutant_run_s_continuation_lines_are_not_counted_as_covered_statements(example_project):
    module = example_project / "src" / "shopkit" / "spread.py"
    module.write_text("def total(a, b):\n    result = max(a,\n                 b)\n    return result + 1\n")
    tests = example_project / "tests" / "test_spread.py"
    tests.write_text("from shopkit.spread import total\n\n\ndef test_total():\n    assert total(1, 2) == 3\n")
    with Workspace(example_project, [example_project / "src"]) as workspace:
        run = workspace.run_mutants(["tests/test_spread.py"], "shopkit.spread", workspace.to_workspace(module),
                                    find_mutants(module.read_text()), timeout=120, memory_limit_mb=2048,
                                    test_seconds=1.0)
        plain = workspace.run_pytest(["tests/test_spread.py"], timeout=120, memory_limit_mb=2048,
                                     coverage_of=[workspace.to_workspace(module).parent])
    coverage = plain.coverage[module]
    statements = set(coverage.executed_lines) | set(coverage.missing_lines)
    arcs = set(coverage.executed_branches) | set(coverage.missing_branches)
    held = contributions(run)["test_total"]
    counted_lines = {item[1] for item in counted(contributions(run), statements, arcs)["test_total"] if item[0] == "line"}
    assert counted_lines == {2, 4} == statements - {1}
    # The mutant schemata's own report holds line 3, the continuation of line 2: no statement of the module.
    assert {item[1] for item in held if item[0] == "line"} == {2, 3, 4}


def test_survivors_still_left_after_each_was_asked_for_are_asked_again_sampled(tmp_path, scripted_model):
    project = tmp_path / "shopkit"
    shutil.copytree(Path(__file__).parents[1] / "examples" / "shopkit", project,
                    ignore=shutil.ignore_patterns("__pycache__", "utgen", ".pytest_cache"))

    def respond(messages):
        return "Nothing to add." if "```diff" in messages[-1]["content"] else WEAK

    server = scripted_model(respond)
    config = load_config(project, {"endpoint": server.url, "reruns": 1, "max_attempts": 1, "target_coverage": 10,
                                   "explore": False, "amplify": False, "max_calls": 200,
                                   "paths": [str(project / "src" / "shopkit" / "pricing.py")]})
    Engine(config, select_all=True).run()
    asked = [(r["messages"][-1]["content"], r["temperature"]) for r in server.requests
             if "```diff" in r["messages"][-1]["content"]]
    greedy = [text for text, temperature in asked if temperature == 0.0]
    sampled = [text for text, temperature in asked if temperature == config.repair_temperature]
    assert greedy and len(set(greedy)) == len(greedy) and sorted(sampled) == sorted(greedy)
    assert asked.index((sampled[0], config.repair_temperature)) > asked.index((greedy[-1], 0.0))


def test_survivors_no_call_fitted_before_the_last_amplification_are_asked_at_the_end_greedily(tmp_path, scripted_model,
                                                                                              monkeypatch):
    project = tmp_path / "shopkit"
    shutil.copytree(Path(__file__).parents[1] / "examples" / "shopkit", project,
                    ignore=shutil.ignore_patterns("__pycache__", "utgen", ".pytest_cache"))
    # Nearly all of the budget held back for the last amplification: no model call fits before it, so the
    # explored calls the loop ends with are all that is kept when the mutation pass first looks.
    monkeypatch.setattr(engine_module, "FINAL_AMPLIFY_SHARE", 0.95)

    def respond(messages):
        return STRONG if "```diff" in messages[-1]["content"] else WEAK

    server = scripted_model(respond)
    config = load_config(project, {"endpoint": server.url, "reruns": 1, "target_coverage": 10, "budget_s": 60,
                                   "paths": [str(project / "src" / "shopkit" / "pricing.py")]})
    pricing = Engine(config, select_all=True).run().modules[0]
    asked = [r["temperature"] for r in server.requests if "```diff" in r["messages"][-1]["content"]]
    assert asked and asked[0] == 0.0 and len(asked) == len(server.requests)
    kept = (project / "tests" / "utgen" / "test_shopkit_pricing.py").read_text()
    assert pricing.tests_explored and "def test_boundaries" in kept


def test_a_mutant_run_with_tests_taken_out_is_the_last_run_without_them(example_project):
    from pytest_utgen.engine import _without_units

    tests = ("import pytest\n\n\n"
             "def test_exact():\n    assert apply_discount(1000, 10) == 900\n\n\n"
             "def test_free():\n    assert apply_discount(0, 10) == 0\n\n\n"
             "def test_raises():\n    with pytest.raises(ValueError):\n        apply_discount(-1, 10)\n")
    full, _ = _pricing_mutant_run(example_project, tests, timeout=120, test_seconds=1.0)
    free = tests[tests.index("def test_free"):tests.index("def test_raises")]
    rest, _ = _pricing_mutant_run(example_project, tests.replace(free, ""), timeout=120, test_seconds=1.0)
    mutants = find_mutants((example_project / "src" / "shopkit" / "pricing.py").read_text())
    derived = _without_units(full, {"test_exact", "test_raises"}, mutants)
    assert full.kills["tests/test_probe.py::test_free"] - rest.killed  # `cents <= 0` only test_free kills
    assert (derived.passed, derived.lines, derived.arcs, derived.kills) == (rest.passed, rest.lines, rest.arcs,
                                                                            rest.kills)
    assert [m.id for m in derived.survived] == [m.id for m in rest.survived]
