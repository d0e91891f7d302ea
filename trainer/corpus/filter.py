"""Execution filter, as CodeRM built its data: run every candidate against the ground truth, drop
files that do not collect, keep the passing test functions that kill a mutant no earlier one killed
(mutmut's mutants of the problem's functions), rank candidates by the mutants they kill, then by fewer
tests, and keep the best per problem.

Each problem's verdict is journalled to ``verdicts.jsonl`` as it is reached (a rerun resumes; delete the
file to start over). Writes ``records.jsonl`` (trainer schema ``{task_id, question, code, module, tests, ...}``),
``records-{train,val,test}.jsonl`` (80/10/10 by task id, the trainer's split) and ``stats.json``.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pytest_utgen.discover import module_path
from pytest_utgen.generate import CodeExtractionError, extract_code
from pytest_utgen.testfile import TestFile, unit_of
from pytest_utgen.validate import unshadow
from pytest_utgen.writer import atomic_write
from trainer.heldout import SPLITS, split_of

from .problems import Problem, read_problems

CHILD = Path(__file__).with_name("_kill_matrix.py")
PROBLEM_TIMEOUT = 120.0
TEST_SECONDS = 5.0
MUTANT_SECONDS = 0.5
MEMORY_LIMIT_MB = 2048
MAX_NEW_TOKENS = 768  # trainer.corpus.sample's default, for samples that do not record their limit
MAX_TESTS_WITHOUT_MUTANTS = 3


@dataclass
class Verdict:
    """What the filter decided for one problem, and the counts behind it."""

    task_id: str
    samples: int = 0
    truncated: int = 0
    no_code: int = 0
    not_collecting: int = 0
    candidates_passing: int = 0
    tests_run: int = 0
    tests_passed: int = 0
    mutants: int = 0
    killed: int = 0
    error: str | None = None
    record: dict | None = None
    notes: list[str] = field(default_factory=list)


def top_level_names(code: str) -> list[str]:
    """Functions and classes defined at the top of ``code``."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def candidate_files(problem: Problem, texts: list[str | None], module_source: str) -> tuple[dict[str, str], int]:
    """Test files extracted from the samples (copies of the code under test replaced by imports).

    A ``None`` text is a sample cut by the token limit: such replies are usually a loop, and training
    on their salvaged beginnings teaches the model to write until the limit, so they are skipped.
    """
    files, no_code = {}, 0
    for index, text in enumerate(texts):
        if text is None:
            continue
        try:
            code = extract_code(text)
            code = unshadow(TestFile(code), module_source, problem.module).source
        except (CodeExtractionError, SyntaxError):
            no_code += 1
            continue
        files[f"test_c{index}.py"] = code
    return files, no_code


def judge(problem: Problem, texts: list[str | None]) -> Verdict:
    """Run the problem's candidates in a child process and pick the best surviving file."""
    verdict = Verdict(problem.task_id, samples=len(texts), truncated=texts.count(None))
    files, verdict.no_code, results = candidate_outcomes(problem, texts)
    if isinstance(results, str):
        verdict.error = results
        return verdict
    return decide(problem, files, results, verdict)


def _copy_root(problem: Problem, work: Path) -> str:
    """Copy the problem's ground truth into ``work/src``; the source of the module under test."""
    src = work / "src"
    shutil.copytree(problem.root, src, ignore=shutil.ignore_patterns("__pycache__", "*.dist-info"))
    return module_path(src, problem.module).read_text(encoding="utf-8")


def candidate_outcomes(problem: Problem, texts: list[str | None], timeout: float = PROBLEM_TIMEOUT,
                       ) -> tuple[dict[str, str], int, dict | str]:
    """The candidate files of ``texts`` (by file name ``test_c{index}.py``), how many samples held no code,
    and the kill matrix of one child run over the files (or why there is none: no code, a timeout, a crash)."""
    with tempfile.TemporaryDirectory(prefix="utgen-corpus-") as tmp:
        files, no_code = candidate_files(problem, texts, _copy_root(problem, Path(tmp)))
        if not files:
            return files, no_code, "no complete sample with code"
        return files, no_code, run_candidates(problem, files, Path(tmp), timeout)


