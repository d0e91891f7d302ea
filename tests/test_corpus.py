"""The corpus build: held-out lists, the execution filter and mutation ranking on tiny known inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.corpus.filter import filter_corpus, judge, minimal_tests, normalize_tests, read_samples
from trainer.corpus.reward import FAIL_PENALTY, FileScore, score_files
from trainer.corpus.problems import (
    PYPI_MODULES,
    PYPI_PACKAGES,
    STDLIB_MODULES,
    Problem,
    assert_not_held_out,
    package_modules,
    problem_stats,
    write_problems,
)
from trainer.data import from_record, split_of
from trainer.grpo import group_advantages
from trainer.heldout import EVAL_MODULES, FRESH_MODULES, eval_packages

pytest.importorskip("mutmut")

SOLUTION = """def capped_sum(values, factor):
    total = 0
    for value in values:
        total += value * factor
    if total > 100:
        return 100
    return total
"""
STRONG = """```python
from solution import capped_sum


def test_scaled():
    assert capped_sum([1, 2], 3) == 9


def test_capped():
    assert capped_sum([60, 70], 1) == 100


def test_empty():
    assert capped_sum([], 5) == 0


def test_just_above_the_cap():
    assert capped_sum([101], 1) == 100
```"""
WEAK = """```python
from solution import capped_sum


def test_runs():
    capped_sum([1], 2)


def test_wrong():
    assert capped_sum([1], 2) == 3
```"""
NOT_COLLECTING = "```python\nfrom solution import no_such_name\n\n\ndef test_x():\n    assert no_such_name()\n```"
PROSE = "I cannot write tests for this."


def toy_problem(tmp_path: Path, task_id: str = "toy-1") -> Problem:
    root = tmp_path / task_id
    root.mkdir()
    (root / "solution.py").write_text(SOLUTION)
    return Problem(task_id, "toy", "solution", SOLUTION, str(root), "Sum of values times factor, capped at 100.")


def test_held_out_benchmarks_and_eval_modules_are_refused(tmp_path):
    assert_not_held_out([toy_problem(tmp_path)])
    with pytest.raises(ValueError, match="held-out"):
        assert_not_held_out([Problem("HumanEval/3", "humaneval", "solution", "x = 1", "/")])
    with pytest.raises(ValueError, match="eval module set"):
        assert_not_held_out([Problem("pypi-roman-0", "pypi:roman==4.2", "roman", "x = 1", "/")])
    with pytest.raises(ValueError, match="eval module set"):
        assert_not_held_out([Problem("pypi-b-0", "pypi:boltons==24.0.0", "boltons.strutils", "x = 1", "/")])
    with pytest.raises(ValueError, match="eval module set"):
        assert_not_held_out([Problem("pypi-f-0", "pypi:funcy==2.0", "funcy.seqs", "x = 1", "/")])


def test_no_eval_module_set_shares_a_package_with_the_corpus_lists():
    corpus = {requirement.split("==")[0].lower().replace("-", "_") for requirement, _ in PYPI_MODULES}
    corpus |= {module.split(".")[0].lower() for _, module in PYPI_MODULES} | set(STDLIB_MODULES)
    corpus |= {requirement.split("==")[0].lower().replace("-", "_") for requirement in PYPI_PACKAGES}
    assert not corpus & eval_packages()
    assert len(FRESH_MODULES) >= 8 and not {m for _, m in FRESH_MODULES} & {m for _, m in EVAL_MODULES}


def test_the_candidate_killing_most_mutants_wins_and_only_passing_tests_are_kept(tmp_path):
    verdict = judge(toy_problem(tmp_path), [WEAK, NOT_COLLECTING, STRONG, PROSE])
    assert verdict.no_code == 1
    assert verdict.not_collecting == 1
    assert verdict.candidates_passing == 2
    assert verdict.tests_run == 6 and verdict.tests_passed == 5
    assert verdict.mutants > 5
    record = verdict.record
    assert record["mutants"] == verdict.mutants
    assert record["mutants_killed"] == verdict.killed
    assert verdict.killed >= verdict.mutants - 2 > 0
    assert record["tests_passing"] == 4
    assert record["tests_kept"] == 3  # test_empty kills no mutant test_scaled has not killed
    assert "def test_just_above_the_cap" in record["tests"] and "test_wrong" not in record["tests"]
    assert "test_empty" not in record["tests"]
    assert record["code"] == SOLUTION and record["module"] is None


def test_the_reward_is_mutants_killed_minus_failing_tests_and_broken_files_score_lowest(tmp_path):
    strong, weak, broken, prose, cut = score_files(toy_problem(tmp_path), [STRONG, WEAK, NOT_COLLECTING, PROSE, None])
    assert strong.collected and strong.failed == 0 and strong.passed == 4
    assert strong.mutants > 5 and strong.killed >= strong.mutants - 2
    assert strong.reward == pytest.approx(strong.killed / strong.mutants)
    # WEAK: one test that asserts nothing (kills only crashing mutants), one that fails on the real code.
    assert weak.passed == 1 and weak.failed == 1
    assert weak.reward == pytest.approx(weak.killed / weak.mutants - FAIL_PENALTY / 2)
    assert strong.reward > weak.reward > -FAIL_PENALTY
    assert broken == prose == cut == FileScore(-FAIL_PENALTY)


def test_with_the_all_pass_gate_a_file_with_a_failing_test_earns_no_kill_credit(tmp_path):
    strong, weak = score_files(toy_problem(tmp_path), [STRONG, WEAK], fail_penalty=1.0, all_pass_gate=True)
    assert strong.killed > 0 and strong.reward == pytest.approx(strong.killed / strong.mutants)
    assert weak.killed > 0 and weak.failed == 1  # what it did is still reported
    assert weak.reward == pytest.approx(-1.0 / 2)


def test_grpo_advantages_are_normalised_within_a_group_and_zero_when_it_agrees():
    assert group_advantages([0.5, 0.5, 0.5]) == [0.0, 0.0, 0.0]
    low, high = group_advantages([0.0, 1.0])
    assert low == pytest.approx(-1.0) and high == pytest.approx(1.0)
    assert sum(group_advantages([0.1, 0.4, -0.5, 0.9])) == pytest.approx(0.0)


def case(passed: bool, *killed: str, index: int | None = None) -> dict:
    return {"passed": passed, "killed": set(killed), "index": index}


def test_minimal_tests_is_a_greedy_cover_in_file_order_of_passing_cases():
    units = {
        "test_a": {"editable": False, "cases": [case(True, "m1", "m2")]},
        "test_b": {"editable": False, "cases": [case(True, "m2")]},
        "test_c": {"editable": False, "cases": [case(True, "m3"), case(False)]},
        "test_d": {"editable": True, "cases": [case(True, "m1", index=0), case(False, index=1),
                                               case(True, "m4", index=2), case(True, "m4", index=3)]},
        "test_e": {"editable": False, "cases": [case(True, "m3", "m5")]},
        "test_f": {"editable": False, "cases": [case(True)]},
    }
    assert minimal_tests(units, judged_by_mutants=True) == {"test_a": None, "test_d": [2], "test_e": None}
    assert minimal_tests(units, judged_by_mutants=False) == {"test_a": None, "test_b": None, "test_d": [0, 2, 3]}


def test_a_failing_parametrized_case_is_cut_from_its_list_and_the_rest_kept(tmp_path):
    mixed = """```python
import pytest
from solution import capped_sum


@pytest.mark.parametrize("values, expected", [([1, 2], 9), ([1], 4), ([60, 70], 100)])
def test_cases(values, expected):
    assert capped_sum(values, 3) == expected


@pytest.mark.parametrize("values", [[1], [2]])
@pytest.mark.parametrize("factor", [0, 1])
def test_stacked(values, factor):
    assert capped_sum(values, factor) == values[0] * factor + (factor == 1 and values[0] == 2)
```"""
    verdict = judge(toy_problem(tmp_path), [mixed])
    assert verdict.tests_run == 7 and verdict.tests_passed == 5
    tests = verdict.record["tests"]
    assert "([1, 2], 9), ([60, 70], 100)]" in tests and "([1], 4)" not in tests
    assert "test_stacked" not in tests  # stacked marks are kept or dropped whole, and one case fails
    run_dir = tmp_path / "rerun"
    run_dir.mkdir()
    (run_dir / "solution.py").write_text(SOLUTION)
    (run_dir / "test_kept.py").write_text(tests)
    rerun = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_kept.py"],
                           cwd=run_dir, capture_output=True, text=True)
    assert rerun.returncode == 0 and "2 passed" in rerun.stdout


def test_a_test_that_asserts_nothing_kills_only_crashing_mutants(tmp_path):
    only_weak = WEAK.replace("def test_wrong():\n    assert capped_sum([1], 2) == 3\n", "")
    verdict = judge(toy_problem(tmp_path), [only_weak])
    assert verdict.record is not None and verdict.record["tests_kept"] == 1
    assert verdict.mutants >= 6
    assert verdict.killed <= 1  # only `total = None`, which raises


def test_a_hanging_test_fails_instead_of_stalling_the_build(tmp_path):
    hang = "```python\nfrom solution import capped_sum\n\ndef test_hang():\n    while True:\n        capped_sum([1], 2)\n```"
    verdict = judge(toy_problem(tmp_path), [hang])
    assert verdict.tests_run == 1 and verdict.tests_passed == 0
    assert verdict.error == "no passing test"


def test_filter_writes_records_splits_stats_and_resumes_from_its_journal(tmp_path):
    problems = [toy_problem(tmp_path, f"toy-{i}") for i in range(3)]
    write_problems(problems, tmp_path / "problems.jsonl")
    samples = [{"task_id": p.task_id, "sample": k, "text": text}
               for p in problems for k, text in enumerate([STRONG, PROSE])]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    out = tmp_path / "corpus"
    stats = filter_corpus(tmp_path / "problems.jsonl", tmp_path / "samples.jsonl", out, workers=2)
    assert stats["records"] == 3
    assert stats["by_source"]["toy"]["samples_without_code"] == 3
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert {r["task_id"] for r in records} == {"toy-0", "toy-1", "toy-2"}
    for split in ("train", "val", "test"):
        lines = (out / f"records-{split}.jsonl").read_text().splitlines()
        assert {json.loads(line)["task_id"] for line in lines} == {r["task_id"] for r in records
                                                                   if split_of(r["task_id"]) == split}
    journal = (out / "verdicts.jsonl").read_text()
    assert filter_corpus(tmp_path / "problems.jsonl", tmp_path / "samples.jsonl", out)["records"] == 3
    assert (out / "verdicts.jsonl").read_text() == journal


def test_samples_at_their_own_token_limit_count_as_cut(tmp_path):
    rows = [{"task_id": "t", "sample": 1, "text": "short", "tokens": 40, "max_new_tokens": 384},
            {"task_id": "t", "sample": 0, "text": "looped", "tokens": 384, "max_new_tokens": 384},
            {"task_id": "u", "sample": 0, "text": "no recorded limit", "tokens": 500}]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_samples(path) == {"t": [None, "short"], "u": ["no recorded limit"]}


def test_normalized_tests_lose_comments_and_keep_behaviour():
    text = normalize_tests("import pytest\nfrom m import f  # the code\n\n# helper\ndef test_a():\n    assert f(1) == 2  # yes\n")
    assert "#" not in text
    assert text.startswith("import pytest\nfrom m import f\n\n\ndef test_a():")


def test_real_code_records_keep_their_module_import():
    example = from_record({"task_id": "pypi-x-0", "code": "def f():\n    return 1\n", "module": "pkg.mod",
                           "tests": "from pkg.mod import f\n\n\ndef test_f():\n    assert f() == 1\n"})
    assert example.module == "pkg.mod"
    assert "from solution import" not in example.tests


def test_target_problems_are_the_plugin_s_target_prompts_and_the_trainer_trains_on_them(tmp_path):
    from pytest_utgen.prompt import build_target_messages
    from pytest_utgen.targets import find_targets, module_header
    from trainer.corpus.problems import read_problems, target_problems

    source = (Path(__file__).parents[1] / "examples" / "shopkit" / "src" / "shopkit" / "pricing.py").read_text()
    root = tmp_path / "root"
    (root / "shopkit").mkdir(parents=True)
    (root / "shopkit" / "pricing.py").write_text(source)
    problems = target_problems("demo-pricing", "demo", "shopkit.pricing", root / "shopkit" / "pricing.py", root)
    targets = find_targets(source)
    assert [p.target["qualname"] for p in problems] == [t.qualname for t in targets]
    assert problems[0].messages() == build_target_messages(module_header(source), "shopkit.pricing", targets[0])
    write_problems(problems, tmp_path / "problems.jsonl")
    assert read_problems(tmp_path / "problems.jsonl") == problems
    record = {"task_id": problems[1].task_id, "code": problems[1].code, "module": "shopkit.pricing",
              "tests": "from shopkit.pricing import add_tax\n\n\ndef test_tax():\n    assert add_tax(100, 0.2) == 120\n",
              "messages": problems[1].messages()}
    example = from_record(json.loads(json.dumps(record)))
    assert example.prompt() == build_target_messages(module_header(source), "shopkit.pricing", targets[1])


def test_a_distributions_modules_are_those_with_something_to_test_outside_tests_and_vendored_code(tmp_path):
    files = {
        "pkg/__init__.py": "from .core import add\n",
        "pkg/core.py": "def add(a, b):\n    return a + b\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/parse.py": "class P:\n    def run(self, text):\n        return text.split()\n",
        "pkg/data.py": "TABLE = {1: 2}\n",
        "pkg/tests/test_core.py": "def test_add():\n    assert True\n",
        "pkg/_vendor/lib.py": "def f():\n    return 1\n",
        "pkg/__main__.py": "def main():\n    return 0\n",
        "loose/notapackage.py": "def g():\n    return 2\n",
        "pkg-1.0.dist-info/x.py": "def h():\n    return 3\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert package_modules(tmp_path) == ["pkg.core", "pkg.sub.parse"]
    assert package_modules(tmp_path, limit=1) == ["pkg.core"]


def test_problem_stats_count_modules_chunks_and_targets_per_source():
    problems = [Problem("a-0", "pypi:x==1", "x.a", "def f(): pass", "/"),
                Problem("a-t-f", "pypi:x==1", "x.a", "def f(): pass", "/", target={"qualname": "f"}),
                Problem("b-0", "pypi:y-z==2", "y.b", "def g(): pass", "/"),
                Problem("m-1", "mbpp", "solution", "def h(): pass", "/")]
    stats = problem_stats(problems)
    assert stats["problems"] == 4 and stats["pypi_distributions"] == 2 and stats["pypi_modules"] == 2
    assert stats["sources"]["pypi:x==1"] == {"modules": 1, "chunks": 1, "targets": 1}
    assert stats["sources"]["mbpp"] == {"modules": 1, "chunks": 1, "targets": 0}
