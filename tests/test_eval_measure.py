"""The eval harness's measurements on tiny inputs with known answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.measure import measure

SOLUTION = "def add(a, b):\n    return a + b\n\n\ndef sign(x):\n    if x < 0:\n        return -1\n    return 1\n"


@pytest.fixture
def code(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "src"
    root.mkdir()
    module = root / "solution.py"
    module.write_text(SOLUTION)
    return root, module


def test_known_good_file_scores_full_pass_coverage_and_kills_mutants(code):
    root, module = code
    good = ("from solution import add, sign\n\n\ndef test_add():\n    assert add(1, 2) == 3\n    assert add(-1, 1) == 0\n\n\n"
            "def test_sign():\n    assert sign(-5) == -1\n    assert sign(0) == 1\n    assert sign(5) == 1\n")
    result = measure(root, module, good)
    assert result.collected and result.all_pass
    assert (result.tests_run, result.tests_passed, result.pass_rate) == (2, 2, 1.0)
    assert result.line_coverage == 100.0 and result.branch_coverage == 100.0
    assert result.mutation.total > 0
    assert result.mutation.score == 1.0


def test_file_that_asserts_nothing_kills_no_mutant(code):
    root, module = code
    empty = "from solution import add, sign\n\n\ndef test_calls():\n    add(1, 2)\n    sign(-1)\n    sign(1)\n"
    result = measure(root, module, empty)
    assert result.all_pass
    assert result.line_coverage == 100.0
    assert result.mutation.total > 0
    assert result.mutation.killed == 0 and result.mutation.score == 0.0


def test_wrong_assertion_counts_as_failed(code):
    root, module = code
    wrong = ("from solution import add\n\n\ndef test_right():\n    assert add(1, 2) == 3\n\n\n"
             "def test_wrong():\n    assert add(1, 2) == 4\n")
    result = measure(root, module, wrong, mutate=False)
    assert result.collected and not result.all_pass
    assert (result.tests_run, result.tests_passed) == (2, 1)
    assert result.pass_rate == 0.5


def test_file_that_does_not_collect(code):
    root, module = code
    result = measure(root, module, "from solution import nope\n\n\ndef test_x():\n    assert nope\n", mutate=False)
    assert not result.collected and "nope" in result.error
    assert result.pass_rate == 0.0


def _row(task: str, system: str, run: int, passed: int, killed: int = 0, survived: int = 0) -> dict:
    return {"task": task, "system": system, "seconds": 1.0, "tests_run": run, "tests_passed": passed,
            "collected": True, "all_pass": run == passed, "line_coverage": None, "branch_coverage": None,
            "mutation": {"killed": killed, "timeout": 0, "survived": survived, "no_tests": 0, "other": 0}}


def test_every_system_is_scored_on_the_same_mutants():
    from eval.harness import summarise

    rows = [_row("a", "base", 1, 1, killed=3, survived=1),  # base reaches only task a
            _row("b", "base", 2, 0),                          # no passing test: mutmut never ran
            _row("a", "lora", 1, 1, killed=2, survived=2),
            _row("b", "lora", 1, 1, killed=6, survived=0)]
    summary = summarise(rows)
    assert summary["base"]["mutation_score"] == pytest.approx(3 / 10)
    assert summary["lora"]["mutation_score"] == pytest.approx(8 / 10)
    assert summary["base"]["pass_rate"] == pytest.approx(1 / 3)


def test_report_recomputes_a_saved_result_without_measuring(tmp_path):
    import json

    from eval.harness import main

    saved = {"created": "2026-01-01T000000Z", "command": "python -m eval --limit 2", "git_sha": "abc",
             "machine": "test", "model": "m", "model_sha256": "0", "lora": None, "lora_sha256": None,
             "summary": {}, "rows": {"function-level": [_row("a", "base", 2, 1, killed=1, survived=1)]}}
    path = tmp_path / "eval-2026-01-01T000000Z.json"
    path.write_text(json.dumps(saved))
    assert main(["--report", str(path)]) == 0
    result = json.loads(path.read_text())
    assert result["summary"]["function-level"]["base"]["mutation_score"] == pytest.approx(0.5)
    assert result["report_command"].startswith("python -m eval --report")
    assert "Summary recomputed" in (tmp_path / "LATEST.md").read_text()
    assert (tmp_path / "eval-2026-01-01T000000Z.png").is_file()


def test_a_package_that_reads_its_own_metadata_on_import_is_scored(tmp_path):
    # Like humanize: `importlib.metadata.version(__name__)` in its __init__; mutmut's copy needs the dist-info.
    root = tmp_path / "site"
    (root / "versioned").mkdir(parents=True)
    (root / "versioned" / "__init__.py").write_text(
        "import importlib.metadata\n\n__version__ = importlib.metadata.version(__name__)\n")
    module = root / "versioned" / "ops.py"
    module.write_text(SOLUTION)
    (root / "versioned-1.0.dist-info").mkdir()
    (root / "versioned-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: versioned\nVersion: 1.0\n")
    good = "from versioned.ops import add, sign\n\n\ndef test_add():\n    assert add(1, 2) == 3\n    assert sign(-5) == -1\n"
    result = measure(root, module, good)
    assert result.all_pass and result.mutation.total > 0 and result.mutation.killed > 0
