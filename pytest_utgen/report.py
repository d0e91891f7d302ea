"""Report: per-module results, the terminal table and the JSON report."""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from .writer import atomic_write


class ModuleStatus(str, Enum):
    """What happened to a selected module in a run."""

    GENERATED = "generated"  # the model was asked this run
    CACHED = "cached"  # unchanged source and model: last run's files stand
    SKIPPED = "skipped"  # it cannot be imported (the error says why)
    FAILED = "failed"  # its files cannot be written (the error says why)


class StopReason(str, Enum):
    """Why a module's loop made no further model call."""

    COVERAGE = "target coverage reached"
    MAX_CALLS = "model-call budget spent"
    BUDGET_SECONDS = "time budget spent"
    TARGETS_DONE = "every function with uncovered lines was asked for"
    NO_GAIN = "model calls in a row reached no new line or branch, and no target was left unasked or to repair"
    MUTANTS_KILLED = "no mutant of the covered lines survives"
    MUTANTS_DONE = "every surviving mutant was asked for"


class PromptKind(str, Enum):
    """What a model call asked for."""

    MODULE = "module"  # tests for the whole module (or a chunk of it), maybe with the last reply's problem
    TARGET = "target"  # tests for one function or method with uncovered lines
    MUTANT = "mutant"  # a test that tells a surviving mutant apart


@dataclass
class CallRecord:
    """One model call of a module's loop: what it cost and what it bought."""

    kind: PromptKind
    target: str | None  # the function or method a target or mutant prompt was about
    prompt_tokens: int
    prompt_tokens_reused: int
    completion_tokens: int
    model_seconds: float
    sandbox_seconds: float  # running its candidate (quick check and oracle)
    tests_kept: int  # of its candidate, kept for now (the final checks and keep set come later)
    points: float  # line+branch percentage points the kept tests added to the module's union


@dataclass
class Dropped:
    """Something the model wrote that is neither kept nor in the quarantine file, and why."""

    what: str  # a test name, or "reply N" for a whole reply
    reason: str


@dataclass
class ModuleReport:
    """Everything measured for one module in one run."""

    module: str
    path: str
    status: ModuleStatus
    reason: str
    attempts: int = 0
    model_calls: int = 0
    tests_generated: int = 0
    tests_kept: int = 0
    tests_quarantined: int = 0
    tests_flaky: int = 0
    line_before: float | None = None
    line_after: float | None = None
    branch_before: float | None = None
    branch_after: float | None = None
    seconds: float = 0.0
    model_seconds: float = 0.0
    prompt_seconds: float = 0.0  # of model_seconds, processing prompts (llama.cpp in-process only)
    decode_seconds: float = 0.0  # of model_seconds, generating tokens
    sandbox_seconds: float = 0.0
    final_seconds: float = 0.0  # the kept file's final checks (reruns, keep set, mutation score)
    expectations_adopted: int = 0
    tests_from_docs: int = 0  # of the tests kept before the keep set, the module's docstring examples
    tests_explored: int = 0  # of the tests kept before the keep set, calls built from signatures (no model call)
    tests_amplified: int = 0  # of the kept tests before the keep set, variants of kept tests (no model call)
    amplified_points: float = 0.0  # line+branch percentage points those variants added to the loop's union
    mutants: int | None = None  # of the whole module (None: mutation pass off); uncovered ones survive
    mutants_killed: int = 0
    prompt_tokens: int = 0
    prompt_tokens_reused: int = 0  # of prompt_tokens, taken from llama.cpp's cache (not processed again)
    completion_tokens: int = 0
    model_id: str | None = None
    model_sha256: str | None = None
    output: str | None = None
    quarantine: str | None = None
    error: str | None = None
    dropped: list[Dropped] = field(default_factory=list)
    stopped: StopReason | None = None
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def mutation_score(self) -> float | None:
        """Killed mutants over all mutants of the module, in %."""
        return 100.0 * self.mutants_killed / self.mutants if self.mutants else None

    def progress_line(self) -> str:
        """The one line printed when this module finishes."""
        if self.status in (ModuleStatus.SKIPPED, ModuleStatus.FAILED):
            return f"utgen: {self.module}: {self.status.value}: {self.error or self.reason}"
        dropped = f", dropped {len(self.dropped)}" if self.dropped else ""
        split = (f": model {self.model_seconds:.0f}s (prompt {self.prompt_seconds:.0f} + decode "
                 f"{self.decode_seconds:.0f}), sandbox {self.sandbox_seconds:.0f}s") if self.model_calls else ""
        return (
            f"utgen: {self.module}: {self.status.value}: kept {self.tests_kept}, failed {self.tests_quarantined}, "
            f"flaky {self.tests_flaky}{dropped} ({self.seconds:.1f}s{split})"
        )


@dataclass
class RunReport:
    """A whole run: the model used and every module's report."""

    model_id: str | None = None
    model_sha256: str | None = None
    lora: str | None = None
    modules: list[ModuleReport] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    model_calls: int = 0
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    machine: str = field(
        default_factory=lambda: f"{platform.machine()} {platform.system()}, python {platform.python_version()}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def write_json(self, path: Path) -> None:
        """Write the report as JSON, atomically."""
        atomic_write(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def table(self) -> str:
        """Plain-text table: coverage before -> after per module, tests kept/quarantined, seconds."""
        headers = ["module", "status", "line %", "branch %", "mutants killed", "kept", "quar.", "flaky", "s"]
        rows = [headers]

        def pct(before: float | None, after: float | None) -> str:
            if before is None and after is None:
                return "-"
            fmt = lambda v: "?" if v is None else f"{v:.0f}"  # noqa: E731
            return f"{fmt(before)} -> {fmt(after)}"

        for m in self.modules:
            rows.append([
                m.module, m.status.value, pct(m.line_before, m.line_after), pct(m.branch_before, m.branch_after),
                "-" if m.mutation_score is None else f"{m.mutants_killed}/{m.mutants} ({m.mutation_score:.0f}%)",
                str(m.tests_kept), str(m.tests_quarantined), str(m.tests_flaky), f"{m.seconds:.1f}",
            ])
        widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for skip in self.skipped:
            lines.append(f"skipped {skip['path']}: {skip['reason']}")
        for m in self.modules:
            lines.extend(f"{m.module}: dropped {d.what}: {d.reason}" for d in m.dropped)
        lines.append(
            f"model: {self.model_id or 'not loaded'}; model calls: {self.model_calls}; total {self.seconds:.1f}s"
        )
        return "\n".join(lines)
