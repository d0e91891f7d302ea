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

    def pytest_runtest_logstart(self, nodeid, location):
        self.emit(event="start", nodeid=nodeid)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            message = str(report.longrepr)[-4000:] if report.longrepr else ""
            self.emit(event="report", nodeid=report.nodeid, when=report.when, outcome=report.outcome, message=message)


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
