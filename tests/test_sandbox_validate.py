"""The sandbox's limits and the keep rules of validation, on real child processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_utgen.generate import extract_code
from pytest_utgen.sandbox import RUN_TOKEN, Outcome, Workspace
from pytest_utgen.testfile import TestFile
from pytest_utgen.validate import CandidateValidator


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src" / "calc").mkdir(parents=True)
    (root / "src" / "calc" / "__init__.py").write_text("")
    (root / "src" / "calc" / "ops.py").write_text(
        "def add(a, b):\n    return a + b\n\n\ndef sign(x):\n    if x < 0:\n        return -1\n    return 1\n"
    )
    (root / "tests").mkdir()
    return root


@pytest.fixture(params=[True, False], ids=["warm-worker", "fresh-interpreter"])
def workspace(project: Path, request):
    with Workspace(project, [project / "src"], warm=request.param) as ws:
        yield ws


@pytest.fixture
def warm_workspace(project: Path):
    with Workspace(project, [project / "src"]) as ws:
        yield ws


def test_each_run_of_the_warm_worker_starts_clean(warm_workspace):
    """Module state, random state and the temp dir are each run's own, as in a fresh interpreter."""
    warm_workspace.add_file("tests/test_fresh.py", (
        "import random, tempfile\nimport calc.ops\n\n"
        "def test_state():\n    assert not hasattr(calc.ops, 'TOUCHED')\n    calc.ops.TOUCHED = True\n\n"
        "def test_random():\n    assert random.random() == -1\n\n"
        "def test_tmp():\n    assert tempfile.gettempdir() == ''\n"
    ))
    runs = [warm_workspace.run_pytest(["tests/test_fresh.py"], timeout=60, memory_limit_mb=1024) for _ in range(2)]
    messages = []
    for number, run in enumerate(runs, 1):
        outcomes = {k.split("::")[1]: v for k, v in run.outcomes.items()}
        assert outcomes["test_state"].outcome == Outcome.PASSED
        assert f"run{number}" in outcomes["test_tmp"].message  # TMPDIR is this run's dir
        messages.append(outcomes["test_random"].message)
    assert messages[0] != messages[1]  # not the worker's random sequence repeated
    assert warm_workspace._worker.process.poll() is None  # one worker served both runs


def test_a_fresh_run_is_a_new_interpreter_started_by_this_process(warm_workspace):
    warm_workspace.add_file("tests/test_parent.py", "import os\n\ndef test_parent():\n    assert os.getppid() == 0\n")
    parents = {}
    for fresh in (False, True):
        run = warm_workspace.run_pytest(["tests/test_parent.py"], timeout=60, memory_limit_mb=1024, fresh=fresh)
        (outcome,) = run.outcomes.values()
        parents[fresh] = int(re.search(r"assert (\d+) == 0", outcome.message).group(1))
    assert parents == {False: warm_workspace._worker.process.pid, True: os.getpid()}


def test_fresh_runs_hash_strings_with_a_seed_of_their_own(warm_workspace):
    """Candidate runs are reproducible (one seed); the final reruns vary it as users' sessions do."""
    warm_workspace.add_file("tests/test_hash.py", "def test_hash():\n    assert hash('utgen') == 0\n")

    def seen(fresh):
        run = warm_workspace.run_pytest(["tests/test_hash.py"], timeout=60, memory_limit_mb=1024, fresh=fresh)
        (outcome,) = run.outcomes.values()
        return re.search(r"assert (-?\d+) == 0", outcome.message).group(1)

    assert len({seen(False) for _ in range(2)}) == 1
    assert len({seen(True) for _ in range(3)}) == 3


def test_concurrent_runs_through_the_warm_worker_keep_their_own_results(warm_workspace):
    for n in range(4):
        warm_workspace.add_file(f"tests/test_p{n}.py", f"def test_{n}():\n    assert {n} % 2 == 0\n")
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda n: warm_workspace.run_pytest([f"tests/test_p{n}.py"], timeout=60,
                                                                 memory_limit_mb=1024), range(4)))
    for n, run in enumerate(runs):
        assert {k: v.outcome for k, v in run.outcomes.items()} == {
            f"tests/test_p{n}.py::test_{n}": Outcome.PASSED if n % 2 == 0 else Outcome.FAILED}


