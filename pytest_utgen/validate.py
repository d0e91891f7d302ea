"""Validate: run a candidate test file in the sandbox and keep only the tests that pass reliably."""

from __future__ import annotations

import ast
import builtins
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .mutate import Mutant
from .oracle import Adopted, adopt, instrument
from .sandbox import FileCoverage, MutationRun, Observation, Outcome, RunResult, Workspace
from .testfile import TestFile, unit_of

# The final check's new interpreters hash strings each with a seed of its own, where candidates ran and the
# oracle observed under one (the warm worker's): an expectation that holds under half the seeds, as one on the
# order of a two-element set of strings does, passes all of them once in 64.
MIN_FRESH_RUNS = 6
MUTANT_TEST_SECONDS = 2.0  # a test still running after this under a mutant is stopped: the mutant made it hang


@dataclass
class ValidationResult:
    """What survived a candidate file: the kept tests as a file, and what was dropped and why.

    ``file`` is the candidate as validated: with the observed-value oracle, its wrong expectations are
    replaced (listed in ``adopted``).
    """

    kept_file: TestFile | None
    file: TestFile
    adopted: list[Adopted] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failing: dict[str, str] = field(default_factory=dict)
    flaky: list[str] = field(default_factory=list)
    generated: int = 0
    collect_error: str | None = None
    coverage: FileCoverage | None = None


def strip_script_code(test_file: TestFile) -> TestFile:
    """The test file without what only a script needs: ``if __name__ == "__main__":`` blocks, top-level calls
    (``pytest.main()``, ``unittest.main()``, ``print(...)``) and ``from __future__`` imports.

    A top-level ``pytest.main()`` runs a nested pytest session with the user's own arguments when the file
    is collected (``--utgen`` included); a ``__future__`` import stops being first once imports are added.
    """
    def is_script(node: ast.stmt) -> bool:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            return True
        if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant):
            return True
        test = ast.unparse(node.test) if isinstance(node, ast.If) else ""
        return "__name__" in test and "__main__" in test

    script = [node for node in test_file.tree.body if is_script(node)]
    return test_file.without(script) if script else test_file


def absolute_imports(test_file: TestFile, package: str) -> TestFile:
    """The test file's relative imports made absolute from the module's ``package``: a test file does not
    live in the package, so ``from .queries import Query`` can only mean ``from <package>.queries import Query``
    (left as it is where it climbs above the top-level package)."""
    relative = [n for n in test_file.tree.body if isinstance(n, ast.ImportFrom) and n.level]
    if not relative:
        return test_file
    lines = list(test_file.lines)
    parts = package.split(".") if package else []
    for node in sorted(relative, key=lambda n: n.lineno, reverse=True):
        if node.level - 1 >= len(parts):
            continue
        base = parts[: len(parts) - (node.level - 1)]
        absolute = ast.ImportFrom(module=".".join(base + ([node.module] if node.module else [])), names=node.names,
                                  level=0)
        lines[node.lineno - 1: node.end_lineno] = [ast.unparse(absolute)]
    return TestFile("\n".join(lines) + "\n")


