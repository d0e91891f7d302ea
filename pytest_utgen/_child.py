"""Entry point of the child process that runs candidate tests: ``python -m pytest_utgen._child SPEC.json``.

It switches on the guard (:mod:`pytest_utgen.guard`): while a test runs it may write only under its own
temp dirs and may not start processes, use the network or signal other processes; while no test runs
(collection, importing the code under test) writes may also go to the workspace. Optionally it starts
coverage, then runs pytest with a plugin that streams one JSON line per test event, and one per refused
side effect, to the results file (so a hang or crash still leaves what happened before it), and exits.
``python -m pytest_utgen._child --serve`` is the warm worker: each run is a fork of it (:func:`serve`).

With ``mutation`` in the spec the module under test is imported as its mutant schemata (see
:mod:`pytest_utgen.mutate`), and :class:`MutantRunner` runs the tests once as written, with per-test
coverage, then each mutant against the tests that run its line.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.abc
import importlib.util
import json
import linecache
import os
import random
import re
import signal
import sys
import time
import warnings

import pytest

from .guard import install
from .mutate import SWITCH, Mutant, schemata
from .oracle import OBSERVE
from .sandbox import RaisedBy


ALONE_KILL_GRACE = 5.0  # seconds past a test's time limit before its fork in an alone run is killed
# A test under a mutant hangs once it runs this many times its seconds as written (traced by coverage, so
# slower than under the mutant), and at least HANG_FLOOR_SECONDS: a mutant that loops forever costs a fraction
# of a second, not the whole limit (cachetools: ten such mutants took 20 s of a 90 s budget at 2 s each).
HANG_FACTOR = 10.0
HANG_FLOOR_SECONDS = 0.25


class ResultStream:
    """pytest plugin: shuffles items (when seeded), guards each test and appends one JSON line per event."""

    def __init__(self, path: str, order_seed: int | None, test_seconds: float | None = None):
        self.handle = open(path, "a", encoding="utf-8", buffering=1)
        self.order_seed = order_seed
        self.test_seconds = test_seconds
        self.guard = install()

    def emit(self, **record) -> None:
        self.handle.write(json.dumps(record) + "\n")

    def side_effect(self, test: str | None, what: str) -> None:
        self.emit(event="side_effect", nodeid=test, what=what)

    def pytest_collection_modifyitems(self, items):
        if self.order_seed is not None:
            random.Random(self.order_seed).shuffle(items)

    def pytest_collectreport(self, report):
        if report.failed:
            self.emit(event="collect_error", nodeid=report.nodeid, message=str(report.longrepr)[-4000:])

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item):
        with self.guard.running(item.nodeid), time_limit(self.test_seconds):
            return (yield)

    def observe(self, line: int, compute, expected):
        """The soft ``assert compute() == expected`` of an instrumented test (see ``oracle.instrument``):
        records what ``compute()`` gave at ``line``, and lets the test go on."""
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")  # each time: a warning shown once per place would hide from a rerun
            try:
                value = compute()
            except TestTimeout:  # a hang is not a behaviour to adopt
                raise
            except BaseException as error:
                self.emit(event="raised", nodeid=self.guard.test, line=line, type=_type_name(type(error)),
                          message=exact_message(error), raised_by=raised_by(error, self.guard.test).value)
                raise
        # The warnings it gave, each (type, exact message or None) once.
        warned = list(dict.fromkeys((_type_name(w.category), exact_message(w.message)) for w in warned))
        try:
            matched = bool(value == expected)
        except Exception:  # noqa: BLE001 - a comparison that raises is simply not a match
            matched = False
        text, imports = observed_expression(value) or (None, [])
        kind = None if text is not None else _nameable_type(type(value))
        self.emit(event="observed", nodeid=self.guard.test, line=line, value=text, imports=imports, matched=matched,
                  value_type=kind, warnings=warned[:3])

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        excinfo = call.excinfo
        if call.when == "call" and excinfo is not None and not excinfo.errisinstance(
                (AssertionError, pytest.fail.Exception, TestTimeout)):
            lines = [entry.lineno + 1 for entry in excinfo.traceback if str(entry.path) == str(item.path)]
            if lines:
                self.emit(event="raised", nodeid=item.nodeid, line=lines[-1], type=_type_name(excinfo.type),
                          message=exact_message(excinfo.value),
                          raised_by=raised_by(excinfo.value, item.nodeid).value)
        return report

    def pytest_runtest_logstart(self, nodeid, location):
        self.emit(event="start", nodeid=nodeid)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            message = str(report.longrepr)[-4000:] if report.longrepr else ""
            self.emit(event="report", nodeid=report.nodeid, when=report.when, outcome=report.outcome, message=message)


class TestTimeout(BaseException):
    """A test ran past its time limit (under a mutant: the mutant made it hang, and counts as killed).

    Not an ``Exception``: code under test that retries on ``except Exception`` cannot swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`TestTimeout` in the block after ``seconds`` (no limit when None)."""
    if not seconds:
        yield
        return
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class MutantRunner:
    """pytest plugin replacing the run loop: every test once as written (per-test coverage of the module),
    then, for each mutant, the tests that passed and run its line; emits ``baseline``, ``test_lines`` and
    ``mutant`` events."""

    def __init__(self, stream: ResultStream, mutants: list[Mutant], module_file: str, seconds: float, cov):
        self.stream = stream
        self.mutants = mutants
        self.module_file = module_file
        self.seconds = seconds
        self.cov = cov

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        from _pytest.runner import runtestprotocol

        def passes(item, seconds: float) -> bool:
            self.stream.emit(event="start", nodeid=item.nodeid)
            with self.stream.guard.running(item.nodeid), time_limit(seconds):
                reports = runtestprotocol(item, nextitem=None, log=False)
            return all(r.passed or (r.skipped and r.when != "call") for r in reports) and any(
                r.when == "call" and r.passed for r in reports)

        setattr(builtins, SWITCH, 0)
        passing = []
        limit: dict[str, float] = {}  # per passing test, its time limit under a mutant
        for item in session.items:
            if self.cov is not None:
                self.cov.switch_context(item.nodeid)
            started = time.perf_counter()
            ok = passes(item, self.seconds)
            self.stream.emit(event="baseline", nodeid=item.nodeid, passed=ok)
            if ok:
                passing.append(item)
                took = time.perf_counter() - started
                limit[item.nodeid] = min(self.seconds, max(HANG_FLOOR_SECONDS, HANG_FACTOR * took))
        lines_of = self._lines_by_test([item.nodeid for item in passing])
        for mutant in self.mutants:
            setattr(builtins, SWITCH, mutant.id)
            covering = [item for item in passing if lines_of is None or mutant.line in lines_of[item.nodeid]]
            killed_by = []
            for item in covering:
                started = time.perf_counter()
                if not passes(item, limit[item.nodeid]):
                    killed_by.append(item.nodeid)
                    if time.perf_counter() - started >= limit[item.nodeid]:
                        # The mutant hangs: each later test that reaches it would wait out the limit too
                        # (150 amplified variants, 5 minutes); it is killed already.
                        break
            self.stream.emit(event="mutant", id=mutant.id, ran=len(covering), killed_by=killed_by)
        setattr(builtins, SWITCH, 0)
        return True

    def _lines_by_test(self, nodeids: list[str]) -> dict[str, set[int]] | None:
        """Lines of the module each test ran (None without coverage); emitted with the arcs as ``test_lines``."""
        if self.cov is None:
            return None
        self.cov.stop()
        data = self.cov.get_data()
        lines_of = {}
        for nodeid in nodeids:
            data.set_query_context(nodeid)
            lines = set(data.lines(self.module_file) or ())
            arcs = [list(arc) for arc in data.arcs(self.module_file) or () if arc[0] > 0 and arc[1] > 0]
            lines_of[nodeid] = lines
            self.stream.emit(event="test_lines", nodeid=nodeid, lines=sorted(lines), arcs=arcs)
        data.set_query_context(None)
        return lines_of


class AloneRunner:
    """pytest plugin replacing the run loop: each test in a fork of this process made after collection, so it
    runs as it would alone (no other test ran before it in its process), for the cost of a fork rather than of
    a pytest session per test. A test's fork that outlives its time limit (a hang its alarm cannot break) is
    killed; with no report from it, the test counts as crashed."""

    def __init__(self, stream: ResultStream):
        self.stream = stream

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        from _pytest.runner import runtestprotocol

        for item in session.items:
            self.stream.emit(event="start", nodeid=item.nodeid)
            with self.stream.guard.trusted():
                pid = os.fork()
            if pid == 0:
                status = 0
                try:
                    with self.stream.guard.running(item.nodeid), time_limit(self.stream.test_seconds):
                        runtestprotocol(item, nextitem=None, log=True)
                except BaseException:  # noqa: BLE001 - whatever it was, the fork ends here
                    status = 1
                finally:
                    self.stream.handle.flush()
                    os._exit(status)
            self._wait(pid)
        return True

    def _wait(self, pid: int) -> None:
        if not self.stream.test_seconds:
            os.waitpid(pid, 0)
            return
        ends = time.monotonic() + self.stream.test_seconds + ALONE_KILL_GRACE
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > ends:
                with self.stream.guard.trusted():
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            time.sleep(0.002)


def _raise_timeout(signum, frame):
    raise TestTimeout("the test ran past its time limit")


class SchemataFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports one module as its mutant schemata, from its own file name (so tracebacks and coverage match)."""

    def __init__(self, name: str, path: str, mutants: list[Mutant]):
        self.name, self.path, self.mutants = name, path, mutants

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        is_package = self.path.endswith("__init__.py")
        return importlib.util.spec_from_file_location(
            fullname, self.path, loader=self,
            submodule_search_locations=[self.path.rsplit("/", 1)[0]] if is_package else None)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        with open(self.path, encoding="utf-8") as handle:
            code = schemata(handle.read(), self.mutants, self.path)
        exec(code, module.__dict__)


