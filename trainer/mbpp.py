"""MBPP (../shared/data/mbpp.jsonl, CC-BY-4.0) as ``{question, code, tests}`` records for the trainer.

Each problem's reference solution is the code; its three asserts become a pytest file that imports
the solution. ``python -m trainer.mbpp IN.jsonl OUT.jsonl``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def mbpp_record(row: dict) -> dict:
    """One MBPP problem as a training record."""
    setup = (row.get("test_setup_code") or "").strip()
    tests = [f"def test_case_{i}():\n    {assertion.strip()}" for i, assertion in enumerate(row["test_list"], start=1)]
    body = "from solution import *\n" + (f"{setup}\n" if setup else "") + "\n\n" + "\n\n\n".join(tests) + "\n"
    return {"task_id": f"mbpp-{row['task_id']}", "question": row["text"], "code": row["code"].replace("\r\n", "\n"),
            "tests": body}


def convert(source: Path, target: Path) -> int:
    """Write the records of every MBPP problem in ``source`` to ``target``; returns the count."""
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    target.write_text("".join(json.dumps(mbpp_record(r)) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


if __name__ == "__main__":
    print(convert(Path(sys.argv[1]), Path(sys.argv[2])))
