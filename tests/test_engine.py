"""The engine end to end over the example project, with a scripted model server."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import GOOD_REPLIES, module_of, snapshot

from pytest_utgen.config import load_config
from pytest_utgen.engine import Engine, FinalCheckSpeed, ModelSpeed
from pytest_utgen.generate import Completion
from pytest_utgen.report import PromptKind, StopReason
from pytest_utgen.writer import is_generated_file, read_provenance


def pricing_only(answer):
    """A scripted model's ``respond``: the good reply for every module but shopkit.pricing, and for that one
    ``answer(text of the last message)``."""
    def respond(messages):
        if module_of(messages) != "shopkit.pricing":
            return GOOD_REPLIES[module_of(messages)]
        return answer(messages[-1]["content"])
    return respond


def run_engine(project: Path, server, **overrides):
    # The mutation pass and the keep set have their own tests (test_mutation.py): here the coverage loop alone.
    config = load_config(project, {"endpoint": server.url, "reruns": 2, "mutation": False, "amplify": False,
                                  "explore": False, **overrides})
    lines: list[str] = []
    return Engine(config, on_progress=lines.append).run(), lines


def test_generates_exactly_the_untested_modules(example_project, scripted_model):
    server = scripted_model()
    before = snapshot(example_project, exclude=example_project / "tests" / "utgen")
    # The model's own expectations only (no observed-value oracle): a wrong one is quarantined.
    report, lines = run_engine(example_project, server, report="report.json", oracle="model")

    assert sorted(m.module for m in report.modules) == ["shopkit.inventory", "shopkit.pricing"]
    assert {module_of(r["messages"]) for r in server.requests} == {"shopkit.inventory", "shopkit.pricing"}
    out = example_project / "tests" / "utgen"
    pricing = (out / "test_shopkit_pricing.py").read_text()
    assert is_generated_file(out / "test_shopkit_pricing.py")
    assert "def test_discount_half" in pricing and "def test_wrong_expectation" not in pricing
    quarantine = (out / "quarantine" / "shopkit_pricing_failing.py").read_text()
    assert "def test_wrong_expectation" in quarantine and "AssertionError" in quarantine
    inventory = (out / "test_shopkit_inventory.py").read_text()
    assert "def test_low_stock" in inventory
    assert snapshot(example_project, exclude=out) == {**before, "report.json": snapshot(example_project)["report.json"]}

    by_name = {m.module: m for m in report.modules}
    assert by_name["shopkit.pricing"].tests_generated == 9
    assert by_name["shopkit.pricing"].tests_kept == 8
    assert by_name["shopkit.pricing"].tests_quarantined == 1
    assert by_name["shopkit.pricing"].line_before == 0.0
    assert by_name["shopkit.pricing"].line_after == 100.0
    assert by_name["shopkit.inventory"].line_after > by_name["shopkit.inventory"].line_before
    assert any("shopkit.pricing: generated: kept 8, failed 1" in line for line in lines)

    data = json.loads((example_project / "report.json").read_text())
    entry = next(m for m in data["modules"] if m["module"] == "shopkit.pricing")
    for key in ("reason", "attempts", "tests_generated", "tests_kept", "tests_quarantined", "tests_flaky",
                "line_before", "line_after", "branch_before", "branch_after", "seconds", "model_id", "model_sha256"):
        assert key in entry
    assert entry["model_id"] == data["model_id"]
    assert entry["reason"] == "no test file imports it"
    assert data["model_id"].startswith("default@http://127.0.0.1")


def test_second_run_makes_no_model_call(example_project, scripted_model):
    server = scripted_model()
    run_engine(example_project, server)
    calls = len(server.requests)
    generated = snapshot(example_project / "tests" / "utgen")

    report, _ = run_engine(example_project, server)

    assert len(server.requests) == calls
    assert report.model_calls == 0
    assert {m.status for m in report.modules} == {"cached"}
    assert snapshot(example_project / "tests" / "utgen") == generated
    assert report.modules[0].line_after is not None


def test_source_change_regenerates_only_that_module(example_project, scripted_model):
    server = scripted_model()
    run_engine(example_project, server)
    calls = len(server.requests)
    pricing = example_project / "src" / "shopkit" / "pricing.py"
    pricing.write_text(pricing.read_text() + "\n\ndef free() -> int:\n    return 0\n")

    report, _ = run_engine(example_project, server)

    assert [module_of(r["messages"]) for r in server.requests[calls:]] == ["shopkit.pricing"]
    assert {m.module: m.status for m in report.modules} == {"shopkit.inventory": "cached", "shopkit.pricing": "generated"}
    prov = read_provenance(example_project / "tests" / "utgen" / "test_shopkit_pricing.py")
    assert prov.source_sha256 == __import__("hashlib").sha256(pricing.read_bytes()).hexdigest()


def test_syntax_error_module_is_skipped_with_reason(example_project, scripted_model):
    broken = example_project / "src" / "shopkit" / "broken.py"
    broken.write_text("def oops(:\n    pass\n")
    before = broken.read_bytes()
    report, lines = run_engine(example_project, scripted_model())
    assert any(s["path"] == str(broken) and "syntax error: line 1" in s["reason"] for s in report.skipped)
    assert any("broken.py: syntax error" in line for line in lines)
    assert broken.read_bytes() == before


def test_module_whose_import_fails_is_skipped(example_project, scripted_model):
    bad = example_project / "src" / "shopkit" / "needs_missing.py"
    bad.write_text("import definitely_not_installed_pkg\n\n\ndef f():\n    return 1\n")
    server = scripted_model()
    report, _ = run_engine(example_project, server)
    entry = next(m for m in report.modules if m.module == "shopkit.needs_missing")
    assert entry.status == "skipped"
    assert "No module named 'definitely_not_installed_pkg'" in entry.error
    assert "shopkit.needs_missing" not in [module_of(r["messages"]) for r in server.requests]
    assert not (example_project / "tests" / "utgen" / "test_shopkit_needs_missing.py").exists()
    assert entry.output is None  # no file was written: the report names none
    assert all(Path(m.output).is_file() for m in report.modules if m.output)


def test_hanging_and_memory_hungry_tests_are_killed_and_the_run_goes_on(example_project, scripted_model):
    reply = GOOD_REPLIES["shopkit.pricing"].replace(
        "def test_tax():",
        "def test_hangs():\n    while True:\n        pass\n\n\ndef test_eats_memory():\n"
        "    blocks = []\n    while True:\n        blocks.append(bytearray(100_000_000))\n\n\ndef test_tax():",
    )
    server = scripted_model(lambda m: reply if module_of(m) == "shopkit.pricing" else GOOD_REPLIES[module_of(m)])
    report, _ = run_engine(example_project, server, timeout=8, memory_limit_mb=1024)
    pricing = next(m for m in report.modules if m.module == "shopkit.pricing")
    assert pricing.tests_kept == 8
    kept = (example_project / "tests" / "utgen" / "test_shopkit_pricing.py").read_text()
    quarantine = (example_project / "tests" / "utgen" / "quarantine" / "shopkit_pricing_failing.py").read_text()
    assert "test_hangs" not in kept and "test_eats_memory" not in kept
    assert "# FAILED test_hangs:\n# timeout" in quarantine
    assert "MemoryError" in quarantine


def test_replies_without_code_or_with_broken_code_are_failed_attempts(example_project, scripted_model):
    replies = iter(["I cannot help with that.", "```python\ndef test_x(:\n```"])
    server = scripted_model(lambda m: next(replies) if module_of(m) == "shopkit.pricing" else "no code")
    report, _ = run_engine(example_project, server, max_attempts=2, max_calls=2)
    pricing = next(m for m in report.modules if m.module == "shopkit.pricing")
    assert pricing.attempts == 2 and pricing.tests_kept == 0 and pricing.output is None
    assert pricing.stopped == StopReason.MAX_CALLS
    feedback = server.requests[-1]["messages"][-1]["content"]
    assert "previous test file had this problem" in feedback
    assert not (example_project / "tests" / "utgen" / "test_shopkit_pricing.py").exists()


def test_repair_prompt_carries_the_collect_error(example_project, scripted_model):
    replies = {"n": 0}

    def respond(messages):
        if module_of(messages) != "shopkit.pricing":
            return GOOD_REPLIES[module_of(messages)]
        replies["n"] += 1
        if replies["n"] == 1:
            return "```python\nfrom shopkit.pricing import no_such_name\n\n\ndef test_x():\n    assert no_such_name()\n```"
        return GOOD_REPLIES["shopkit.pricing"]

    server = scripted_model(respond)
    report, _ = run_engine(example_project, server)
    pricing = next(m for m in report.modules if m.module == "shopkit.pricing")
    assert pricing.attempts == 2 and pricing.tests_kept == 9  # the wrong expectation adopted (the oracle)
    second_prompt = [r for r in server.requests if module_of(r["messages"]) == "shopkit.pricing"][1]
    assert "cannot import name 'no_such_name'" in second_prompt["messages"][-1]["content"]


def test_uncovered_lines_are_asked_for_again_with_sampling_and_first_attempts_are_greedy(example_project,
                                                                                        scripted_model):
    weak = ("```python\nfrom shopkit.pricing import apply_discount\n\n\n"
            "def test_no_discount():\n    assert apply_discount(1000, 0) == 1000\n```")

    def respond(messages):
        return weak if module_of(messages) == "shopkit.pricing" else GOOD_REPLIES[module_of(messages)]

    server = scripted_model(respond)
    report, _ = run_engine(example_project, server, repair_temperature=0.5, max_calls=2)
    prompts = [r for r in server.requests if module_of(r["messages"]) == "shopkit.pricing"]
    assert len(prompts) == 2
    assert "never run by the tests" in prompts[1]["messages"][-1]["content"]
    assert [r["temperature"] for r in prompts] == [0.0, 0.5]
    pricing = next(m for m in report.modules if m.module == "shopkit.pricing")
    assert pricing.tests_kept == 1


def test_module_larger_than_the_context_window_is_prompted_in_parts(example_project, scripted_model):
    big = example_project / "src" / "shopkit" / "big.py"
    big.write_text("\n\n".join(
        f"def f{i}(x):\n    " + "\n    ".join(f"x = x + {j}" for j in range(40)) + "\n    return x" for i in range(12)
    ) + "\n")
    prompts = []

    def respond(messages):
        if module_of(messages) != "shopkit.big":
            return GOOD_REPLIES[module_of(messages)]
        prompts.append(messages[-1]["content"])
        names = [n for n in (f"f{i}" for i in range(12)) if f"def {n}(" in messages[-1]["content"]]
        return "```python\nimport shopkit.big as m\n\n\n" + "\n\n".join(
            f"def test_{n}():\n    assert m.{n}(0) == 780" for n in names
        ) + "\n```"

    report, _ = run_engine(example_project, scripted_model(respond), n_ctx=1536, max_tokens=256)
    entry = next(m for m in report.modules if m.module == "shopkit.big")
    assert len(prompts) > 1
    assert all(len(p) // 3 < 1536 for p in prompts)
    assert entry.tests_kept == 12 and entry.line_after == 100.0


@pytest.fixture
def read_only_dir():
    """Make a directory unwritable, even for root (chattr +i), and undo it afterwards."""
    made = []

    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
                pytest.skip("cannot make a directory read-only as root here (chattr +i failed)")
        else:
            path.chmod(0o555)
        made.append(path)
        return path

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o755)


def test_read_only_output_dir_is_a_clear_error_and_nothing_changes(example_project, scripted_model, read_only_dir):
    out = read_only_dir(example_project / "tests" / "utgen")
    before = snapshot(example_project)
    report, lines = run_engine(example_project, scripted_model())
    assert {m.status for m in report.modules} == {"failed"}
    assert all("not writable" in m.error or "cannot write" in m.error for m in report.modules)
    assert any("shopkit.pricing: failed:" in line for line in lines)
    assert snapshot(example_project) == before
    assert list(out.iterdir()) == []


def test_user_written_file_at_the_output_path_is_never_overwritten(example_project, scripted_model):
    user_file = example_project / "tests" / "utgen" / "test_shopkit_pricing.py"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("def test_mine():\n    assert True\n")
    report, _ = run_engine(example_project, scripted_model())
    pricing = next(m for m in report.modules if m.module == "shopkit.pricing")
    assert pricing.status == "failed"
    assert "was not written by pytest-utgen; refusing to overwrite" in pricing.error
    assert user_file.read_text() == "def test_mine():\n    assert True\n"


def test_tests_failing_with_the_users_suite_are_quarantined_and_each_file_is_written_once(
        example_project, scripted_model, monkeypatch):
    import pytest_utgen.engine as engine_module

    # A user test that leaves state behind: it replaces add_tax for every test collected after it. The import
    # is dynamic, so shopkit.pricing still counts as untested.
    (example_project / "tests" / "test_patches_tax.py").write_text(
        "import importlib\n\npricing = importlib.import_module('shopkit.pricing')\n"
        "pricing.add_tax = lambda cents, rate: 0\n\n\ndef test_patched():\n    assert pricing.add_tax(1, 1) == 0\n")
    writes: list[Path] = []
    real_write = engine_module.write_generated
    monkeypatch.setattr(engine_module, "write_generated",
                        lambda path, prov, body: (writes.append(path), real_write(path, prov, body)))
    report, _ = run_engine(example_project, scripted_model())

    out = example_project / "tests" / "utgen"
    pricing = (out / "test_shopkit_pricing.py").read_text()
    assert "def test_discount_half" in pricing
    assert "def test_tax(" not in pricing and "def test_tax_negative_rate(" not in pricing
    quarantine = (out / "quarantine" / "shopkit_pricing_failing.py").read_text()
    assert quarantine.count("fails together with the existing suite") == 2
    assert "def test_tax(" in quarantine and "def test_tax_negative_rate(" in quarantine
    by_name = {m.module: m for m in report.modules}
    assert by_name["shopkit.pricing"].tests_kept == pricing.count("\ndef test_")
    # Each file written once, after the run with the suite.
    assert len(writes) == len(set(writes))
    assert {out / "test_shopkit_pricing.py", out / "test_shopkit_inventory.py",
            out / "quarantine" / "shopkit_pricing_failing.py"} <= set(writes)
    rerun = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "tests"],
                           cwd=example_project, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:]


def test_empty_module_is_skipped_and_never_prompted(example_project, scripted_model):
    empty = example_project / "src" / "shopkit" / "empty.py"
    empty.write_text("")
    server = scripted_model()
    report, _ = run_engine(example_project, server)
    assert {"path": str(empty), "reason": "no functions or classes to test"} in report.skipped
    assert "shopkit.empty" not in [module_of(r["messages"]) for r in server.requests]
    assert empty.read_text() == ""


def test_a_wrong_expectation_becomes_the_observed_value_and_the_model_s_one_goes_to_quarantine(
        example_project, scripted_model):
    report, _ = run_engine(example_project, scripted_model())
    pricing = next(m for m in report.modules if m.module == "shopkit.pricing")
    assert (pricing.tests_kept, pricing.tests_quarantined, pricing.expectations_adopted) == (9, 0, 1)
    kept = (example_project / "tests" / "utgen" / "test_shopkit_pricing.py").read_text()
    assert "    assert format_price(100) == '1.00 EUR'  # utgen: observed\n" in kept
    quarantine = (example_project / "tests" / "utgen" / "quarantine" / "shopkit_pricing_failing.py").read_text()
    assert re.search(r"# test_wrong_expectation, line \d+: the model expected \"1 EUR\"; the code gave '1.00 EUR'",
                     quarantine)


def test_the_target_pass_prompts_each_uncovered_function_alone_with_a_shared_prefix(example_project,
                                                                                     scripted_model):
    weak = ("```python\nfrom shopkit.pricing import apply_discount\n\n\n"
            "def test_no_discount():\n    assert apply_discount(1000, 0) == 1000\n```")
    tests_for = {
        "add_tax": "def test_tax():\n    assert add_tax(1000, 0.2) == 1\n"  # wrong: the oracle fixes it
                   "\n\ndef test_tax_negative():\n    with pytest.raises(ValueError):\n        add_tax(1, -1)\n",
        "bulk_price": "def test_bulk():\n    assert bulk_price(100, 50) == 4000\n    assert bulk_price(100, 10) == 900\n"
                      "    assert bulk_price(100, 1) == 100\n    with pytest.raises(ValueError):\n"
                      "        bulk_price(100, -1)\n",
        "format_price": "def test_format():\n    assert format_price(-5, 'USD') == '-0.05 USD'\n",
        "apply_discount": "def test_discount():\n    assert apply_discount(1000, 50) == 500\n"
                          "    with pytest.raises(ValueError):\n        apply_discount(1, 101)\n"
                          "    apply_discount(-1, 10)\n",  # raises: becomes pytest.raises
    }
    focus = "Write the test file for `"

    @pricing_only
    def respond(text):
        if focus not in text:
            return weak
        # No import of the names used, nor of pytest: the engine adds them.
        return f"```python\n{tests_for[text.split(focus, 1)[1].split('`', 1)[0]]}```"

    server = scripted_model(respond)
    report, _ = run_engine(example_project, server, max_attempts=1, target_coverage=100)
    target_prompts = [r["messages"][-1]["content"] for r in server.requests
                      if module_of(r["messages"]) == "shopkit.pricing" and focus in r["messages"][-1]["content"]]
    asked = [p.split(focus, 1)[1].split("`", 1)[0] for p in target_prompts]
    assert sorted(asked) == sorted(tests_for)
    header = "Module `shopkit.pricing`:\n```python\nfrom decimal import ROUND_HALF_UP, Decimal\n\n\ndef "
    assert all(p.startswith(header) for p in target_prompts)
    assert all("def bulk_price(" not in p for p in target_prompts if "for `add_tax`" in p)  # the target alone
    pricing = next(m for m in report.modules if m.module == "shopkit.pricing")
    assert pricing.line_after == 100.0 and pricing.tests_kept == 6
    assert pricing.stopped == StopReason.COVERAGE
    kept = (example_project / "tests" / "utgen" / "test_shopkit_pricing.py").read_text()
    assert "from shopkit.pricing import add_tax" in kept and "import pytest" in kept
    assert ("    with pytest.raises(ValueError, match=r'^price cannot be negative$'):  # utgen: observed\n"
            "        apply_discount(-1, 10)") in kept


def test_a_target_visited_again_after_its_tests_failed_is_told_why(example_project, scripted_model):
    broken = "```python\nimport shopkit_helpers_that_do_not_exist\n\n\ndef test_format():\n" \
             "    assert format_price(1250) == '12.50 EUR'\n```"
    fixed = "```python\ndef test_format():\n    assert format_price(1250) == '12.50 EUR'\n```"
    focus = "Write the test file for `format_price`"

    @pricing_only
    def respond(text):
        if focus not in text:
            return "No tests from me."
        return fixed if "shopkit_helpers_that_do_not_exist" in text else broken

    server = scripted_model(respond)
    report, _ = run_engine(example_project, server, max_attempts=1)
    visits = [r["messages"][-1]["content"] for r in server.requests
              if module_of(r["messages"]) == "shopkit.pricing" and focus in r["messages"][-1]["content"]]
    assert len(visits) == 2  # the second visit kept a test: no third one for the same lines
    assert "had this problem" not in visits[0]
    problem = visits[1].split("A previous test file had this problem; write a new file that avoids it:\n", 1)[1]
    assert problem.startswith("It failed to import or collect:")
    assert "No module named 'shopkit_helpers_that_do_not_exist'" in problem
    pricing = next(m for m in report.modules if m.module == "shopkit.pricing")
    kept = (example_project / "tests" / "utgen" / "test_shopkit_pricing.py").read_text()
    assert pricing.tests_kept == 1 and "def test_format():" in kept


def test_a_target_prompt_is_never_sent_twice_with_the_same_temperature(example_project, scripted_model):
    # The seeded model writes the same reply to the same prompt: a third visit that would ask exactly what the
    # second asked (the same lines still uncovered, the same problem) is not made.
    weak = "```python\ndef test_bulk():\n    assert bulk_price(100, 5) == 500\n```"
    focus = "Write the test file for `"

    @pricing_only
    def respond(text):
        return weak if f"{focus}bulk_price`" in text else "No tests from me."

    server = scripted_model(respond)
    run_engine(example_project, server, max_attempts=1, target_coverage=100)
    sent = [(r["messages"][-1]["content"], r["temperature"]) for r in server.requests
            if module_of(r["messages"]) == "shopkit.pricing" and focus in r["messages"][-1]["content"]]
    asked = Counter(text.split(focus, 1)[1].split("`", 1)[0] for text, _ in sent)
    assert asked == {"add_tax": 2, "apply_discount": 2, "bulk_price": 2, "format_price": 2}
    assert len(set(sent)) == len(sent)
    bulk = [(text, temperature) for text, temperature in sent if f"{focus}bulk_price`" in text]
    assert [temperature for _, temperature in bulk] == [0.0, 0.7] and "are never run by the tests" in bulk[1][0]


def test_the_loop_stops_at_its_call_budget(example_project, scripted_model):
    weak = ("```python\nfrom shopkit.pricing import apply_discount\n\n\n"
            "def test_no_discount():\n    assert apply_discount(1000, 0) == 1000\n```")
    server = scripted_model(lambda m: weak if module_of(m) == "shopkit.pricing" else GOOD_REPLIES[module_of(m)])
    report, _ = run_engine(example_project, server, max_attempts=1, max_calls=3)
    pricing = next(m for m in report.modules if m.module == "shopkit.pricing")
    assert pricing.model_calls == 3 and pricing.stopped == StopReason.MAX_CALLS
    assert len([r for r in server.requests if module_of(r["messages"]) == "shopkit.pricing"]) == 3


def test_when_the_module_prompts_keep_nothing_the_target_pass_still_asks_per_function(example_project,
                                                                                      scripted_model):
    @pricing_only
    def respond(text):
        if "Write the test file for `format_price`" in text:
            return "```python\ndef test_format():\n    assert format_price(1250) == '12.50 EUR'\n```"
        return "No tests from me."

    server = scripted_model(respond)
    report, _ = run_engine(example_project, server, max_attempts=1)
    pricing = next(m for m in report.modules if m.module == "shopkit.pricing")
    assert pricing.tests_kept == 1 and pricing.line_after > 0
    asked = [r["messages"][-1]["content"] for r in server.requests if module_of(r["messages"]) == "shopkit.pricing"]
    assert any("Write the test file for `format_price`" in text for text in asked)
    assert [d.what for d in pricing.dropped][:1] == ["reply 1"]


def test_a_module_prompt_too_slow_for_the_budget_is_not_sent_and_the_targets_are_prompted_instead(
        example_project, scripted_model):
    server = scripted_model()
    # A whole module is ~20 s of prompt and decode at the speed assumed before any call: over 30 % of 60 s.
    # The scripted server answers at once, so once calls were measured a module prompt is cheap enough.
    config = load_config(example_project, {"endpoint": server.url, "reruns": 2, "mutation": False,
                                           "amplify": False, "explore": False, "budget_s": 60})
    engine = Engine(config)
    report = engine.run()
    skipped = {m.module: m for m in report.modules if any(d.what.startswith("module prompt") for d in m.dropped)}
    first = next(iter(skipped.values()))
    assert first.calls and {c.kind for c in first.calls} == {PromptKind.TARGET} and first.tests_kept >= 1
    reason = next(d.reason for d in first.dropped if d.what.startswith("module prompt"))
    assert "over 30% of budget_s" in reason
    asked = [r["messages"][-1]["content"] for r in server.requests if module_of(r["messages"]) == first.module]
    assert asked and all("Write the test file for `" in text for text in asked)
    assert engine.speed.prompt > ModelSpeed().prompt and len(skipped) < len([m for m in report.modules if m.calls])


def test_the_speed_estimate_follows_the_calls_it_measured():
    speed = ModelSpeed(prompt=50.0, decode=20.0)
    assert speed.seconds(500, 100) == 15.0
    speed.update(Completion("", prompt_tokens=600, completion_tokens=40, seconds=12.0, prompt_tokens_reused=100,
                            prompt_seconds=10.0))
    assert (speed.prompt, speed.decode) == (50.0, 20.0)
    speed.update(Completion("", prompt_tokens=1000, completion_tokens=50, seconds=30.0, prompt_seconds=20.0))
    assert (speed.prompt, speed.decode) == (50.0, 5.0)
    # A server's reply tells no split: a call twice as slow as estimated halves both rates.
    speed.update(Completion("", prompt_tokens=500, completion_tokens=50, seconds=40.0))
    assert (speed.prompt, speed.decode) == (25.0, 2.5)


def test_model_calls_end_before_the_budget_and_replies_are_cut_to_what_fits(example_project, scripted_model):
    import time

    def respond(messages):
        time.sleep(3.0)  # a slow model: the engine measures it and plans the next calls with what it measured
        return "```python\nfrom shopkit.pricing import apply_discount\n\n\n" \
               "def test_no_discount():\n    assert apply_discount(1000, 0) == 1000\n```"

    server = scripted_model(respond)
    budget = 30.0
    report, _ = run_engine(example_project, server, paths=["src/shopkit/pricing.py"], budget_s=budget,
                           max_attempts=1)
    (pricing,) = report.modules
    assert pricing.stopped == StopReason.BUDGET_SECONDS and pricing.model_calls >= 2
    # The final checks' reserve (10 s before any module measured them) is held back from the calls: the calls
    # end by 20 s (before, they went on until 30 s, and the final checks after that). The module's seconds count
    # from the run's start (its setup is the first module's share): only the run with the suite comes after.
    assert pricing.seconds <= budget and report.seconds <= budget * 1.1
    sent = [r["max_tokens"] for r in server.requests]
    assert max(sent) <= 768 and min(sent) < 768  # near the deadline, a shorter reply is asked for


def test_the_final_checks_reserve_grows_with_the_kept_tests_at_the_speed_last_measured():
    speed = FinalCheckSpeed(start=3.0, per_test=0.25)
    assert speed.reserve(0, 90) == 3.0 and speed.reserve(40, 90) == 13.0
    assert speed.reserve(200, 90) == pytest.approx(27.0)  # never more than 30 % of the budget
    speed.update(85, 18.3)  # humanize.number's final checks: 85 tests in 18.3 s
    assert speed.per_test == pytest.approx(0.18) and speed.reserve(85, 300) == pytest.approx(18.3)
    assert FinalCheckSpeed().reserve(0, 300) == 3.0  # before any measurement
    speed.update(4, 2.0)  # four tests: mostly the start, no cost per test to learn
    assert speed.per_test == pytest.approx(0.18)


def test_a_target_whose_prompt_would_not_end_by_the_deadline_yields_to_a_shorter_one(tmp_path, scripted_model):
    branches = "\n".join(f"    if x == {n}:\n        return {n * n}" for n in range(60))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "shapes.py").write_text(f"def big(x):\n{branches}\n    return -1\n\n\n"
                                                "def tiny(x):\n    return x + 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shapes'\n")
    focus = "Write the test file for `"

    def respond(messages):
        return "```python\nfrom shapes import tiny\n\n\ndef test_tiny():\n    assert tiny(1) == 2\n```"

    server = scripted_model(respond)
    config = load_config(tmp_path, {"endpoint": server.url, "reruns": 1, "mutation": False, "amplify": False,
                                    "explore": False, "budget_s": 40, "paths": ["src/shapes.py"]})
    engine = Engine(config, select_all=True)
    # About 900 prompt tokens for big at 20 tokens/s: 45 s, past any deadline of a 40 s budget; tiny's ~150 fit.
    engine.speed = ModelSpeed(prompt=20.0, decode=50.0)
    (module,) = engine.run().modules
    asked = [r["messages"][-1]["content"].split(focus, 1)[1].split("`", 1)[0] for r in server.requests
             if focus in r["messages"][-1]["content"]]
    assert asked[0] == "tiny"  # big has more uncovered lines, but its prompt does not fit: tiny is asked
    # The server answers at once: measured, the model is fast enough for big's prompt in a later pass.
    assert "big" in asked and module.tests_kept >= 1


def test_the_tests_a_target_call_keeps_are_amplified_before_the_next_prompt_is_chosen(tmp_path, scripted_model):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "signs.py").write_text(
        "def sign(x):\n    if x > 0:\n        return 1\n    if x < 0:\n        return -1\n    return 0\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'signs'\n")
    server = scripted_model(lambda m: "```python\nfrom signs import sign\n\n\ndef test_positive():\n"
                                      "    assert sign(5) == 1\n```")
    config = load_config(tmp_path, {"endpoint": server.url, "reruns": 1, "mutation": False, "explore": False,
                                    "budget_s": 60, "paths": ["src/signs.py"]})
    engine = Engine(config, select_all=True)
    engine.speed = ModelSpeed(prompt=10.0, decode=50.0)  # the module prompt is not sent: the target pass asks
    (module,) = engine.run().modules
    # sign(5) runs one branch; its variants (sign(0), sign(-1), ...) run the rest before a second prompt
    # would ask for sign's lines again.
    assert len(server.requests) == 1 and module.stopped == StopReason.COVERAGE
    assert module.tests_amplified >= 2 and module.line_after == 100.0


def test_after_two_target_calls_in_a_row_that_reach_nothing_new_no_target_is_asked_again(tmp_path, scripted_model):
    (tmp_path / "src").mkdir()
    functions = "\n\n".join(f"def f{n}(x):\n    if x == {n}:\n        return {n}\n    return -x" for n in range(6))
    (tmp_path / "src" / "many.py").write_text(functions + "\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'many'\n")
    server = scripted_model(lambda m: "```python\nfrom many import f0\n\n\ndef test_f0():\n"
                                      "    assert f0(1) == -1\n```")  # the same test whatever was asked
    config = load_config(tmp_path, {"endpoint": server.url, "reruns": 1, "mutation": False, "amplify": False,
                                    "explore": False, "budget_s": 120, "max_calls": 20,
                                    "paths": ["src/many.py"]})
    engine = Engine(config, select_all=True)
    engine.speed = ModelSpeed(prompt=10.0, decode=50.0)
    (module,) = engine.run().modules
    points = [call.points for call in module.calls]
    # The first call gains; after two that add nothing (its test passes again: no problem to tell), each
    # function not asked yet is asked once, and the pass ends. When nothing else gains, the seconds left go to
    # the model once more: two more such calls end it.
    # Before, each of the 6 functions got 3 visits.
    assert points[0] > 0 and points[1:] == [0.0] * 7 and module.stopped == StopReason.NO_GAIN
