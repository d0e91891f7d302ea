"""Engine: discover -> prompt -> generate -> validate -> write -> report, shared by the CLI and the plugin."""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Generator, NamedTuple

from . import discover
from .amplify import MAX_VARIANTS, amplify, module_constants, passed_values
from .config import UtgenConfig
from .errors import UtgenError
from .explore import CALLS_PER_TARGET, MAX_TESTS, argument_values, constructions, explore
from .generate import Backend, CodeExtractionError, Completion, LlamaCppBackend, OpenAIBackend, extract_tests
from .model_store import resolve_lora, resolve_model, verified_sha256
from .mutate import Mutant, find_mutants
from .oracle import Adopted
from .prompt import SourceChunk, build_messages, build_mutant_messages, build_target_messages, split_source
from .regex_examples import regex_examples
from .report import CallRecord, Dropped, ModuleReport, ModuleStatus, PromptKind, RunReport, StopReason
from .sandbox import FileCoverage, MutationRun, Outcome, RunResult, Workspace
from .seeds import doctest_seeds
from .targets import Target, find_targets, module_header
from .testfile import TestFile, body_key, unit_of
from .validate import (
    MUTANT_TEST_SECONDS,
    CandidateValidator,
    ValidationResult,
    absolute_imports,
    contributions,
    counted,
    greedy_cover,
    import_missing_names,
    strip_script_code,
    unshadow,
)
from .writer import (
    Cache,
    check_writable,
    is_generated_file,
    make_provenance,
    output_paths,
    read_generated_body,
    remove_generated,
    sha256_text,
    write_generated,
)

PROMPT_OVERHEAD_TOKENS = 300
TARGET_VISITS = 3  # prompts per function or method in the target pass
FRUITLESS_CALLS = 2  # target calls in a row that, their tests amplified, reached nothing new: no more visits again
MAX_FEEDBACK_CHARS = 1500
MAX_TARGET_FEEDBACK_CHARS = 600
AMPLIFY_ROUNDS = 6  # per amplification step; each round varies the variants the one before kept
MUTATION_SHARE = 0.25  # of a module's model calls and seconds, kept for the mutation pass when it is on
# Of budget_s, at most, that one module-pass prompt may be expected to take: on a slow machine a whole module
# costs minutes before its first test, while the target pass's small prompts share their prefix.
MODULE_PROMPT_SHARE = 0.3
UNCOVERED_FEEDBACK = "These lines of the module are never run by the tests:\n"
FINAL_RESERVE_SHARE = 0.3  # of budget_s, at most, held back for the final checks (see FinalCheckSpeed)
# Of budget_s: what the amplification after the last model call may take (held back from the model's share),
# and at most what exploration, before the first call, may take.
FINAL_AMPLIFY_SHARE = 0.15
EXPLORE_SHARE = 0.3
# Calls per function or method when exploration fills the seconds no model call or variant fits in; a round
# that finds nothing new is followed by one of twice as many calls, up to FILL_MOST_CALLS.
FILL_CALLS_PER_TARGET = 12
FILL_MOST_CALLS = 48
MIN_BUILT_TESTS = 5  # fewer tests built without the model than this fit in the time left: no child run
# A variants' mutant run stopped at the round's deadline still gets this long: their lines and arcs first.
MIN_MUTANT_RUN_SECONDS = 3.0
# A reply cut shorter than this holds no whole test: the call is not made.
MIN_REPLY_TOKENS = 96
# The longest reply to a mutant prompt: one or two tests that tell the change apart (119 tokens on average on the
# tuning sets; a longer one, semver's 405 tokens at 58 s of a 90 s budget, repeats tests already kept).
MUTANT_REPLY_TOKENS = 256
CHAT_TEMPLATE_TOKENS = 12  # the role markers the chat template adds around each message


@dataclass
class ModelIdentity:
    """Which model (and adapter) a run uses: the key for headers and the cache."""

    model_id: str
    sha256: str | None
    path: Path | None = None
    lora: Path | None = None
    lora_sha256: str | None = None

    @property
    def cache_key(self) -> str:
        return self.model_id + (f"+lora@{self.lora_sha256[:12]}" if self.lora_sha256 else "")


def identify_model(config: UtgenConfig) -> ModelIdentity:
    """Resolve and verify the configured model and adapter (no weights are loaded)."""
    if config.endpoint:
        return ModelIdentity(f"{config.endpoint_model}@{config.endpoint.rstrip('/')}", None)
    model = resolve_model(config.model, config.model_dir)
    lora = resolve_lora(config.lora, config.model)
    return ModelIdentity(model.model_id, model.sha256, model.path, lora, verified_sha256(lora) if lora else None)


def make_backend(config: UtgenConfig, identity: ModelIdentity) -> Backend:
    """The backend the config asks for: an OpenAI-compatible server, or llama.cpp in-process."""
    if config.endpoint:
        return OpenAIBackend(config.endpoint, config.endpoint_model, config.workers, config.seed)
    return LlamaCppBackend(identity.path, identity.cache_key, identity.lora, config.n_ctx, config.n_threads,
                           config.seed,
                           verbose=config.verbose)


@dataclass(frozen=True)
class _Request:
    """One model call the module's plan asks for: the prompt, its sampling temperature, what it is about."""

    messages: list[dict[str, str]]
    temperature: float
    kind: PromptKind
    target: str | None = None
    max_tokens: int | None = None  # the reply's length limit, at most (None: the config's max_tokens)


@dataclass
class ModelSpeed:
    """The model's tokens per second here, from the calls so far; before any, what the default model with its
    adapter does on 2 CPU cores (a guess on the slow side: a first call's reply is cut to what fits before the
    deadline at this speed)."""

    prompt: float = 40.0
    decode: float = 10.0

    def seconds(self, prompt_tokens: int, completion_tokens: int) -> float:
        """How long a call that processes ``prompt_tokens`` and writes ``completion_tokens`` should take."""
        return prompt_tokens / self.prompt + completion_tokens / self.decode

    def update(self, completion: Completion) -> None:
        new = completion.prompt_tokens - completion.prompt_tokens_reused
        if completion.prompt_seconds is not None and new >= 100 and completion.completion_tokens >= 20:
            self.prompt = new / max(completion.prompt_seconds, 1e-3)
            self.decode = completion.completion_tokens / max(completion.decode_seconds, 1e-3)
        elif completion.seconds > 0 and new + completion.completion_tokens > 0:
            # A server tells no split: both rates scale by how far off the whole call's estimate was.
            factor = self.seconds(new, completion.completion_tokens) / completion.seconds
            self.prompt, self.decode = self.prompt * factor, self.decode * factor


@dataclass
class FinalCheckSpeed:
    """Seconds a module's final checks take: a start plus a cost per kept test (each runs alone, then the file
    runs in new interpreters and against the mutants), the latter from the last module's checks. A new run of
    every mutant, needed when the kept tests changed after their last one, is not in it: the module's own last
    such run tells its cost."""

    # The 2-core build machine, 2026-12-07: 14 to 49 tests took 2.3 to 7.5 s (the fresh-8 modules), 77 tests
    # of isodate.duration 3.5 s; a run of several modules learns per_test from each module's checks.
    start: float = 3.0  # the run of the file, two more in new interpreters, a mutation run that is current
    per_test: float = 0.06

    def reserve(self, tests: int, budget_s: float) -> float:
        """Seconds to hold back for the final checks of ``tests`` kept tests: at most ``FINAL_RESERVE_SHARE``
        of the budget."""
        return min(self.start + self.per_test * tests, FINAL_RESERVE_SHARE * budget_s)

    def update(self, tests: int, seconds: float) -> None:
        if tests >= 10:  # fewer: the start is most of it, and the cost per test it gives is noise
            self.per_test = max(0.02, (seconds - self.start) / tests)