def run_candidates(problem: Problem, files: dict[str, str], work: Path,
                   timeout: float = PROBLEM_TIMEOUT) -> dict | str:
    """Run ``files`` against the ground truth in ``work/src`` and against each mutant of the problem's
    functions, in one child process; its results (see ``_kill_matrix.py``), or why there are none."""
    src = work / "src"
    target = module_path(src, problem.module)
    tests_dir = work / "candidates"
    tests_dir.mkdir()
    for name, code in files.items():
        (tests_dir / name).write_text(code, encoding="utf-8")
    (work / "setup.cfg").write_text("[mutmut]\nsource_paths=src\n", encoding="utf-8")
    spec = {"module_file": str(target), "module": problem.module, "names": top_level_names(problem.code),
            "allowed": [str(work), tempfile.gettempdir()], "mutant_seconds": MUTANT_SECONDS,
            "test_seconds": TEST_SECONDS,
            "memory_limit_mb": MEMORY_LIMIT_MB, "root": str(work), "tests_dir": str(tests_dir),
            "results": str(work / "results.json")}
    (work / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    # The ground truth first; then whatever the caller's path held (where pytest_utgen and mutmut are when
    # they are not installed, as on the GPU machine). Plugins of the environment stay out of the run.
    path = os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", "MUTANT_UNDER_TEST": "",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        subprocess.run([sys.executable, str(CHILD), str(work / "spec.json")], check=False, cwd=work, env=env,
                       capture_output=True, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        return "timeout"
    results_path = work / "results.json"
    if not results_path.is_file():
        return "child crashed"
    return json.loads(results_path.read_text(encoding="utf-8"))


def decide(problem: Problem, files: dict[str, str], results: dict, verdict: Verdict) -> Verdict:
    """Keep the candidate whose minimal passing tests kill the most mutants (then: fewest tests, shortest file)."""
    broken = {Path(nodeid).name for nodeid in results["collect_errors"]}
    verdict.not_collecting = len(broken & set(files))
    verdict.mutants = len(results["mutants"])
    if results.get("mutation_error"):
        verdict.notes.append(f"mutmut: {results['mutation_error'][:200]}")
    outcomes = unit_outcomes(results["tests"], {name: files[name] for name in set(files) - broken})
    cases = [case for units in outcomes.values() for unit in units.values() for case in unit["cases"]]
    verdict.tests_run, verdict.tests_passed = len(cases), sum(case["passed"] for case in cases)
    verdict.candidates_passing = sum(any(c["passed"] for u in units.values() for c in u["cases"])
                                     for units in outcomes.values())
    if not verdict.candidates_passing:
        verdict.error = "no passing test"
        return verdict
    chosen = {name: minimal_tests(units, verdict.mutants > 0) for name, units in outcomes.items()}
    texts = {name: normalize_tests(keep_cases(TestFile(files[name]).prune(set(keep)).source, keep))
             for name, keep in chosen.items() if keep}
    if not texts:
        verdict.error = "no test kills a mutant"
        return verdict

    killed = {name: kept_kills(outcomes[name], chosen[name]) for name in texts}
    best = max(sorted(texts), key=lambda n: (len(killed[n]), -len(chosen[n]), -len(texts[n])))
    verdict.killed = len(killed[best])
    verdict.record = {
        "task_id": problem.task_id, "source": problem.source, "question": problem.question, "code": problem.code,
        "module": None if problem.module == "solution" else problem.module, "messages": problem.messages(),
        "tests": texts[best], "tests_kept": len(chosen[best]),
        "tests_passing": sum(case["passed"] for unit in outcomes[best].values() for case in unit["cases"]),
        "tests_run": sum(len(unit["cases"]) for unit in outcomes[best].values()),
        "mutants": verdict.mutants, "mutants_killed": verdict.killed,
    }
    return verdict


def parametrize_marks(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.Call]:
    """The ``@pytest.mark.parametrize(...)`` decorators of a test function."""
    return [d for d in node.decorator_list if isinstance(d, ast.Call) and ast.unparse(d.func).endswith("parametrize")]


def parametrized_lists(source: str) -> dict[str, str]:
    """Test functions with one ``@pytest.mark.parametrize`` over a literal list: name -> its first argument name.

    Only these can lose single failing cases; other parametrized tests are kept or dropped whole.
    """
    editable = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            marks = parametrize_marks(node)
            if len(marks) == 1 and len(marks[0].args) >= 2 and isinstance(marks[0].args[0], ast.Constant) \
                    and isinstance(marks[0].args[1], (ast.List, ast.Tuple)):
                names = marks[0].args[0].value
                first = names.split(",")[0].strip() if isinstance(names, str) else None
                if first:
                    editable[node.name] = first
    return editable


def unit_outcomes(tests: dict[str, dict], sources: dict[str, str]) -> dict[str, dict[str, dict]]:
    """Per collected candidate file, its test units in run order, each with its cases in run order
    (passed, mutants killed, index into an editable parametrize list or None) and whether single
    cases can be dropped."""
    per_file: dict[str, dict[str, dict]] = defaultdict(dict)
    editable = {name: parametrized_lists(source) for name, source in sources.items()}
    for nodeid, outcome in tests.items():
        name = Path(nodeid.split("::")[0]).name
        if name not in sources:
            continue
        unit_name = unit_of(nodeid)
        argname = editable[name].get(unit_name)
        index = (outcome.get("indices") or {}).get(argname) if argname else None
        unit = per_file[name].setdefault(unit_name, {"cases": [], "editable": argname is not None})
        unit["editable"] = unit["editable"] and index is not None
        unit["cases"].append({"passed": outcome["passed"], "killed": set(outcome["killed"]) | set(outcome["timeouts"]),
                              "index": index})
    return per_file


def minimal_tests(units: dict[str, dict], judged_by_mutants: bool) -> dict[str, list[int] | None]:
    """The passing tests worth keeping, in file order: unit -> the kept parametrize indices (None: whole unit).

    With mutants to judge by: each kept case kills a mutant no earlier kept case killed (a greedy cover,
    so a file of twelve tests that kill what three kill trains the model to write the three). Without
    mutants (mutmut made none): the first ``MAX_TESTS_WITHOUT_MUTANTS`` passing units. A failing case
    is dropped alone from an editable parametrize list; from any other unit it drops the unit.
    """
    kept: dict[str, list[int] | None] = {}
    covered: set[str] = set()
    for name, unit in units.items():
        if not unit["editable"]:
            if all(case["passed"] for case in unit["cases"]):
                killed = set().union(*(case["killed"] for case in unit["cases"]))
                if killed - covered or not judged_by_mutants:
                    kept[name] = None
                    covered |= killed
            continue
        picked = []
        for case in unit["cases"]:
            if case["passed"] and (case["killed"] - covered or not judged_by_mutants):
                picked.append(case["index"])
                covered |= case["killed"]
        if picked:
            kept[name] = picked
    if not judged_by_mutants:
        return dict(list(kept.items())[:MAX_TESTS_WITHOUT_MUTANTS])
    return kept


def kept_kills(units: dict[str, dict], kept: dict[str, list[int] | None]) -> set[str]:
    """The mutants the kept cases of one candidate kill."""
    return set().union(*(case["killed"] for unit, picked in kept.items()
                         for index, case in enumerate(units[unit]["cases"]) if picked is None or index in picked))


def keep_cases(source: str, kept: dict[str, list[int] | None]) -> str:
    """``source`` with each editable parametrize list cut to the kept indices."""
    tree = ast.parse(source)
    for node in tree.body:
        indices = kept.get(getattr(node, "name", None))
        if indices is None or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        values = parametrize_marks(node)[0].args[1]
        values.elts = [values.elts[i] for i in sorted(set(indices))]
    return ast.unparse(tree)


def normalize_tests(source: str) -> str:
    """The test file without comments, in one layout: imports together, two blank lines between definitions."""
    blocks: list[str] = []
    for node in ast.parse(source).body:
        text = ast.unparse(node)
        if blocks and isinstance(node, (ast.Import, ast.ImportFrom)) and blocks[-1].startswith(("import ", "from ")):
            blocks[-1] += "\n" + text
        else:
            blocks.append(text)
    return "\n\n\n".join(blocks) + "\n"


def read_samples(path: Path, max_new_tokens: int = MAX_NEW_TOKENS) -> dict[str, list[str | None]]:
    """Sample texts per task id, in sample order; None for a sample that reached the token limit."""
    by_task: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            cut = row.get("tokens", 0) >= row.get("max_new_tokens", max_new_tokens)
            by_task[row["task_id"]].append((row["sample"], None if cut else row["text"]))
    return {task: [text for _, text in sorted(items)] for task, items in by_task.items()}


def filter_corpus(problems_path: Path, samples_path: Path, out_dir: Path, workers: int = 2) -> dict:
    """Filter every sampled problem; write the records, the splits and the stage counts."""
    problems = read_problems(problems_path)
    samples = read_samples(samples_path)
    todo = [p for p in problems if p.task_id in samples]
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = out_dir / "verdicts.jsonl"
    done = {}
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            if line.strip():
                verdict = Verdict(**json.loads(line))
                done[verdict.task_id] = verdict
    lock = threading.Lock()

    def run(problem: Problem) -> Verdict:
        if problem.task_id in done:
            return done[problem.task_id]
        verdict = judge(problem, samples[problem.task_id])
        with lock, open(journal, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(verdict)) + "\n")
            done[problem.task_id] = verdict
            print(f"filtered {len(done)}/{len(todo)}: {problem.task_id} "
                  f"{'kept' if verdict.record else verdict.error}", flush=True)
        return verdict

    with ThreadPoolExecutor(max_workers=workers) as pool:
        verdicts = list(pool.map(run, todo))
    records = [v.record for v in verdicts if v.record]
    atomic_write(out_dir / "records.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    for split in SPLITS:
        chosen = [r for r in records if split_of(r["task_id"]) == split]
        atomic_write(out_dir / f"records-{split}.jsonl", "".join(json.dumps(r) + "\n" for r in chosen))
    stats = corpus_stats(problems, todo, verdicts, records)
    atomic_write(out_dir / "stats.json", json.dumps(stats, indent=2) + "\n")
    return stats


def corpus_stats(problems: list[Problem], sampled: list[Problem], verdicts: list[Verdict], records: list[dict]) -> dict:
    """Counts at every stage, overall and per source kind."""
    kind = {p.task_id: p.source.split(":")[0] for p in problems}
    by_source: dict[str, Counter] = defaultdict(Counter)
    for p in problems:
        by_source[kind[p.task_id]]["problems"] += 1
    for v in verdicts:
        counts = by_source[kind[v.task_id]]
        counts["sampled"] += 1
        counts["samples"] += v.samples
        counts["samples_cut_at_token_limit"] += v.truncated
        counts["samples_without_code"] += v.no_code
        counts["files_not_collecting"] += v.not_collecting
        counts["tests_run"] += v.tests_run
        counts["tests_passing"] += v.tests_passed
        counts["problems_with_a_passing_file"] += v.record is not None
        counts["mutants_of_kept"] += v.mutants if v.record else 0
        counts["mutants_killed_by_kept"] += v.killed if v.record else 0
        if v.error:
            counts[f"dropped: {v.error}"] += 1
    splits = Counter(split_of(r["task_id"]) for r in records)
    return {"by_source": {k: dict(v) for k, v in by_source.items()}, "records": len(records),
            "splits": dict(splits), "problems": len(problems), "sampled": len(sampled)}
