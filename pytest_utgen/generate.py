"""Generate: ask a model backend for a test file and pull the Python code out of its reply."""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from .errors import BackendError, ModelError

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_TEST_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(test\w*)", re.MULTILINE)


# Told of decoding progress: tokens generated so far, seconds since the first of them.
OnToken = Callable[[int, float], None]


@dataclass
class Completion:
    """One model reply, with its token counts and wall time."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    prompt_tokens_reused: int = 0  # of prompt_tokens, those taken from the cache instead of processed again
    prompt_seconds: float | None = None  # until the first token was sampled; None when the backend cannot tell

    @property
    def decode_seconds(self) -> float | None:
        return None if self.prompt_seconds is None else self.seconds - self.prompt_seconds


class Backend(Protocol):
    """Anything that turns chat messages into a completion."""

    model_id: str
    concurrency: int

    def complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float = 0.0,
                 on_token: OnToken | None = None) -> Completion: ...

    def count_tokens(self, text: str) -> int: ...

    def preload(self) -> None:
        """Start what the first call needs (loading a model) without waiting for it."""


class CodeExtractionError(ValueError):
    """The reply holds no usable Python test code."""


@dataclass(frozen=True)
class ExtractedTests:
    """The test file in a reply, and the tests of the reply that could not be kept in it (name -> why)."""

    code: str
    cut: dict[str, str]  # test name -> its text, for tests in a tail that did not parse
    cut_reason: str = ""


def extract_tests(reply: str) -> ExtractedTests:
    """The test file in ``reply``: its largest Python code block, checked to parse and hold a test.

    A block whose tail does not parse (a syntax error, or a reply cut by the token limit) is cut back to
    its longest parsing prefix; the test functions in the cut tail are named in ``cut``. Raises
    :class:`CodeExtractionError` for replies with no code, code that does not parse at all, or no test.
    """
    blocks = [_complete_lines(match) for match in _FENCE.finditer(reply)
              if match.group(1).lower() in ("", "python", "py", "python3")]
    if not blocks:
        if "def test_" not in reply:
            raise CodeExtractionError("the reply has no Python code block")
        blocks = [reply]
    code = max(blocks, key=len).strip() + "\n"
    cut: dict[str, str] = {}
    reason = ""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        whole = code
        code, tree = _longest_parsing_prefix(code)
        if tree is None:
            raise CodeExtractionError(f"the code does not parse: line {exc.lineno}: {exc.msg}") from None
        reason = f"syntax error: line {exc.lineno}: {exc.msg}"
        tail = whole[len(code.rstrip()):]
        starts = [m.start() for m in _TEST_DEF.finditer(tail)] + [len(tail)]
        cut = {m.group(1): tail[start:end].strip()
               for m, start, end in zip(_TEST_DEF.finditer(tail), starts, starts[1:])}
    if not any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")
        for node in ast.walk(tree)
    ):
        raise CodeExtractionError("the code has no test function")
    return ExtractedTests(hide_imported_tests(code, tree), cut, reason)


def extract_code(reply: str) -> str:
    """The test file in ``reply`` (see :func:`extract_tests`), without the account of what was cut."""
    return extract_tests(reply).code


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]):
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id in self.names:
            node.id = self.names[node.id]
        return node


def hide_imported_tests(code: str, tree: ast.Module | None = None) -> str:
    """``code`` with each name it imports that pytest would collect as a test (``from m import test_x``)
    bound as ``_test_x`` instead, and its uses renamed to match.

    pytest collects every ``test*`` callable in a test module's namespace, imported ones included: code
    under test with a function named ``test_x`` would run as a test (and fail for want of its arguments)
    in every file that imports it. Code without such imports comes back unchanged.
    """
    tree = tree or ast.parse(code)
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(target.id for target in node.targets if isinstance(target, ast.Name))
    renames: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        for alias in node.names:
            bound = alias.asname or alias.name
            if bound.startswith("test") and bound not in defined:
                renames[bound] = alias.asname = f"_{bound}"
    if not renames:
        return code
    return ast.unparse(_Rename(renames).visit(tree)) + "\n"


def _complete_lines(match: re.Match) -> str:
    """A block's body; for a block the reply ended inside (cut by the token limit), without its unfinished
    last line, which may still parse (``assert f`` cut from ``assert f(3) == 2``) yet is not what the model meant."""
    body = match.group(2)
    if match.group(0).endswith("```") or body.endswith("\n"):
        return body
    return body[: body.rfind("\n") + 1]


def _longest_parsing_prefix(code: str) -> tuple[str, ast.Module | None]:
    """Cut a truncated file (a reply that ran out of tokens) back to its longest prefix of whole lines that parses."""
    lines = code.splitlines()
    for cut in range(len(lines) - 1, 0, -1):
        prefix = "\n".join(lines[:cut]).rstrip() + "\n"
        try:
            return prefix, ast.parse(prefix)
        except SyntaxError:
            continue
    return code, None


class LoopBreaker:
    """llama.cpp logits processor that steers greedy decoding out of loops.

    Small models decoding greedily can repeat one block of tokens until max_tokens. When the last
    tokens are one short block (6 to 48 tokens) repeated three times, or one long block (up to 320
    tokens: a whole test function) repeated twice, the token that would start the next copy is
    banned, so the model takes its next-best continuation (often closing the list or starting a
    new test). After ``max_breaks`` such bans only end-of-generation is left.
    """

    def __init__(self, eos_token: int, min_block: int = 6, max_block: int = 48, repeats: int = 3,
                 max_long_block: int = 320, max_breaks: int = 8):
        self.eos_token = eos_token
        self.min_block, self.max_block, self.repeats = min_block, max_block, repeats
        self.max_long_block = max_long_block
        self.max_breaks = max_breaks
        self.breaks = 0

    def loop_block(self, tokens) -> int:
        """Length of the block ``tokens`` ends with enough copies of to be a loop, or 0."""
        n = len(tokens)
        for block in range(self.min_block, min(self.max_long_block, n // 2) + 1):
            repeats = self.repeats if block <= self.max_block else 2
            if block * repeats > n or tokens[n - 1] != tokens[n - 1 - block]:
                continue
            last = list(tokens[n - block:])
            if all(list(tokens[n - (k + 1) * block: n - k * block]) == last for k in range(1, repeats)):
                return block
        return 0

    def __call__(self, input_ids, scores):
        block = self.loop_block(input_ids)
        if block:
            self.breaks += 1
            if self.breaks > self.max_breaks:
                eos_score = scores[self.eos_token]
                scores[:] = float("-inf")
                scores[self.eos_token] = max(eos_score, 0.0)
            else:
                scores[input_ids[len(input_ids) - block]] = float("-inf")
        return scores


class TokenProgress:
    """llama.cpp logits processor that notes when the first token is sampled (the prompt is processed by then)
    and reports each generated token to ``on_token`` (it runs once per token)."""

    def __init__(self, on_token: OnToken | None):
        self.on_token = on_token
        self.generated = 0
        self.first: float | None = None

    def __call__(self, input_ids, scores):
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.generated += 1
        if self.on_token:
            self.on_token(self.generated, max(now - self.first, 1e-3))
        return scores


_llama_log_callback = None  # kept referenced: llama.cpp holds only the C pointer


def _route_llama_log(verbose: bool) -> None:
    """Send llama.cpp's C log (model loading, adapter buffers...) to stderr only when ``verbose``.

    llama-cpp-python's own callback prints some of it even with ``verbose=False``, between pytest's lines.
    """
    global _llama_log_callback
    import ctypes

    import llama_cpp

    def callback(level: int, text: bytes, user_data) -> None:
        if verbose:
            print(text.decode("utf-8", "replace"), end="", flush=True, file=sys.stderr)

    _llama_log_callback = llama_cpp.llama_log_callback(callback)
    llama_cpp.llama_log_set(_llama_log_callback, ctypes.c_void_p(0))


class LlamaCppBackend:
    """A GGUF model (and optional GGUF LoRA adapter) run in-process by llama-cpp-python."""

    concurrency = 1

    def __init__(
        self,
        model_path: Path,
        model_id: str,
        lora_path: Path | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = 1234,
        verbose: bool = False,
    ):
        self.model_path = model_path
        self.verbose = verbose
        self.model_id = model_id
        self.lora_path = lora_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.seed = seed
        self.calls = 0
        self._llama = None
        self._lock = threading.Lock()  # one call at a time
        self._load_lock = threading.Lock()

    def preload(self) -> None:
        """Load the model in a background thread: llama.cpp loads with the GIL released, so the sandbox runs
        before the first call (exploration) overlap it. A failed load is raised again by the first call."""
        if self._llama is None:
            threading.Thread(target=self._load_or_leave, name="utgen-model-load", daemon=True).start()

    def _load_or_leave(self) -> None:
        try:
            self._load()
        except ModelError:
            pass  # the caller's own load raises it, in the caller's thread

    def _load(self):
        with self._load_lock:  # a load under way (preload's) is waited for, not made twice
            if self._llama is None:
                try:
                    from llama_cpp import Llama
                except ImportError as exc:  # pragma: no cover - dependency of the package
                    raise ModelError(f"llama-cpp-python is not installed: {exc}") from None
                _route_llama_log(self.verbose)
                try:
                    self._llama = Llama(
                        model_path=str(self.model_path),
                        lora_path=str(self.lora_path) if self.lora_path else None,
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads or os.cpu_count(),
                        seed=self.seed,
                        verbose=self.verbose,
                    )
                except (ValueError, RuntimeError, OSError) as exc:
                    raise ModelError(f"llama.cpp could not load {self.model_path}: {exc}") from None
            return self._llama

    def count_tokens(self, text: str) -> int:
        """Exact token count of ``text`` under the model's tokenizer."""
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float = 0.0,
                 on_token: OnToken | None = None) -> Completion:
        """Seeded chat completion, greedy unless ``temperature`` > 0: the same messages give the same reply."""
        from llama_cpp import LogitsProcessorList

        with self._lock:
            llama = self._load()
            started = time.perf_counter()
            progress = TokenProgress(on_token)
            processors = [LoopBreaker(llama.token_eos()), progress]
            cached = llama._input_ids.copy()  # what the KV cache holds from the previous call
            result = llama.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature,
                top_k=40 if temperature > 0 else 1, top_p=0.95 if temperature > 0 else 1.0, seed=self.seed,
                logits_processor=LogitsProcessorList(processors),
            )
            self.calls += 1
            usage = result.get("usage", {})
            prompt_tokens = usage.get("prompt_tokens", 0)
            # llama.cpp evaluates only what follows the longest prefix shared with the cache (at least one token).
            shared = llama.longest_token_prefix(cached.tolist(), llama.input_ids[:prompt_tokens].tolist())
        ended = time.perf_counter()
        return Completion(
            text=result["choices"][0]["message"]["content"] or "",
            prompt_tokens=prompt_tokens,
            completion_tokens=usage.get("completion_tokens", 0),
            seconds=ended - started,
            prompt_tokens_reused=max(0, min(shared, prompt_tokens - 1)),
            prompt_seconds=(progress.first or ended) - started,
        )


