"""Discover: list the importable modules under the given paths and find those that lack tests."""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import ConfigError
from .writer import is_generated_file

SKIP_DIRS = {
    "__pycache__", "build", "dist", "node_modules", "site-packages", "venv", ".venv", "env",
    ".tox", ".nox", ".git", ".hg", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs",
}
SKIP_FILES = {"conftest.py", "setup.py", "__main__.py"}


@dataclass(frozen=True)
class SourceModule:
    """A Python file that can be imported as ``name`` once ``source_root`` is on sys.path."""

    path: Path
    name: str
    source_root: Path

    @property
    def package(self) -> str:
        """The package its relative imports start from ("" for a top-level module)."""
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Selection:
    """A module picked for generation, with the reason it was picked."""

    module: SourceModule
    reason: str


@dataclass(frozen=True)
class Skip:
    """A module left out, with the reason (syntax error, nothing to test...)."""

    path: Path
    reason: str


def is_test_file(path: Path) -> bool:
    """True for files pytest collects by default (test_*.py, *_test.py)."""
    return path.suffix == ".py" and (path.name.startswith("test_") or path.stem.endswith("_test"))


def _skipped_dir(path: Path, excluded: Iterable[Path]) -> bool:
    if path.name in SKIP_DIRS or path.name.startswith(".") or path.name.endswith(".egg-info"):
        return True
    return any(path == ex or ex in path.parents for ex in excluded)


def _walk_py(root: Path, excluded: Iterable[Path]) -> Iterable[Path]:
    excluded = [e.resolve() for e in excluded]
    if root.is_file():
        if root.suffix == ".py":
            yield root.resolve()
        return
    stack = [root.resolve()]
    while stack:
        directory = stack.pop()
        if _skipped_dir(directory, excluded) and directory != root.resolve():
            continue
        for entry in sorted(directory.iterdir(), reverse=True):
            if entry.is_dir():
                stack.append(entry)
            elif entry.suffix == ".py":
                yield entry


def module_path(root: Path, name: str) -> Path:
    """The file of the dotted module ``name`` under ``root`` (a package's ``__init__.py``)."""
    path = root / Path(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def module_name(path: Path) -> tuple[str, Path]:
    """Dotted import name of ``path`` and the directory that must be on sys.path to import it."""
    path = path.resolve()
    parts = [] if path.name == "__init__.py" else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").is_file():
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts), directory


def has_code(tree: ast.Module) -> bool:
    """True when the module defines or does something beyond a docstring and imports."""
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)):
            continue
        return True
    return False


def has_testable_code(tree: ast.Module) -> bool:
    """True when the module defines a function or class: something a unit test can call."""
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in ast.walk(tree))


def find_modules(
    paths: Iterable[Path], exclude_dirs: Iterable[Path] = (), exclude_globs: Iterable[str] = ()
) -> tuple[list[SourceModule], list[Skip]]:
    """All importable, testable source modules under ``paths``, and those skipped with reasons."""
    modules: dict[Path, SourceModule] = {}
    skips: list[Skip] = []
    globs = list(exclude_globs)
    for root in paths:
        if not root.exists():
            skips.append(Skip(root, "path does not exist"))
            continue
        for path in _walk_py(root, exclude_dirs):
            if path in modules or path.name in SKIP_FILES or is_test_file(path):
                continue
            if any(fnmatch.fnmatch(str(path), g) or fnmatch.fnmatch(path.name, g) for g in globs):
                continue
            name, source_root = module_name(path)
            if not all(part.isidentifier() for part in name.split(".")) or not name:
                skips.append(Skip(path, f"not importable: {name or path.name!r} is not a valid module name"))
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            except SyntaxError as exc:
                skips.append(Skip(path, f"syntax error: line {exc.lineno}: {exc.msg}"))
                continue
            except (UnicodeDecodeError, OSError) as exc:
                skips.append(Skip(path, f"unreadable: {exc}"))
                continue
            if not has_code(tree) or not has_testable_code(tree):
                skips.append(Skip(path, "no functions or classes to test"))
                continue
            modules[path] = SourceModule(path=path, name=name, source_root=source_root)
    return sorted(modules.values(), key=lambda m: m.name), skips


def find_test_files(test_paths: Iterable[Path], exclude_dirs: Iterable[Path] = ()) -> list[Path]:
    """Test files (test_*.py, *_test.py) under ``test_paths``."""
    found: set[Path] = set()
    for root in test_paths:
        if root.exists():
            found.update(p for p in _walk_py(root, exclude_dirs) if is_test_file(p))
    return sorted(found)


def imported_modules(test_file: Path) -> set[str]:
    """Dotted names a file imports: ``import a.b`` gives a.b; ``from a import b`` gives a and a.b."""
    try:
        tree = ast.parse(test_file.read_text(encoding="utf-8"), filename=str(test_file))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return set()
    own_package = module_name(test_file)[0].rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package_parts = own_package.split(".") if own_package else []
                keep = len(package_parts) - (node.level - 1)
                if keep < 0:
                    continue
                base = ".".join(package_parts[:keep] + ([base] if base else []))
            if base:
                names.add(base)
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    return names


def tested_modules(test_files: Iterable[Path], include_generated: bool = True) -> set[str]:
    """Union of modules imported by ``test_files`` (optionally ignoring utgen-generated files)."""
    names: set[str] = set()
    for test_file in test_files:
        if not include_generated and is_generated_file(test_file):
            continue
        names |= imported_modules(test_file)
    return names


def select_untested(
    modules: Iterable[SourceModule],
    test_files: Iterable[Path],
    line_coverage: dict[Path, float] | None = None,
    min_coverage: float | None = None,
    include_generated: bool = True,
) -> list[Selection]:
    """Modules no test file imports, plus (with ``min_coverage``) those covered below it."""
    imported = tested_modules(test_files, include_generated=include_generated)
    selected = []
    for module in modules:
        if module.name not in imported:
            selected.append(Selection(module, "no test file imports it"))
        elif min_coverage is not None and line_coverage is not None:
            covered = line_coverage.get(module.path, 0.0)
            if covered < min_coverage:
                selected.append(Selection(module, f"line coverage {covered:.0f}% < {min_coverage:.0f}%"))
    return selected


@dataclass
class CheckResult:
    """Modules that lack tests, and files skipped during discovery."""

    untested: list[Selection]
    skipped: list[Skip]
    modules: list[SourceModule]


def check_paths_exist(paths: Iterable[Path]) -> None:
    """Raise :class:`ConfigError` naming the first of ``paths`` that does not exist."""
    for path in paths:
        if not path.exists():
            raise ConfigError(f"{path} does not exist; give the source directories or modules to test")


def check(paths: list[Path], test_paths: list[Path], output_dir: Path, exclude: list[str]) -> CheckResult:
    """Which modules under ``paths`` no test file under ``test_paths`` (user-written or generated) imports.

    Needs nothing but the standard library: the pre-commit hook and the CI gate run it without a model.
    """
    check_paths_exist(paths)
    modules, skipped = find_modules(paths, [output_dir / "quarantine"], exclude)
    return CheckResult(select_untested(modules, find_test_files(test_paths)), skipped, modules)
