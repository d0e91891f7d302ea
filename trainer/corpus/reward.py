"""The execution reward of a candidate test file (issue 15, item 3): the share of the target's mutants its
passing tests kill, minus a penalty for its tests that fail on the real code. With the all-pass gate, a file
with any failing test earns no kill credit at all: a linear penalty (0.5 or 1.0 × the failing share) let GRPO
trade correct tests for kills by writing more tests per file (trainer/results/grpo-penalty1-2026-11-28).

A file that does not parse, does not collect, or was cut at the token limit scores as if all its tests
failed. Computed by the corpus filter's child run (``filter.candidate_outcomes``): the same mutants (mutmut's,
of the problem's functions) and the same sandbox as the records the SFT rounds were filtered with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .filter import PROBLEM_TIMEOUT, candidate_outcomes, unit_outcomes
from .problems import Problem

FAIL_PENALTY = 0.5


@dataclass(frozen=True)
class FileScore:
    """What one candidate file did on the real code and on the mutants, and its reward."""

    reward: float
    collected: bool = False
    passed: int = 0
    failed: int = 0
    killed: int = 0
    mutants: int = 0


def score_files(problem: Problem, texts: list[str | None], fail_penalty: float = FAIL_PENALTY,
                timeout: float = PROBLEM_TIMEOUT, all_pass_gate: bool = False) -> list[FileScore] | None:
    """One :class:`FileScore` per text (None: cut at the token limit), in order; None when the child run
    itself failed (timeout, crash), so no text of the group can be judged."""
    files, _, results = candidate_outcomes(problem, texts, timeout)
    if isinstance(results, str):
        return None if files else [FileScore(-fail_penalty) for _ in texts]
    mutants = len(results["mutants"])
    broken = {Path(nodeid).name for nodeid in results["collect_errors"]}
    outcomes = unit_outcomes(results["tests"], {name: files[name] for name in set(files) - broken})
    scores = []
    for index in range(len(texts)):
        cases = [case for unit in outcomes.get(f"test_c{index}.py", {}).values() for case in unit["cases"]]
        if not cases:
            scores.append(FileScore(-fail_penalty))
            continue
        passing = [case for case in cases if case["passed"]]
        killed = set().union(*(case["killed"] for case in passing))
        failed = len(cases) - len(passing)
        # Without mutants (mutmut made none) a passing file earns what a file killing half of them would.
        gain = len(killed) / mutants if mutants else 0.5 * (len(passing) > 0)
        if all_pass_gate and len(passing) < len(cases):
            gain = 0.0
        scores.append(FileScore(gain - fail_penalty * failed / len(cases), True, len(passing), failed,
                                len(killed), mutants))
    return scores
