"""Training data: CodeRM-UnitTest rows or ``{question, code, tests}`` records -> tokenized chat examples.

CodeRM-UnitTest (hub id ``KAKA22/CodeRM-UnitTest``, Apache-2.0, arXiv:2501.01054) publishes per task:
``task_id``, ``question``, ``code_ground_truth``, ``code_generate`` (JSON list of solutions) and
``unit_tests`` (JSON list of ``{ut_id, code, ...quality fields}``). Both the JSON-string and the
list form are accepted, and missing quality fields are tolerated.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from pytest_utgen.prompt import build_messages

from .heldout import SPLITS, split_of

QUALITY_FIELDS = ("score", "quality", "pass_rate", "accuracy", "acc", "correctness", "coverage", "mutation_score")


@dataclass(frozen=True)
class Example:
    """One training example: code under test (+ problem statement) and the test file to write."""

    task_id: str
    code: str
    tests: str
    question: str | None = None
    module: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None  # the prompt as the corpus built it (role, content)

    def prompt(self) -> list[dict[str, str]]:
        """The chat prompt: the corpus's own (a target prompt, say), else the plugin's module prompt."""
        if self.messages:
            return [{"role": role, "content": content} for role, content in self.messages]
        return build_messages(self.code, self.module, question=self.question)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return []
        try:
            value = json.loads(value)
        except ValueError:
            return [{"code": value}]
    if isinstance(value, dict):
        return [value]
    return list(value)


def _quality(test: dict) -> float:
    for name in QUALITY_FIELDS:
        value = test.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return 0.0


def ensure_solution_import(tests: str, module: str = "solution") -> str:
    """Tests for code in ``solution.py``: add ``from solution import *`` unless they import it already."""
    if re.search(rf"^\s*(from {module} import|import {module}\b)", tests, flags=re.M):
        return tests.strip() + "\n"
    return f"from {module} import *\n\n\n{tests.strip()}\n"


def from_coderm_row(row: dict, tests_per_task: int = 1) -> Example | None:
    """An example from a CodeRM-UnitTest row: its best unit test(s) by quality fields, else the first."""
    code = row.get("code_ground_truth") or ""
    tests = [t for t in _as_list(row.get("unit_tests")) if isinstance(t, dict) and (t.get("code") or "").strip()]
    if not code.strip() or not tests:
        return None
    ranked = sorted(enumerate(tests), key=lambda item: (-_quality(item[1]), item[0]))
    chosen = "\n\n\n".join(t["code"].strip() for _, t in ranked[:tests_per_task])
    return Example(str(row.get("task_id")), code.strip() + "\n", ensure_solution_import(chosen), row.get("question"))


def from_record(row: dict) -> Example | None:
    """An example from a ``{question, code, tests}`` record (tests: a string or a list of strings).

    An optional ``module`` is the import path the tests use (real-project code); without it the
    code is ``solution.py``. Optional ``messages`` (written by the corpus) are the prompt to train on.
    """
    code = row.get("code") or ""
    tests = row.get("tests")
    if isinstance(tests, list):
        tests = "\n\n\n".join(str(t).strip() for t in tests)
    if not code.strip() or not (tests or "").strip():
        return None
    task_id = row.get("task_id") or row.get("id") or hashlib.sha256(code.encode()).hexdigest()[:16]
    module = row.get("module")
    tests = tests.strip() + "\n" if module else ensure_solution_import(tests)
    messages = tuple((m["role"], m["content"]) for m in row["messages"]) if row.get("messages") else None
    return Example(str(task_id), code.strip() + "\n", tests, row.get("question"), module, messages)


def read_rows(source: str) -> Iterator[dict]:
    """Rows of a source: ``hub:<id>[:split]`` (streamed), a .parquet file, or a .jsonl/.json file."""
    try:
        import datasets
    except ImportError:
        datasets = None
    if source.startswith("hub:"):
        if datasets is None:
            raise ImportError("reading from the hub needs the datasets package")
        name, _, split = source[4:].partition(":")
        for split_name in [split] if split else ["train", "test"]:
            yield from datasets.load_dataset(name, split=split_name, streaming=True)
        return
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"training data {path} does not exist")
    kind = "parquet" if path.suffix == ".parquet" else "json"
    if datasets is None and kind == "json":
        with open(path, encoding="utf-8") as handle:
            yield from (json.loads(line) for line in handle if line.strip())
        return
    yield from datasets.load_dataset(kind, data_files=str(path), split="train", streaming=True)


def to_example(row: dict, tests_per_task: int = 1) -> Example | None:
    """Recognise the row's schema (CodeRM or record) and convert it."""
    if "code_ground_truth" in row or "unit_tests" in row:
        return from_coderm_row(row, tests_per_task)
    return from_record(row)


def _order_key(task_id: str) -> str:
    return hashlib.sha256(f"subset:{task_id}".encode()).hexdigest()


def load_examples(sources: Iterable[str], subset: int | None = 20_000,
                  tests_per_task: int = 1) -> dict[str, list[Example]]:
    """Examples from ``sources``, deduplicated by task id, a deterministic subset, split 80/10/10."""
    by_id: dict[str, Example] = {}
    for source in sources:
        for row in read_rows(source):
            example = to_example(row, tests_per_task)
            if example is not None and example.task_id not in by_id:
                by_id[example.task_id] = example
    chosen = sorted(by_id.values(), key=lambda e: _order_key(e.task_id))
    if subset is not None:
        chosen = chosen[:subset]
    splits: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for example in chosen:
        splits[split_of(example.task_id)].append(example)
    return splits


def target_text(example: Example) -> str:
    """What the model must write: the test file in one python code block."""
    return f"```python\n{example.tests.strip()}\n```"


def tokenize(example: Example, tokenizer, max_length: int) -> dict | None:
    """input_ids and labels (prompt tokens masked with -100); None when longer than ``max_length``."""
    prompt_ids = tokenizer.apply_chat_template(example.prompt(), add_generation_prompt=True, tokenize=True)
    if isinstance(prompt_ids, dict) or hasattr(prompt_ids, "input_ids"):
        prompt_ids = prompt_ids["input_ids"]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if end is None or end == tokenizer.unk_token_id:
        end = tokenizer.eos_token_id
    target_ids = tokenizer(target_text(example), add_special_tokens=False)["input_ids"] + [end]
    input_ids = list(prompt_ids) + target_ids
    if len(input_ids) > max_length:
        return None
    return {"input_ids": input_ids, "labels": [-100] * len(prompt_ids) + target_ids}


def tokenize_all(examples: list[Example], tokenizer, max_length: int) -> tuple[list[dict], int]:
    """Tokenized examples and the number dropped for being longer than ``max_length``."""
    kept = []
    for example in examples:
        item = tokenize(example, tokenizer, max_length)
        if item is not None:
            kept.append(item)
    return kept, len(examples) - len(kept)
