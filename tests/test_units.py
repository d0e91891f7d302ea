"""Each step alone: config, discover, prompt, extract, writer."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from pytest_utgen import discover
from pytest_utgen.config import load_config
from pytest_utgen.errors import ConfigError, ModelError, OutputError
from pytest_utgen.generate import CodeExtractionError, LlamaCppBackend, extract_code
from pytest_utgen.prompt import SYSTEM_PROMPT, build_messages, prompt_lines, split_source
from pytest_utgen.targets import find_targets
from pytest_utgen.writer import (
    Cache,
    atomic_write,
    make_provenance,
    read_generated_body,
    read_provenance,
    write_generated,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# config

def test_config_reads_pyproject_and_options_override(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.utgen]\nmodel = "0.5b"\nreruns = 5\npaths = ["lib"]\nmax-attempts = 3\n')
    config = load_config(tmp_path, {"reruns": 1, "timeout": None})
    assert config.model == "0.5b"
    assert config.reruns == 1
    assert config.max_attempts == 3
    assert config.timeout == 60.0
    assert config.paths == [(tmp_path / "lib").resolve()]
    assert config.output_dir == (tmp_path / "tests" / "utgen").resolve()


@pytest.mark.parametrize("table, message", [
    ("colour = 1", "unknown setting 'colour'"),
    ('reruns = "many"', "bad value for 'reruns'"),
    ("workers = 0", "workers must be >= 1"),
    ("min_coverage = 140", "min_coverage must be a percentage"),
    ("reruns = [", "invalid TOML"),
])
def test_config_errors_are_clear(tmp_path, table, message):
    write(tmp_path / "pyproject.toml", f"[tool.utgen]\n{table}\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(tmp_path)


# discover

def test_imported_modules_handles_every_import_form(tmp_path):
    test = write(tmp_path / "tests" / "test_x.py", (
        "import pkg.a\nfrom pkg import b\nfrom pkg.c import thing\nimport pkg.d as dee\n"
        "def test_f():\n    from pkg.e import g\n"
    ))
    names = discover.imported_modules(test)
    assert {"pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.e"} <= names


def test_relative_imports_in_a_test_package_resolve(tmp_path):
    write(tmp_path / "proj" / "__init__.py", "")
    write(tmp_path / "proj" / "tests" / "__init__.py", "")
    test = write(tmp_path / "proj" / "tests" / "test_r.py", "from ..core import run\nfrom .. import util\n")
    names = discover.imported_modules(test)
    assert {"proj.core", "proj.util"} <= names


def test_find_modules_and_skip_reasons(tmp_path):
    src = tmp_path / "src"
    write(src / "pkg" / "__init__.py", '"""Docs only."""\nfrom .a import f\n')
    write(src / "pkg" / "a.py", "def f():\n    return 1\n")
    write(src / "pkg" / "consts.py", "X = 1\n")
    write(src / "pkg" / "empty.py", "")
    write(src / "pkg" / "bad.py", "def f(:\n")
    write(src / "pkg" / "sub" / "__init__.py", "")
    write(src / "pkg" / "sub" / "deep.py", "class C:\n    pass\n")
    write(src / "pkg" / "test_inline.py", "def test_x():\n    pass\n")
    write(src / "pkg" / "__pycache__" / "junk.py", "def f():\n    pass\n")
    write(src / "build" / "gen.py", "def f():\n    pass\n")
    write(src / "pkg" / "generated" / "out.py", "def f():\n    pass\n")
    modules, skips = discover.find_modules([src], exclude_dirs=[src / "pkg" / "generated"])
    assert [m.name for m in modules] == ["pkg.a", "pkg.sub.deep"]
    assert modules[0].source_root == src.resolve()
    reasons = {Path(s.path).name: s.reason for s in skips}
    assert reasons["bad.py"] == "syntax error: line 1: invalid syntax"
    assert reasons["consts.py"] == "no functions or classes to test"
    assert reasons["empty.py"] == "no functions or classes to test"
    assert reasons["__init__.py"] == "no functions or classes to test"


def test_select_untested_by_imports_and_by_coverage(tmp_path):
    src = tmp_path / "src"
    for name in ("a", "b", "c"):
        write(src / "pkg" / f"{name}.py", "def f():\n    return 1\n")
    write(src / "pkg" / "__init__.py", "")
    tests = [write(tmp_path / "tests" / "test_a.py", "from pkg import a\n"),
             write(tmp_path / "tests" / "test_b.py", "import pkg.b\n")]
    modules, _ = discover.find_modules([src])
    assert [s.module.name for s in discover.select_untested(modules, tests)] == ["pkg.c"]
    coverage = {modules[0].path: 95.0, modules[1].path: 40.0}
    selected = discover.select_untested(modules, tests, coverage, min_coverage=80)
    assert [(s.module.name, s.reason) for s in selected] == [
        ("pkg.b", "line coverage 40% < 80%"), ("pkg.c", "no test file imports it")]


# prompt

def test_build_messages_carries_code_module_question_and_feedback():
    messages = build_messages("def f():\n    return 1\n", "pkg.mod", question="Return one.", feedback="boom")
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = messages[1]["content"]
    assert "Module `pkg.mod`" in user and "def f():" in user and "from pkg.mod import" in user
    assert "Problem:\nReturn one." in user and "boom" in user


DOCUMENTED = """'''Money helpers.

Long module notes that a prompt does not need.
'''


