"""Shared fixtures: a copy of the example project, and a scripted OpenAI-compatible model server.

The scripted server is a real HTTP server speaking the chat-completions protocol; the engine talks
to it through its real OpenAI backend. It stands in for the *model* (so replies are exact and
tests are fast), never for the engine, sandbox or validation under test. The real model is
exercised by the tests marked ``model``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "shopkit"


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A fresh copy of examples/shopkit (two modules tested, two not)."""
    dest = tmp_path / "shopkit"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", "utgen", ".pytest_cache"))
    return dest


def snapshot(root: Path, exclude: Path | None = None) -> dict[str, str]:
    """sha256 of every file under ``root`` (except under ``exclude``): to prove nothing changed."""
    hashes = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and (exclude is None or exclude not in path.parents):
            hashes[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


class ScriptedModel:
    """An OpenAI-compatible chat server whose replies come from ``respond(messages) -> str``."""

    def __init__(self, respond: Callable[[list[dict]], str]):
        self.respond = respond
        self.requests: list[dict] = []
        self.delay = threading.Event()
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model.requests.append(body)
                text = model.respond(body["messages"])
                payload = json.dumps({
                    "choices": [{"message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": len(text) // 4},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def module_of(messages: list[dict]) -> str:
    """The import path the prompt asks tests for."""
    text = messages[-1]["content"]
    return text.split("Module `", 1)[1].split("`", 1)[0]


GOOD_REPLIES = {
    "shopkit.pricing": '''```python
import pytest
from shopkit.pricing import apply_discount, add_tax, bulk_price, format_price


def test_discount_half():
    assert apply_discount(1000, 50) == 500


def test_discount_rejects_negative_price():
    with pytest.raises(ValueError):
        apply_discount(-1, 10)


def test_discount_rejects_big_percent():
    with pytest.raises(ValueError):
        apply_discount(100, 101)


def test_tax():
    assert add_tax(1000, 0.2) == 1200


def test_tax_negative_rate():
    with pytest.raises(ValueError):
        add_tax(100, -0.1)


def test_bulk_tiers():
    assert bulk_price(100, 5) == 500
    assert bulk_price(100, 10) == 900
    assert bulk_price(100, 50) == 4000


def test_bulk_negative():
    with pytest.raises(ValueError):
        bulk_price(100, -1)


def test_format_price():
    assert format_price(1250) == "12.50 EUR"
    assert format_price(-5, "USD") == "-0.05 USD"


def test_wrong_expectation():
    assert format_price(100) == "1 EUR"
```''',
    "shopkit.inventory": '''Here are the tests.
```python
import pytest
from shopkit.inventory import Inventory, OutOfStock


def test_reserve_and_available():
    inv = Inventory({"mug": 10})
    inv.reserve("mug", 4)
    assert inv.available("mug") == 6


def test_reserve_too_many():
    with pytest.raises(OutOfStock):
        Inventory({"mug": 1}).reserve("mug", 2)


def test_ship():
    inv = Inventory({"mug": 10})
    inv.reserve("mug", 3)
    inv.ship("mug", 3)
    assert inv.available("mug") == 7


def test_low_stock():
    inv = Inventory({"mug": 2, "cup": 20})
    assert inv.low_stock() == ["mug"]
```''',
}


@pytest.fixture
def scripted_model():
    """Start a scripted model server; call it with a respond function; closed after the test."""
    started: list[ScriptedModel] = []

    def start(respond: Callable[[list[dict]], str] | None = None) -> ScriptedModel:
        server = ScriptedModel(respond or (lambda messages: GOOD_REPLIES[module_of(messages)]))
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def model_path(key: str | None = None) -> Path | None:
    """A known model (default: the default one) in the cache, if fetched."""
    from pytest_utgen.model_store import DEFAULT_MODEL, MODELS, default_model_dir

    path = default_model_dir() / MODELS[key or DEFAULT_MODEL].filename
    return path if path.exists() else None


def model_or_skip(key: str | None = None) -> Path:
    """A fetched GGUF; skips the test when absent unless UTGEN_REQUIRE_MODEL=1 (CI), which makes it an error."""
    path = model_path(key)
    if path is None:
        command = f"utgen fetch-model {key or ''}".strip()
        if os.environ.get("UTGEN_REQUIRE_MODEL") == "1":
            pytest.fail(f"UTGEN_REQUIRE_MODEL=1 but the model is not fetched: run `{command}`")
        pytest.skip(f"model not fetched (run `{command}`)")
    return path


def default_model_or_skip() -> Path:
    """The default GGUF (see model_or_skip)."""
    return model_or_skip()


@pytest.fixture
def require_default_model() -> Path:
    """The default GGUF (see default_model_or_skip)."""
    return default_model_or_skip()
