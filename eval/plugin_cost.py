"""What the installed plugin costs a plain `pytest` run (no --utgen): wall time with and without it.

    python -m eval.plugin_cost [--runs 15]

Runs `pytest --collect-only -q` on examples/shopkit, alternating `-p no:utgen` (plugin blocked) and the
default (plugin loaded through its entry point), and prints the medians and their difference.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .latency import machine

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shopkit"


def wall(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                   cwd=EXAMPLE, check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    wall([])  # warm the file cache
    without, with_plugin = [], []
    for _ in range(args.runs):
        without.append(wall(["-p", "no:utgen"]))
        with_plugin.append(wall([]))
    base, loaded = statistics.median(without), statistics.median(with_plugin)
    print(f"machine: {machine()}")
    print(f"pytest --collect-only on examples/shopkit, median of {args.runs} runs each:")
    print(f"  without the plugin: {base * 1000:.0f} ms")
    print(f"  with the plugin:    {loaded * 1000:.0f} ms")
    print(f"  plugin cost:        {(loaded - base) * 1000:+.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
