"""Child process of the corpus filter: ``python _kill_matrix.py SPEC.json``.

In a workspace holding the ground truth and candidate test files: mutate the module under test with
mutmut (its mutants sit behind mutmut's trampolines), run the candidates with pytest once on the real
code, then re-run every passing test against each mutant of the problem's functions and write, per
test, whether it passed, which mutants it killed (a failure, an error or a timeout kills) and, for a
parametrized case, its parameter indices. A mutant
already killed by an earlier test of the same file is not run again: the union per file is what counts.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

import pytest


class MutantTimeout(Exception):
    """A test ran past its time limit (on a mutant: counted as a kill; on the real code: a failure)."""


def _on_alarm(signum, frame):
    raise MutantTimeout()


class KillMatrix:
    """pytest plugin: outcome on the real code, then the mutants each passing test kills."""

    def __init__(self, mutants: list[str], seconds: float, test_seconds: float):
        self.mutants = mutants
        self.seconds = seconds
        self.test_seconds = test_seconds
        self.tests: dict[str, dict] = {}
        self.killed_in_file: dict[str, set[str]] = {}
        self.collect_errors: dict[str, str] = {}

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors[report.nodeid] = str(report.longrepr)[-2000:]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        from mutmut.mutation.trampoline import set_mutant_under_test

        signal.setitimer(signal.ITIMER_REAL, self.test_seconds)
        outcome = yield
        signal.setitimer(signal.ITIMER_REAL, 0)
        passed = outcome.excinfo is None
        killed, timeouts = [], []
        already = self.killed_in_file.setdefault(item.nodeid.split("::")[0], set())
        if passed:
            for name in [m for m in self.mutants if m not in already]:
                set_mutant_under_test(name)
                try:
                    signal.setitimer(signal.ITIMER_REAL, self.seconds)
                    item.runtest()
                except MutantTimeout:
                    timeouts.append(name)
                except BaseException:  # noqa: BLE001 - any failure of a mutated run is a kill
                    killed.append(name)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    set_mutant_under_test(None)
                    os.environ["MUTANT_UNDER_TEST"] = ""
        already.update(killed, timeouts)
        callspec = getattr(item, "callspec", None)
        self.tests[item.nodeid] = {"passed": passed, "killed": killed, "timeouts": timeouts,
                                   "indices": dict(callspec.indices) if callspec else None}


def mutate(module_file: str, module: str, names: list[str]) -> tuple[list[str], str | None]:
    """Replace ``module_file`` by mutmut's mutated version; the full names of the mutants of ``names``."""
    import ast

    from mutmut.mutation.file_mutation import mutate_file_contents

    from pytest_utgen.prompt import node_span

    with open(module_file, encoding="utf-8") as handle:
        source = handle.read()
    wanted = set(names)
    lines: set[int] = set()
    for node in ast.parse(source).body:
        if getattr(node, "name", None) in wanted:
            start, end = node_span(node)
            lines.update(range(start, end + 1))
    try:
        mutated = mutate_file_contents(module_file, source, covered_lines=lines)
    except Exception as error:  # noqa: BLE001 - a module mutmut cannot parse is filtered without mutants
        return [], f"{type(error).__name__}: {error}"
    with open(module_file, "w", encoding="utf-8") as handle:
        handle.write(mutated.code)
    chosen = []
    for mutant in mutated.mutant_names:
        owner = mutant.split("__mutmut_")[0]
        top = owner[2:] if owner.startswith("x_") else owner.split("ǁ")[1]
        if top in wanted:
            chosen.append(f"{module}.{mutant}")
    return chosen, None


def main(spec_path: str) -> int:
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    limit = spec["memory_limit_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    mutants, mutation_error = mutate(spec["module_file"], spec["module"], spec["names"])
    from pytest_utgen.guard import install

    install().configure(spec["allowed"], outside_tests=spec["allowed"])
    signal.signal(signal.SIGALRM, _on_alarm)
    matrix = KillMatrix(mutants, spec["mutant_seconds"], spec["test_seconds"])
    pytest.main(["-q", "-p", "no:cacheprovider", "--continue-on-collection-errors", "--rootdir", spec["root"],
                 spec["tests_dir"]], plugins=[matrix])
    with open(spec["results"], "w", encoding="utf-8") as handle:
        json.dump({"mutants": mutants, "mutation_error": mutation_error, "tests": matrix.tests,
                   "collect_errors": matrix.collect_errors}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
