"""One typed configuration, read from ``[tool.utgen]`` in pyproject.toml and overridden by options."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass
class UtgenConfig:
    """Every setting of the engine. Paths are relative to ``root`` until :meth:`resolved`."""

    root: Path = field(default_factory=Path.cwd)
    paths: list[Path] = field(default_factory=list)
    test_paths: list[Path] = field(default_factory=lambda: [Path("tests")])
    output_dir: Path = Path("tests/utgen")
    exclude: list[str] = field(default_factory=list)
    model: str = "1.5b"
    lora: str | None = "bundled"
    model_dir: Path | None = None
    endpoint: str | None = None
    endpoint_model: str = "default"
    workers: int = 1
    n_ctx: int = 4096
    n_threads: int | None = None
    max_tokens: int = 768
    seed: int = 1234
    max_attempts: int = 2
    reruns: int = 3
    timeout: float = 60.0
    memory_limit_mb: int = 2048
    min_coverage: float | None = None
    target_coverage: float = 90.0  # line+branch %: a module's loop stops here (or at its budget)
    repair_temperature: float = 0.7
    oracle: str = "observed"  # "observed": adopt what the code did for a wrong expectation; "model": never
    budget_s: float = 300.0  # per module: calls are planned to end, final checks included, by then
    max_calls: int = 24  # per module
    mutation: bool = True  # after coverage: mutants of the covered lines, prompts for the survivors, a score
    amplify: bool = True  # after each pass: variants of the kept tests with one input changed (no model call)
    doctests: bool = True  # before the first model call: the module's docstring examples, run as tests
    explore: bool = True  # before the first model call: calls built from the signatures, values observed
    report: Path | None = None
    verbose: bool = False

    def resolved(self) -> "UtgenConfig":
        """Return a copy whose paths are absolute (anchored at ``root``)."""
        root = self.root.resolve()

        def anchor(p: Path) -> Path:
            return (root / p).resolve() if not p.is_absolute() else p.resolve()

        return dataclasses.replace(
            self,
            root=root,
            paths=[anchor(p) for p in self.paths],
            test_paths=[anchor(p) for p in self.test_paths],
            output_dir=anchor(self.output_dir),
            model_dir=anchor(self.model_dir) if self.model_dir else None,
            report=anchor(self.report) if self.report else None,
        )

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values no run could use."""
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.reruns < 0:
            raise ConfigError(f"reruns must be >= 0, got {self.reruns}")
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.min_coverage is not None and not 0 <= self.min_coverage <= 100:
            raise ConfigError(f"min_coverage must be a percentage 0-100, got {self.min_coverage}")
        if not 0 <= self.repair_temperature <= 2:
            raise ConfigError(f"repair_temperature must be 0-2, got {self.repair_temperature}")
        if self.oracle not in ("observed", "model"):
            raise ConfigError(f"oracle must be 'observed' or 'model', got {self.oracle!r}")
        if self.budget_s <= 0 or self.max_calls < 0:
            raise ConfigError(f"budget_s must be > 0 and max_calls >= 0, got {self.budget_s}, {self.max_calls}")
        if self.n_ctx < 512:
            raise ConfigError(f"n_ctx must be >= 512 tokens, got {self.n_ctx}")


_FIELDS = {f.name: f for f in dataclasses.fields(UtgenConfig)}
_PATH_LIST = {"paths", "test_paths"}
_PATH = {"output_dir", "model_dir", "report"}
_FLOAT = {"timeout", "min_coverage", "target_coverage", "repair_temperature", "budget_s"}
_INT = {"workers", "n_ctx", "n_threads", "max_tokens", "seed", "max_attempts", "reruns", "memory_limit_mb", "max_calls"}
_STR = {"model", "lora", "endpoint", "endpoint_model", "oracle"}
_BOOL = {"verbose", "mutation", "amplify", "doctests", "explore"}


def _coerce(name: str, value: Any, source: str) -> Any:
    if value is None:
        return None
    try:
        if name in _PATH_LIST:
            if isinstance(value, (str, Path)):
                value = [value]
            return [Path(v) for v in value]
        if name == "exclude":
            return [str(v) for v in ([value] if isinstance(value, str) else value)]
        if name in _PATH:
            return Path(value)
        if name in _FLOAT:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if name in _INT:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if name in _BOOL:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if name in _STR:
            if not isinstance(value, (str, Path)):
                raise TypeError
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: bad value for {name!r}: {value!r}") from None
    raise ConfigError(f"{source}: unknown setting {name!r}")


def find_project_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding pyproject.toml (else ``start``)."""
    start = start.resolve()
    if start.is_file():
        start = start.parent
    for candidate in (start, *start.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return start


def read_pyproject_table(root: Path) -> dict[str, Any]:
    """The ``[tool.utgen]`` table of ``root/pyproject.toml``, or {} when absent."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject}: invalid TOML: {exc}") from None
    table = data.get("tool", {}).get("utgen", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.utgen] must be a table")
    return {key.replace("-", "_"): value for key, value in table.items()}


def load_config(root: Path, overrides: Mapping[str, Any] | None = None) -> UtgenConfig:
    """Build the config: defaults < ``[tool.utgen]`` < ``overrides`` (None values are ignored)."""
    values: dict[str, Any] = {"root": root}
    for name, value in read_pyproject_table(root).items():
        if name not in _FIELDS or name == "root":
            raise ConfigError(f"{root / 'pyproject.toml'}: [tool.utgen] has unknown setting {name!r}")
        values[name] = _coerce(name, value, "[tool.utgen]")
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in _FIELDS:
            raise ConfigError(f"unknown option {name!r}")
        values[name] = value if name == "root" else _coerce(name, value, "option")
    config = UtgenConfig(**values)
    config.validate()
    return config.resolved()
