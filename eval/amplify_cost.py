"""What one amplification of a kept test file costs in the sandbox, step by step.

    python -m eval.amplify_cost eval/results/fresh-8/runs/pipeline-eval-2026-11-27T090735Z.json uritemplate.variable

Takes the pipeline's kept file for the module from a saved eval run, amplifies its tests and times what the
engine then runs: the variants with the observed-value oracle, the kept tests against all the module's
mutants, and the variants against only the survivors (what the engine does) or against all mutants.
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
from pytest_utgen.validate import MUTANT_TEST_SECONDS, CandidateValidator, list_test_units

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
    kept = rows[0]["test_source"]
    with tempfile.TemporaryDirectory(prefix="utgen-amplify-cost-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(task.source_root, project, ignore=shutil.ignore_patterns("__pycache__"))
        module_path = project / task.module_file.relative_to(task.source_root)
        source = module_path.read_text(encoding="utf-8")
        with Workspace(project, {project}) as workspace:
            validator = CandidateValidator(workspace, "tests/test_cost.py", module_path, 60, 2048, 1, args.module,
                                           oracle=True)
            variants = amplify(kept, source)
            mutants = find_mutants(source)
            timings = {"kept tests": len(list_test_units(kept)), "variants": len(list_test_units(variants or "")),
                       "mutants": len(mutants)}

            def timed(name, call):
                started = time.perf_counter()
                value = call()
                timings[f"{name} s"] = round(time.perf_counter() - started, 1)
                return value

            passing = timed("variants with the oracle", lambda: validator.passing(variants, MUTANT_TEST_SECONDS))
            timings["variants passing"] = len(passing.kept)
            base = timed("kept tests x all mutants", lambda: validator.mutation_run(kept, mutants))
            timings["survivors"] = len(base.survived)
            timed("variants x survivors", lambda: validator.mutation_run(passing.kept_source, base.survived))
            timed("variants x all mutants", lambda: validator.mutation_run(passing.kept_source, mutants))
    print(json.dumps(timings, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