def test_when_the_warm_worker_dies_runs_go_on_in_fresh_interpreters(warm_workspace):
    warm_workspace.add_file("tests/test_ok.py", "def test_ok():\n    assert True\n")
    first = warm_workspace.run_pytest(["tests/test_ok.py"], timeout=60, memory_limit_mb=1024)
    worker = warm_workspace._worker.process
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    second = warm_workspace.run_pytest(["tests/test_ok.py"], timeout=60, memory_limit_mb=1024)
    for run in (first, second):
        assert [o.outcome for o in run.outcomes.values()] == [Outcome.PASSED]


def test_closing_the_workspace_stops_the_warm_worker_and_every_process_it_forked(project):
    with Workspace(project, [project / "src"]) as ws:
        ws.add_file("tests/test_hang.py", "def test_hang():\n    while True:\n        pass\n")
        run = ws.run_pytest(["tests/test_hang.py"], timeout=3, memory_limit_mb=1024)
        worker, token = ws._worker.process, ws._worker.token
    assert run.timed_out and [o.outcome for o in run.outcomes.values()] == [Outcome.TIMEOUT]
    assert worker.poll() is not None
    left = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if _environ_has(pid, f"{RUN_TOKEN}={token}")]
    assert left == []


def _environ_has(pid: int, entry: str) -> bool:
    try:
        return entry.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def test_outcomes_per_test_and_coverage(workspace, project):
    workspace.add_file("tests/test_c.py", (
        "from calc.ops import add, sign\n\n"
        "def test_ok():\n    assert add(1, 2) == 3\n\n"
        "def test_bad():\n    assert add(1, 2) == 4\n\n"
        "def test_sign():\n    assert sign(5) == 1\n"
    ))
    result = workspace.run_pytest(["tests/test_c.py"], timeout=60, memory_limit_mb=1024,
                                  coverage_of=[workspace.root / "src" / "calc"])
    outcomes = {k.split("::")[1]: v.outcome for k, v in result.outcomes.items()}
    assert outcomes == {"test_ok": Outcome.PASSED, "test_bad": Outcome.FAILED, "test_sign": Outcome.PASSED}
    assert "assert 3 == 4" in result.outcomes["tests/test_c.py::test_bad"].message
    ops = result.coverage[(project / "src" / "calc" / "ops.py").resolve()]
    assert (ops.statements, ops.covered_lines, ops.missing_lines) == (6, 5, [7])
    assert (ops.branches, ops.covered_branches) == (2, 1)


def test_a_hanging_test_is_killed_and_the_finished_ones_are_kept(workspace):
    workspace.add_file("tests/test_h.py", (
        "def test_first():\n    assert True\n\n"
        "def test_hang():\n    while True:\n        pass\n\n"
        "def test_after():\n    assert True\n"
    ))
    result = workspace.run_pytest(["tests/test_h.py"], timeout=5, memory_limit_mb=1024)
    assert result.timed_out
    assert result.outcomes["tests/test_h.py::test_first"].outcome == Outcome.PASSED
    assert result.outcomes["tests/test_h.py::test_hang"].outcome == Outcome.TIMEOUT
    assert "tests/test_h.py::test_after" not in result.outcomes


def test_an_alone_run_gives_each_test_a_fork_made_after_collection(workspace):
    workspace.add_file("tests/test_a.py", (
        "import os, signal\n\nSTATE = []\n\n"
        "def test_sets():\n    STATE.append(1)\n    assert STATE == [1]\n\n"
        "def test_needs():\n    assert STATE == [1]\n\n"
        "def test_exits():\n    os._exit(0)\n\n"
        "def test_hangs():\n    while True:\n        pass\n\n"
        "def test_hangs_past_its_alarm():\n    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
        "    while True:\n        pass\n\n"
        "def test_after():\n    assert not STATE\n"
    ))
    result = workspace.run_pytest(["tests/test_a.py"], timeout=60, memory_limit_mb=1024, test_seconds=1, alone=True)
    outcomes = {nodeid.split("::")[1]: case.outcome for nodeid, case in result.outcomes.items()}
    # No test sees another's state; a test that ends its process, or outlives its limit with the alarm blocked
    # (killed 5 s later), leaves no report; the tests after it still run.
    assert outcomes == {"test_sets": Outcome.PASSED, "test_needs": Outcome.FAILED, "test_exits": Outcome.CRASHED,
                        "test_hangs": Outcome.FAILED, "test_hangs_past_its_alarm": Outcome.CRASHED,
                        "test_after": Outcome.PASSED}
    assert "TestTimeout" in result.outcomes["tests/test_a.py::test_hangs"].message and not result.timed_out


