"""Measure one test file against the code it tests: pass rate, line/branch coverage, mutation score.

The same code measures every system (raw model file, validated file, Pynguin), so the numbers are
comparable. Tests run in the plugin's sandbox (child process, timeout, memory limit, write guard);
mutants come from mutmut, run on the passing tests only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pytest_utgen.sandbox import Outcome, Workspace
from pytest_utgen.testfile import TestFile, unit_of

_RESULT_LINE = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")


@dataclass
class MutationScore:
    """mutmut's verdicts for the mutants of one module."""

    killed: int = 0
    timeout: int = 0
    survived: int = 0
    no_tests: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.killed + self.timeout + self.survived + self.no_tests

    @property
    def score(self) -> float | None:
        """(killed + timeout) / (killed + timeout + survived + not covered); None without mutants."""
        return (self.killed + self.timeout) / self.total if self.total else None


@dataclass
class Measurement:
    """Everything measured for one test file."""

    collected: bool
    tests_run: int = 0
    tests_passed: int = 0
    all_pass: bool = False
    line_coverage: float | None = None
    branch_coverage: float | None = None
    line_branch_coverage: float | None = None  # coverage.py's total with branches: (lines + arcs) run / all
    mutation: MutationScore = field(default_factory=MutationScore)
    error: str | None = None

    @property
    def pass_rate(self) -> float:
        return self.tests_passed / self.tests_run if self.tests_run else 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(pass_rate=self.pass_rate, mutation_score=self.mutation.score)
        return data


def mutation_score(source_root: Path, module_file: Path, test_file: Path, timeout: float = 600) -> MutationScore:
    """Run mutmut on ``module_file`` (relative to ``source_root``) with ``test_file``; count verdicts."""
    with tempfile.TemporaryDirectory(prefix="utgen-mutmut-") as tmp:
        work = Path(tmp) / "project"
        shutil.copytree(source_root, work, ignore=shutil.ignore_patterns("__pycache__", "tests", "mutants"))
        (work / "tests").mkdir()
        shutil.copy(test_file, work / "tests" / test_file.name)
        relative = module_file.relative_to(source_root)
        # mutmut runs the tests from its own copy (mutants/): the module's package and its dependencies go too,
        # with their metadata (humanize reads its own version with importlib.metadata when imported).
        also = sorted(p.name for p in work.iterdir() if p.name not in ("tests", "mutants", "setup.cfg", "bin"))
        (work / "setup.cfg").write_text(
            f"[mutmut]\nsource_paths={relative}\npytest_add_cli_args_test_selection=tests/\n"
            + "also_copy=\n" + "".join(f"    {name}\n" for name in also)
        )
        run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", "2"], cwd=work,
                             capture_output=True, text=True, timeout=timeout)
        results = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=work,
                                 capture_output=True, text=True, timeout=120)
    score = MutationScore()
    for line in results.stdout.splitlines():
        match = _RESULT_LINE.match(line)
        if not match:
            continue
        status = match.group(2).strip()
        if status == "killed":
            score.killed += 1
        elif status == "timeout":
            score.timeout += 1
        elif status == "survived":
            score.survived += 1
        elif status == "no tests":
            score.no_tests += 1
        else:
            score.other += 1
    if score.total == 0 and run.returncode != 0:
        score.other = -1
    return score


def measure(source_root: Path, module_file: Path, test_source: str, timeout: float = 60,
            memory_limit_mb: int = 2048, mutate: bool = True) -> Measurement:
    """Run ``test_source`` against the module in ``source_root``; coverage and mutants on its passing tests."""
    with tempfile.TemporaryDirectory(prefix="utgen-measure-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(source_root, project, ignore=shutil.ignore_patterns("__pycache__", "mutants"))
        test_file = project / "tests_utgen_eval" / "test_generated.py"
        test_file.parent.mkdir()
        test_file.write_text(test_source)
        target_module = project / module_file.relative_to(source_root)
        with Workspace(project, [project]) as workspace:
            run = workspace.run_pytest(["tests_utgen_eval/test_generated.py"], timeout=timeout,
                                       memory_limit_mb=memory_limit_mb)
            if run.collect_errors or not run.outcomes:
                return Measurement(collected=False, error="\n".join(run.collect_errors)[-2000:] or "no tests ran")
            passed_units = {unit_of(n) for n, o in run.outcomes.items() if o.outcome == Outcome.PASSED}
            failed_units = {unit_of(n) for n, o in run.outcomes.items() if o.outcome != Outcome.PASSED}
            keep = passed_units - failed_units
            result = Measurement(
                collected=True, tests_run=len(run.outcomes),
                tests_passed=sum(o.outcome == Outcome.PASSED for o in run.outcomes.values()),
            )
            result.all_pass = result.tests_passed == result.tests_run
            if not keep:
                return result
            passing_source = TestFile(test_source).prune(keep).source
            test_file.write_text(passing_source)
            workspace.add_file("tests_utgen_eval/test_generated.py", passing_source)
            covered = workspace.run_pytest(["tests_utgen_eval/test_generated.py"], timeout=timeout,
                                           memory_limit_mb=memory_limit_mb, coverage_of=[workspace.root])
            coverage = (covered.coverage or {}).get(target_module.resolve())
            if coverage is not None:
                result.line_coverage, result.branch_coverage = coverage.line_percent, coverage.branch_percent
                result.line_branch_coverage = coverage.line_branch_percent
        if mutate:
            result.mutation = mutation_score(project, target_module, test_file)
        return result