def observed_expression(value) -> tuple[str, list[str]] | None:
    """An expression a test can expect ``value`` with, and the imports it needs: its literal repr, else its
    repr when that is a call of classes (``isodate.duration.Duration(3, 0, years=1)``, ``Interval(1, 2)``)
    with literal arguments that builds an equal object of the same type. None when neither holds (an object
    compared by identity, a repr with an address in it)."""
    text = faithful_repr(value)
    if text is not None:
        return text, []
    return _constructor_repr(value)


def _constructor_repr(value) -> tuple[str, list[str]] | None:
    import ast

    try:
        text = repr(value)
        if len(text) > 300:
            return None
        tree = ast.parse(text, mode="eval")
    except Exception:  # noqa: BLE001 - a repr that raises or is no expression
        return None
    namespace: dict = {}
    imports: list[str] = []
    # The names a call is made through (``isodate.duration.Duration``); any other name is a variable.
    callee_parts = {id(n) for call in ast.walk(tree) if isinstance(call, ast.Call) for n in ast.walk(call.func)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is None or not _bind(name, type(value), namespace, imports):
                return None
        elif id(node) not in callee_parts and not isinstance(node, (
                ast.Expression, ast.Constant, ast.Tuple, ast.List, ast.Dict, ast.Set, ast.keyword, ast.UnaryOp,
                ast.USub, ast.Load)):
            return None
    try:
        back = eval(compile(tree, "<repr>", "eval"), {"__builtins__": {}}, namespace)  # noqa: S307 - the sandbox
        same = type(back) is type(value) and bool(back == value)
    except Exception:  # noqa: BLE001 - a constructor that rejects its own repr
        return None
    return (text, sorted(set(imports))) if same else None


def _dotted(node) -> str | None:
    import ast

    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _bind(name: str, kind: type, namespace: dict, imports: list[str]) -> bool:
    """Put what the dotted ``name`` of a repr's call refers to in ``namespace``, and its import in
    ``imports``: a module already imported and an attribute path on it, or a bare class name of the value's
    own module. Imports nothing new."""
    parts = name.split(".")
    if len(parts) == 1:
        if isinstance(getattr(builtins, name, None), type):  # frozenset(...), a builtin's subclass's base
            namespace[name] = getattr(builtins, name)
            return True
        owner = sys.modules.get(kind.__module__)
        if owner is None or not isinstance(getattr(owner, name, None), type):
            return False
        namespace[name] = getattr(owner, name)
        imports.append(f"from {kind.__module__} import {name}")
        return True
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        target = module
        for attribute in parts[cut:]:
            target = getattr(target, attribute, None)
        if not isinstance(target, type):
            return False
        namespace[parts[0]] = sys.modules[parts[0]]
        imports.append(f"import {'.'.join(parts[:cut])}")
        return True
    return False


def faithful_repr(value) -> str | None:
    """``repr(value)`` when it is a literal that reads back as an equal value of its type (or a builtin type it
    subclasses), else None."""
    import ast

    try:
        text = repr(value)
        back = ast.literal_eval(text)
    except Exception:  # noqa: BLE001 - any repr that is not a literal, or whose repr raises
        return None
    # A subclass of a builtin (a tuple subclass, say) compares equal to the literal: the assert holds.
    return text if isinstance(value, type(back)) and back == value and len(text) <= 300 else None


# What Python says when every special method of an operator returned NotImplemented (or there is none).
_OPERATOR_REFUSED = re.compile(r"unsupported operand type\(s\) for [^:]+: '(\w+)' and '(\w+)'"
                               r"|'[^']+' not supported between instances of '(\w+)' and '(\w+)'"
                               r"|bad operand type for [^:]+: '(\w+)'()")


def raised_by(error: BaseException, nodeid: str) -> RaisedBy:
    """Where ``error``, seen by the test ``nodeid``, came from: a ``raise`` statement of code outside the test's
    file (its innermost frame's line), or an operator that refused a class's object because its special method
    said so (returned ``NotImplemented``), is the code's own refusal; another exception whose innermost frame
    is outside the test's file the interpreter raised inside the code (``None + 1`` in a function given None);
    the rest the test's own statements raised (a wrong call, a missing name)."""
    refused = _OPERATOR_REFUSED.fullmatch(str(error)) if isinstance(error, TypeError) else None
    if refused and not all(hasattr(builtins, name) or name == "NoneType" for name in refused.groups() if name):
        return RaisedBy.RAISE  # a class of the code refused the operand: not a mistake of builtins' operands
    traceback = error.__traceback__
    if traceback is None:
        return RaisedBy.TEST
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    code = traceback.tb_frame.f_code
    test_file = nodeid.split("::")[0]
    if code.co_filename == test_file or code.co_filename.endswith(os.sep + test_file):
        return RaisedBy.TEST
    line = linecache.getline(code.co_filename, traceback.tb_lineno).strip()
    return RaisedBy.RAISE if line == "raise" or line.startswith(("raise ", "raise(")) else RaisedBy.CODE


def exact_message(error: BaseException) -> str | None:
    """The exception's message when a test can expect it exactly, anywhere: one short line with no address,
    no path (the sandbox's differs from the project's) and no braces (a set's or dict's order)."""
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a __str__ that raises: no message to expect
        return None
    if not text or len(text) > 160 or "\n" in text or any(c in text for c in "/\\{}") or "0x" in text:
        return None
    return text


def _nameable_type(kind: type) -> str | None:
    """``_type_name(kind)`` when a test can name the type: a builtin, or a class its module holds under its
    qualified name (not a class made inside a function, not ``generator``)."""
    if kind.__module__ == "builtins":
        return kind.__qualname__ if getattr(builtins, kind.__qualname__, None) is kind else None
    target = sys.modules.get(kind.__module__)
    for part in kind.__qualname__.split("."):
        target = getattr(target, part, None)
    return _type_name(kind) if target is kind else None


def _type_name(kind: type) -> str:
    """A builtin exception's name, else ``module:qualname``."""
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}:{kind.__qualname__}"