def test_memory_limit_turns_a_runaway_allocation_into_a_failure(workspace):
    workspace.add_file("tests/test_m.py", (
        "def test_eat():\n    chunks = []\n    while True:\n        chunks.append(bytearray(50_000_000))\n\n"
        "def test_fine():\n    assert True\n"
    ))
    result = workspace.run_pytest(["tests/test_m.py"], timeout=60, memory_limit_mb=512)
    assert result.outcomes["tests/test_m.py::test_eat"].outcome == Outcome.FAILED
    assert "MemoryError" in result.outcomes["tests/test_m.py::test_eat"].message
    assert result.outcomes["tests/test_m.py::test_fine"].outcome == Outcome.PASSED


def test_writes_outside_the_workspace_are_refused(workspace, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    workspace.add_file("tests/test_w.py", (
        "import os, shutil\n\n"
        f"def test_write():\n    open({str(victim)!r}, 'w').write('gone')\n\n"
        f"def test_remove():\n    os.remove({str(victim)!r})\n\n"
        f"def test_rmtree():\n    shutil.rmtree({str(tmp_path)!r})\n\n"
        "def test_tmp_path_ok(tmp_path):\n    (tmp_path / 'f').write_text('x')\n"
    ))
    result = workspace.run_pytest(["tests/test_w.py"], timeout=60, memory_limit_mb=1024)
    for name in ("test_write", "test_remove", "test_rmtree"):
        outcome = result.outcomes[f"tests/test_w.py::{name}"]
        assert outcome.outcome == Outcome.UNSAFE and outcome.message.startswith("tried to ")
        assert str(victim) in outcome.message or str(tmp_path) in outcome.message
    assert result.outcomes["tests/test_w.py::test_tmp_path_ok"].outcome == Outcome.PASSED
    assert victim.read_text() == "keep me"


def test_import_check_reports_failures_and_hangs(workspace, project):
    (workspace.root / "src" / "calc" / "boom.py").write_text("raise RuntimeError('no config')\n")
    (workspace.root / "src" / "calc" / "slow.py").write_text("while True:\n    pass\n")
    assert workspace.check_import("calc.ops", 30, 1024) is None
    assert workspace.check_import("calc.boom", 30, 1024) == "import failed: RuntimeError: no config"
    assert "did not finish in 3s" in workspace.check_import("calc.slow", 3, 1024)


CANDIDATE = '''import pytest
from calc.ops import add, sign

STATE = []


def test_add():
    assert add(2, 2) == 4


def test_wrong():
    assert add(2, 2) == 5


def test_sets_state():
    STATE.append(1)
    assert STATE


def test_needs_state():
    assert STATE == [1]


class TestSign:
    def test_negative(self):
        assert sign(-3) == -1

    def test_wrong_sign(self):
        assert sign(0) == 0
'''


def test_validator_keeps_passing_drops_failing_and_order_dependent(workspace, project):
    validator = CandidateValidator(workspace, "tests/test_cand.py", project / "src" / "calc" / "ops.py",
                                   timeout=60, memory_limit_mb=1024, reruns=3)
    result = validator.validate(TestFile(CANDIDATE))
    assert result.generated == 6
    assert result.kept == ["test_add", "test_sets_state", "TestSign::test_negative"]
    assert set(result.failing) == {"test_wrong", "TestSign::test_wrong_sign"}
    assert result.flaky == ["test_needs_state"]
    assert "def test_wrong" not in result.kept_file.source and "class TestSign" in result.kept_file.source
    assert (result.coverage.covered_lines, result.coverage.missing_lines) == (5, [8])


def test_a_test_that_holds_under_few_hash_seeds_is_dropped_as_flaky_even_with_one_rerun(warm_workspace, project):
    """The oracle observes in the warm worker (one hash seed); a user's session hashes with another. An
    expectation that holds under a quarter of the seeds (as one on a small set's order does under half)
    must not pass the final check, which runs enough new interpreters even when ``reruns`` is 1."""
    at_seed_0 = subprocess.run([sys.executable, "-c", "print(hash('utgen') % 4)"], env={**os.environ,
                               "PYTHONHASHSEED": "0"}, capture_output=True, text=True, check=True).stdout.strip()
    candidate = (f"def test_seed_bound():\n    assert hash('utgen') % 4 == {at_seed_0}\n\n\n"
                 "def test_steady():\n    assert sorted({'b', 'a', 'c'}) == ['a', 'b', 'c']\n")
    validator = CandidateValidator(warm_workspace, "tests/test_cand.py", project / "src" / "calc" / "ops.py",
                                   timeout=60, memory_limit_mb=1024, reruns=1)
    assert validator.validate(TestFile(candidate), quick=True).kept == ["test_seed_bound", "test_steady"]
    result = validator.validate(TestFile(candidate))
    assert result.kept == ["test_steady"] and result.flaky == ["test_seed_bound"]


def test_validator_reports_collect_errors(workspace, project):
    validator = CandidateValidator(workspace, "tests/test_cand.py", project / "src" / "calc" / "ops.py",
                                   timeout=60, memory_limit_mb=1024, reruns=1)
    result = validator.validate(TestFile("from calc.ops import nope\n\n\ndef test_x():\n    assert nope\n"))
    assert result.kept_file is None
    assert "cannot import name 'nope'" in result.collect_error


def test_a_test_file_value_lists_prunes_and_merges_its_units():
    candidate = TestFile(CANDIDATE)
    assert candidate.units == ["test_add", "test_wrong", "test_sets_state", "test_needs_state",
                               "TestSign::test_negative", "TestSign::test_wrong_sign"]
    pruned = candidate.prune({"test_add", "TestSign::test_negative"})
    assert pruned.units == ["test_add", "TestSign::test_negative"]
    assert "STATE = []" in pruned.source and "import pytest" in pruned.source
    assert candidate.prune({"test_add"}).units == ["test_add"]
    assert "class TestSign" not in candidate.prune({"test_add"}).source
    assert candidate.prune(set(candidate.units)) is candidate
    assert candidate.unit_sources({"TestSign::test_negative"}) == {
        "TestSign::test_negative": "    def test_negative(self):\n        assert sign(-3) == -1"}
    assert candidate.imports == "import pytest\nfrom calc.ops import add, sign"
    second = TestFile("import math\nfrom calc.ops import add\n\n\ndef test_add():\n    assert add(1, 1) == 2\n\n\n"
                      "def test_same_body():\n    assert add(2, 2) == 4\n")
    merged = candidate.prune({"test_add"}).merge(second).file
    assert merged.units == ["test_add", "test_add_2"]
    # `add` is imported already, the same way: no second import of it.
    assert merged.source.startswith("import math\nimport pytest\nfrom calc.ops import add, sign\n")
    assert merged.source.count("from calc.ops import") == 1
    assert second.tree.body[1].names[0].name == "add"  # merging left the second file's tree as it was
    third = TestFile("from calc.ops import add, mul as times\nimport pytest\n\n\n"
                     "def test_mul():\n    assert times(2, 3) == 6\n")
    again = merged.merge(third).file
    assert again.source.startswith("from calc.ops import mul as times\nimport math\n")
    assert merged.tree is merged.tree  # parsed once, then kept
    assert TestFile(CANDIDATE) == candidate  # equal texts, equal values



def test_a_merged_test_that_imports_a_name_the_file_binds_otherwise_imports_it_inside_itself():
    kept = TestFile("import datetime\n\n\ndef test_date():\n    assert datetime.date(2020, 1, 2).day == 2\n")
    other = TestFile("from datetime import datetime\n\n\ndef test_moment():\n    assert datetime(2020, 1, 2).day == 2"
                     "\n\n\nclass TestMoment:\n    def test_year(self):\n        year = 2020\n"
                     "        assert datetime(year, 1, 2).year == year\n\n\ndef test_other():\n    assert 1 == 1\n")
    merged = kept.merge(other).file
    # Both at the top, the later would break the other's tests (the final checks then drop them all).
    assert merged.source.startswith("import datetime\n") and merged.imports == "import datetime"
    assert merged.source.count("from datetime import datetime") == 2  # in test_moment and test_year, not test_other
    namespace: dict = {}
    exec(merged.source, namespace)
    namespace["test_date"](), namespace["test_moment"](), namespace["TestMoment"]().test_year()


def test_unshadow_replaces_pasted_copies_of_the_code_under_test_by_an_import():
    from pytest_utgen.validate import unshadow

    module = "def similar(a, b):\n    return set(a) & set(b)\n\n\nclass Box:\n    pass\n"
    pasted = ("import pytest\n\ndef similar(a, b):\n    return set(a) & set(b)\n\n\ndef helper():\n    return 1\n\n\n"
              "def test_similar():\n    assert similar([1], [1]) == {1}\n")
    fixed = unshadow(TestFile(pasted), module, "pkg.sim").source
    assert fixed.startswith("from pkg.sim import similar\n")
    assert "return set(a) & set(b)" not in fixed
    assert "def helper" in fixed and "def test_similar" in fixed
    untouched = "from pkg.sim import similar\n\n\ndef test_similar():\n    assert similar([1], [1]) == {1}\n"
    assert unshadow(TestFile(untouched), module, "pkg.sim").source == untouched


def test_a_module_function_named_like_a_test_is_not_collected_from_the_generated_file(workspace):
    workspace.add_file("src/calc/dups.py", "def test_duplicate(items):\n    return len(items) != len(set(items))\n")
    reply = (
        "```python\nfrom calc.dups import test_duplicate\n\n\n"
        "def test_finds_a_duplicate():\n    assert test_duplicate([1, 2, 1]) is True\n\n\n"
        "def test_no_duplicate():\n    assert test_duplicate([1, 2]) is False\n```"
    )
    workspace.add_file("tests/test_raw.py", reply.split("```python\n")[1].rstrip("`"))
    workspace.add_file("tests/test_extracted.py", extract_code(reply))
    raw = workspace.run_pytest(["tests/test_raw.py"], timeout=60, memory_limit_mb=1024)
    extracted = workspace.run_pytest(["tests/test_extracted.py"], timeout=60, memory_limit_mb=1024)
    assert raw.outcomes["tests/test_raw.py::test_duplicate"].outcome != Outcome.PASSED
    assert {k: v.outcome for k, v in extracted.outcomes.items()} == {
        "tests/test_extracted.py::test_finds_a_duplicate": Outcome.PASSED,
        "tests/test_extracted.py::test_no_duplicate": Outcome.PASSED,
    }


def test_script_code_is_cut_from_a_candidate_and_comments_stay():
    from pytest_utgen.validate import strip_script_code

    reply = ("from __future__ import annotations\nimport pytest\nfrom calc.ops import add\n\nTOTAL = 3\n\n\n"
             "def test_add():\n    assert add(1, 2) == TOTAL  # utgen: observed\n\n\nprint('running')\npytest.main()\n\n"
             "if __name__ == '__main__':\n    pytest.main(['-x'])\n")
    assert strip_script_code(TestFile(reply)).source == ("import pytest\nfrom calc.ops import add\n\nTOTAL = 3\n\n\n"
                                        "def test_add():\n    assert add(1, 2) == TOTAL  # utgen: observed\n")
    clean = "import pytest\n\n\ndef test_x():\n    assert True\n"
    assert strip_script_code(TestFile(clean)).source == clean


def test_an_object_whose_repr_builds_an_equal_one_is_expected_by_that_repr_with_its_import(warm_workspace, project):
    shapes = (
        "import dataclasses\nimport datetime\n\n\n@dataclasses.dataclass\nclass Point:\n    x: int\n    y: int\n\n\n"
        "class Opaque:\n    def __init__(self, v):\n        self.v = v\n\n    def __repr__(self):\n"
        "        return f'Opaque({self.v!r})'\n\n\n"
        "def make(x):\n    return Point(x, x + 1)\n\n\ndef span(days):\n    return datetime.timedelta(days=days)\n\n\n"
        "def opaque(v):\n    return Opaque(v)\n\n\ndef check(v):\n    if v < 0:\n"
        "        raise ValueError(f'negative: {v}')\n    return v\n\n\ndef old(v):\n    import warnings\n\n"
        "    warnings.warn('old() is going away', DeprecationWarning, stacklevel=2)\n    return v * 2\n")
    (project / "src" / "calc" / "shapes.py").write_text(shapes)
    warm_workspace.add_file("src/calc/shapes.py", shapes)  # the workspace copied the project before
    candidate = ("from calc.shapes import check, make, old, opaque, span\n\n\ndef test_point():\n    assert make(1) == None\n\n\n"
                 "def test_span():\n    assert span(2) == None\n\n\ndef test_opaque():\n    assert opaque(3) == None\n\n\n"
                 "def test_check():\n    assert check(-1) == None\n\n\ndef test_old():\n    assert old(2) == None\n")
    validator = CandidateValidator(warm_workspace, "tests/test_cand.py", project / "src" / "calc" / "shapes.py",
                                   timeout=60, memory_limit_mb=1024, reruns=1, module_name="calc.shapes", oracle=True)
    result = validator.validate(TestFile(candidate))
    assert result.kept == ["test_point", "test_span", "test_opaque", "test_check", "test_old"]
    source = result.kept_file.source
    assert "    assert make(1) == Point(x=1, y=2)  # utgen: observed\n" in source
    assert "    assert span(2) == datetime.timedelta(days=2)  # utgen: observed\n" in source
    assert "from calc.shapes import Point\n" in source and "import datetime\n" in source
    # Opaque(3) == Opaque(3) is False (compared by identity): its repr is no expectation, its type is.
    assert "    assert isinstance(opaque(3), Opaque)  # utgen: observed\n" in source
    # A raise: its type and its exact message.
    assert "    with pytest.raises(ValueError, match=r'^negative: -1$'):  # utgen: observed\n" in source
    # A value computed with a warning: inside pytest.warns of it.
    assert ("    with pytest.warns(DeprecationWarning, match=r'^old\\(\\) is going away$'):  # utgen: observed\n"
            "        assert old(2) == 4  # utgen: observed\n") in source
    assert not result.failing


def test_only_a_message_that_reads_the_same_anywhere_is_expected_exactly():
    from pytest_utgen._child import exact_message

    assert exact_message(ValueError("bad width: -1")) == "bad width: -1"
    assert exact_message(KeyError("a")) == "'a'"
    for unstable in [FileNotFoundError(2, "No such file", "/tmp/x"), ValueError("got {1, 2}"),
                     ValueError(f"at {object()!r}"), ValueError("two\nlines"), ValueError("x" * 200), ValueError()]:
        assert exact_message(unstable) is None, unstable


def test_a_file_of_placeholders_is_run_instrumented_first_and_keeps_what_the_code_raised(warm_workspace, project):
    validator = CandidateValidator(warm_workspace, "tests/test_cand.py", project / "src" / "calc" / "ops.py",
                                   timeout=60, memory_limit_mb=1024, reruns=1, module_name="calc.ops", oracle=True)
    candidate = TestFile(
        "import pytest\nfrom calc.ops import add\n\n\ndef test_right():\n    assert add(1, 2) == 3\n\n\n"
        "def test_placeholder():\n    assert add(2, 2) == None\n\n\ndef test_two():\n    assert add(1, 1) == 2\n"
        "    assert add('a', 'b') == None\n\n\ndef test_raises():\n    assert add(1, None) == None\n\n\n"
        "def test_wrong_call():\n    assert add(1) == None\n\n\n"
        "def test_hangs():\n    while True:\n        pass\n")
    plain = validator.passing(candidate, test_seconds=2.0)
    first = validator.passing(candidate, test_seconds=2.0, placeholders=True)
    assert plain.kept == ["test_right", "test_placeholder", "test_two"]
    assert first.kept == ["test_right", "test_placeholder", "test_two", "test_raises"]
    assert "    assert add('a', 'b') == 'ab'  # utgen: observed\n" in first.kept_file.source
    # The interpreter raised the TypeError inside add: with values drawn without intent, that is what add does
    # with None; in a model's test it is most often a wrong call, left for the model's repair.
    assert "    with pytest.raises(TypeError, match=" in first.kept_file.source
    assert first.kept_file.prune({"test_right", "test_placeholder", "test_two"}).source == plain.kept_file.source
    # A wrong call raises in the test itself: a mistake either way; a hang is no behaviour.
    assert set(plain.failing) == {"test_raises", "test_wrong_call", "test_hangs"}
    assert set(first.failing) == {"test_wrong_call", "test_hangs"}
