"""pytest hooks only: options, the guard around generated tests, and the engine run before collection.

The engine is imported when ``--utgen`` asks for it, so a plain ``pytest`` run pays only for this module.
With pytest-xdist the engine runs once, in the controller; workers only collect and run the files.
"""

from __future__ import annotations

import argparse

import tempfile
import time
from pathlib import Path

import pytest

from .errors import UtgenError

GUARD_FAILURE = "pytest-utgen guard: this generated test tried to {what} (refused; see README, Safety)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("utgen", "generate unit tests for untested modules with a local model")
    group.addoption("--utgen", action="store_true",
                    help="generate tests for modules under the given paths that lack them")
    group.addoption("--utgen-check", action="store_true", help="fail listing modules no test imports (no model needed)")
    group.addoption("--utgen-model", help="model: 1.5b (default), 0.5b, or a GGUF path")
    group.addoption("--utgen-lora",
                    help="GGUF LoRA adapter: 'bundled' (default: our fine-tuned adapter), 'none', or a path")
    group.addoption("--utgen-endpoint", help="OpenAI-compatible server URL instead of in-process llama.cpp")
    group.addoption("--utgen-workers", type=int, help="concurrent requests to --utgen-endpoint")
    group.addoption("--utgen-output", help="directory for generated tests (default tests/utgen)")
    group.addoption("--utgen-max-attempts", type=int, help="model attempts per module (default 2)")
    group.addoption("--utgen-reruns", type=int, help="random-order reruns to catch flaky tests (default 3)")
    group.addoption("--utgen-timeout", type=float, help="seconds per sandboxed test run (default 60)")
    group.addoption("--utgen-min-coverage", type=float, help="also select modules below this line coverage %%")
    group.addoption("--utgen-report", help="write the per-module report as JSON to this path")
    group.addoption("--utgen-budget", type=float,
                    help="seconds per module, final checks included (default 300)")
    group.addoption("--utgen-max-calls", type=int, help="model calls per module (default 24)")
    group.addoption("--utgen-target-coverage", type=float,
                    help="line+branch %% at which a module's loop stops (default 90)")
    group.addoption("--utgen-oracle", choices=["observed", "model"],
                    help="wrong expected values: 'observed' (default) adopts what the code did, 'model' quarantines")
    group.addoption("--utgen-mutation", action=argparse.BooleanOptionalAction, default=None,
                    help="after the coverage pass, mutate the covered lines, ask for tests that tell surviving "
                         "mutants apart, and report the mutation score (default on)")
    group.addoption("--utgen-amplify", action=argparse.BooleanOptionalAction, default=None,
                    help="after each pass, try variants of the kept tests with one input changed and keep those "
                         "that add coverage or kill a mutant; no model call (default on)")
    group.addoption("--utgen-doctests", action=argparse.BooleanOptionalAction, default=None,
                    help="before the first model call, run the module's docstring examples (>>>) as tests and keep "
                         "those that pass (default on)")
    group.addoption("--utgen-explore", action=argparse.BooleanOptionalAction, default=None,
                    help="before the first model call, call the functions and methods with arguments built from "
                         "their signatures and keep the calls that run new lines, with the values observed "
                         "(default on; needs the observed oracle)")
    group.addoption("--utgen-verbose", action="store_true", help="show llama.cpp's own log lines")
    group.addoption("--utgen-unguarded", action="store_true",
                    help="run generated test files without the guard (they may then write files, spawn "
                         "processes and use the network)")


def _is_worker(config: pytest.Config) -> bool:
    """True in a pytest-xdist worker process."""
    return hasattr(config, "workerinput")


def _config_from_options(config: pytest.Config):
    from .config import find_project_root, load_config

    opt = config.option
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    source_args = [a for a in config.args if explicit and "::" not in a]
    root = find_project_root(Path(source_args[0]) if source_args else config.invocation_params.dir)
    overrides = {
        "model": opt.utgen_model, "lora": opt.utgen_lora, "endpoint": opt.utgen_endpoint,
        "workers": opt.utgen_workers, "output_dir": opt.utgen_output, "max_attempts": opt.utgen_max_attempts,
        "reruns": opt.utgen_reruns, "timeout": opt.utgen_timeout, "min_coverage": opt.utgen_min_coverage,
        "report": opt.utgen_report, "verbose": opt.utgen_verbose or opt.verbose > 0 or None,
        "budget_s": opt.utgen_budget, "max_calls": opt.utgen_max_calls,
        "target_coverage": opt.utgen_target_coverage, "oracle": opt.utgen_oracle,
        "mutation": opt.utgen_mutation, "amplify": opt.utgen_amplify, "doctests": opt.utgen_doctests,
        "explore": opt.utgen_explore,
        "paths": [str(Path(a).resolve()) for a in source_args] or None,
    }
    return load_config(root, overrides)


