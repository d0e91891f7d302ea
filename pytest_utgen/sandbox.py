"""Sandbox: run pytest on test files in a child process, in a temp copy of the project, under limits."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterable

from .discover import SKIP_DIRS
from .mutate import Mutant

# The child's environment is built from these names only: no tokens, keys or proxies of the user's.
ENV_ALLOWED = {"PATH", "LANG", "LANGUAGE", "TZ", "TERM", "SYSTEMROOT", "LD_LIBRARY_PATH"}
ENV_PREFIXES = ("LC_",)
# Every process of one sandbox run carries this variable; after the run, whichever still does is killed.
RUN_TOKEN = "UTGEN_SANDBOX_RUN"
# Plugins off in every child: no cache written, no utgen inside utgen, no reordering but our own seed.
PLUGIN_OPTIONS = ("-p", "no:cacheprovider", "-p", "no:utgen", "-p", "no:randomly")
START_SECONDS = 60  # for the warm worker to start a run (the first waits for its imports and warm-up)


class Outcome(str, Enum):
    """How one test id ended in a sandbox run."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # in setup or teardown
    SKIPPED = "skipped"
    TIMEOUT = "timeout"
    CRASHED = "crashed"  # the test process died while it ran
    UNSAFE = "unsafe"  # it tried a side effect the guard refused (whether or not it then passed)


class RaisedBy(str, Enum):
    """Where an exception a test saw came from."""

    TEST = "test"  # the test's own statements: a wrong call, a missing name
    CODE = "code"  # the interpreter, inside the code under test: ``None + 1`` in a function given None
    RAISE = "raise"  # a ``raise`` statement of the code, or an operator whose special method refused an object


@dataclass(frozen=True)
class Observation:
    """What a test did at ``line`` of its file: an instrumented ``==`` whose left side evaluated to ``value``
    (its literal repr; None when it has none, and then maybe its ``value_type``) and did or did not match, or a
    statement that raised ``raised`` (types: a builtin's name, else ``module:qualname``)."""

    line: int
    value: str | None = None
    matched: bool = True
    raised: str | None = None
    imports: tuple[str, ...] = ()  # what ``value`` needs imported (an object's class, for a constructor repr)
    value_type: str | None = None  # the type of a value without a literal repr, when a test can name it
    message: str | None = None  # what ``raised`` said, when a test can expect it exactly
    warnings: tuple[tuple[str, str | None], ...] = ()  # what computing ``value`` warned: (type, exact message)
    raised_by: RaisedBy = RaisedBy.TEST  # where ``raised`` came from


@dataclass
class CaseOutcome:
    """The result of one test id, with the reason when it did not pass."""

    nodeid: str
    outcome: Outcome
    message: str = ""
    observations: list[Observation] = field(default_factory=list)


@dataclass
class FileCoverage:
    """Line and branch coverage of one source file, from coverage.py's JSON report."""

    statements: int
    covered_lines: int
    branches: int
    covered_branches: int
    missing_lines: list[int] = field(default_factory=list)
    executed_lines: list[int] = field(default_factory=list)
    missing_branches: list[tuple[int, int]] = field(default_factory=list)
    executed_branches: list[tuple[int, int]] = field(default_factory=list)

    @property
    def line_percent(self) -> float:
        return 100.0 * self.covered_lines / self.statements if self.statements else 100.0

    @property
    def branch_percent(self) -> float:
        return 100.0 * self.covered_branches / self.branches if self.branches else 100.0

    @property
    def line_branch_percent(self) -> float:
        """coverage.py's total with branch measurement: lines and branches run over all of them."""
        total = self.statements + self.branches
        return 100.0 * (self.covered_lines + self.covered_branches) / total if total else 100.0


@dataclass
class RunResult:
    """What one child pytest run produced."""

    outcomes: dict[str, CaseOutcome]
    collect_errors: list[str]
    returncode: int
    timed_out: bool
    output: str
    died: bool = False  # the process ended inside a test (crash, os._exit, timeout): later tests never ran
    coverage: dict[Path, FileCoverage] | None = None