@dataclass
class SandboxSpeed:
    """Seconds a child run of tests built without the model (explored calls, variants) takes here, their
    checks and mutation run together: a start cost plus a cost per test, the latter from the runs so far."""

    start: float = 2.0
    per_test: float = 0.2
    # The runs so far, each half the weight of the one after it: the cost per test is their seconds over their
    # tests, so a short run (mostly its start) does not set it alone.
    _tests: float = 0.0
    _seconds: float = 0.0

    def tests_fitting(self, seconds: float, most: int) -> int:
        """How many tests (up to ``most``) such a run can hold and still end within ``seconds``."""
        return max(0, min(most, int((seconds - self.start) / self.per_test)))

    def update(self, tests: int, seconds: float) -> None:
        if tests:
            self._tests = self._tests / 2 + tests
            self._seconds = self._seconds / 2 + max(0.0, seconds - self.start)
            self.per_test = max(0.005, self._seconds / self._tests)


class _Gain(NamedTuple):
    """What tests built without the model add: the file of those that passed, its run, what each of its tests
    runs or kills (counted as coverage.py counts), and the fewest that add to the kept tests."""

    file: TestFile
    run: MutationRun
    held_by: dict[str, set]
    chosen: list[str]


# What a model call came to: its validation (None when no code came back) and the problem to feed back
# (None when a test was kept).
_Attempt = tuple[ValidationResult | None, str | None]


@dataclass
class _ModuleWork:
    selection: discover.Selection
    report: ModuleReport
    source: str
    out_path: Path
    quarantine_path: Path
    kept: TestFile | None = None  # the kept tests so far, as one file
    failing: dict[str, str] = field(default_factory=dict)
    failing_sources: dict[str, str] = field(default_factory=dict)
    imports: str = ""
    adopted: list[Adopted] = field(default_factory=list)
    executed: set[int] = field(default_factory=set)  # union over the kept candidates' coverage
    statements: set[int] = field(default_factory=set)
    taken_arcs: set[tuple[int, int]] = field(default_factory=set)
    arcs: set[tuple[int, int]] = field(default_factory=set)
    target_visits: Counter[str] = field(default_factory=Counter)  # prompts per target so far
    # Per target, its last prompt and temperature: sent again, the seeded model would write the same reply.
    target_prompts: dict[str, tuple[list[dict[str, str]], float]] = field(default_factory=dict)
    amplified: set[str] = field(default_factory=set)  # kept tests whose variants were tried
    explored: set[str] = field(default_factory=set)  # the bodies of the calls exploration tried
    kept_run: tuple[TestFile, MutationRun] | None = None  # the kept file and every mutant run against it
    kept_run_seconds: float = 0.0  # how long the last run of every mutant against the kept tests took
    kept_runs: int = 0  # how many such runs were made (a kept_run derived from one without tests is none)
    rewrite: bool = False  # a cached module's file lost tests in the run with the suite: write it again

    @cached_property
    def targets(self) -> list[Target]:
        """The module's functions and methods, what target and mutant prompts are about."""
        return find_targets(self.source)

    @cached_property
    def mutants(self) -> list[Mutant]:
        """Every mutant of the module."""
        return find_mutants(self.source)

    def absorb(self, coverage: FileCoverage | None) -> None:
        """Add a kept candidate's coverage to the module's union."""
        if coverage is not None:
            self.executed.update(coverage.executed_lines)
            self.statements.update(coverage.executed_lines, coverage.missing_lines)
            self.taken_arcs.update(coverage.executed_branches)
            self.arcs.update(coverage.executed_branches, coverage.missing_branches)

    def quarantine(self, file: TestFile, failing: dict[str, str]) -> None:
        """Move the failing tests of ``file`` into the module's quarantine, each with its reason."""
        for name, text in file.unit_sources(set(failing)).items():
            self.quarantine_text(name, text, failing[name])

    def quarantine_text(self, name: str, text: str, reason: str) -> None:
        key, attempt = name, 2
        while key in self.failing_sources:  # the same name from another attempt: keep both
            key, attempt = f"{name} (attempt {attempt})", attempt + 1
        self.failing_sources[key] = text
        self.failing[key] = reason

    def missing(self) -> set[int]:
        """Lines not run yet, and lines with a branch not taken yet."""
        return (self.statements - self.executed) | {start for start, _ in self.arcs - self.taken_arcs}

    def percent(self) -> float:
        """Line+branch coverage of the union (coverage.py's total with branch measurement); 0 before any."""
        total = len(self.statements) + len(self.arcs)
        return 100.0 * (len(self.executed) + len(self.taken_arcs)) / total if total else 0.0


