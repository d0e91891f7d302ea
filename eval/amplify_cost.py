"""What one amplification of a kept test file costs in the sandbox, step by step, and what it adds.

    python -m eval.amplify_cost eval/results/fresh-8/runs/pipeline-eval-2026-11-27T090735Z.json uritemplate.variable

Takes the pipeline's kept file for the module from a saved eval run, amplifies its tests and times what the
engine then runs: the variants with the observed-value oracle, the kept tests against all the module's
mutants, and the variants against only the survivors (what the engine does) or against all mutants. Then,
as the engine does, a greedy cover picks the variants that add a line, branch or killed mutant; their
counts are given for input variants alone and with observation and probe variants (``observe``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from pytest_utgen.amplify import amplify
from pytest_utgen.mutate import find_mutants
from pytest_utgen.sandbox import Workspace
from pytest_utgen.testfile import TestFile
from pytest_utgen.validate import MUTANT_TEST_SECONDS, CandidateValidator, contributions, greedy_cover

from .harness import pypi_tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.amplify_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", type=Path, help="a saved eval-*.json with a pipeline row for the module")
    parser.add_argument("module")
    parser.add_argument("--module-set", default="fresh-8")
    args = parser.parse_args(argv)
    rows = [row for rows in json.loads(args.result.read_text())["rows"].values() for row in rows
            if row["task"] == args.module and row["system"].endswith("pipeline") and row.get("test_source")]
    if not rows:
        parser.error(f"no pipeline row with a test file for {args.module} in {args.result}")
    (task,) = pypi_tasks(args.module_set, None, [args.module])
    kept = TestFile(rows[0]["test_source"])
    with tempfile.TemporaryDirectory(prefix="utgen-amplify-cost-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(task.source_root, project, ignore=shutil.ignore_patterns("__pycache__"))
        module_path = project / task.module_file.relative_to(task.source_root)
        source = module_path.read_text(encoding="utf-8")
        with Workspace(project, {project}) as workspace:
            validator = CandidateValidator(workspace, "tests/test_cost.py", module_path, 60, 2048, 1, args.module,
                                           oracle=True)
            mutants = find_mutants(source)
            timings: dict = {"kept tests": len(kept.units), "mutants": len(mutants)}

            def timed(into: dict, name: str, call):
                started = time.perf_counter()
                value = call()
                into[f"{name} s"] = round(time.perf_counter() - started, 1)
                return value

            base = timed(timings, "kept tests x all mutants", lambda: validator.mutation_run(kept, mutants))
            timings["survivors"] = len(base.survived)
            # Branch arcs only, as the engine counts them: the module's, from a coverage run of the kept tests.
            coverage = validator.validate(kept, quick=True).coverage
            branches = set(coverage.executed_branches) | set(coverage.missing_branches) if coverage else set()
            held = {("line", n) for lines in base.lines.values() for n in lines} \
                | {("arc", a) for arcs in base.arcs.values() for a in arcs if a in branches} \
                | {("mutant", m) for m in base.killed}
            for observe in (False, True):
                step: dict = {}
                timings["inputs and observations" if observe else "inputs only"] = step
                variants = amplify(kept, source, observe=observe)
                step["variants"] = len(variants.units) if variants else 0
                if variants is None:
                    continue
                passing = timed(step, "variants with the oracle",
                                lambda: validator.passing(variants, MUTANT_TEST_SECONDS))
                step["variants passing"] = len(passing.kept)
                if not passing.kept_file:
                    continue
                run = timed(step, "variants x survivors",
                            lambda: validator.mutation_run(passing.kept_file, base.survived))
                if not observe:
                    timed(step, "variants x all mutants", lambda: validator.mutation_run(passing.kept_file, mutants))
                held_by = {unit: {item for item in items if item[0] != "arc" or item[1] in branches}
                           for unit, items in contributions(run).items()}
                chosen = greedy_cover(passing.kept, held_by, held)
                gained = set().union(*(held_by[u] for u in chosen)) - held if chosen else set()
                step["variants kept"] = len(chosen)
                for kind in ("line", "arc", "mutant"):
                    step[f"{kind}s added"] = sum(1 for item in gained if item[0] == kind)
    print(json.dumps(timings, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
