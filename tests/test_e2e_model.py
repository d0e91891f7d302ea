"""End to end with the real default model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M) through llama-cpp-python.

No part of the model is replaced: these tests load the GGUF from the cache that `utgen fetch-model`
fills. They are skipped when it is absent, and fail instead under UTGEN_REQUIRE_MODEL=1 (CI).
"""

from __future__ import annotations

import json
import re

import pytest

from pytest_utgen.model_store import MODELS
from conftest import snapshot
from test_plugin_cli import pytest_cmd, run

pytestmark = pytest.mark.model


def test_pytest_utgen_with_the_real_model_then_a_free_rerun(example_project, require_default_model):
    user_files = snapshot(example_project, exclude=example_project / "tests" / "utgen")
    first = run(pytest_cmd("--utgen", "src", "--utgen-reruns", "2", "--utgen-report", "first.json", "-v"),
                example_project, timeout=1500)
    out = first.stdout
    assert first.returncode == 0, out + first.stderr

    report = json.loads((example_project / "first.json").read_text())
    assert report["model_sha256"] == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    adapter = MODELS["1.5b"]
    assert report["model_id"].endswith(f"+lora@{adapter.adapter_sha256[:12]}")
    assert report["lora"].endswith(adapter.adapter)
    assert sorted(m["module"] for m in report["modules"]) == ["shopkit.inventory", "shopkit.pricing"]
    assert report["model_calls"] >= 2
    assert sum(m["tests_kept"] for m in report["modules"]) >= 3
    generated = sorted(p.name for p in (example_project / "tests" / "utgen").glob("test_*.py"))
    assert generated and set(generated) <= {"test_shopkit_inventory.py", "test_shopkit_pricing.py"}
    ran = re.findall(r"^tests/utgen/(test_\w+\.py)::\S+ (\w+)", out, flags=re.M)
    assert ran and {outcome for _, outcome in ran} == {"PASSED"}
    assert len(ran) == sum(m["tests_kept"] for m in report["modules"])
    assert "utgen: coverage before -> after" in out
    for module in report["modules"]:
        if module["tests_kept"]:
            assert module["line_after"] > module["line_before"] == 0.0
    after_first = snapshot(example_project, exclude=example_project / "tests" / "utgen")
    assert {k: v for k, v in after_first.items() if k != "first.json"} == user_files

    second = run(pytest_cmd("--utgen", "src", "--utgen-report", "second.json"), example_project, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    again = json.loads((example_project / "second.json").read_text())
    assert again["model_calls"] == 0
    assert {m["status"] for m in again["modules"]} == {"cached"}
