"""Prompt: the chat messages sent to the model. The trainer formats its data with the same function."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Callable

SYSTEM_PROMPT = (
    "You write pytest unit tests for Python code. Reply with one ```python code block holding a "
    "complete test file: imports, then many short test functions named test_*, each checking one "
    "behaviour with one to three plain asserts on exact values you are sure of; use pytest.raises "
    "for errors. Cover every function and branch. No comments, no prints, no network."
)


_SUMMARY_LINES = 4  # at most, of a docstring shown in a prompt
# Where a docstring's summary ends at the latest: a field list, an example, a section heading.
_DOC_SECTION = re.compile(r"^(:|>>>|@|\.\. |(Args|Arguments|Parameters|Params|Returns?|Raises|Yields?|Examples?|Notes?"
                          r"|Usage|See [Aa]lso|Attributes|Warnings?)\s*:?$)")


@dataclass(frozen=True)
class SourceChunk:
    """Part of a module to prompt with: the whole module, or a group of its definitions."""

    code: str
    names: tuple[str, ...]
    lines: frozenset[int]

    def missing_in_chunk(self, missing: list[int]) -> list[int]:
        """The uncovered module line numbers that belong to this chunk."""
        return [n for n in missing if n in self.lines]


def build_messages(
    code: str,
    module: str | None = None,
    question: str | None = None,
    feedback: str | None = None,
    focus: str | None = None,
) -> list[dict[str, str]]:
    """Chat messages asking for a test file for ``code``.

    ``module`` is the import path the tests must use (None: the code is in ``solution.py``);
    ``question`` an optional problem statement; ``feedback`` what went wrong with a previous
    attempt (error text or uncovered lines), for a repair prompt; ``focus`` the one function or method the
    tests are for (a target of the target loop).
    """
    import_path = module or "solution"
    parts = []
    if question:
        parts.append(f"Problem:\n{question.strip()}\n")
    parts.append(f"Module `{import_path}`:\n```python\n{code.rstrip()}\n```\n")
    subject = f" for `{focus}`" if focus else ""
    parts.append(f"Write the test file{subject}. Import what you test with `from {import_path} import ...`.")
    if feedback:
        parts.append(f"\nA previous test file had this problem; write a new file that avoids it:\n{feedback.strip()}")
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n".join(parts)},
    ]


def build_target_messages(header: str, module: str, target, uncovered: str | None = None,
                          problem: str | None = None) -> list[dict[str, str]]:
    """Chat messages asking for tests of one function or method (a :class:`~pytest_utgen.targets.Target`).

    The same shape as :func:`build_messages` (what the model was trained on), showing only ``header`` (the
    module's imports and constants) and the target's code (for a method, its class's header, fields and
    ``__init__`` first). Prompts of one module share their beginning up to the target (up to the method,
    for the methods of one class), which llama.cpp reuses instead of processing again; what went wrong
    with the last tests of the target (``problem``, when none of them was kept) and the ``uncovered`` lines
    (quoted, when some of the target already runs) come last.
    """
    code = (header.rstrip() + "\n\n\n" if header.strip() else "") + target.code.rstrip()
    parts = [problem.strip()] if problem else []
    if uncovered:
        parts.append(f"These lines of `{target.qualname}` are never run by the tests:\n{uncovered}")
    return build_messages(code, module, feedback="\n\n".join(parts) or None, focus=target.qualname)


def build_mutant_messages(header: str, module: str, target, mutant) -> list[dict[str, str]]:
    """Chat messages asking for a test that tells a surviving mutant (a :class:`~pytest_utgen.mutate.Mutant`)
    of ``target`` apart from the code as written: the target prompt, with the change as a diff last."""
    code = (header.rstrip() + "\n\n\n" if header.strip() else "") + target.code.rstrip()
    feedback = (f"The tests pass even when line {mutant.line} of `{target.qualname}` is changed like this:\n"
                f"```diff\n{mutant.diff()}\n```\nWrite a test that passes on the code as written and fails on "
                "the changed line: call it with inputs that reach that line and assert the exact result.")
    return build_messages(code, module, feedback=feedback, focus=target.qualname)


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for code (about 3 characters a token)."""
    return len(text) // 3 + 1


def node_span(node: ast.stmt) -> tuple[int, int]:
    """First and last line of a statement, decorators included."""
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return start, node.end_lineno or node.lineno


def prompt_lines(source: str, tree: ast.Module | None = None) -> list[str | None]:
    """The module's lines as a prompt shows them, by line number (index 0 is line 1): a docstring longer
    than its summary (its first paragraph) is cut to it and closed there, its other lines are None.

    A long docstring's examples and parameter lists cost prompt tokens, the seconds on a CPU, and teach
    little that the code does not show: its examples run as tests (:mod:`~pytest_utgen.seeds`) and the
    oracle checks expectations. The lines keep their numbers, so spans from the tree still index them.
    """
    tree = tree or ast.parse(source)
    lines: list[str | None] = list(source.splitlines())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            _cut_docstring(lines, node)
    if None in lines:
        try:
            ast.parse("\n".join(line for line in lines if line is not None))
        except SyntaxError:  # a docstring this cut cannot close cleanly: show the module as written
            return list(source.splitlines())
    return lines


def _cut_docstring(lines: list[str | None], node: ast.AST) -> None:
    body = getattr(node, "body", None)
    if not body or not isinstance(body[0], ast.Expr) or not isinstance(body[0].value, ast.Constant) \
            or not isinstance(body[0].value.value, str):
        return
    first, last = body[0].lineno, body[0].end_lineno or body[0].lineno
    opening = (lines[first - 1] or "").lstrip()
    quote = next((q for q in ('"""', "'''") if opening.lstrip("rRuU").startswith(q)), None)
    if quote is None or last - first < 2:
        return
    summary_end = first
    shown = int(bool(opening.lstrip("rRuU")[3:].strip()))  # summary lines so far
    for number in range(first + 1, last):
        text = (lines[number - 1] or "").strip()
        underline = set((lines[number] or "").strip()) if number < last - 1 else set()
        if shown and (not text or shown == _SUMMARY_LINES or _DOC_SECTION.match(text)
                      or underline and underline <= {"-", "="}):  # a heading, numpy style
            break
        shown += bool(text)
        summary_end = number
    if summary_end >= last - 1:
        return  # the summary is the whole docstring
    kept = (lines[summary_end - 1] or "").rstrip()
    # A closing quote right after a quote or backslash would not close the string.
    lines[summary_end - 1] = kept + (" " if kept.endswith((quote[0], "\\")) else "") + quote
    for number in range(summary_end + 1, last + 1):
        lines[number - 1] = None


def node_text(lines: list[str | None], node: ast.stmt) -> str:
    """A statement's lines (decorators included) from :func:`prompt_lines`, without the cut ones."""
    start, end = node_span(node)
    return "\n".join(line for line in lines[start - 1 : end] if line is not None)


def split_source(
    source: str, budget_tokens: int, count_tokens: Callable[[str], int] = estimate_tokens
) -> list[SourceChunk]:
    """The module whole when it fits ``budget_tokens``, else groups of top-level definitions.

    Every group keeps the module's imports and top-level assignments (the context a test
    needs); a single definition larger than the budget is cut at its end so it still fits.
    """
    tree = ast.parse(source)
    shown_lines = prompt_lines(source, tree)
    definitions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    all_names = tuple(d.name for d in definitions)
    shown = "\n".join(line for line in shown_lines if line is not None) + "\n"
    if count_tokens(shown) <= budget_tokens:
        return [SourceChunk(shown, all_names, frozenset(range(1, source.count("\n") + 2)))]
    context = "\n".join(
        node_text(shown_lines, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign))
    )
    room = max(budget_tokens - count_tokens(context), budget_tokens // 4)
    chunks: list[SourceChunk] = []
    group: list[str] = []
    names: list[str] = []
    lines: set[int] = set()
    used = 0
    for definition in definitions:
        text = node_text(shown_lines, definition)
        cost = count_tokens(text)
        if cost > room:
            text = _truncate(text, room, count_tokens)
            cost = count_tokens(text)
        if group and used + cost > room:
            chunks.append(_chunk(context, group, names, lines))
            group, names, lines, used = [], [], set(), 0
        group.append(text)
        names.append(definition.name)
        lines.update(range(definition.lineno, (definition.end_lineno or definition.lineno) + 1))
        used += cost
    if group:
        chunks.append(_chunk(context, group, names, lines))
    return chunks


def _chunk(context: str, group: list[str], names: list[str], lines: set[int]) -> SourceChunk:
    code = (context + "\n\n\n" + "\n\n\n".join(group)).strip() + "\n"
    return SourceChunk(code, tuple(names), frozenset(lines))


def _truncate(text: str, budget: int, count_tokens: Callable[[str], int]) -> str:
    lines = text.splitlines()
    kept: list[str] = []
    for line in lines:
        if count_tokens("\n".join(kept + [line, "    ..."])) > budget:
            break
        kept.append(line)
    return "\n".join(kept + ["    ..."])

