"""Seconds per sandbox run: forks of the warm worker against new interpreters.

    python -m eval.sandbox_cost [--runs 10]

Runs one passing test in a throwaway project ``--runs`` times per kind (with and without coverage
measurement) and prints the median wall seconds of each, as the engine's candidate runs pay them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from pytest_utgen.sandbox import Outcome, Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.sandbox_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    medians = {}
    with tempfile.TemporaryDirectory(prefix="utgen-sandbox-cost-") as tmp:
        project = Path(tmp)
        (project / "calc.py").write_text("def add(a, b):\n    return a + b\n")
        with Workspace(project, [project]) as workspace:
            workspace.add_file("tests/test_calc.py",
                               "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n")
            workspace.run_pytest(["tests/test_calc.py"], timeout=60, memory_limit_mb=2048)  # starts the worker
            for coverage in (False, True):
                for fresh in (False, True):
                    seconds = []
                    for _ in range(args.runs):
                        started = time.perf_counter()
                        run = workspace.run_pytest(["tests/test_calc.py"], timeout=60, memory_limit_mb=2048,
                                                   coverage_of=[workspace.root] if coverage else None, fresh=fresh)
                        seconds.append(time.perf_counter() - started)
                        assert [o.outcome for o in run.outcomes.values()] == [Outcome.PASSED], run.output
                    kind = ("new interpreter" if fresh else "warm worker fork") + (", coverage" if coverage else "")
                    medians[kind] = round(statistics.median(seconds), 3)
    print(json.dumps(medians, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