class _WarmWorker:
    """A child started once per workspace with pytest, coverage and the runner imported, that forks one
    process per run (``python -m pytest_utgen._child --serve``). A fresh interpreter would pay that start,
    about 0.3 s a run on the 2-core build machine, every time. Each fork runs as a fresh child does: its own
    session, the run's environment, memory limit and output file."""

    def __init__(self, cwd: Path, env: dict[str, str], log: Path, plugin_options: list[str]):
        self.token = env[RUN_TOKEN]
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pytest_utgen._child", "--serve", *plugin_options], cwd=cwd, env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._runs: dict[int, _ForkedRun] = {}
        self.alive = True
        threading.Thread(target=self._read_answers, daemon=True).start()

    def _read_answers(self) -> None:
        for line in self.process.stdout:
            try:
                answer = json.loads(line)
            except ValueError:  # not an answer: the worker writes nothing else there, but never trust it
                continue
            with self._lock:
                run = self._runs.get(answer["id"])
            if run is None:
                continue
            if "pid" in answer:
                run.pid = answer["pid"]
                run.started.set()
            else:
                run.returncode = answer["exit"]
                run.ended.set()
        with self._lock:  # the worker is gone: nothing more will be answered
            self.alive = False
            for run in self._runs.values():
                run.started.set()
                run.ended.set()

    def run(self, spec_path: Path, env: dict[str, str], output: Path, timeout: float,
            memory_limit_mb: int) -> tuple[int, bool] | None:
        """Run a spec in a fork: (exit status, timed out), or None when the worker could not start it."""
        run = _ForkedRun()
        request = {"spec": str(spec_path), "env": env, "output": str(output), "memory_limit_mb": memory_limit_mb}
        with self._lock:
            if not self.alive:
                return None
            request["id"] = key = next(self._ids)
            self._runs[key] = run
            try:
                self.process.stdin.write((json.dumps(request) + "\n").encode())
                self.process.stdin.flush()
            except OSError:
                self.alive = False
                return None
        try:
            if not run.started.wait(START_SECONDS) or run.pid is None:
                # Stopped, so that it cannot start this run later, alongside the fresh child that runs it now.
                self.alive = False
                _kill_group(self.process.pid)
                return None
            timed_out = not run.ended.wait(timeout)
            _kill_tree(run.pid, env[RUN_TOKEN])  # on time out the fork; else whatever it left behind
            if timed_out:
                run.ended.wait(10)
            return (run.returncode if run.returncode is not None else -signal.SIGKILL), timed_out
        finally:
            if run.pid is not None and not run.ended.is_set():  # interrupted while it ran
                _kill_group(run.pid)
            with self._lock:
                self._runs.pop(key, None)

    def close(self) -> None:
        """Stop the worker, and kill every process that came from it (forks keep its token in /proc)."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(self.process.pid)
        _kill_with_env(f"{RUN_TOKEN}={self.token}")
        self.process.wait()


@dataclass
class _ForkedRun:
    """One request to the warm worker, as its answers come in."""

    pid: int | None = None
    returncode: int | None = None
    started: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)


def _memory_limiter(limit_mb: int):
    def apply() -> None:
        import resource

        limit = limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


class Workspace:
    """A temp copy of the project in which children run; the user's tree is never touched.

    Source roots outside the project root are copied under ``_external/``. Files the children
    may write (results, coverage data, pytest's basetemp) go under ``scratch``.
    """

    def __init__(self, project_root: Path, source_roots: Iterable[Path], exclude: Iterable[Path] = (),
                 warm: bool = True):
        self.project_root = project_root.resolve()
        self.tmp = Path(tempfile.mkdtemp(prefix="utgen-ws-")).resolve()
        self.root = self.tmp / "project"
        self.scratch = self.tmp / "scratch"
        self.scratch.mkdir()
        excluded = {p.resolve() for p in exclude}
        self._external: dict[Path, Path] = {}
        self._copy(self.project_root, self.root, excluded)
        self.source_roots: list[Path] = []
        for index, source_root in enumerate(dict.fromkeys(p.resolve() for p in source_roots)):
            if source_root == self.project_root or self.project_root in source_root.parents:
                self.source_roots.append(self.to_workspace(source_root))
            else:
                copy = self.tmp / "_external" / str(index)
                self._copy(source_root, copy, excluded)
                self._external[source_root] = copy
                self.source_roots.append(copy)
        self._run_ids = itertools.count(1)
        # Runs are forks of one warm worker where processes fork (Linux); else each is a fresh interpreter.
        self._warm = warm and sys.platform.startswith("linux")
        self._worker: _WarmWorker | None = None
        self._worker_lock = threading.Lock()

    @staticmethod
    def _copy(src: Path, dst: Path, excluded: set[Path]) -> None:
        def ignore(directory: str, names: list[str]) -> list[str]:
            base = Path(directory)
            return [
                n for n in names
                if n in SKIP_DIRS or n.startswith(".") or (base / n).resolve() in excluded
            ]

        shutil.copytree(src, dst, ignore=ignore, symlinks=True)

    def to_workspace(self, path: Path) -> Path:
        """The copy of ``path`` (a path in the user's tree) inside the workspace."""
        path = path.resolve()
        for original, copy in self._external.items():
            if path == original or original in path.parents:
                return copy / path.relative_to(original)
        return self.root / path.relative_to(self.project_root)

    def from_workspace(self, path: Path) -> Path:
        """The user's path that the workspace file ``path`` is a copy of."""
        path = path.resolve()
        for original, copy in self._external.items():
            if path == copy or copy in path.parents:
                return original / path.relative_to(copy)
        return self.project_root / path.relative_to(self.root)

    def add_file(self, relative: str, text: str) -> Path:
        """Write a file (a candidate test) into the workspace copy."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run_pytest(
        self,
        targets: Iterable[str],
        timeout: float,
        memory_limit_mb: int,
        coverage_of: Iterable[Path] | None = None,
        order_seed: int | None = None,
        test_seconds: float | None = None,
        fresh: bool = False,
        alone: bool = False,
    ) -> RunResult:
        """Run pytest on ``targets`` (paths or node ids inside the workspace) in a child process.

        The child is killed (with every process it started) after ``timeout`` seconds, may address
        at most ``memory_limit_mb`` MiB, gets an allow-listed environment, and runs each test under the
        guard: a test that tries to write outside its temp dirs, start a process or use the network
        ends ``Outcome.UNSAFE``. ``coverage_of`` names source dirs to measure (line + branch); a test still
        running after ``test_seconds`` is stopped and fails. ``fresh``: a new interpreter, not a fork of the
        warm worker (forks share one memory layout, so object ids and default reprs repeat across them).
        ``alone``: each test in its own fork of the child, made after collection, as if it ran alone.
        """
        run_dir = self.scratch / f"run{next(self._run_ids)}"
        run_dir.mkdir()
        results = run_dir / "results.jsonl"
        spec = {
            **self._guard_roots(run_dir),
            "results": str(results),
            "order_seed": order_seed,
            "test_seconds": test_seconds,
            "args": [*targets, *self._pytest_options(run_dir)],
            "coverage": None,
            "alone": alone,
        }
        if coverage_of is not None:
            spec["coverage"] = _coverage_spec(run_dir, coverage_of)
        output, returncode, timed_out = self._launch(run_dir, spec, timeout, memory_limit_mb, fresh)
        result = _read_results(results, returncode, timed_out, output)
        coverage_json = run_dir / "coverage.json"
        if coverage_of is not None and coverage_json.is_file():
            result.coverage = self._read_coverage(coverage_json)
        return result

    def run_mutants(
        self,
        targets: Iterable[str],
        module_name: str,
        module_file: Path,
        mutants: list[Mutant],
        timeout: float,
        memory_limit_mb: int,
        test_seconds: float = 2.0,
    ) -> MutationRun:
        """Run the tests in ``targets`` once as written (with per-test coverage of ``module_file``, a path in
        the workspace), then against each mutant the tests that pass and run its line, in one child that
        imports ``module_name`` as its mutant schemata. A test past ``test_seconds`` under a mutant is
        stopped and kills it; the whole run is killed after ``timeout``."""
        run_dir = self.scratch / f"run{next(self._run_ids)}"
        run_dir.mkdir()
        results = run_dir / "results.jsonl"
        path = os.path.realpath(module_file)
        spec = {
            **self._guard_roots(run_dir),
            "results": str(results),
            "args": [*targets, *self._pytest_options(run_dir)],
            "coverage": _coverage_spec(run_dir, [Path(path).parent]),
            "mutation": {"module": module_name, "path": path, "seconds": test_seconds,
                         "mutants": [dataclasses.asdict(m) for m in mutants]},
        }
        output, returncode, timed_out = self._launch(run_dir, spec, timeout, memory_limit_mb)
        return _read_mutation_run(results, mutants, output, timed_out)

    def check_import(self, module_name: str, timeout: float, memory_limit_mb: int) -> str | None:
        """Import ``module_name`` in a child under the same limits; the error text, or None if it imports."""
        run_dir = self.scratch / f"run{next(self._run_ids)}"
        run_dir.mkdir()
        spec = {**self._guard_roots(run_dir), "import": module_name}
        output, returncode, timed_out = self._launch(run_dir, spec, timeout, memory_limit_mb)
        if timed_out:
            return f"importing {module_name} did not finish in {timeout:.0f}s"
        if returncode != 0:
            lines = [line for line in output.strip().splitlines() if line.strip()]
            return f"import failed: {lines[-1] if lines else f'exit code {returncode}'}"
        return None

    def _pytest_options(self, run_dir: Path) -> list[str]:
        return [*PLUGIN_OPTIONS, "-o", "addopts=", "-q", "--no-header", "--basetemp", str(run_dir / "basetemp"),
                "--rootdir", str(self.root)]

    def _guard_roots(self, run_dir: Path) -> dict[str, list[str]]:
        """Where a child may write: a test only under its run dir (its temp dirs and HOME); collection and
        imports also in the workspace (the project's copy), as they would in the user's session."""
        return {"test_allowed": [str(run_dir)], "outside_tests": [str(self.tmp)]}

    def _child_env(self, run_dir: Path, token: str, hash_seed: str = "0") -> dict[str, str]:
        """The allow-listed environment of a child: no secrets, HOME and the temp dir inside ``run_dir``."""
        env = {k: v for k, v in os.environ.items() if k in ENV_ALLOWED or k.startswith(ENV_PREFIXES)}
        # An empty HOME outside the run dir: like the user's real one, a test may read it but not write to it.
        home = self.tmp / "home"
        home.mkdir(exist_ok=True)
        env.update(
            PYTHONPATH=os.pathsep.join([*map(str, self.source_roots), str(self.root)]),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONNOUSERSITE="1",
            TMPDIR=str(run_dir),
            HOME=str(home),
            PYTHONHASHSEED=hash_seed,
            NO_PROXY="*",
            **{RUN_TOKEN: token},
        )
        return env

    def _launch(self, run_dir: Path, spec: dict, timeout: float, memory_limit_mb: int,
                fresh: bool = False) -> tuple[str, int, bool]:
        spec_path = run_dir / "spec.json"
        spec_path.write_text(json.dumps(spec))
        token = uuid.uuid4().hex
        worker = None if fresh else self._warm_worker()
        if worker is not None:
            output = run_dir / "output.txt"
            ran = worker.run(spec_path, {"TMPDIR": str(run_dir), RUN_TOKEN: token}, output, timeout, memory_limit_mb)
            if ran is not None:
                text = output.read_text(encoding="utf-8", errors="replace") if output.is_file() else ""
                return text, *ran
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest_utgen._child", str(spec_path)],
            cwd=self.root,
            # A fresh run hashes strings as a user's session does, with a seed of its own: a test that
            # relies on the iteration order of a set of strings fails here, not only on the user's machine.
            env=self._child_env(run_dir, token, str(random.randrange(1, 2**32)) if fresh else "0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_memory_limiter(memory_limit_mb),
        )
        timed_out = False
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_tree(process.pid, token)
            output, _ = process.communicate()
        except BaseException:
            _kill_tree(process.pid, token)
            process.wait()
            raise
        finally:
            _kill_tree(process.pid, token)  # whatever it left behind, in its group or in new sessions
        return output.decode("utf-8", "replace"), process.returncode, timed_out

    def _warm_worker(self) -> _WarmWorker | None:
        """The workspace's warm worker, started on first use; None when off or when it has died."""
        if not self._warm:
            return None
        with self._worker_lock:
            if self._worker is None:
                env = self._child_env(self.scratch, uuid.uuid4().hex)
                self._worker = _WarmWorker(self.root, env, self.scratch / "worker.log", list(PLUGIN_OPTIONS))
            return self._worker if self._worker.alive else None

    def _read_coverage(self, path: Path) -> dict[Path, FileCoverage]:
        report = json.loads(path.read_text())
        files = {}
        for name, data in report.get("files", {}).items():
            full = Path(name) if Path(name).is_absolute() else self.root / name
            summary = data["summary"]
            files[self.from_workspace(full)] = FileCoverage(
                statements=summary["num_statements"],
                covered_lines=summary["covered_lines"],
                branches=summary.get("num_branches", 0),
                covered_branches=summary.get("covered_branches", 0),
                missing_lines=data.get("missing_lines", []),
                executed_lines=data.get("executed_lines", []),
                missing_branches=[tuple(arc) for arc in data.get("missing_branches", [])],
                executed_branches=[tuple(arc) for arc in data.get("executed_branches", [])],
            )
        return files


def _kill_tree(pid: int, token: str) -> None:
    """Kill the child's process group and every process carrying the run's token in its environment
    (descendants that started a new session escape the group but inherit the environment)."""
    _kill_group(pid)
    _kill_with_env(f"{RUN_TOKEN}={token}")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _kill_with_env(entry: str) -> None:
    for pid in _pids_with_env(entry.encode()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _pids_with_env(entry: bytes) -> list[int]:
    """Processes whose environment holds ``entry`` (Linux /proc; elsewhere none are found)."""
    pids = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return pids
    for name in names:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                if entry in handle.read().split(b"\0"):
                    pids.append(int(name))
        except OSError:
            continue
    return pids


@dataclass
class MutationRun:
    """What a mutant run found: per test (node id) its verdict as written, the module's lines and arcs it
    ran, and the mutants it killed; the mutants no test killed; why the run ended early, if it did."""

    passed: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)  # failed as written: never run against the mutants
    lines: dict[str, set[int]] = field(default_factory=dict)
    arcs: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    kills: dict[str, set[int]] = field(default_factory=dict)
    survived: list[Mutant] = field(default_factory=list)
    not_run: list[Mutant] = field(default_factory=list)  # the run ended (timeout, crash) before them
    error: str | None = None

    @property
    def killed(self) -> set[int]:
        return set().union(*self.kills.values()) if self.kills else set()

    @property
    def measured(self) -> bool:
        """Whether the tests' run as written ended: their verdicts, lines and arcs are all here (a run that
        ended early against the mutants has the kills of those judged by then)."""
        return self.error is None or bool(self.lines and self.not_run)


def _coverage_spec(run_dir: Path, sources: Iterable[Path]) -> dict:
    """What the child measures (line + branch of ``sources``) and where it writes the data and the report."""
    return {"source": [str(p) for p in sources], "data_file": str(run_dir / ".coverage"),
            "json": str(run_dir / "coverage.json")}


def _events(path: Path):
    """The JSON records a child streamed to ``path`` (none if it never wrote; a torn last line is skipped)."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            yield json.loads(line)
        except ValueError:
            continue


def _read_mutation_run(path: Path, mutants: list[Mutant], output: str, timed_out: bool) -> MutationRun:
    run = MutationRun()
    judged: set[int] = set()
    by_id = {m.id: m for m in mutants}
    for record in _events(path):
        if record["event"] == "baseline":
            (run.passed if record["passed"] else run.failed).add(record["nodeid"])
        elif record["event"] == "test_lines":
            run.lines[record["nodeid"]] = set(record["lines"])
            run.arcs[record["nodeid"]] = {tuple(arc) for arc in record["arcs"]}
        elif record["event"] == "mutant":
            judged.add(record["id"])
            for nodeid in record["killed_by"]:
                run.kills.setdefault(nodeid, set()).add(record["id"])
            if not record["killed_by"]:
                run.survived.append(by_id[record["id"]])
        elif record["event"] == "collect_error":
            run.error = record["message"][-2000:]
    run.not_run = [m for m in mutants if m.id not in judged]
    if run.not_run and run.error is None:
        run.error = "timed out" if timed_out else f"the mutant run ended early:\n{output[-2000:]}"
    return run


def _read_results(path: Path, returncode: int, timed_out: bool, output: str) -> RunResult:
    outcomes: dict[str, CaseOutcome] = {}
    collect_errors: list[str] = []
    started: list[str] = []
    side_effects: dict[str, list[str]] = {}
    observations: dict[str, list[Observation]] = {}
    for record in _events(path):
        nodeid = record.get("nodeid", "")
        if record["event"] == "collect_error":
            collect_errors.append(f"{nodeid}: {record['message']}" if nodeid else record["message"])
        elif record["event"] == "start":
            started.append(nodeid)
        elif record["event"] == "observed":
            observations.setdefault(nodeid, []).append(
                Observation(record["line"], value=record["value"], matched=record["matched"],
                            imports=tuple(record.get("imports", ())), value_type=record.get("value_type"),
                            warnings=tuple((kind, message) for kind, message in record.get("warnings", ()))))
        elif record["event"] == "raised":
            seen = observations.setdefault(nodeid, [])
            if not any(o.raised for o in seen):  # the first raise ends the test; the report repeats it
                seen.append(Observation(record["line"], raised=record["type"], message=record.get("message"),
                                        raised_by=RaisedBy(record.get("raised_by", RaisedBy.TEST))))
        elif record["event"] == "side_effect" and nodeid:
            side_effects.setdefault(nodeid, []).append(record["what"])
        elif record["event"] == "report":
            previous = outcomes.get(nodeid)
            if record["outcome"] == "passed":
                if previous is None:
                    outcomes[nodeid] = CaseOutcome(nodeid, Outcome.PASSED)
            elif record["outcome"] == "skipped":
                if previous is None or previous.outcome == Outcome.PASSED:
                    outcomes[nodeid] = CaseOutcome(nodeid, Outcome.SKIPPED, record["message"])
            else:
                kind = Outcome.FAILED if record["when"] == "call" else Outcome.ERROR
                if previous is None or previous.outcome in (Outcome.PASSED, Outcome.SKIPPED):
                    outcomes[nodeid] = CaseOutcome(nodeid, kind, record["message"])
    unfinished = [nodeid for nodeid in started if nodeid not in outcomes]
    if unfinished:
        kind = Outcome.TIMEOUT if timed_out else Outcome.CRASHED
        why = "timed out (killed)" if timed_out else f"the test process died (exit code {returncode})"
        for nodeid in unfinished:
            outcomes[nodeid] = CaseOutcome(nodeid, kind, why)
    for nodeid, seen in observations.items():
        if nodeid in outcomes:
            outcomes[nodeid].observations = seen
    for nodeid, attempts in side_effects.items():
        outcomes[nodeid] = CaseOutcome(nodeid, Outcome.UNSAFE,
                                       "tried to " + "; tried to ".join(dict.fromkeys(attempts)))
    if not started and not collect_errors and returncode not in (0, 1, 5):
        collect_errors.append(f"pytest exited with code {returncode} before running any test:\n{output[-3000:]}")
    return RunResult(outcomes, collect_errors, returncode, timed_out, output, died=bool(unfinished))
