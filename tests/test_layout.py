"""The repository's shape: one-way imports, a wheel that is the plugin alone, a check that installs in seconds."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import EXAMPLE, REPO

# Each part may import only the parts below it: eval -> trainer -> pytest_utgen.
LAYERS = {"pytest_utgen": set(), "trainer": {"pytest_utgen"}, "eval": {"trainer", "pytest_utgen"}}


def project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every absolute import of a project package in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return [(line, name) for line, name in found if name.split(".")[0] in LAYERS]


def test_imports_go_one_way_and_never_into_another_part_s_private_modules():
    wrong = []
    for part, allowed in LAYERS.items():
        for path in sorted((REPO / part).rglob("*.py")):
            for line, name in project_imports(path):
                target = name.split(".")[0]
                where = f"{path.relative_to(REPO)}:{line}: {name}"
                if target != part and target not in allowed:
                    wrong.append(f"{where} (imports upward)")
                elif target != part and any(p.startswith("_") and not p.startswith("__") for p in name.split(".")):
                    wrong.append(f"{where} (private module of another part)")
    assert wrong == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(REPO)], check=True, capture_output=True, timeout=600)
    (path,) = out.glob("pytest_utgen-*.whl")
    return path


def test_the_wheel_holds_the_plugin_alone(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"pytest_utgen"}
    assert "pytest_utgen/plugin.py" in names and "pytest_utgen/adapters/utgen-1.5b-lora.gguf" in names


def fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(path)
    return path / "bin" / "python"


def test_the_ci_gate_installs_in_seconds_and_needs_no_model(wheel, tmp_path):
    python = fresh_venv(tmp_path / "venv")
    started = time.perf_counter()
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    install_seconds = time.perf_counter() - started
    project = tmp_path / "shopkit"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "utgen"))
    gate = subprocess.run([str(tmp_path / "venv" / "bin" / "utgen"), "check", "src"], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "shopkit.pricing: no test file imports it" in gate.stdout
    assert "utgen: 2 of 4 modules lack tests" in gate.stderr
    assert install_seconds < 60


def test_the_pre_commit_check_hook_runs_without_installing_anything(tmp_path):
    if shutil.which("pre-commit", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("pre-commit is not installed (dev extra)")
    project = tmp_path / "shopkit"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "utgen"))
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, env=env)
    pre_commit = str(Path(sys.executable).parent / "pre-commit")
    failing = subprocess.run([pre_commit, "try-repo", str(REPO), "utgen-check", "--all-files"], cwd=project,
                             capture_output=True, text=True, timeout=300, env=env)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "shopkit.pricing: no test file imports it" in failing.stdout
    for name in ("pricing", "inventory"):
        (project / "tests" / f"test_{name}.py").write_text(f"import shopkit.{name}\n")
    subprocess.run(["git", "add", "."], cwd=project, check=True, env=env)
    passing = subprocess.run([pre_commit, "try-repo", str(REPO), "utgen-check", "--all-files"], cwd=project,
                             capture_output=True, text=True, timeout=300, env=env)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Passed" in passing.stdout


def test_a_plain_pytest_run_imports_the_hooks_not_the_engine(tmp_path):
    (tmp_path / "conftest.py").write_text(
        "import sys\n\n\ndef pytest_sessionfinish(session):\n"
        "    print('UTGEN_MODULES', sorted(m for m in sys.modules if m.startswith('pytest_utgen')))\n")
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", "test_plain.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout
    loaded = set(ast.literal_eval(result.stdout.split("UTGEN_MODULES ", 1)[1].splitlines()[0]))
    assert "pytest_utgen.plugin" in loaded
    assert loaded <= {"pytest_utgen", "pytest_utgen.plugin", "pytest_utgen.errors", "pytest_utgen.writer"}