def unshadow(test_file: TestFile, module_source: str, module_name: str) -> TestFile:
    """Replace copies of the module's own functions/classes in a test file by an import of the real ones.

    Small models often paste the code under test into the test file, so its tests exercise the copy;
    dropping the copies and importing the originals makes them test the module.
    """
    module_tree = ast.parse(module_source)
    defined = {n.name for n in module_tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    copies = [
        node for node in test_file.tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.name in defined and not node.name.lower().startswith("test")
    ]
    if not copies:
        return test_file
    names = ", ".join(sorted({n.name for n in copies}))
    return TestFile(f"from {module_name} import {names}\n" + test_file.without(copies).source)


def import_missing_names(test_file: TestFile, module_source: str, module_name: str) -> TestFile:
    """Import the names the test file uses but never binds, where they can only mean one thing: the module
    under test's own functions, classes and constants (``from module import ...``), a name the module itself
    imports (its import again; a relative one through the module), a standard library module, the module's
    top-level package, and ``pytest``.

    The model often uses a class or helper of the module, ``timedelta`` or ``pytest.raises`` without
    importing it; the NameError is certain, so the import is added before anything runs.
    """
    tree = test_file.tree
    module_tree = ast.parse(module_source)
    defined = {n.name for n in module_tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    defined |= {t.id for n in module_tree.body if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    bound: set[str] = set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    # An import binds its name file-wide only at the top: one inside a test binds it in that test alone (a
    # docstring example's ``import semver`` becomes the first line of its own test).
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    unbound = used - bound - set(dir(builtins))
    if any(isinstance(n, ast.ImportFrom) and n.module == module_name and any(a.name == "*" for a in n.names)
           for n in tree.body):
        unbound -= defined  # the star import binds them
    head = ["import pytest"] if "pytest" in unbound else []
    own = sorted(unbound & defined)
    if own:
        head.append(f"from {module_name} import {', '.join(own)}")
    imported = _module_imports(module_tree, module_name)
    head.extend(imported[name] for name in sorted(unbound - defined) if name in imported)
    top = module_name.split(".")[0]
    # The module's top-level package (a docstring's ``semver.compare(...)``, its import in another test), once
    # even where it shares a standard library module's name.
    head.extend(f"import {name}" for name in sorted(unbound - defined - set(imported) - {"pytest"})
                if name in sys.stdlib_module_names or name == top)
    if not head:
        return test_file
    # Two blank lines between the imports and a file that starts with its first definition (seeds, calls).
    gap = "" if test_file.source.startswith(("import ", "from ", "\n", "#")) else "\n\n"
    return TestFile("".join(line + "\n" for line in head) + gap + test_file.source)


def _module_imports(module_tree: ast.Module, module_name: str) -> dict[str, str]:
    """Each name the module's top-level imports bind, and an import statement that binds it in a test."""
    found: dict[str, str] = {}
    for node in module_tree.body:
        for alias in node.names if isinstance(node, (ast.Import, ast.ImportFrom)) else ():
            name = alias.asname or alias.name.split(".")[0]
            if alias.name == "*":
                continue
            alias_text = f" as {alias.asname}" if alias.asname else ""
            if isinstance(node, ast.Import):
                found[name] = f"import {alias.name}{alias_text}"
            elif node.level == 0 and node.module != "__future__":
                found[name] = f"from {node.module} import {alias.name}{alias_text}"
            elif node.level:  # relative: the name is an attribute of the module under test
                found[name] = f"from {module_name} import {name}"
    return found


def _observations(run: RunResult) -> dict[str, list[Observation]]:
    """Per test unit, what an instrumented run observed (a parametrized test's cases are left out: one
    expectation cannot hold each case's value)."""
    return {unit_of(nodeid): o.observations for nodeid, o in run.outcomes.items()
            if o.observations and "[" not in nodeid}


def contributions(run: MutationRun) -> dict[str, set]:
    """What each test unit holds of a mutant run: ("line", n), ("arc", (a, b)) and ("mutant", id) items,
    what :func:`greedy_cover` picks from."""
    found: dict[str, set] = {}
    for nodeid in run.lines.keys() | run.kills.keys():
        found.setdefault(unit_of(nodeid), set()).update(
            {("line", n) for n in run.lines.get(nodeid, ())} | {("arc", a) for a in run.arcs.get(nodeid, ())}
            | {("mutant", m) for m in run.kills.get(nodeid, ())})
    return found


def counted(held_by: dict[str, set], statements: set[int], arcs: set[tuple[int, int]]) -> dict[str, set]:
    """``held_by`` (see :func:`contributions`) with only the lines and branches coverage.py counts for the module
    (``statements``, ``arcs``; unfiltered while they are unknown): a mutant run imports the module as mutant
    schemata, whose code also reports the continuation lines of a statement split over lines, which would count
    as covered lines in the module's union without being statements."""
    if not statements:
        return held_by
    return {unit: {item for item in items if item[0] == "mutant" or item[1] in (
        statements if item[0] == "line" else arcs)} for unit, items in held_by.items()}


def greedy_cover(units: list[str], contributions: dict[str, set], covered: set = frozenset()) -> list[str]:
    """The keep set: repeatedly the unit adding the most not yet covered (lines, branches, killed mutants;
    ``covered`` is held already), until none adds anything; ties go to the earlier unit. The chosen units,
    in that order."""
    chosen: list[str] = []
    covered = set(covered)
    candidates = list(units)
    while candidates:
        best = max(candidates, key=lambda unit: len(contributions.get(unit, set()) - covered))
        gain = contributions.get(best, set()) - covered
        if not gain:
            break
        chosen.append(best)
        covered |= gain
        candidates.remove(best)
    return chosen


class CandidateValidator:
    """Runs candidate files of one module in a workspace and applies the keep rules."""

    def __init__(
        self,
        workspace: Workspace,
        relative_path: str,
        module_path: Path,
        timeout: float,
        memory_limit_mb: int,
        reruns: int,
        module_name: str = "",
        oracle: bool = False,
    ):
        self.module_name = module_name
        self.oracle = oracle
        self.workspace = workspace
        self.relative_path = relative_path
        self.module_path = module_path
        self.timeout = timeout
        self.memory_limit_mb = memory_limit_mb
        self.reruns = reruns
        self.source_dir = workspace.to_workspace(module_path).parent

    def _run(self, file: TestFile, targets: list[str] | None = None, order_seed: int | None = None,
             coverage: bool = False, test_seconds: float | None = None, fresh: bool = False) -> RunResult:
        self.workspace.add_file(self.relative_path, file.source)
        return self.workspace.run_pytest(
            targets or [self.relative_path],
            timeout=self.timeout,
            memory_limit_mb=self.memory_limit_mb,
            order_seed=order_seed,
            coverage_of=[self.source_dir] if coverage else None,
            test_seconds=test_seconds,
            fresh=fresh,
        )

    @staticmethod
    def _passing_units(result: RunResult, units: list[str]) -> tuple[set[str], dict[str, str]]:
        failing: dict[str, str] = {}
        seen: set[str] = set()
        for nodeid, outcome in result.outcomes.items():
            unit = unit_of(nodeid)
            seen.add(unit)
            if outcome.outcome != Outcome.PASSED:
                failing.setdefault(unit, f"{outcome.outcome.value}: {outcome.message}".strip())
        return {u for u in units if u in seen and u not in failing}, failing

    def _adopt_observed(self, file: TestFile, result: ValidationResult, passing: set[str],
                        test_seconds: float | None,
                        observed: dict[str, list[Observation]] | None = None, code_errors: bool = False) -> TestFile:
        """Run the failing tests instrumented (unless their ``observed`` run is given), adopt what the code did
        for their wrong expectations (``code_errors``: see :func:`oracle.adopt`), and run the rewritten tests
        again: those that pass now join ``passing``."""
        failing = {u for u in result.failing if u in file.unit_nodes}
        if observed is None:
            # The whole file, instrumented, with only the failing tests selected: its lines are the file's lines.
            run = self._run(instrument(file, failing), [f"{self.relative_path}::{unit}" for unit in sorted(failing)],
                            test_seconds=test_seconds)
            observed = _observations(run)
        file, adopted = adopt(file, self.module_name, {u: seen for u, seen in observed.items() if u in failing},
                              code_errors=code_errors)
        if not adopted:
            return file
        result.adopted.extend(adopted)
        retried = sorted({a.unit for a in adopted})
        ok, still = self._passing_units(self._run(file.prune(set(retried)), test_seconds=test_seconds), retried)
        for unit in ok:
            result.failing.pop(unit, None)
        result.failing.update(still)
        passing |= ok
        return file

    def mutation_run(self, file: TestFile, mutants: list[Mutant], seconds: float | None = None) -> MutationRun:
        """The tests of ``file`` run as written (per-test coverage) and against each of ``mutants``; the run is
        stopped after ``seconds`` when given (what it found by then is in the result, the rest ``not_run``)."""
        self.workspace.add_file(self.relative_path, file.source)
        timeout = self.timeout + MUTANT_TEST_SECONDS * len(mutants)
        return self.workspace.run_mutants(
            [self.relative_path], self.module_name, self.workspace.to_workspace(self.module_path), mutants,
            timeout=min(timeout, seconds) if seconds is not None else timeout, memory_limit_mb=self.memory_limit_mb,
            test_seconds=MUTANT_TEST_SECONDS,
        )

    def passing(self, file: TestFile, test_seconds: float | None = None,
                placeholders: bool = False) -> ValidationResult:
        """One run of ``file`` (more when the process dies inside a test), then, with the oracle, the failing
        tests' wrong expectations adopted and those tests run again: ``kept`` lists the tests that passed,
        ``file`` is the file as adopted. No coverage, no reruns. ``test_seconds`` limits each test.
        ``placeholders``: most of its expectations are placeholders (tests built without the model), so the
        first run is the instrumented one: a test whose every expectation held passes as written, and a
        TypeError or AttributeError the interpreter raised inside the code is adopted as what it does."""
        result, passing = self._passing(file, test_seconds, placeholders)
        if result.collect_error:
            return result
        return self._finish(result, passing, None)

    def _passing(self, file: TestFile, test_seconds: float | None = None,
                 observe_first: bool = False) -> tuple[ValidationResult, set[str]]:
        """``passing`` before the prune: the result (``file`` adopted) and the passing units."""
        units = file.units
        result = ValidationResult(kept_file=None, file=file, generated=len(units))
        observe_first = observe_first and self.oracle
        pending = list(units)
        passing: set[str] = set()
        observed: dict[str, list[Observation]] = {}
        while pending:
            if observe_first:
                run = self._run(instrument(file, set(pending)),
                                [f"{self.relative_path}::{unit}" for unit in pending], test_seconds=test_seconds)
            else:
                run = self._run(file.prune(set(pending)), test_seconds=test_seconds)
            if run.collect_errors:
                result.collect_error = "\n".join(run.collect_errors)
                return result, set()
            ok, failing = self._passing_units(run, pending)
            if observe_first:
                seen = _observations(run)
                observed.update(seen)
                # Passed only because the instrumented checks let it go on: an expectation did not hold.
                unmet = {u for u in ok if any(not o.matched for o in seen.get(u, ()))}
                ok -= unmet
                failing.update({u: "failed: an expectation the code did not meet" for u in unmet})
            passing |= ok
            result.failing.update(failing)
            not_run = [u for u in pending if u not in ok and u not in failing]
            if not run.died or not not_run:
                for unit in not_run:
                    result.failing[unit] = "never ran: pytest did not collect it"
                break
            # The process died inside a test (a crash, a timeout, os._exit): the tests after it run again
            # without it; the one it died in is in ``failing``, so each round is shorter.
            pending = not_run
        if self.oracle and result.failing:
            result.file = self._adopt_observed(file, result, passing, test_seconds,
                                               observed if observe_first else None, code_errors=observe_first)
        return result, passing

    def validate(self, file: TestFile, quick: bool = False) -> ValidationResult:
        """Keep the tests of ``file`` that pass, pass alone, and pass ``reruns`` times in random order (at
        least ``MIN_FRESH_RUNS`` times when ``reruns`` is not 0), each time in a new interpreter.

        ``quick``: one run (two when some fail) with coverage, no alone or random-order reruns; for
        candidates whose kept tests are validated again, fully, as one file at the end.
        """
        result, passing = self._passing(file)
        if result.collect_error:
            return result
        file, kept = result.file, set(passing)
        if quick:
            return self._finish(result, kept, self._coverage_of(file, kept))
        if kept:
            kept -= self._fails_alone(file.prune(kept), kept)
            result.flaky.extend(sorted(passing - kept))
        coverage: FileCoverage | None = None
        if kept:
            self.workspace.add_file(self.relative_path, file.prune(kept).source)

            def rerun(attempt: int) -> RunResult:
                # In new interpreters: a value that depends on the memory layout or the hash seed differs
                # there, as in a user's run. Two at a time: they are independent, and most of a run is start-up.
                return self.workspace.run_pytest(
                    [self.relative_path], timeout=self.timeout, memory_limit_mb=self.memory_limit_mb,
                    order_seed=attempt + 1 if self.reruns else None,
                    coverage_of=[self.source_dir] if attempt == 0 else None, fresh=True,
                )

            with ThreadPoolExecutor(max_workers=2) as pool:
                reruns = list(pool.map(rerun, range(max(self.reruns, MIN_FRESH_RUNS) if self.reruns else 1)))
            ok = set(kept)
            for run in reruns:
                ok &= self._passing_units(run, sorted(kept))[0]
            result.flaky.extend(sorted(kept - ok))
            if ok == kept and reruns[0].coverage is not None:
                coverage = reruns[0].coverage.get(self.module_path)
            kept = ok
        if kept and coverage is None:
            coverage = self._coverage_of(file, kept)
        return self._finish(result, kept, coverage)

    def _coverage_of(self, file: TestFile, kept: set[str]) -> FileCoverage | None:
        if not kept:
            return None
        run = self._run(file.prune(kept), coverage=True)
        return (run.coverage or {}).get(self.module_path)

    @staticmethod
    def _finish(result: ValidationResult, kept: set[str], coverage: FileCoverage | None) -> ValidationResult:
        # The adopted file has the candidate's units, under the same names.
        result.kept = [u for u in result.file.units if u in kept]
        result.kept_file = result.file.prune(kept) if kept else None
        result.coverage = coverage
        return result

    def _fails_alone(self, file: TestFile, units: set[str]) -> set[str]:
        """Units that fail when run by themselves (they relied on another test's side effects): one child
        run, each test in a fork of it made after collection, under the time limit a run of its own had."""
        self.workspace.add_file(self.relative_path, file.source)
        run = self.workspace.run_pytest([self.relative_path], timeout=self.timeout * max(1, len(units)),
                                        memory_limit_mb=self.memory_limit_mb, test_seconds=self.timeout, alone=True)
        passed = {unit_of(n) for n, o in run.outcomes.items() if o.outcome == Outcome.PASSED}
        failed = {unit_of(n) for n, o in run.outcomes.items() if o.outcome != Outcome.PASSED}
        return {unit for unit in units if unit not in passed or unit in failed}
