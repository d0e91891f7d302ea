"""Prompt tokens of a module set's code, as written and as prompts show it (long docstrings cut to their summary).

    python -m eval.prompt_tokens [--module-set fresh-8]

For each pinned module: the tokens (the default model's tokenizer) of the module pass's code, whole, and
of the target pass's code summed over the module's targets, each with docstrings as written and as
:func:`pytest_utgen.prompt.prompt_lines` shows them. No model call: the tokenizer only.
"""

from __future__ import annotations

import argparse
from unittest import mock

from llama_cpp import Llama

from pytest_utgen.config import UtgenConfig
from pytest_utgen.model_store import resolve_model
from pytest_utgen.prompt import split_source
from pytest_utgen.targets import find_targets
from trainer.heldout import MODULE_SETS

from .harness import pypi_tasks


def _as_written(source: str, tree=None) -> list[str | None]:
    return list(source.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module-set", choices=sorted(MODULE_SETS), default="fresh-8")
    args = parser.parse_args(argv)
    tokenizer = Llama(model_path=str(resolve_model(UtgenConfig().model).path), vocab_only=True, verbose=False)

    def tokens(text: str) -> int:
        return len(tokenizer.tokenize(text.encode(), add_bos=False))

    print("| module | module code, as written | as shown | targets' code, as written | as shown |")
    print("|---|---|---|---|---|")
    totals = [0, 0, 0, 0]
    for task in pypi_tasks(args.module_set, None):
        source = task.module_file.read_text()
        shown = sum(tokens(c.code) for c in split_source(source, 10**9, tokens))
        with mock.patch("pytest_utgen.targets.prompt_lines", _as_written):
            written_targets = sum(tokens(t.code) for t in find_targets(source))
        row = [tokens(source), shown, written_targets, sum(tokens(t.code) for t in find_targets(source))]
        totals = [a + b for a, b in zip(totals, row)]
        print(f"| {task.module} | " + " | ".join(map(str, row)) + " |")
    print("| all | " + " | ".join(map(str, totals)) + " |")
    print(f"module code: {1 - totals[1] / totals[0]:.0%} fewer tokens; targets' code: {1 - totals[3] / totals[2]:.0%} fewer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