class Engine:
    """One run over a project: generates tests for the modules that lack them."""

    def __init__(
        self,
        config: UtgenConfig,
        backend: Backend | None = None,
        on_progress: Callable[[str], None] = lambda line: None,
        on_live: Callable[[str], None] = lambda line: None,
        select_all: bool = False,
    ):
        self.config = config
        self.select_all = select_all
        self._backend = backend
        self.on_progress = on_progress
        self.on_live = on_live
        self.identity: ModelIdentity | None = None
        self.speed = ModelSpeed()
        # Calls built from signatures run alone; variants run against the kept tests' surviving mutants too,
        # which costs several times as much per test.
        self.call_speed = SandboxSpeed()
        self.variant_speed = SandboxSpeed(per_test=0.5)
        self.final_speed = FinalCheckSpeed()
        self._last_prompt = ""  # the last call's prompt text: its prefix is in the model's cache

    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = make_backend(self.config, self.identity)
        return self._backend

    def _identity(self) -> ModelIdentity:
        if self._backend is not None:
            return ModelIdentity(self._backend.model_id, None)
        return identify_model(self.config)

    def run(self) -> RunReport:
        """Generate, validate and write tests for every module that lacks them; return the report."""
        cfg = self.config
        discover.check_paths_exist(cfg.paths)
        started = time.perf_counter()
        report = RunReport()
        modules, skipped = discover.find_modules(cfg.paths, [cfg.output_dir], cfg.exclude)
        report.skipped = [{"path": str(s.path), "reason": s.reason} for s in skipped]
        all_tests = discover.find_test_files(cfg.test_paths, [cfg.output_dir / "quarantine"])
        user_tests = [t for t in all_tests if not is_generated_file(t)]
        self.on_progress(f"utgen: {len(modules)} modules under {', '.join(map(str, cfg.paths))}, "
                         f"{len(user_tests)} user test files")
        for skip in skipped:
            self.on_progress(f"utgen: skip {skip.path}: {skip.reason}")
        if not modules:
            report.seconds = time.perf_counter() - started
            return report
        with Workspace(cfg.root, {m.source_root for m in modules}, exclude=[cfg.output_dir]) as workspace:
            source_dirs = sorted({workspace.to_workspace(m.path).parent for m in modules})
            before, _ = self._suite_coverage(workspace, user_tests, [], source_dirs)
            if self.select_all:
                selections = [discover.Selection(m, "requested") for m in modules]
            else:
                selections = discover.select_untested(
                    modules, user_tests, {p: c.line_percent for p, c in before.items()}, cfg.min_coverage,
                    include_generated=False,
                )
            for selection in selections:
                self.on_progress(f"utgen: selected {selection.module.name}: {selection.reason}")
            works = self._prepare(selections, before, workspace, report)
            pending = [w for w in works if w.report.status == ModuleStatus.GENERATED]
            finished: list[_ModuleWork] = []
            try:
                if pending:
                    backend = self.backend()
                    if cfg.max_calls:
                        backend.preload()  # while the first module's exploration runs
                    for work in self._generate_all(pending, workspace, backend, started):
                        finished.append(work)
                        self.on_progress(work.report.progress_line())
            except BaseException:
                # Interrupted (Ctrl-C, an error in a later module): the finished modules passed every check
                # but the run with the suite; their files are written rather than lost.
                for work in finished:
                    self._write(work)
                raise
            self._run_together(works, workspace, user_tests, source_dirs)
            for work in works:
                if work.report.status == ModuleStatus.GENERATED or work.rewrite:
                    self._write(work)
            if self.identity:
                report.model_id, report.model_sha256 = self.identity.cache_key, self.identity.sha256
                report.lora = str(self.identity.lora) if self.identity.lora else None
            for work in works:
                if self.identity and work.report.status in (ModuleStatus.GENERATED, ModuleStatus.CACHED):
                    work.report.model_id, work.report.model_sha256 = self.identity.cache_key, self.identity.sha256
                report.modules.append(work.report)
        report.model_calls = sum(m.model_calls for m in report.modules)
        report.seconds = time.perf_counter() - started
        if cfg.report:
            report.write_json(cfg.report)
        return report

    def _generate_all(self, pending: list[_ModuleWork], workspace: Workspace, backend: Backend,
                      run_started: float):
        """Yield each module's work as it finishes; ``backend.concurrency`` modules at a time. The first module's
        budget counts from ``run_started``: the run's setup (the workspace, the suite's coverage, the import
        checks) is its share, so a run of one module ends by ``budget_s`` but for the final run with the suite."""
        starts = [run_started] + [None] * (len(pending) - 1)
        if backend.concurrency <= 1:
            for work, started in zip(pending, starts):
                yield self._generate(work, workspace, backend, started)
            return
        pool = ThreadPoolExecutor(max_workers=backend.concurrency)
        try:
            yield from pool.map(lambda w, t: self._generate(w, workspace, backend, t), pending, starts)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _suite_coverage(
        self, workspace: Workspace, user_tests: list[Path], generated: list[str], source_dirs: list[Path]
    ) -> tuple[dict[Path, FileCoverage], RunResult | None]:
        """Run user tests (and generated files, workspace-relative) together under coverage of ``source_dirs``."""
        targets = [str(workspace.to_workspace(t).relative_to(workspace.root)) for t in user_tests] + generated
        if not targets:
            return {}, None
        # A new interpreter, as the user's own session is (the user's tests never run in the warm worker).
        run = workspace.run_pytest(targets, timeout=max(self.config.timeout, 600),
                                   memory_limit_mb=self.config.memory_limit_mb, coverage_of=source_dirs, fresh=True)
        return run.coverage or {}, run

    def _prepare(self, selections, before, workspace: Workspace, report: RunReport) -> list[_ModuleWork]:
        cfg = self.config
        works = []
        cache = Cache(cfg.output_dir)
        for selection in selections:
            module = selection.module
            out_path, quarantine_path = output_paths(cfg.output_dir, module.name)
            source = module.path.read_text(encoding="utf-8")
            cov = before.get(module.path)
            module_report = ModuleReport(
                module=module.name, path=str(module.path), status=ModuleStatus.GENERATED, reason=selection.reason,
                line_before=cov.line_percent if cov else 0.0, branch_before=cov.branch_percent if cov else 0.0,
            )
            work = _ModuleWork(selection, module_report, source, out_path, quarantine_path)
            works.append(work)
            import_error = workspace.check_import(module.name, cfg.timeout, cfg.memory_limit_mb)
            if import_error:
                module_report.status, module_report.error = ModuleStatus.SKIPPED, import_error
                self.on_progress(module_report.progress_line())
                continue
            try:
                check_writable(out_path)
                check_writable(quarantine_path)
            except UtgenError as exc:
                module_report.status, module_report.error = ModuleStatus.FAILED, str(exc)
                self.on_progress(module_report.progress_line())
                continue
            if self.identity is None:
                self.identity = self._identity()
            hit = cache.lookup(module.name, sha256_text(source), self.identity.cache_key)
            if hit:
                stored = hit["result"]
                module_report.status = ModuleStatus.CACHED
                for key in ("attempts", "tests_generated", "tests_kept", "tests_quarantined", "tests_flaky"):
                    setattr(module_report, key, stored.get(key, 0))
                module_report.output = str(out_path) if out_path.exists() else None
                module_report.quarantine = str(quarantine_path) if quarantine_path.exists() else None
                self.on_progress(module_report.progress_line())
        return works

    def _generate(self, work: _ModuleWork, workspace: Workspace, backend: Backend,
                  started: float | None = None) -> _ModuleWork:
        """The module's loop: the plan picks the next prompt from what the kept tests run and kill, the model
        writes a candidate, the sandbox runs it and the oracle repairs it, what passes is kept; once the plan
        stops, the kept tests get their final checks. Its budget counts from ``started`` (default: now)."""
        cfg = self.config
        started = time.perf_counter() if started is None else started
        module = work.selection.module
        rel_candidate = self._workspace_relative(cfg.output_dir / "_candidates" / work.out_path.name)
        validator = CandidateValidator(
            workspace, rel_candidate, module.path, cfg.timeout, cfg.memory_limit_mb, cfg.reruns,
            module.name, oracle=cfg.oracle == "observed",
        )
        plan = self._plan(work, validator, backend, started)
        attempt = None
        while True:
            try:
                request = plan.send(attempt)
            except StopIteration as stop:
                work.report.stopped = stop.value
                break
            attempt = self._try(work, request, validator, backend)
        settling = time.perf_counter()
        checked = len(work.kept.units) if work.kept else 0
        runs_before = work.kept_runs
        self._settle(work, validator)
        work.report.tests_kept = len(work.kept.units) if work.kept else 0
        work.report.tests_quarantined = len(work.failing_sources)
        ended = time.perf_counter()
        work.report.seconds = ended - started
        work.report.final_seconds = ended - settling
        if checked:
            # A new run of the mutants is the module's own cost (_deadline reserves it), not the checks'.
            mutant_run = work.kept_run_seconds if work.kept_runs > runs_before else 0.0
            self.final_speed.update(checked, ended - settling - mutant_run)
        return work

    def _deadline(self, work: _ModuleWork, started: float) -> float:
        """When everything but the final checks of the tests kept so far must end: they take the rest."""
        kept = len(work.kept.units) if work.kept else 0
        reserve = self.final_speed.reserve(kept, self.config.budget_s) + _stale_run_seconds(work)
        return started + max(0.0, self.config.budget_s - min(reserve, FINAL_RESERVE_SHARE * self.config.budget_s))

    def _plan(self, work: _ModuleWork, validator: CandidateValidator, backend: Backend,
              started: float) -> Generator[_Request, _Attempt, StopReason | None]:
        """The module's prompts in order, each chosen after the previous one's outcome is known: the module
        (chunk by chunk, with feedback; after its docstring examples, run as tests), then one per function or
        method with uncovered lines, then one per surviving mutant; amplification (no model call) between.
        Everything ends by the deadline the final checks of the tests kept so far leave (each step takes it when
        it starts): the model calls ``FINAL_AMPLIFY_SHARE`` of the budget before it, for the amplification of
        what the last calls kept. What exploration and amplification leave after that goes to the model again.
        Returns why it stopped."""
        cfg = self.config
        share = MUTATION_SHARE if cfg.mutation else 0.0
        budget = cfg.n_ctx - cfg.max_tokens - PROMPT_OVERHEAD_TOKENS
        held_back = FINAL_AMPLIFY_SHARE * cfg.budget_s if cfg.amplify else 0.0

        def model_deadline() -> float:
            return self._deadline(work, started) - held_back

        coverage_deadline = started + (model_deadline() - started) * (1 - share)
        self._seed(work, validator)
        self._explore(work, validator, started + EXPLORE_SHARE * (model_deadline() - started))
        # max_calls 0: no model at all (its tokenizer neither), the steps above and amplification only.
        for chunk in split_source(work.source, budget, backend.count_tokens) if cfg.max_calls else []:
            yield from self._module_requests(work, chunk, backend.count_tokens(chunk.code), coverage_deadline)
        # Until the target pass, rounds that reach no new line or branch (their variants only kill mutants) are
        # left for later: the amplification after the model's tests makes them.
        self._amplify(work, validator, coverage_deadline, for_coverage=True)
        stopped = yield from self._target_requests(work, validator, coverage_deadline,
                                                   cfg.max_calls - int(cfg.max_calls * share))
        # The model's tests build objects and pass values that exploration had not: methods get new receivers.
        now = time.perf_counter()
        self._explore(work, validator, now + EXPLORE_SHARE * (model_deadline() - now))
        self._amplify(work, validator, model_deadline())
        if cfg.mutation and work.kept:
            stopped = yield from self._mutant_requests(work, validator, model_deadline())
        if (stopped in (StopReason.MUTANTS_KILLED, StopReason.MUTANTS_DONE) or not work.kept) \
                and not self._coverage_reached(work):
            # What the mutation pass did not use goes back to coverage (all of it when nothing was kept).
            stopped = yield from self._target_requests(work, validator, model_deadline(), cfg.max_calls)
        self._amplify(work, validator, self._deadline(work, started))
        # What is left goes to calls exploration has not tried yet, and their variants (a round that finds no
        # new ground draws twice as many calls, up to FILL_MOST_CALLS); then, when these have nothing left, to
        # the model (a call is made only if it fits).
        calls = FILL_CALLS_PER_TARGET
        while not self._coverage_reached(work) and calls <= FILL_MOST_CALLS:
            if self._explore(work, validator, self._deadline(work, started), calls):
                self._amplify(work, validator, self._deadline(work, started))
            else:
                calls *= 2
        if stopped in (StopReason.BUDGET_SECONDS, StopReason.NO_GAIN) and not self._coverage_reached(work):
            stopped = yield from self._target_requests(work, validator, self._deadline(work, started),
                                                       cfg.max_calls)
        if cfg.mutation and work.kept:
            # The seconds left ask about the survivors: again, sampled, when the pass above asked about them
            # (greedily); else greedily (no call fitted before the amplification's share held back for it).
            asked = any(call.kind == PromptKind.MUTANT for call in work.report.calls)
            stopped = yield from self._mutant_requests(work, validator, self._deadline(work, started),
                                                       cfg.repair_temperature if asked else 0.0)
        return stopped

    def _module_requests(self, work: _ModuleWork, chunk: SourceChunk, chunk_tokens: int,
                         deadline: float) -> Generator[_Request, _Attempt, None]:
        """Prompts for a chunk of the module: again with the problem of the last reply, or with the chunk's
        lines still not run, until the chunk is covered or ``max_attempts`` prompts were made. None when one
        is expected to take more than ``MODULE_PROMPT_SHARE`` of the budget: the target pass covers it."""
        cfg = self.config
        if work.statements and (self._coverage_reached(work) or not chunk.missing_in_chunk(sorted(work.missing()))):
            return  # the docstring examples cover it
        expected = self.speed.seconds(chunk_tokens + PROMPT_OVERHEAD_TOKENS, cfg.max_tokens // 2)
        if expected > MODULE_PROMPT_SHARE * cfg.budget_s:
            work.report.dropped.append(Dropped(
                f"module prompt ({', '.join(chunk.names[:3])}{', ...' if len(chunk.names) > 3 else ''})",
                f"not sent: about {expected:.0f} s at {self.speed.prompt:.0f} prompt tokens/s here, over "
                f"{MODULE_PROMPT_SHARE:.0%} of budget_s; the target pass prompts its functions one by one"))
            return
        feedback = None
        for _ in range(cfg.max_attempts):
            if work.report.model_calls >= cfg.max_calls:
                return
            # A greedy reply to the uncovered-lines prompt tends to repeat the tests already kept: sample it.
            temperature = cfg.repair_temperature if feedback and feedback.startswith(UNCOVERED_FEEDBACK) else 0.0
            request = self._fitted(_Request(build_messages(chunk.code, work.selection.module.name, feedback=feedback),
                                            temperature, PromptKind.MODULE), deadline)
            if request is None:
                return
            result, problem = yield request
            if problem is not None:
                feedback = problem
                continue
            missing = chunk.missing_in_chunk(sorted(work.missing()))
            if result.coverage is None or self._coverage_reached(work) or not missing:
                return
            feedback = UNCOVERED_FEEDBACK + _quote_lines(work.source, missing)

    def _target_requests(self, work: _ModuleWork, validator: CandidateValidator, deadline: float,
                         max_calls: int) -> Generator[_Request, _Attempt, StopReason]:
        """One focused prompt per function or method that still has uncovered lines, most uncovered first,
        until the module reaches the target coverage or the pass's share of the budget is spent. The tests a
        call keeps are amplified before the next prompt is chosen, so it aims at what their variants miss too;
        after ``FRUITLESS_CALLS`` calls in a row that, amplified, ran no new line or branch, only targets not
        asked yet, or whose tests failed, are asked."""
        cfg = self.config
        fruitless = 0
        header = module_header(work.source)
        visits = work.target_visits
        targets = work.targets
        every_line = {n for t in targets for n in t.lines}
        problems: dict[str, str | None] = {}  # per target, why its last visit kept no test
        last_sent = work.target_prompts
        unfitted: set[str] = set()  # targets whose prompt would not end by the deadline: a shorter one's may
        while True:
            if self._coverage_reached(work):
                return StopReason.COVERAGE
            if work.report.model_calls >= max_calls:
                return StopReason.MAX_CALLS
            if time.perf_counter() >= deadline:
                return StopReason.BUDGET_SECONDS
            # Until a test is kept there is no coverage to aim at: every target is still to be covered.
            missing = work.missing() if work.statements else every_line
            pending = [(len(missing.intersection(t.lines)), -visits[t.qualname], t) for t in targets
                       if visits[t.qualname] < TARGET_VISITS]
            pending = [item for item in pending if item[0]]
            if not pending:
                return StopReason.TARGETS_DONE
            if fruitless >= FRUITLESS_CALLS:
                # Asked again, a target seldom gains now: only one not asked yet, or one whose tests failed (the
                # visit says why), is.
                pending = [item for item in pending if not visits[item[2].qualname] or problems.get(item[2].qualname)]
                if not pending:
                    return StopReason.NO_GAIN
            pending = [item for item in pending if item[2].qualname not in unfitted]
            if not pending:
                return StopReason.BUDGET_SECONDS
            _, _, target = max(pending, key=lambda item: item[:2])  # most uncovered, fewest visits first
            visits[target.qualname] += 1
            uncovered = sorted(missing.intersection(target.lines))
            quoted = _quote_lines(work.source, uncovered) if len(uncovered) < len(target.lines) - 1 else None
            messages = build_target_messages(header, work.selection.module.name, target, quoted,
                                             problems.get(target.qualname))
            # A later visit asks again for the lines the first reply missed: sampled, as a greedy reply
            # to a near-identical prompt would repeat the first.
            temperature = cfg.repair_temperature if visits[target.qualname] > 1 else 0.0
            if last_sent.get(target.qualname) == (messages, temperature):
                visits[target.qualname] = TARGET_VISITS  # nothing new to ask about this target
                continue
            last_sent[target.qualname] = (messages, temperature)
            request = self._fitted(_Request(messages, temperature, PromptKind.TARGET, target.qualname), deadline)
            if request is None:
                visits[target.qualname] -= 1  # not asked: a later pass with a later deadline may ask it
                del last_sent[target.qualname]
                unfitted.add(target.qualname)
                continue
            before = work.percent()
            result, problem = yield request
            if result is not None and result.kept_file:
                self._amplify(work, validator, deadline, for_coverage=True)
            fruitless = fruitless + 1 if work.percent() <= before else 0
            # The next visit of a target whose tests all failed says why (as the module pass's repair does),
            # cut short: it is the end of the prompt, the part processed anew.
            problems[target.qualname] = _shorten(problem, MAX_TARGET_FEEDBACK_CHARS) if problem else None

    def _settle(self, work: _ModuleWork, validator: CandidateValidator) -> None:
        """The kept tests as one file get the full checks (candidates were checked quickly one by one); with
        the mutation pass on, then the greedy keep set and the module's mutation score."""
        if work.kept:
            merged = validator.validate(work.kept)
            work.report.tests_flaky += len(merged.flaky)
            work.report.dropped.extend(Dropped(unit, "flaky: failed alone or in a random order")
                                       for unit in merged.flaky)
            work.quarantine(work.kept, merged.failing)
            work.kept = merged.kept_file
            self._record_coverage(work.report, merged.coverage)
        if self.config.mutation and work.kept:
            self._keep_set(work, validator)

    def _mutant_requests(self, work: _ModuleWork, validator: CandidateValidator, deadline: float,
                         temperature: float = 0.0) -> Generator[_Request, _Attempt, StopReason]:
        """Mutants of the covered lines, run against the kept tests; then one prompt per surviving mutant (a
        round over the targets, most survivors first) until none survives or the budget is spent."""
        cfg = self.config
        header = module_header(work.source)
        targets = work.targets
        # Checked before the kept tests' run of every mutant below too: it costs seconds a pass that asks nothing
        # would waste.
        if work.report.model_calls >= cfg.max_calls:
            return StopReason.MAX_CALLS
        if time.perf_counter() >= deadline:
            return StopReason.BUDGET_SECONDS
        survivors = [m for m in _kept_mutation_run(work, validator).survived if m.line in work.executed]
        asked: Counter[str] = Counter()
        tried: set[int] = set()
        while True:
            if not survivors:
                return StopReason.MUTANTS_KILLED
            if work.report.model_calls >= cfg.max_calls:
                return StopReason.MAX_CALLS
            if time.perf_counter() >= deadline:
                return StopReason.BUDGET_SECONDS
            pending = [(m, _target_of(targets, m)) for m in survivors if m.id not in tried]
            pending = [(m, t) for m, t in pending if t is not None]
            if not pending:
                return StopReason.MUTANTS_DONE
            left = Counter(t.qualname for _, t in pending)
            # Message strings only die under `match=`: other changes first, and every target in turn.
            mutant, target = min(pending, key=lambda mt: (asked[mt[1].qualname], _is_string_change(mt[0]),
                                                          -left[mt[1].qualname], mt[0].id))
            request = self._fitted(_Request(build_mutant_messages(header, work.selection.module.name, target, mutant),
                                            temperature, PromptKind.MUTANT, target.qualname,
                                            min(MUTANT_REPLY_TOKENS, cfg.max_tokens)), deadline)
            if request is None:
                return StopReason.BUDGET_SECONDS
            tried.add(mutant.id)
            asked[target.qualname] += 1
            result, _ = yield request
            if result is not None and result.kept_file:
                killed = _mutation_run(work, validator, result.kept_file, survivors).killed
                survivors = [m for m in survivors if m.id not in killed]

    def _amplify(self, work: _ModuleWork, validator: CandidateValidator, deadline: float,
                 for_coverage: bool = False) -> None:
        """Rounds of variants of the kept tests (no model call) until a round keeps none (``for_coverage``: none
        that runs a new line or branch) or no round fits before ``deadline``: each round varies the tests kept in
        the one before, so a variant's variant can reach a branch neither reaches."""
        if not self.config.amplify:
            return
        for _ in range(AMPLIFY_ROUNDS):
            before = work.percent()
            if not self._amplify_round(work, validator, deadline):
                return
            if for_coverage and work.percent() <= before:
                return

    def _amplify_round(self, work: _ModuleWork, validator: CandidateValidator, deadline: float) -> bool:
        """Variants of the kept tests not varied yet (as many as fit before ``deadline``), with one input
        changed, a call turned to a sibling with uncovered lines, or an observation added: those that pass,
        with the expectations the oracle observed, and run a line or branch or kill a mutant that no kept test
        does join the kept tests. Whether any did."""
        speed = self.variant_speed if self.config.mutation else self.call_speed
        if not work.kept or speed.tests_fitting(deadline - time.perf_counter(), MAX_VARIANTS) < MIN_BUILT_TESTS:
            return False
        # Only the mutants the kept tests let survive: a variant gains nothing from the others, and each
        # mutant runs every variant that reaches its line. (A run of the kept file: as many variants as fit
        # in what it leaves.)
        started = time.perf_counter()
        survivors = _kept_mutation_run(work, validator).survived if self.config.mutation else []
        work.report.sandbox_seconds += time.perf_counter() - started
        speed = self.variant_speed if survivors else self.call_speed
        limit = speed.tests_fitting(deadline - time.perf_counter(), MAX_VARIANTS)
        if limit < MIN_BUILT_TESTS:
            return False
        missing = work.missing() if work.statements else set()
        wanted = frozenset(t.qualname for t in work.targets if missing.intersection(t.lines))
        values = passed_values([work.kept.source, *work.failing_sources.values()])
        observe = self.config.oracle == "observed"
        variants = amplify(work.kept, work.source, frozenset(work.amplified), limit=limit, observe=observe,
                           values=values, wanted=wanted)
        work.amplified.update(work.kept.units)
        if variants is None:
            return False
        module = work.selection.module
        variants = import_missing_names(variants, work.source, module.name)  # a sibling may not be imported
        gain = self._new_ground(work, validator, variants, survivors, "variants of the kept tests", deadline)
        if gain is None:
            return False
        before = work.percent()
        work.report.tests_amplified += self._merge(work, gain, survivors_run=True)
        work.report.amplified_points += work.percent() - before
        return True

    @staticmethod
    def _merge(work: _ModuleWork, gain: _Gain, survivors_run: bool) -> int:
        """The chosen tests of a gain join the kept tests, what they run joins the module's union; how many
        joined. ``survivors_run``: the gain's run was against the kept tests' survivors, so what they killed
        joins the kept tests' mutant run too (else that run is made again when next needed)."""
        merged = work.kept.merge(gain.file.prune(set(gain.chosen)))
        if survivors_run and work.kept_run is not None and work.kept_run[0] == work.kept:
            # The next round's survivors, without running every mutant against the whole file again.
            work.kept_run = (merged.file, _with_variants(work.kept_run[1], gain.run, set(gain.chosen)))
        work.kept = merged.file
        for kind, item in set().union(*(gain.held_by[u] for u in gain.chosen)):
            if kind == "line":
                work.executed.add(item)
            elif kind == "arc":
                work.taken_arcs.add(item)
        return len(gain.chosen) - len(merged.duplicates)

    def _new_ground(self, work: _ModuleWork, validator: CandidateValidator, file: TestFile,
                    mutants: list[Mutant], what: str, deadline: float | None = None) -> _Gain | None:
        """Of ``file``'s tests (built without the model, their expectations observed), the fewest that pass,
        pass again in the run of ``mutants``, and run a line or branch or kill a mutant that no kept test does
        (greedy cover); None when none does. The mutants' run stops at ``deadline``: its cost grows with how
        many tests reach each mutant's line, which the sizing of the file cannot know."""
        started = time.perf_counter()
        try:
            passing = validator.passing(file, test_seconds=MUTANT_TEST_SECONDS, placeholders=True)
            if passing.collect_error:
                work.report.dropped.append(Dropped(what, "their file failed to import or collect: "
                                                   + passing.collect_error.strip()[-300:]))
            if not passing.kept_file:
                return None
            seconds = max(MIN_MUTANT_RUN_SECONDS, deadline - time.perf_counter()) if deadline is not None else None
            run = validator.mutation_run(passing.kept_file, mutants, seconds)
            # Only a run that got this far is what SandboxSpeed sizes: one that stopped above is cheaper.
            speed = self.variant_speed if mutants else self.call_speed
            speed.update(len(file.units), time.perf_counter() - started)
            if not run.measured:
                return None
            held = {("line", n) for n in work.executed} | {("arc", a) for a in work.taken_arcs}
            held_by = counted(contributions(run), work.statements, work.arcs)
            # Passed in this second run too: one that fails here depends on what ran before it.
            reliable = {unit_of(n) for n in run.passed} - {unit_of(n) for n in run.failed}
            chosen = greedy_cover([u for u in passing.kept if u in reliable], held_by, held)
            return _Gain(passing.kept_file, run, held_by, chosen) if chosen else None
        finally:
            work.report.sandbox_seconds += time.perf_counter() - started

    def _keep_set(self, work: _ModuleWork, validator: CandidateValidator) -> None:
        """Keep the fewest tests that together run every line and branch, and kill every mutant, that the
        kept file does (greedy cover); score the module's mutants."""
        report = work.report
        run = _kept_mutation_run(work, validator)
        if run.error is not None:
            report.dropped.append(Dropped("mutation run", f"no mutation score: {run.error.strip()[-300:]}"))
            return
        held_by = contributions(run)
        units = work.kept.units
        # A unit fails with any of its cases (parametrized), and when none of them ran.
        failed = {unit_of(n) for n in run.failed} | (set(units) - {unit_of(n) for n in run.passed})
        work.quarantine(work.kept, {u: "failed when run once more, before its mutants" for u in failed})
        chosen = greedy_cover([u for u in units if u not in failed], held_by)
        redundant = [u for u in units if u not in failed and u not in chosen]
        report.dropped.extend(Dropped(u, "adds no line, branch or killed mutant to the other kept tests")
                              for u in redundant)
        report.tests_flaky += len(failed)
        report.mutants, report.mutants_killed = len(work.mutants), len(run.killed)
        work.kept = work.kept.prune(set(chosen)) if chosen else None

    def _fitted(self, request: _Request, deadline: float) -> _Request | None:
        """``request`` with the longest reply (up to its ``max_tokens``) that should end by ``deadline``, from the
        model's speed here and the prompt tokens not shared with the last call's (llama.cpp reuses those);
        None when not even a short test would fit."""
        text = _prompt_text(request.messages)
        shared = len(os.path.commonprefix([text, self._last_prompt]))
        new_tokens = self.backend().count_tokens(text[shared:]) + CHAT_TEMPLATE_TOKENS * len(request.messages)
        left = deadline - time.perf_counter() - new_tokens / self.speed.prompt
        max_tokens = min(request.max_tokens or self.config.max_tokens, int(left * self.speed.decode))
        if max_tokens < min(MIN_REPLY_TOKENS, self.config.max_tokens):
            return None
        return dataclasses.replace(request, max_tokens=max_tokens)

    def _coverage_reached(self, work: _ModuleWork) -> bool:
        return bool(work.statements) and work.percent() >= self.config.target_coverage

    def _try(self, work: _ModuleWork, request: _Request, validator: CandidateValidator, backend: Backend) -> _Attempt:
        """One model call and its record; see :meth:`_candidate`."""
        report = work.report
        call = f"utgen: {work.selection.module.name}: model call {report.model_calls + 1}"
        self._last_prompt = _prompt_text(request.messages)
        completion = backend.complete(
            request.messages, request.max_tokens or self.config.max_tokens, request.temperature,
            on_token=lambda n, seconds: self.on_live(f"{call}: {n} tokens, {n / seconds:.1f} tok/s"),
        )
        report.model_calls += 1
        report.model_seconds += completion.seconds
        self.speed.update(completion)
        if completion.prompt_seconds is not None:
            report.prompt_seconds += completion.prompt_seconds
            report.decode_seconds += completion.decode_seconds
        report.prompt_tokens += completion.prompt_tokens
        report.prompt_tokens_reused += completion.prompt_tokens_reused
        report.completion_tokens += completion.completion_tokens
        sandbox, percent = report.sandbox_seconds, work.percent()
        attempt = self._candidate(work, completion.text, validator)
        result = attempt[0]
        report.calls.append(CallRecord(
            request.kind, request.target, completion.prompt_tokens, completion.prompt_tokens_reused,
            completion.completion_tokens, completion.seconds, report.sandbox_seconds - sandbox,
            len(result.kept) if result is not None and result.kept_file else 0,
            work.percent() - percent,
        ))
        return attempt

    def _candidate(self, work: _ModuleWork, reply: str, validator: CandidateValidator) -> _Attempt:
        """A reply's candidate: extract, repair imports, validate quickly, quarantine what failed, merge what
        passed. Returns the validation (None when no code came back) and the problem to feed back (None when
        some test was kept)."""
        report = work.report
        report.attempts += 1
        try:
            extracted = extract_tests(reply)
        except CodeExtractionError as exc:
            report.dropped.append(Dropped(f"reply {report.attempts}", str(exc)))
            return None, f"{exc}. Reply with one ```python code block holding the whole test file."
        module = work.selection.module
        candidate = absolute_imports(strip_script_code(TestFile(extracted.code)), module.package)
        candidate = import_missing_names(unshadow(candidate, work.source, module.name), work.source, module.name)
        report.tests_generated += len(extracted.cut)
        for name, text in extracted.cut.items():
            work.quarantine_text(name, text, extracted.cut_reason)
        sandbox_started = time.perf_counter()
        result = validator.validate(candidate, quick=True)
        report.sandbox_seconds += time.perf_counter() - sandbox_started
        report.tests_generated += result.generated
        if result.collect_error:
            why = result.collect_error.strip().splitlines()[-1] if result.collect_error.strip() else "?"
            report.dropped.extend(Dropped(unit, f"its file failed to import or collect: {why}")
                                  for unit in candidate.units)
            return result, "It failed to import or collect:\n" + result.collect_error[-MAX_FEEDBACK_CHARS:]
        report.tests_flaky += len(result.flaky)
        report.expectations_adopted += len(result.adopted)
        work.adopted.extend(result.adopted)
        work.quarantine(result.file, result.failing)
        work.imports = work.imports or result.file.imports
        if result.kept_file is None:
            failures = "\n".join(f"{name}: {msg[-300:]}" for name, msg in list(result.failing.items())[:5])
            return result, "None of its tests passed:\n" + failures[-MAX_FEEDBACK_CHARS:]
        self._keep(work, result)
        return result, None

    def _keep(self, work: _ModuleWork, result: ValidationResult) -> None:
        """Merge a validated candidate's passing tests into the module's kept tests and coverage."""
        if work.kept is None:
            work.kept = result.kept_file
        else:
            merged = work.kept.merge(result.kept_file)
            work.report.dropped.extend(Dropped(unit, "the same test as one already kept")
                                       for unit in merged.duplicates)
            work.kept = merged.file
        work.absorb(result.coverage)

    def _seed(self, work: _ModuleWork, validator: CandidateValidator) -> None:
        """The module's docstring examples as tests, checked like a candidate (no model call). A failing one
        is dropped, not quarantined: it is the docs' example, not the model's expectation."""
        seeds = doctest_seeds(work.source) if self.config.doctests else None
        if seeds is None:
            return
        started = time.perf_counter()
        result = validator.validate(import_missing_names(seeds, work.source, work.selection.module.name), quick=True)
        work.report.sandbox_seconds += time.perf_counter() - started
        if result.collect_error:
            work.report.dropped.append(Dropped("docstring examples", "their file failed to import or collect: "
                                               + result.collect_error.strip()[-300:]))
            return
        work.report.dropped.extend(Dropped(unit, f"a docstring example that fails as a test: {why[-200:]}")
                                   for unit, why in result.failing.items())
        if result.kept_file is not None:
            work.report.tests_from_docs = len(result.kept)
            self._keep(work, result)

    def _explore(self, work: _ModuleWork, validator: CandidateValidator, deadline: float,
                 calls_per_target: int = CALLS_PER_TARGET) -> bool:
        """Calls of the functions and methods with lines not run yet, built from their signatures and the
        kept tests (no model call; calls not tried before, as many as fit before ``deadline``), their
        expectations observed: those that pass and run a line or branch that no kept test (and no other call
        chosen before them) runs join the kept tests. Whether any did."""
        limit = self.call_speed.tests_fitting(deadline - time.perf_counter(), MAX_TESTS)
        if not self.config.explore or self.config.oracle != "observed" or limit < MIN_BUILT_TESTS:
            return False  # without the oracle, a placeholder expectation never passes
        missing = work.missing() if work.statements else {n for t in work.targets for n in t.lines}
        wanted = frozenset(t.qualname for t in work.targets if missing.intersection(t.lines))
        sources = [work.kept.source] if work.kept else []
        values = module_constants(work.source)
        for kind, pooled in passed_values(sources).items():
            values[kind] = list(dict.fromkeys(pooled + values.get(kind, [])))
        classes = {t.qualname.split(".")[0] for t in work.targets if "." in t.qualname}
        functions = frozenset(t.qualname for t in work.targets if "." not in t.qualname)
        calls = explore(work.source, wanted, values, constructions(sources, classes, functions), limit=limit,
                        pattern_strings=regex_examples(work.source), tried=frozenset(work.explored),
                        named=argument_values(work.source, sources), calls_per_target=calls_per_target)
        if calls is None:
            return False
        work.explored.update(body_key(node) for node in calls.unit_nodes.values())
        calls = import_missing_names(calls, work.source, work.selection.module.name)
        # No mutant: each call's lines and arcs.
        gain = self._new_ground(work, validator, calls, [], "calls built from signatures")
        if gain is None:
            return False
        if work.kept is not None and work.statements:
            work.report.tests_explored += self._merge(work, gain, survivors_run=False)
            return True
        started = time.perf_counter()
        # Checked like a candidate, for the module's coverage: which lines and branches it has, which are left.
        result = validator.validate(gain.file.prune(set(gain.chosen)), quick=True)
        work.report.sandbox_seconds += time.perf_counter() - started
        if result.kept_file is None:
            return False
        work.report.tests_explored += len(result.kept)
        self._keep(work, result)
        return True

    def _workspace_relative(self, path: Path) -> str:
        """Where a generated file goes in the workspace: its place in the project, else under _utgen_out/."""
        if self.config.root in path.parents:
            return str(path.relative_to(self.config.root))
        return str(Path("_utgen_out") / path.relative_to(self.config.output_dir))

    @staticmethod
    def _record_coverage(report: ModuleReport, coverage: FileCoverage | None) -> None:
        if coverage is not None:
            report.line_after, report.branch_after = coverage.line_percent, coverage.branch_percent

    def _write(self, work: _ModuleWork) -> None:
        """Write (or remove) the module's kept-tests file and quarantine file, then record the cache."""
        report = work.report
        if report.status in (ModuleStatus.FAILED, ModuleStatus.SKIPPED):
            return
        identity = self.identity
        prov = make_provenance(work.selection.module.name, work.source, identity.cache_key)
        try:
            written = []
            if work.kept:
                write_generated(work.out_path, prov, work.kept.source)
                written.append(work.out_path)
                report.output = str(work.out_path)
            else:
                remove_generated(work.out_path)
                report.output = None
            if work.failing_sources or work.adopted:
                write_generated(work.quarantine_path, prov, self._quarantine_body(work))
                written.append(work.quarantine_path)
                report.quarantine = str(work.quarantine_path)
            else:
                remove_generated(work.quarantine_path)
            Cache(self.config.output_dir).store(
                work.selection.module.name, prov.source_sha256, identity.cache_key, written,
                {k: getattr(report, k) for k in ("attempts", "tests_generated", "tests_kept", "tests_quarantined",
                                                 "tests_flaky")},
            )
        except UtgenError as exc:
            report.status, report.error = ModuleStatus.FAILED, str(exc)

    @staticmethod
    def _quarantine_body(work: _ModuleWork) -> str:
        parts = [
            f'"""Tests generated for {work.selection.module.name} that FAILED against the current code.\n\n'
            "Not collected by pytest. Each one is a wrong expectation or a real bug: review it, and move\n"
            'the ones that found a bug into your own tests."""\n',
            work.imports,
        ]
        for name, text in work.failing_sources.items():
            message = "\n".join(f"# {line}" for line in work.failing.get(name, "").strip().splitlines()[-12:])
            parts.append(f"\n\n# FAILED {name}:\n{message}\n{text}")
        if work.adopted:
            parts.append("\n\n# Expectations the code did not meet. The observed-value oracle replaced them with")
            parts.append("# what the code did (marked `# utgen: observed` in the kept tests); if the model was right,")
            parts.append("# these are bugs.")
            parts.extend(f"# {a.unit}, line {a.line}: the model expected {a.expected}; the code gave {a.observed}"
                         for a in work.adopted)
        return "\n".join(parts)

    def _run_together(self, works: list[_ModuleWork], workspace: Workspace, user_tests: list[Path],
                      source_dirs: list[Path]) -> None:
        """Run the user's tests and every module's kept tests in one child; generated tests that fail there go
        to quarantine. Each module's coverage after is that run's (the next run's, without them, when some
        failed). Files are not written here: the caller writes each once, after this."""
        for work in works:
            if work.report.status == ModuleStatus.CACHED and is_generated_file(work.out_path):
                work.kept = TestFile(read_generated_body(work.out_path))
        # Only generated and cached modules hold kept tests.
        by_relative = {self._workspace_relative(w.out_path): w for w in works if w.kept}
        if not by_relative:
            return
        for relative, work in by_relative.items():
            workspace.add_file(relative, work.kept.source)
        coverage, run = self._suite_coverage(workspace, user_tests, list(by_relative), source_dirs)
        failed_by_file: dict[str, dict[str, str]] = {}
        for nodeid, outcome in run.outcomes.items():
            relative = nodeid.split("::", 1)[0]
            if relative in by_relative and outcome.outcome != Outcome.PASSED:
                failed_by_file.setdefault(relative, {})[unit_of(nodeid)] = (
                    f"fails together with the existing suite: {outcome.outcome.value}: {outcome.message}"
                )
        for relative, failed in failed_by_file.items():
            work = by_relative[relative]
            work.quarantine(work.kept, failed)
            work.imports = work.imports or work.kept.imports
            kept = set(work.kept.units) - set(failed)
            work.kept = work.kept.prune(kept) if kept else None
            work.rewrite = work.report.status == ModuleStatus.CACHED
            work.report.tests_kept = len(kept)
            work.report.tests_quarantined = len(work.failing_sources)
            if work.kept:
                workspace.add_file(relative, work.kept.source)
            else:
                (workspace.root / relative).unlink(missing_ok=True)
        if failed_by_file:
            coverage, run = self._suite_coverage(
                workspace, user_tests, [r for r, w in by_relative.items() if w.kept], source_dirs
            )
        for work in works:
            cov = coverage.get(work.selection.module.path)
            if cov is not None and work.report.status in (ModuleStatus.GENERATED, ModuleStatus.CACHED):
                self._record_coverage(work.report, cov)


def _mutation_run(work: _ModuleWork, validator: CandidateValidator, file: TestFile, mutants: list[Mutant]):
    """``validator.mutation_run``, its seconds counted as the module's sandbox time."""
    started = time.perf_counter()
    try:
        return validator.mutation_run(file, mutants)
    finally:
        work.report.sandbox_seconds += time.perf_counter() - started


def _kept_mutation_run(work: _ModuleWork, validator: CandidateValidator) -> MutationRun:
    """Every mutant of the module run against the kept tests; run again only when tests were added or changed
    (with tests only taken out, the last run holds what the rest ran and killed)."""
    if work.kept_run is not None and work.kept_run[0] != work.kept and _only_taken_out(work):
        work.kept_run = (work.kept, _without_units(work.kept_run[1], set(work.kept.units), work.mutants))
    if work.kept_run is None or work.kept_run[0] != work.kept:
        started = time.perf_counter()
        run = _mutation_run(work, validator, work.kept, work.mutants)
        work.kept_run, work.kept_run_seconds = (work.kept, run), time.perf_counter() - started
        work.kept_runs += 1
    return work.kept_run[1]


def _stale_run_seconds(work: _ModuleWork) -> float:
    """Seconds the final checks' run of every mutant should take when the kept tests changed after their last
    such run (tests a model call or exploration kept since), scaled by how many more tests there are; 0 when
    that run is current (the final checks reuse it) or was never made."""
    if work.kept_run is None or work.kept is None or work.kept_run[0] == work.kept or _only_taken_out(work):
        return 0.0
    return work.kept_run_seconds * max(1.0, len(work.kept.units) / max(1, len(work.kept_run[0].units)))


def _only_taken_out(work: _ModuleWork) -> bool:
    """Whether the kept file is the file of the last kept run with some of its tests taken out."""
    return work.kept is not None and work.kept == work.kept_run[0].prune(set(work.kept.units))


def _without_units(run: MutationRun, units: set[str], mutants: list[Mutant]) -> MutationRun:
    """``run`` as if only the tests of ``units`` had run: every test's run against every mutant that reaches
    its line is in it, so the others' verdicts, lines and kills are just left out, and a mutant only they
    killed survives. (A mutant that hung a test was not run against the tests after it: one that hung only a
    test taken out counts as surviving, as it may.)"""
    kills = _of_units(run.kills, units)
    killed = set().union(*kills.values()) if kills else set()
    not_run = {m.id for m in run.not_run}
    return MutationRun(
        passed={n for n in run.passed if unit_of(n) in units}, failed={n for n in run.failed if unit_of(n) in units},
        lines=_of_units(run.lines, units), arcs=_of_units(run.arcs, units), kills=kills,
        survived=[m for m in mutants if m.id not in killed and m.id not in not_run], not_run=run.not_run,
        error=run.error,
    )


def _with_variants(kept: MutationRun, variants: MutationRun, chosen: set[str]) -> MutationRun:
    """The kept tests' mutant run with the ``chosen`` units of a variants' run (against the kept tests'
    survivors) added: their lines, arcs and kills, and the survivors they kill gone."""
    kills = _of_units(variants.kills, chosen)
    killed = set().union(*kills.values()) if kills else set()
    return MutationRun(
        passed=kept.passed | {n for n in variants.passed if unit_of(n) in chosen}, failed=kept.failed,
        lines={**kept.lines, **_of_units(variants.lines, chosen)},
        arcs={**kept.arcs, **_of_units(variants.arcs, chosen)},
        kills={**kept.kills, **kills}, survived=[m for m in kept.survived if m.id not in killed],
        not_run=kept.not_run, error=kept.error,
    )


def _of_units(found: dict[str, set], units: set[str]) -> dict[str, set]:
    """A run's per-test record (lines, arcs or kills by node id) of the tests of ``units`` only."""
    return {nodeid: items for nodeid, items in found.items() if unit_of(nodeid) in units}


def _prompt_text(messages: list[dict[str, str]]) -> str:
    """The messages as one text, in the order the chat template lays them out."""
    return "".join(f"<{m['role']}>{m['content']}" for m in messages)


def _target_of(targets: list[Target], mutant: Mutant) -> Target | None:
    return next((t for t in targets if mutant.line in t.lines), None)


def _is_string_change(mutant: Mutant) -> bool:
    return mutant.description.startswith("`'") or mutant.description.startswith('`"')


def _shorten(problem: str, limit: int) -> str:
    """A problem's first line (what went wrong) and the end of the rest (a traceback ends with its cause)."""
    first, _, rest = problem.partition("\n")
    return first + ("\n" + rest[-limit:] if rest else "")


def _quote_lines(source: str, numbers: list[int], limit: int = 30) -> str:
    lines = source.splitlines()
    return "\n".join(f"{n}: {lines[n - 1].strip()}" for n in numbers[:limit] if 0 < n <= len(lines))