def cents(amount):
    '''Whole cents of an amount, as a 'number'
    :param amount: a float
    :return: an int

    >>> cents(1.5)
    150
    '''
    return round(amount * 100)


def short(x):
    '''One line only.'''
    return x


class Till:
    r'''
    A till that counts coins\\
    and keeps them.

    Args:
        coins: how many
    '''
    def __init__(self, coins=0):
        self.coins = coins
"""


def test_prompts_show_a_long_docstring_cut_to_its_summary_on_the_lines_it_had():
    lines = prompt_lines(DOCUMENTED)
    assert len(lines) == len(DOCUMENTED.splitlines())  # numbering kept: tree spans still index it
    shown = "\n".join(line for line in lines if line is not None)
    ast.parse(shown)
    assert lines[0] == "'''Money helpers.'''"
    assert lines[7] == "    '''Whole cents of an amount, as a 'number' '''"  # a quote right before the close
    assert ">>> cents" not in shown and ":param" not in shown and "Long module notes" not in shown
    assert lines[11] is None and lines[14] == "    return round(amount * 100)"
    assert "    '''One line only.'''" in shown
    assert "    A till that counts coins\\\n    and keeps them.'''" in shown and "Args:" not in shown
    whole = split_source(DOCUMENTED, budget_tokens=100_000)[0]
    assert whole.code == shown + "\n" and set(range(1, len(lines) + 1)) <= whole.lines
    cents = next(t for t in find_targets(DOCUMENTED) if t.qualname == "cents")
    assert cents.code == "def cents(amount):\n    '''Whole cents of an amount, as a 'number' '''\n" \
                         "    return round(amount * 100)" and cents.lines == range(7, 16)


def test_split_source_whole_when_it_fits_and_grouped_when_not():
    source = "import os\nLIMIT = 3\n\n" + "\n\n".join(
        f"def f{i}(x):\n" + "".join(f"    x += {j}\n" for j in range(30)) + "    return x" for i in range(6)
    ) + "\n"
    whole = split_source(source, budget_tokens=100_000)
    assert len(whole) == 1 and whole[0].code == source
    parts = split_source(source, budget_tokens=400)
    assert len(parts) > 1
    assert [n for p in parts for n in p.names] == [f"f{i}" for i in range(6)]
    for part in parts:
        ast.parse(part.code)
        assert part.code.startswith("import os\nLIMIT = 3")
        assert len(part.code) // 3 <= 400 + 60
    assert parts[0].missing_in_chunk([1, 4, 5, 200]) == [4, 5]


# extract

def test_extract_code_takes_the_python_block():
    reply = "Sure!\n```python\nimport x\n\n\ndef test_a():\n    assert x.f() == 1\n```\nDone."
    assert extract_code(reply) == "import x\n\n\ndef test_a():\n    assert x.f() == 1\n"


def test_extract_code_accepts_an_unterminated_block():
    assert "def test_a" in extract_code("```python\ndef test_a():\n    assert True\n")


@pytest.mark.parametrize("reply, message", [
    ("I am not able to do that.", "no Python code block"),
    ("```python\ndef test_a(:\n    pass\n```", "does not parse: line 1"),
    ("```python\ndef helper():\n    return 1\n```", "no test function"),
    ("```javascript\ntest('a', () => {})\n```", "no Python code block"),
])
def test_extract_code_rejects_unusable_replies(reply, message):
    with pytest.raises(CodeExtractionError, match=message):
        extract_code(reply)


# writer

def test_generated_file_round_trip_and_user_files_are_protected(tmp_path):
    target = tmp_path / "out" / "test_m.py"
    prov = make_provenance("pkg.m", "def f(): pass\n", "model-x")
    write_generated(target, prov, "def test_a():\n    assert True\n")
    assert read_provenance(target) == prov
    assert read_generated_body(target) == "def test_a():\n    assert True\n"
    write_generated(target, prov, "def test_b():\n    assert True\n")
    assert "test_b" in target.read_text()
    user = write(tmp_path / "out" / "test_user.py", "def test_mine():\n    pass\n")
    with pytest.raises(OutputError, match="refusing to overwrite"):
        write_generated(user, prov, "def test_c():\n    pass\n")
    assert user.read_text() == "def test_mine():\n    pass\n"


def test_atomic_write_leaves_old_content_and_no_temp_file_on_failure(tmp_path):
    target = write(tmp_path / "f.txt", "old")

    with pytest.raises(TypeError):
        atomic_write(target, object())  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_written_files_get_the_umask_s_permissions_and_keep_an_existing_mode(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.py", "x = 1\n")
        kept = tmp_path / "kept.py"
        kept.write_text("old")
        kept.chmod(0o664)
        atomic_write(kept, "new")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.py").stat().st_mode) == 0o640  # not mkstemp's 0600
    assert stat.S_IMODE(kept.stat().st_mode) == 0o664 and kept.read_text() == "new"


def test_cache_hits_only_for_same_source_model_and_present_files(tmp_path):
    out = tmp_path / "out"
    prov = make_provenance("pkg.m", "src", "model-a")
    write_generated(out / "test_pkg_m.py", prov, "def test_a():\n    pass\n")
    Cache(out).store("pkg.m", prov.source_sha256, "model-a", [out / "test_pkg_m.py"], {"tests_kept": 1})
    cache = Cache(out)
    assert cache.lookup("pkg.m", prov.source_sha256, "model-a")["result"] == {"tests_kept": 1}
    assert cache.lookup("pkg.m", prov.source_sha256, "model-b") is None
    assert cache.lookup("pkg.m", "other-hash", "model-a") is None
    (out / "test_pkg_m.py").unlink()
    assert cache.lookup("pkg.m", prov.source_sha256, "model-a") is None


def test_extract_code_keeps_the_complete_lines_of_a_test_cut_off_mid_way():
    reply = "```python\nfrom m import f\n\n\ndef test_f():\n    assert f(1) == 1\n    assert f(2) == 2\n    assert f(3) =="
    assert extract_code(reply) == "from m import f\n\n\ndef test_f():\n    assert f(1) == 1\n    assert f(2) == 2\n"


def test_extract_code_drops_the_unfinished_last_line_of_a_cut_reply_even_when_it_parses():
    reply = "```python\nfrom m import f\n\n\ndef test_f():\n    assert f(1) == 0\n    assert f"
    assert extract_code(reply) == "from m import f\n\n\ndef test_f():\n    assert f(1) == 0\n"
    closed = "```python\nfrom m import f\n\n\ndef test_f():\n    assert f```"
    assert extract_code(closed).endswith("    assert f\n")


def test_extract_code_cuts_a_truncated_reply_back_to_complete_tests():
    reply = "```python\nimport x\n\n\ndef test_a():\n    assert x.f() == 1\n\n\ndef test_b():\n    assert x.g('unterminated"
    assert extract_code(reply) == "import x\n\n\ndef test_a():\n    assert x.f() == 1\n"


def test_loop_breaker_bans_the_token_that_would_repeat_the_block_then_ends():
    import numpy as np

    from pytest_utgen.generate import LoopBreaker

    breaker = LoopBreaker(eos_token=0, max_breaks=1)
    block = [5, 6, 7, 8, 9, 10]
    looping = [1, 2] + block * 3
    assert breaker.loop_block(looping) == 6
    assert breaker.loop_block([1, 2] + block * 2 + [4]) == 0
    scores = breaker(looping, np.zeros(16))
    assert scores[5] == -np.inf and np.isfinite(scores[11])
    scores = breaker(looping, np.zeros(16))
    assert scores[0] == 0.0 and np.isinf(scores[1:]).all()


def test_loop_breaker_catches_a_whole_test_function_written_twice():
    from pytest_utgen.generate import LoopBreaker

    breaker = LoopBreaker(eos_token=0)
    function = list(range(100, 180))
    assert breaker.loop_block([1, 2] + function * 2) == 80
    assert breaker.loop_block([1, 2] + function + function[:-1] + [7]) == 0
    assert breaker.loop_block([1, 2] + list(range(10, 30)) * 2) == 0


def test_extract_code_binds_imported_test_named_functions_under_a_private_name():
    reply = ("```python\nfrom m import test_dup, f\n\n\n"
             "def test_a():\n    assert test_dup([1, 1]) is f(test_dup)\n```")
    assert extract_code(reply) == (
        "from m import test_dup as _test_dup, f\n\n"
        "def test_a():\n    assert _test_dup([1, 1]) is f(_test_dup)\n"
    )
    own = "```python\nfrom m import test_dup\n\n\ndef test_dup():\n    assert True\n```"
    assert extract_code(own) == "from m import test_dup\n\n\ndef test_dup():\n    assert True\n"


def test_a_modules_package_is_where_its_relative_imports_start():
    root = Path("/src")
    assert discover.SourceModule(root / "tinydb" / "queries.py", "tinydb.queries", root).package == "tinydb"
    assert discover.SourceModule(root / "tinydb" / "__init__.py", "tinydb", root).package == "tinydb"
    assert discover.SourceModule(root / "docopt.py", "docopt", root).package == ""


def test_a_model_that_fails_to_load_in_the_background_fails_the_first_call_with_the_reason(tmp_path):
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    backend = LlamaCppBackend(truncated, "truncated")
    backend.preload()  # fails in its thread, silently
    with pytest.raises(ModelError, match="llama.cpp could not load"):
        backend.count_tokens("def test(): pass")


def test_a_model_loaded_in_the_background_serves_the_first_call(tmp_path):
    from conftest import default_model_or_skip

    backend = LlamaCppBackend(default_model_or_skip(), "default")
    backend.preload()
    assert backend.count_tokens("def test(): pass") > 3  # waits for the load under way