def main(spec_path: str) -> int:
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    guard = install()
    if "import" in spec:
        guard.configure(spec["test_allowed"], outside_tests=spec["outside_tests"])
        import importlib

        importlib.import_module(spec["import"])
        return 0
    stream = ResultStream(spec["results"], spec.get("order_seed"), spec.get("test_seconds"))
    setattr(builtins, OBSERVE, stream.observe)  # what instrumented tests call
    setattr(builtins, SWITCH, 0)  # a module imported as its schemata behaves as written until a mutant is on
    guard.configure(spec["test_allowed"], outside_tests=spec["outside_tests"], on_event=stream.side_effect)
    plugins: list = [stream]
    mutation = spec.get("mutation")
    if mutation:
        mutants = [Mutant(**m) for m in mutation["mutants"]]
        sys.meta_path.insert(0, SchemataFinder(mutation["module"], mutation["path"], mutants))
    cov = None
    if spec.get("coverage"):
        import coverage

        cov = coverage.Coverage(
            data_file=spec["coverage"]["data_file"], branch=True, source=spec["coverage"]["source"], config_file=False
        )
        cov.start()
    if mutation:
        plugins.append(MutantRunner(stream, mutants, mutation["path"], mutation["seconds"], cov))
    elif spec.get("alone"):
        plugins.append(AloneRunner(stream))
    try:
        code = pytest.main(spec["args"], plugins=plugins)
    finally:
        if cov is not None and not mutation:
            cov.stop()
            cov.save()
            try:
                cov.json_report(outfile=spec["coverage"]["json"], ignore_errors=True)
            except coverage.exceptions.NoDataError:
                pass
        stream.handle.close()
    return int(code)


