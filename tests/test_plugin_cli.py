"""The two faces: `pytest --utgen` / `--utgen-check` and the `utgen` command, run as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import snapshot


def run(args: list[str], cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


def utgen_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_utgen.cli", *args]


def test_pytest_utgen_generates_and_runs_tests_in_the_same_session(example_project, scripted_model):
    server = scripted_model()
    # Every test the scripted model writes is kept and no other: no mutation pass (its keep set drops
    # redundant ones), no amplification (it adds variants), no exploration (it covers before the model).
    result = run(pytest_cmd("--utgen", "src", "--utgen-endpoint", server.url, "--utgen-reruns", "1",
                            "--no-utgen-mutation", "--no-utgen-amplify", "--no-utgen-explore", "--utgen-report", "report.json", "-v"),
                 example_project)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "utgen: selected shopkit.pricing: no test file imports it" in out
    assert "utgen: shopkit.pricing: generated: kept 9, failed 0, flaky 0" in out
    assert "tests/utgen/test_shopkit_pricing.py::test_discount_half PASSED" in out
    assert "tests/test_cart.py::test_add_and_quantity PASSED" in out
    assert "utgen: coverage before -> after" in out
    assert "shopkit.pricing    generated  0 -> 100" in out
    report = json.loads((example_project / "report.json").read_text())
    assert {m["module"] for m in report["modules"]} == {"shopkit.pricing", "shopkit.inventory"}


def test_pytest_utgen_check_exit_codes(example_project):
    failing = run(pytest_cmd("--utgen-check", "src"), example_project)
    assert failing.returncode == 1
    assert "utgen: untested: shopkit.pricing" in failing.stdout
    assert "utgen: untested: shopkit.inventory" in failing.stdout
    for name in ("pricing", "inventory"):
        (example_project / "tests" / f"test_{name}.py").write_text(f"import shopkit.{name}\n\n\ndef test_it():\n    pass\n")
    passing = run(pytest_cmd("--utgen-check", "src"), example_project)
    assert passing.returncode == 0, passing.stdout
    assert "utgen: all 4 modules have tests" in passing.stdout


def test_utgen_check_exit_codes(example_project):
    failing = run(utgen_cmd("check", "src"), example_project)
    assert failing.returncode == 1
    assert "shopkit.pricing: no test file imports it" in failing.stdout
    assert "2 of 4 modules lack tests" in failing.stderr
    (example_project / "src" / "shopkit" / "pricing.py").unlink()
    (example_project / "src" / "shopkit" / "inventory.py").unlink()
    assert run(utgen_cmd("check", "src"), example_project).returncode == 0


def test_missing_model_says_which_command_to_run(example_project, tmp_path):
    env = {"UTGEN_MODEL_DIR": str(tmp_path / "empty-cache")}
    before = snapshot(example_project)
    result = run(pytest_cmd("--utgen", "src"), example_project, env=env)
    assert result.returncode == 4
    assert "model 1.5b is not in" in result.stdout + result.stderr
    assert "utgen fetch-model 1.5b" in result.stdout + result.stderr
    assert snapshot(example_project) == before
    cli = run(utgen_cmd("generate", "src/shopkit/pricing.py", "-o", "t.py", "--model", "0.5b"), example_project, env=env)
    assert cli.returncode == 2 and "utgen fetch-model 0.5b" in cli.stderr


def test_corrupt_model_file_is_a_clear_error(example_project, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all" * 100)
    result = run(pytest_cmd("--utgen", "src", "--utgen-model", str(bad)), example_project)
    assert result.returncode == 4
    assert "is not a GGUF file" in result.stdout + result.stderr and "corrupt" in result.stdout + result.stderr
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    result = run(utgen_cmd("generate", "src/shopkit/pricing.py", "-o", "t.py", "--model", str(truncated)),
                 example_project)
    assert result.returncode == 2, result.stderr
    assert "llama.cpp could not load" in result.stderr
    assert not (example_project / "t.py").exists()


def test_utgen_generate_writes_one_validated_file(example_project, scripted_model):
    server = scripted_model()
    result = run(utgen_cmd("generate", "src/shopkit/pricing.py", "-o", "out/test_pricing.py", "--endpoint",
                           server.url, "--reruns", "1", "--no-mutation", "--no-amplify"), example_project)
    assert result.returncode == 0, result.stderr
    text = (example_project / "out" / "test_pricing.py").read_text()
    assert text.startswith("# Generated by pytest-utgen.")
    assert "assert format_price(100) == '1.00 EUR'  # utgen: observed" in text
    assert "test_wrong_expectation, line" in (example_project / "out" / "test_pricing_failing.py").read_text()
    assert not (example_project / "tests" / "utgen").exists()


def test_utgen_generate_raw_writes_the_model_file_unvalidated(example_project, scripted_model):
    server = scripted_model()
    result = run(utgen_cmd("generate", "src/shopkit/pricing.py", "-o", "raw.py", "--raw", "--endpoint", server.url),
                 example_project)
    assert result.returncode == 0, result.stderr
    assert "def test_wrong_expectation" in (example_project / "raw.py").read_text()


def test_generate_never_overwrites_a_user_file(example_project, scripted_model):
    server = scripted_model()
    mine = example_project / "tests" / "test_cart.py"
    before = mine.read_text()
    result = run(utgen_cmd("generate", "src/shopkit/pricing.py", "-o", str(mine), "--endpoint", server.url),
                 example_project)
    assert result.returncode == 2
    assert "refusing to overwrite" in result.stderr
    assert mine.read_text() == before and server.requests == []


def as_in_a_terminal() -> None:
    """In the child: SIGINT delivered and handled as in an interactive shell, whatever the test runner's
    own signal state is (an ignored or blocked SIGINT is inherited across fork and exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_mid_run_leaves_no_partial_files(example_project, scripted_model, tmp_path):
    entered = []

    def slow(messages):
        entered.append(time.monotonic())
        time.sleep(30)
        return "```python\ndef test_x():\n    assert True\n```"

    server = scripted_model(slow)
    before = snapshot(example_project)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    process = subprocess.Popen(utgen_cmd("run", "src", "--endpoint", server.url), cwd=example_project,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(tmpdir)}, preexec_fn=as_in_a_terminal)
    deadline = time.monotonic() + 60
    while not entered and time.monotonic() < deadline:
        time.sleep(0.1)
    assert entered, "the run never asked the model"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted" in err
    assert snapshot(example_project) == before
    assert list(tmpdir.iterdir()) == []


