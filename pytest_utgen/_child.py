"""Entry point of the child process that runs candidate tests: ``python -m pytest_utgen._child SPEC.json``.

It installs a write guard (an audit hook refusing writes outside the allowed dirs), optionally
starts coverage, runs pytest with a plugin that streams one JSON line per test event to the
results file (so a hang or crash still leaves the finished tests' outcomes), and exits.
"""

from __future__ import annotations

import json
import os
import random
import sys

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.truncate": (0,),
    "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,), "os.symlink": (1,), "os.link": (1,),
    "shutil.rmtree": (0,), "shutil.move": (1,),
}


def install_write_guard(allowed_roots: list[str]) -> None:
    """Refuse (PermissionError) any file write, removal or rename outside ``allowed_roots``."""
    allowed = tuple(os.path.realpath(root) for root in allowed_roots)

    def permitted(path) -> bool:
        if path is None or isinstance(path, int):
            return True
        full = os.path.realpath(os.fsdecode(path))
        return full == os.devnull or any(full == root or full.startswith(root + os.sep) for root in allowed)

    def guard(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and not permitted(path):
                raise PermissionError(f"pytest-utgen sandbox: write outside the temp dir refused: {path}")
        elif event in _PATH_EVENTS:
            for index in _PATH_EVENTS[event]:
                if index < len(args) and not permitted(args[index]):
                    raise PermissionError(f"pytest-utgen sandbox: {event} outside the temp dir refused: {args[index]}")

    sys.addaudithook(guard)


class ResultStream:
    """pytest plugin: shuffles items (when seeded) and appends one JSON line per test event."""

    def __init__(self, path: str, order_seed: int | None):
        self.handle = open(path, "a", encoding="utf-8", buffering=1)
        self.order_seed = order_seed

    def emit(self, **record) -> None:
        self.handle.write(json.dumps(record) + "\n")

    def pytest_collection_modifyitems(self, items):
        if self.order_seed is not None:
            random.Random(self.order_seed).shuffle(items)

    def pytest_collectreport(self, report):
        if report.failed:
            self.emit(event="collect_error", nodeid=report.nodeid, message=str(report.longrepr)[-4000:])

    def pytest_runtest_logstart(self, nodeid, location):
        self.emit(event="start", nodeid=nodeid)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            message = str(report.longrepr)[-4000:] if report.longrepr else ""
            self.emit(event="report", nodeid=report.nodeid, when=report.when, outcome=report.outcome, message=message)


def main(spec_path: str) -> int:
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    install_write_guard(spec["allowed"])
    if "import" in spec:
        import importlib

        importlib.import_module(spec["import"])
        return 0
    import pytest

    cov = None
    if spec.get("coverage"):
        import coverage

        cov = coverage.Coverage(
            data_file=spec["coverage"]["data_file"], branch=True, source=spec["coverage"]["source"], config_file=False
        )
        cov.start()
    stream = ResultStream(spec["results"], spec.get("order_seed"))
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