class OpenAIBackend:
    """Any OpenAI-compatible chat server (llama.cpp server, vLLM, Ollama), ``workers`` requests at once."""

    def __init__(self, endpoint: str, model: str = "default", workers: int = 1, seed: int = 1234, timeout: float = 600):
        self.endpoint = endpoint.rstrip("/")
        self.model = model
        self.model_id = f"{model}@{self.endpoint}"
        self.concurrency = workers
        self.seed = seed
        self.timeout = timeout
        self.calls = 0
        self._lock = threading.Lock()

    def _url(self) -> str:
        if self.endpoint.endswith("/chat/completions"):
            return self.endpoint
        base = self.endpoint if self.endpoint.endswith("/v1") else self.endpoint + "/v1"
        return base + "/chat/completions"

    def count_tokens(self, text: str) -> int:
        """Estimate: the server's tokenizer is not reachable through the chat API."""
        return len(text) // 3 + 1

    def preload(self) -> None:
        """Nothing to load: the server holds the model."""

    def complete(self, messages: list[dict[str, str]], max_tokens: int, temperature: float = 0.0,
                 on_token: OnToken | None = None) -> Completion:
        """One seeded chat completion request, greedy unless ``temperature`` > 0 (no token progress: the
        reply comes whole)."""
        body = json.dumps({"model": self.model, "messages": messages, "max_tokens": max_tokens,
                           "temperature": temperature, "seed": self.seed}).encode()
        request = urllib.request.Request(self._url(), data=body, headers={"Content-Type": "application/json"})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise BackendError(f"{self._url()} answered HTTP {exc.code}: {exc.read()[:300]!r}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise BackendError(f"cannot reach the model server at {self._url()}: {exc}") from None
        except ValueError:
            raise BackendError(f"{self._url()} did not answer with JSON") from None
        with self._lock:
            self.calls += 1
        try:
            text = payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"{self._url()} answered without choices[0].message.content") from None
        usage = payload.get("usage") or {}
        return Completion(
            text=text,
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            seconds=time.perf_counter() - started,
            prompt_tokens_reused=(usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
        )
