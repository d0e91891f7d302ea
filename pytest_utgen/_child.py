"""Entry point of the child process that runs candidate tests: ``python -m pytest_utgen._child SPEC.json``.

It switches on the guard (:mod:`pytest_utgen.guard`): while a test runs it may write only under its own
temp dirs and may not start processes, use the network or signal other processes; while no test runs
(collection, importing the code under test) writes may also go to the workspace. Optionally it starts
coverage, then runs pytest with a plugin that streams one JSON line per test event, and one per refused
side effect, to the results file (so a hang or crash still leaves what happened before it), and exits.
"""

from __future__ import annotations

import json
import random
import sys

import pytest

from .guard import install
from .oracle import OBSERVE


class ResultStream:
    """pytest plugin: shuffles items (when seeded), guards each test and appends one JSON line per event."""

    def __init__(self, path: str, order_seed: int | None):
        self.handle = open(path, "a", encoding="utf-8", buffering=1)
        self.order_seed = order_seed
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
        with self.guard.running(item.nodeid):
            return (yield)

    def observe(self, line: int, compute, expected):
        """The soft ``assert compute() == expected`` of an instrumented test (see ``oracle.instrument``):
        records what ``compute()`` gave at ``line``, and lets the test go on."""
        try:
            value = compute()
        except BaseException as error:
            self.emit(event="raised", nodeid=self.guard.test, line=line, type=_type_name(type(error)))
            raise
        try:
            matched = bool(value == expected)
        except Exception:  # noqa: BLE001 - a comparison that raises is simply not a match
            matched = False
        self.emit(event="observed", nodeid=self.guard.test, line=line, value=faithful_repr(value), matched=matched)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        excinfo = call.excinfo
        if call.when == "call" and excinfo is not None and not excinfo.errisinstance((AssertionError, pytest.fail.Exception)):
            lines = [entry.lineno + 1 for entry in excinfo.traceback if str(entry.path) == str(item.path)]
            if lines:
                self.emit(event="raised", nodeid=item.nodeid, line=lines[-1], type=_type_name(excinfo.type))
        return report

    def pytest_runtest_logstart(self, nodeid, location):
        self.emit(event="start", nodeid=nodeid)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            message = str(report.longrepr)[-4000:] if report.longrepr else ""
            self.emit(event="report", nodeid=report.nodeid, when=report.when, outcome=report.outcome, message=message)


def faithful_repr(value) -> str | None:
    """``repr(value)`` when it is a literal that reads back as an equal value of the same type, else None."""
    import ast

    try:
        text = repr(value)
        back = ast.literal_eval(text)
    except Exception:  # noqa: BLE001 - any repr that is not a literal, or whose repr raises
        return None
    return text if type(back) is type(value) and back == value and len(text) <= 300 else None


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
    stream = ResultStream(spec["results"], spec.get("order_seed"))
    import builtins

    setattr(builtins, OBSERVE, stream.observe)  # what instrumented tests call
    guard.configure(spec["test_allowed"], outside_tests=spec["outside_tests"], on_event=stream.side_effect)
    cov = None
    if spec.get("coverage"):
        import coverage

        cov = coverage.Coverage(
            data_file=spec["coverage"]["data_file"], branch=True, source=spec["coverage"]["source"], config_file=False
        )
        cov.start()
    try:
        code = pytest.main(spec["args"], plugins=[stream])
    finally:
        if cov is not None:
            cov.stop()
            cov.save()
            try:
                cov.json_report(outfile=spec["coverage"]["json"], ignore_errors=True)
            except coverage.exceptions.NoDataError:
                pass
        stream.handle.close()
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
