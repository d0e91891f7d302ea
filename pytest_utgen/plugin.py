"""pytest hooks only: options, then the engine runs before collection and its files join the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from .config import find_project_root, load_config
from .engine import Engine, check
from .errors import UtgenError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("utgen", "generate unit tests for untested modules with a local model")
    group.addoption("--utgen", action="store_true", help="generate tests for modules under the given paths that lack them")
    group.addoption("--utgen-check", action="store_true", help="fail listing modules no test imports (no model needed)")
    group.addoption("--utgen-model", help="model: 1.5b (default), 0.5b, or a GGUF path")
    group.addoption("--utgen-lora", help="GGUF LoRA adapter: 'bundled' (default: our fine-tuned adapter), 'none', or a path")
    group.addoption("--utgen-endpoint", help="OpenAI-compatible server URL instead of in-process llama.cpp")
    group.addoption("--utgen-workers", type=int, help="concurrent requests to --utgen-endpoint")
    group.addoption("--utgen-output", help="directory for generated tests (default tests/utgen)")
    group.addoption("--utgen-max-attempts", type=int, help="model attempts per module (default 2)")
    group.addoption("--utgen-reruns", type=int, help="random-order reruns to catch flaky tests (default 3)")
    group.addoption("--utgen-timeout", type=float, help="seconds per sandboxed test run (default 60)")
    group.addoption("--utgen-min-coverage", type=float, help="also select modules below this line coverage %%")
    group.addoption("--utgen-report", help="write the per-module report as JSON to this path")


def _config_from_options(config: pytest.Config):
    opt = config.option
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    source_args = [a for a in config.args if explicit and "::" not in a and Path(a).exists()]
    root = find_project_root(Path(source_args[0]) if source_args else config.invocation_params.dir)
    overrides = {
        "model": opt.utgen_model, "lora": opt.utgen_lora, "endpoint": opt.utgen_endpoint,
        "workers": opt.utgen_workers, "output_dir": opt.utgen_output, "max_attempts": opt.utgen_max_attempts,
        "reruns": opt.utgen_reruns, "timeout": opt.utgen_timeout, "min_coverage": opt.utgen_min_coverage,
        "report": opt.utgen_report,
        "paths": [str(Path(a).resolve()) for a in source_args] or None,
    }
    return load_config(root, overrides)


class UtgenPlugin:
    """Runs the engine at session start and adds its files to the collection."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.report = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        write = reporter.write_line if reporter else print
        try:
            utgen_config = _config_from_options(self.config)
            if self.config.option.utgen_check:
                result = check(utgen_config)
                for selection in result.untested:
                    write(f"utgen: untested: {selection.module.name} ({selection.module.path}): {selection.reason}")
                if result.untested:
                    pytest.exit(f"utgen: {len(result.untested)} module(s) lack tests", returncode=1)
                write(f"utgen: all {len(result.modules)} modules have tests")
                outputs = []
            else:
                self.report = Engine(utgen_config, on_progress=write).run()
                outputs = [Path(m.output) for m in self.report.modules if m.output and Path(m.output).exists()]
        except UtgenError as exc:
            pytest.exit(f"utgen: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
        self._collect_also([p for p in utgen_config.test_paths if p.exists()] + outputs)

    def _collect_also(self, paths: list[Path]) -> None:
        """Add the user's test dirs and the generated files to this session's collection."""
        args = list(self.config.args)
        for path in paths:
            if not any(Path(a).resolve() in (path, *path.parents) for a in args):
                args.append(str(path))
        self.config.args[:] = args

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.report is not None:
            terminalreporter.write_sep("=", "utgen: coverage before -> after")
            terminalreporter.write_line(self.report.table())


def pytest_configure(config: pytest.Config) -> None:
    if config.option.utgen or config.option.utgen_check:
        config.pluginmanager.register(UtgenPlugin(config), "utgen-session")