def serve(plugin_options: list[str]) -> int:
    """The warm worker (``python -m pytest_utgen._child --serve PYTEST_OPTIONS...``): pytest, coverage, this
    runner and the pytest plugins that ``PYTEST_OPTIONS`` leave on are imported once; each request (a JSON
    line on stdin) is run by a fork of this process. The answers on stdout: ``{"id", "pid"}`` when the fork
    started, ``{"id", "exit"}`` when it ended (the exit status as ``subprocess`` gives it: a negative signal
    number when killed). Ends at the end of stdin."""
    import select

    import coverage  # noqa: F401 - imported here so that every fork finds it imported

    _warm_up(plugin_options)
    running: dict[int, int] = {}  # pid -> request id
    pending = b""
    open_input = True
    while open_input or running:
        # While forks run, wake up often to report the ones that ended; else sleep until a request comes.
        readable, _, _ = select.select([0] if open_input else [], [], [], 0.005 if running else None)
        if readable:
            chunk = os.read(0, 65536)
            open_input = bool(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in filter(None, lines):
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _run_forked(request)
                running[pid] = request["id"]
                _answer(id=request["id"], pid=pid)
        for pid in list(running):
            ended, status = os.waitpid(pid, os.WNOHANG)
            if ended:
                _answer(id=running.pop(pid), exit=os.waitstatus_to_exitcode(status))
    return 0


def _warm_up(plugin_options: list[str]) -> None:
    """One pytest session over an empty folder: the plugins it loads from entry points are imported (and
    assertion-rewritten, as pytest does) here, once, instead of in every fork. Nothing of the project is
    imported: the folder is outside it."""
    import tempfile

    empty = tempfile.mkdtemp(prefix="warm-up-")
    answers = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # fd 1 carries the answers: nothing of the session may reach it
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            pytest.main([empty, "-q", "--rootdir", empty, "-o", "addopts=", *plugin_options])
    finally:
        os.dup2(answers, 1)
        os.close(answers)
        os.close(null)


def _answer(**message) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _run_forked(request: dict) -> None:
    """In a fork of the warm worker: become a run as a fresh ``python -m pytest_utgen._child SPEC`` would be
    (own session, output to a file, the run's environment and memory limit, fresh random state), run it
    and exit without returning to the worker's loop."""
    code = 1
    try:
        os.setsid()
        output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        # The worker's pipes are on 0 and 1: replaced, so no test can write into the worker's answers.
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(null)
        os.close(output)
        os.environ.update(request["env"])
        import importlib
        import resource
        import tempfile

        tempfile.tempdir = None  # read TMPDIR again: it is the run's dir
        random.seed()  # each fork would otherwise repeat the worker's random sequence
        importlib.invalidate_caches()  # test files written since the worker started
        limit = request["memory_limit_mb"] * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        code = main(request["spec"])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported in the run's output, as an uncaught error would be
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[2:]) if sys.argv[1] == "--serve" else main(sys.argv[1]))
