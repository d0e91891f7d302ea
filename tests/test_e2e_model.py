"""End to end with real models through llama-cpp-python: the installed wheel in a fresh venv, and the
scale-out path against llama-cpp-python's own OpenAI-compatible server.

No part of the model is replaced: these tests load the GGUFs from the cache that `utgen fetch-model`
fills. They are skipped when a model is absent, and fail instead under UTGEN_REQUIRE_MODEL=1 (CI).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from conftest import EXAMPLE, REPO, model_or_skip, snapshot
from pytest_utgen.config import UtgenConfig
from pytest_utgen.model_store import MODELS
from pytest_utgen.report import StopReason
from test_plugin_cli import pytest_cmd, run

pytestmark = pytest.mark.model

LLAMA_LOG = re.compile(r"^(llama_|ggml_|load_tensors|llm_load|print_info|gguf_|lora|llama_context|graph_)", re.M)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv outside the checkout with the wheel built from the repo installed (dependencies from the
    index; llama-cpp-python from pip's wheel cache, which the checkout's own install filled)."""
    root = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "wheel"), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = (root / "wheel").glob("pytest_utgen-*.whl")
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                             timeout=1800)
    assert install.returncode == 0, install.stderr[-3000:]
    return python


def test_the_installed_wheel_runs_pytest_utgen_with_the_real_model_then_a_free_rerun(installed, tmp_path):
    model_or_skip()
    project = tmp_path / "shopkit"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "utgen", ".pytest_cache"))
    user_files = snapshot(project, exclude=project / "tests" / "utgen")
    command = [str(installed), "-m", "pytest", "-p", "no:cacheprovider", "--utgen", "src", "--utgen-reruns", "2",
               "-rA"]
    first = run([*command, "--utgen-report", "first.json"], project, timeout=1500)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    assert "site-packages/pytest_utgen" in subprocess.run(
        [str(installed), "-c", "import pytest_utgen; print(pytest_utgen.__file__)"], cwd=tmp_path,
        capture_output=True, text=True).stdout
    assert LLAMA_LOG.findall(out) == []  # llama.cpp's own log stays out of the terminal without -v

    report = json.loads((project / "first.json").read_text())
    assert report["model_sha256"] == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    adapter = MODELS["1.5b"]
    assert report["model_id"].endswith(f"+lora@{adapter.adapter_sha256[:12]}")
    assert report["lora"].endswith(adapter.adapter)
    assert sorted(m["module"] for m in report["modules"]) == ["shopkit.inventory", "shopkit.pricing"]
    # What the loop guarantees on any CPU (greedy decoding is not bit-identical across machines): each
    # module stops for a reason its numbers bear out, and every kept test passes here.
    for module in report["modules"]:
        assert module["status"] == "generated" and module["model_calls"] >= 1
        stopped = StopReason(module["stopped"])
        if stopped is StopReason.MAX_CALLS:
            assert module["model_calls"] >= UtgenConfig().max_calls
        if stopped is StopReason.BUDGET_SECONDS:  # no call fitted before the final checks' share of the budget
            assert UtgenConfig().budget_s / 2 <= module["seconds"] <= UtgenConfig().budget_s * 1.1
        if stopped is StopReason.COVERAGE:  # the loop's union reached 90 %; the final file is re-measured
            assert module["line_after"] >= 80, module
        if module["tests_kept"]:
            assert module["line_after"] > module["line_before"] == 0.0
            # The mutation pass (on by default) scored the kept file against the module's mutants.
            assert module["mutants"] > 0 and 0 <= module["mutants_killed"] <= module["mutants"]
        if module["model_calls"] > 1:  # later prompts of a module start like earlier ones: llama.cpp reuses that
            assert 0 < module["prompt_tokens_reused"] < module["prompt_tokens"]
    ran = re.findall(r"^(PASSED|FAILED|ERROR) tests/utgen/(test_\w+\.py)::\S+", out, flags=re.M)
    assert len(ran) == sum(m["tests_kept"] for m in report["modules"])
    assert {outcome for outcome, _ in ran} <= {"PASSED"}
    assert "utgen: coverage before -> after" in out
    after_first = snapshot(project, exclude=project / "tests" / "utgen")
    assert {k: v for k, v in after_first.items() if k != "first.json"} == user_files

    second = run([*command, "--utgen-report", "second.json"], project, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    again = json.loads((project / "second.json").read_text())
    assert again["model_calls"] == 0
    assert {m["status"] for m in again["modules"]} == {"cached"}


@pytest.fixture
def llama_server(tmp_path):
    """llama-cpp-python's OpenAI-compatible server (its `server` extra) with the real 0.5B model."""
    model = model_or_skip("0.5b")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "4096", "--verbose", "False"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-3000:]
        time.sleep(1)
    yield url
    server.terminate()
    server.wait(timeout=60)
    log.close()


def test_pytest_utgen_against_a_real_openai_compatible_server(example_project, llama_server):
    result = run(pytest_cmd("--utgen", "src", "--utgen-endpoint", llama_server, "--utgen-workers", "2",
                            "--utgen-reruns", "1", "--utgen-max-calls", "4", "--utgen-report", "report.json", "-rA"),
                 example_project,
                 timeout=1500)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    report = json.loads((example_project / "report.json").read_text())
    assert report["model_id"] == f"default@{llama_server}"
    assert sorted(m["module"] for m in report["modules"]) == ["shopkit.inventory", "shopkit.pricing"]
    for module in report["modules"]:
        assert module["status"] == "generated" and module["model_calls"] >= 1, module
        assert module["completion_tokens"] > 0  # the server really answered, with its own token counts
    ran = re.findall(r"^(PASSED|FAILED|ERROR) tests/utgen/(test_\w+\.py)::\S+", out, flags=re.M)
    assert len(ran) == sum(m["tests_kept"] for m in report["modules"])
    assert {outcome for outcome, _ in ran} <= {"PASSED"}
