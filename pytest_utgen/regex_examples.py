"""Strings that match the regular expressions a module uses: inputs that get past a parser's first check.

A function that parses (a date, a duration, a version) usually matches its input against a pattern first and
raises or returns early when it does not match; signature-built calls and random strings seldom get past that
check, so the parsing branches stay unrun. The patterns the module passes to ``re`` as literals say what
passes: this module writes strings from them (a walk over the pattern as ``re`` parses it, a seeded choice at
each branch, class and repeat) and keeps those the compiled pattern matches in full. That check runs in a child
process with a time limit: ``re`` cannot be interrupted, and a pattern can backtrack for hours on a string it
does not match.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import random
import re
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

with warnings.catch_warnings():  # the public names (sre_parse) are deprecated aliases since 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        from re import _constants as _sre, _parser as _sre_parse
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_constants as _sre
        import sre_parse as _sre_parse

EXAMPLES_PER_PATTERN = 3
CHILD_SECONDS = 5.0
_TRIES = 24
_MAX_EXTRA_REPEATS = 2  # a repeat runs its minimum count plus at most this many times
_MAX_LENGTH = 80
_RE_FUNCTIONS = {"compile": 1, "match": 2, "fullmatch": 2, "search": 2, "findall": 2, "finditer": 2}  # flags' index
_CATEGORY_CHARS = {
    _sre.CATEGORY_DIGIT: "0123456789", _sre.CATEGORY_NOT_DIGIT: "aZ_ -",
    _sre.CATEGORY_WORD: "aZk_7", _sre.CATEGORY_NOT_WORD: " -.:/",
    _sre.CATEGORY_SPACE: " ", _sre.CATEGORY_NOT_SPACE: "a1Z.-",
}
_ANY_CHARS = "a1Z .-"


class _Unsupported(Exception):
    pass


def regex_examples(module_source: str, timeout: float = CHILD_SECONDS) -> list[str]:
    """Up to ``EXAMPLES_PER_PATTERN`` strings per literal pattern the module gives ``re.compile``, ``re.match``
    and the like (its longest match first: it takes the most optional parts), each matched in full by the
    pattern; the same for the same source. Patterns this cannot write for are skipped. Written in a child
    process stopped after ``timeout`` seconds: then there are none."""
    return list(_examples_in_child(module_source, timeout))


@functools.lru_cache(maxsize=8)  # the engine asks twice per module (exploration runs twice)
def _examples_in_child(module_source: str, timeout: float) -> tuple[str, ...]:
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    code = ("import json, sys\nfrom pytest_utgen.regex_examples import examples_in_process\n"
            "print(json.dumps(examples_in_process(sys.stdin.read())))")
    try:
        done = subprocess.run([sys.executable, "-c", code], input=module_source, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:  # the child is killed
        return ()
    return tuple(json.loads(done.stdout)) if done.returncode == 0 else ()


def examples_in_process(module_source: str) -> list[str]:
    """What :func:`regex_examples` returns, written in this process: for the child, which may run forever."""
    found: list[str] = []
    for pattern, flags in _patterns(module_source):
        for example in _examples(pattern, flags):
            if example not in found:
                found.append(example)
    return found


def _patterns(module_source: str) -> list[tuple[str, int]]:
    """The literal patterns (and their flags, when literal) of the module's calls of ``re`` functions."""
    patterns: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(module_source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                and node.func.attr in _RE_FUNCTIONS and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            continue
        index = _RE_FUNCTIONS[node.func.attr]
        flag_nodes = [node.args[index]] if len(node.args) > index else []
        flag_nodes += [k.value for k in node.keywords if k.arg == "flags"]
        flags = _flags(flag_nodes[0]) if flag_nodes else 0
        if flags is not None and (node.args[0].value, flags) not in patterns:
            patterns.append((node.args[0].value, flags))
    return patterns


def _flags(node: ast.expr) -> int | None:
    """The value of ``re.X | re.I``-like flags, None when they are not written that way."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _flags(node.left), _flags(node.right)
        return None if left is None or right is None else left | right
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "re":
        value = getattr(re, node.attr, None)
        return int(value) if isinstance(value, re.RegexFlag) else None
    return None


def _examples(pattern: str, flags: int) -> list[str]:
    try:
        compiled = re.compile(pattern, flags)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = _sre_parse.parse(pattern, flags)
    except (re.error, TypeError, ValueError, RecursionError, OverflowError):
        return []
    if _nested_repeat(parsed, inside=False):
        return []  # ``(a+)+``: matching a string it does not match can take exponential time (the child's limit)
    rng = random.Random(zlib.crc32(pattern.encode()))
    matching: list[str] = []
    for _ in range(_TRIES):
        try:
            text = _write(parsed, rng, {})
        except (_Unsupported, RecursionError):
            return []
        if len(text) <= _MAX_LENGTH and text not in matching and compiled.fullmatch(text):
            matching.append(text)
    matching.sort(key=lambda text: (-len(text), text))
    # The longest (most optional parts), the shortest, and one between.
    picked = [matching[0], matching[-1], matching[len(matching) // 2]] if matching else []
    return list(dict.fromkeys(picked))[:EXAMPLES_PER_PATTERN]


def _write(items, rng: random.Random, groups: dict[int, str]) -> str:
    """A string the parsed pattern ``items`` may match (lookarounds are not honoured: the caller checks)."""
    out: list[str] = []
    for op, arg in items:
        if op is _sre.LITERAL:
            out.append(chr(arg))
        elif op is _sre.NOT_LITERAL:
            out.append(rng.choice([c for c in _ANY_CHARS if ord(c) != arg]))
        elif op is _sre.ANY:
            out.append(rng.choice(_ANY_CHARS))
        elif op is _sre.IN:
            out.append(_one_of(arg, rng))
        elif op is _sre.BRANCH:
            out.append(_write(rng.choice(arg[1]), rng, groups))
        elif op is _sre.SUBPATTERN:
            text = _write(arg[-1], rng, groups)
            if arg[0] is not None:
                groups[arg[0]] = text
            out.append(text)
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
            low, high, inner = arg
            count = rng.randint(low, min(high, low + _MAX_EXTRA_REPEATS))
            out.extend(_write(inner, rng, groups) for _ in range(count))
        elif op is getattr(_sre, "ATOMIC_GROUP", None):
            out.append(_write(arg, rng, groups))
        elif op is _sre.GROUPREF:
            out.append(groups.get(arg, ""))
        elif op is _sre.GROUPREF_EXISTS:
            group, yes, no = arg
            branch = yes if group in groups else no
            out.append(_write(branch, rng, groups) if branch is not None else "")
        elif op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            continue  # anchors and lookarounds write nothing
        else:
            raise _Unsupported(op)
    return "".join(out)


def _nested_repeat(items, inside: bool) -> bool:
    """Whether the parsed pattern ``items`` holds an unbounded repeat inside another repeat."""
    for op, arg in items:
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
            unbounded = arg[1] is _sre.MAXREPEAT
            if (inside and unbounded) or _nested_repeat(arg[2], inside or unbounded):
                return True
        elif op is _sre.SUBPATTERN and _nested_repeat(arg[-1], inside):
            return True
        elif op is _sre.BRANCH and any(_nested_repeat(branch, inside) for branch in arg[1]):
            return True
        elif op is getattr(_sre, "ATOMIC_GROUP", None) and _nested_repeat(arg, inside):
            return True
    return False


def _one_of(items, rng: random.Random) -> str:
    """A character of a class (``[a-z0-9_]``, ``\\d``; for ``[^...]``, one of a few it does not hold)."""
    if items and items[0][0] is _sre.NEGATE:
        excluded = {chr(arg) for op, arg in items[1:] if op is _sre.LITERAL}
        choices = [c for c in _ANY_CHARS if c not in excluded]
        return rng.choice(choices or ["~"])
    options: list[str] = []
    for op, arg in items:
        if op is _sre.LITERAL:
            options.append(chr(arg))
        elif op is _sre.RANGE:
            low, high = arg
            options.append(chr(rng.randint(low, min(high, low + 25))))
        elif op is _sre.CATEGORY:
            options.extend(_CATEGORY_CHARS.get(arg, "a"))
        else:
            raise _Unsupported(op)
    if not options:
        raise _Unsupported(_sre.IN)
    return rng.choice(options)