def test_pytest_utgen_without_paths_uses_the_configured_paths(example_project):
    result = run(pytest_cmd("--utgen-check"), example_project)
    assert result.returncode == 1
    assert "utgen: untested: shopkit.pricing" in result.stdout
    assert "utgen: untested: shopkit.inventory" in result.stdout


def test_a_generated_pytest_main_call_is_cut_and_a_nested_session_does_not_generate(example_project,
                                                                                     scripted_model):
    from conftest import GOOD_REPLIES, module_of

    script = "\n\npytest.main()\n\nif __name__ == '__main__':\n    pytest.main(['-x'])\n```"

    def respond(messages):
        reply = GOOD_REPLIES[module_of(messages)]
        return reply.rsplit("```", 1)[0].rstrip() + script  # module-level pytest.main(), as small models write
    server = scripted_model(respond)
    # A user's test that starts pytest again, in this process, with the session's own arguments.
    (example_project / "tests" / "test_nested.py").write_text(
        "import sys\n\nimport pytest\n\n\ndef test_collects_again():\n"
        "    code = pytest.main(sys.argv[1:] + ['--collect-only', '-q', '--utgen-report', 'nested.json'])\n"
        "    assert code in (0, 5), code\n")
    result = run(pytest_cmd("--utgen", "src", "--utgen-endpoint", server.url, "--utgen-reruns", "1",
                            "--no-utgen-mutation", "--no-utgen-amplify", "--utgen-report", "report.json"),
                 example_project)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("test_shopkit_pricing.py", "test_shopkit_inventory.py"):
        kept = (example_project / "tests" / "utgen" / name).read_text()
        assert "pytest.main" not in kept and "__main__" not in kept
    report = json.loads((example_project / "report.json").read_text())
    assert {m["status"] for m in report["modules"]} == {"generated"}
    assert not (example_project / "nested.json").exists()  # the nested session ran no engine