class Progress:
    """Engine progress in the terminal: one line per module step, and on a TTY a live line during model calls.

    Under ``-q`` it prints nothing (the summary table still comes at the end).
    """

    def __init__(self, config: pytest.Config):
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.quiet = config.option.verbose < 0
        self.live_on_tty = self.reporter is not None and self.reporter.isatty() and not self.quiet
        self._live_shown = False
        self._last_live = 0.0

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.reporter is None:
            print(text)
            return
        if self._live_shown:
            self.reporter.rewrite("", erase=True)
            self._live_shown = False
        self.reporter.write_line(text)

    def live(self, text: str) -> None:
        if not self.live_on_tty or time.monotonic() - self._last_live < 0.25:
            return
        self._last_live = time.monotonic()
        self.reporter.rewrite(text, erase=True)
        self._live_shown = True


class UtgenPlugin:
    """Runs the engine at session start and adds its files to the collection."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.report = None
        self.collect: list[Path] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        progress = Progress(self.config)
        try:
            utgen_config = _config_from_options(self.config)
            if self.config.option.utgen_check:
                from .discover import check

                result = check(utgen_config.paths, utgen_config.test_paths, utgen_config.output_dir,
                               utgen_config.exclude)
                for selection in result.untested:
                    progress.line(f"utgen: untested: {selection.module.name} ({selection.module.path}): "
                                  f"{selection.reason}")
                if result.untested:
                    pytest.exit(f"utgen: {len(result.untested)} module(s) lack tests", returncode=1)
                progress.line(f"utgen: all {len(result.modules)} modules have tests")
                outputs = []
            else:
                from .engine import Engine

                self.report = Engine(utgen_config, on_progress=progress.line, on_live=progress.live).run()
                outputs = [Path(m.output) for m in self.report.modules if m.output and Path(m.output).exists()]
        except UtgenError as exc:
            pytest.exit(f"utgen: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
        self.collect = [p for p in utgen_config.test_paths if p.exists()] + outputs
        _collect_also(self.config, self.collect)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        """pytest-xdist: tell each worker the files to collect (workers re-read the original command line)."""
        node.workerinput["utgen_collect"] = [str(p) for p in self.collect]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.report is not None:
            terminalreporter.write_sep("=", "utgen: coverage before -> after")
            terminalreporter.write_line(self.report.table())


class WorkerCollect:
    """In a pytest-xdist worker: collect what the controller's engine run added, without running it again."""

    def __init__(self, config: pytest.Config):
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        _collect_also(self.config, [Path(p) for p in self.config.workerinput.get("utgen_collect", [])])


def _collect_also(config: pytest.Config, paths: list[Path]) -> None:
    """Add the user's test dirs and the generated files to this session's collection."""
    args = list(config.args)
    for path in paths:
        if not any(Path(a).resolve() in (path, *path.parents) for a in args):
            args.append(str(path))
    config.args[:] = args


class SessionGuard:
    """Runs every test of a file carrying the utgen header under the guard; other tests are untouched.

    A refused side effect fails the test, also when the test caught the ``PermissionError``.
    """

    def __init__(self, config: pytest.Config):
        basetemp = config.option.basetemp
        self.allowed = [tempfile.gettempdir()] + ([str(Path(basetemp).resolve())] if basetemp else [])
        self._generated: dict[Path, bool] = {}

    def _is_generated(self, item: pytest.Item) -> bool:
        path = Path(item.path)
        if path not in self._generated:
            from .writer import is_generated_file

            self._generated[path] = is_generated_file(path)
        return self._generated[path]

    def _guarded(self, item: pytest.Item):
        from .guard import install

        guard = install()
        with guard.running(item.nodeid, self.allowed) as events:
            result = yield
        if events:
            pytest.fail(GUARD_FAILURE.format(what="; ".join(dict.fromkeys(events))), pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item):
        return (yield from self._guarded(item)) if self._is_generated(item) else (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        return (yield from self._guarded(item)) if self._is_generated(item) else (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item):
        return (yield from self._guarded(item)) if self._is_generated(item) else (yield)


def pytest_configure(config: pytest.Config) -> None:
    if not config.option.utgen_unguarded:
        config.pluginmanager.register(SessionGuard(config), "utgen-guard")
    if not (config.option.utgen or config.option.utgen_check):
        return
    if _is_worker(config):
        config.pluginmanager.register(WorkerCollect(config), "utgen-worker")
    elif _sessions:
        # A pytest.main() run from inside a session (a test or test file calling it with sys.argv): the
        # outer session generates; a nested one must not run the engine again over the same files.
        return
    else:
        config.pluginmanager.register(UtgenPlugin(config), "utgen-session")
        _sessions.append(config)
        config.add_cleanup(_sessions.clear)


_sessions: list[pytest.Config] = []  # the --utgen session running in this process, if any
