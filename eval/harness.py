"""The evaluation run: function-level and module-level sets, systems side by side, results to eval/results/.

    python -m eval --limit 10                       # quick
    python -m eval --lora adapter.gguf              # adds the adapter's rows
    python -m eval --report a.json b.json --out DIR  # one table from separate runs (e.g. Pynguin, then the plugin)

Systems: ``<model>-raw`` (the model's file, unvalidated), ``<model>-pipeline`` (the plugin's full
validation and repair), and ``pynguin`` (module-level set, fixed search time per module).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pytest_utgen.config import load_config
from pytest_utgen.discover import module_path
from pytest_utgen.engine import Engine, identify_model, make_backend
from pytest_utgen.generate import Backend, CodeExtractionError, extract_code
from pytest_utgen.prompt import build_messages
from pytest_utgen.writer import atomic_write, read_generated_body

from trainer.heldout import MODULE_SETS, split_of
from trainer.mbpp import mbpp_record

from .latency import machine
from .measure import Measurement, MutationScore, measure

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "eval" / "results"
CACHE = REPO / "eval" / "cache"
MBPP = REPO.parent / "shared" / "data" / "mbpp.jsonl"



@dataclass
class Task:
    """Code to write tests for: a module file under a source root, importable as ``module``."""

    task_id: str
    source_root: Path
    module: str
    question: str | None = None

    @property
    def module_file(self) -> Path:
        return module_path(self.source_root, self.module)


def mbpp_split_tasks(workdir: Path, limit: int | None, split: str = "test") -> list[Task]:
    """The MBPP problems of one of the trainer's splits (``test``: held out), each as ``solution.py``."""
    tasks = []
    for line in MBPP.read_text(encoding="utf-8").splitlines():
        record = mbpp_record(json.loads(line))
        if split_of(record["task_id"]) != split:
            continue
        root = workdir / record["task_id"]
        root.mkdir(parents=True)
        (root / "solution.py").write_text(record["code"] + "\n")
        tasks.append(Task(record["task_id"], root, "solution", record["question"]))
        if limit and len(tasks) >= limit:
            break
    return tasks


def pypi_tasks(module_set: str, limit: int | None, names: list[str] | None = None) -> list[Task]:
    """The pinned real modules of a set (only those ``names``, when given), installed with pip into eval/cache
    (not committed)."""
    tasks = []
    modules = MODULE_SETS[module_set]
    if names:
        unknown = set(names) - {module for _, module in modules}
        if unknown:
            raise SystemExit(f"not in {module_set}: {', '.join(sorted(unknown))}")
        modules = [entry for entry in modules if entry[1] in names]
    for requirement, module in modules[:limit] if limit else modules:
        top = module.split(".")[0]
        if importlib.util.find_spec(top) is not None:
            raise RuntimeError(f"{top} is importable in the harness's environment: mutmut would test that copy, "
                               f"not the pinned {requirement}; run the eval in a venv without it")
        target = CACHE / "site" / requirement.replace("==", "-")
        if not target.is_dir():
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(target), requirement],
                           check=True, capture_output=True)
        tasks.append(Task(module, target, module))
    return tasks


def raw_file(backend: Backend, task: Task, max_tokens: int) -> tuple[str | None, float]:
    """The model's test file for the task, unvalidated, and the model seconds."""
    completion = backend.complete(build_messages(task.module_file.read_text(), task.module, task.question), max_tokens)
    try:
        return extract_code(completion.text), completion.seconds
    except CodeExtractionError:
        return None, completion.seconds


def pipeline_file(task: Task, overrides: dict) -> tuple[str | None, float, dict]:
    """The plugin's kept file for the task (full validation and repair), wall seconds, and the module's report
    (model calls, time split, stop reason)."""
    with tempfile.TemporaryDirectory(prefix="utgen-eval-") as tmp:
        project = Path(tmp) / "project"
        # With the distributions' metadata: a module may read its own version (humanize does, at import).
        shutil.copytree(task.source_root, project, ignore=shutil.ignore_patterns("__pycache__"))
        (project / "tests").mkdir(exist_ok=True)
        module_path = project / task.module_file.relative_to(task.source_root)
        config = load_config(project, {**overrides, "paths": [str(module_path)], "reruns": 1})
        started = time.perf_counter()
        report = Engine(config, select_all=True).run()
        seconds = time.perf_counter() - started
        module = report.modules[0] if report.modules else None
        # As the plugin's JSON report holds it (enums as their values): the row is written as JSON too.
        details = json.loads(json.dumps(dataclasses.asdict(module))) if module else {"model_calls": report.model_calls}
        if module is None or not module.output:
            return None, seconds, details
        return read_generated_body(Path(module.output)), seconds, details


def pynguin_python(base_python: str) -> Path:
    """The Python of eval/cache/pynguin-venv, created with ``base_python`` (Pynguin pins Python 3.10) if absent."""
    python = CACHE / "pynguin-venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([base_python, "-m", "venv", str(python.parents[1])], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pynguin"], check=True)
    return python


def pynguin_file(task: Task, seconds: int, python: Path) -> tuple[str | None, float]:
    """Pynguin's test file for a module, from its own venv, with a fixed search time.

    Pynguin writes a ``pynguin-report`` folder into its working directory: it runs in the temp dir.
    """
    with tempfile.TemporaryDirectory(prefix="pynguin-") as out:
        started = time.perf_counter()
        subprocess.run(
            [str(python), "-m", "pynguin", "--project-path", str(task.source_root), "--module-name", task.module,
             "--output-path", out, "--maximum-search-time", str(seconds), "-v"],
            cwd=out, env={**os.environ, "PYNGUIN_DANGER_AWARE": "1"}, capture_output=True, text=True,
            timeout=seconds * 10 + 120,
        )
        elapsed = time.perf_counter() - started
        files = sorted(Path(out).glob("test_*.py"))
        return (files[0].read_text() if files else None), elapsed


def evaluate_task(task: Task, system: str, test_source: str | None, seconds: float, calls: int,
                  plugin_report: dict | None = None) -> dict:
    """One row: the measurement of a system's file for a task, the file itself, and the plugin's own report."""
    if test_source is None:
        result = Measurement(collected=False, error="no test file")
    else:
        result = measure(task.source_root, task.module_file, test_source)
    return {"task": task.task_id, "system": system, "seconds": seconds, "model_calls": calls, **result.to_dict(),
            "test_source": test_source, "plugin_report": plugin_report}


def task_mutants(rows: list[dict]) -> dict[str, int]:
    """Mutants per task: the most mutmut made in any system's row (the same module gives the same mutants)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["task"]] = max(counts.get(r["task"], 0), MutationScore(**r["mutation"]).total)
    return counts


def module_score(row: dict, mutants: int) -> float | None:
    """A row's mutation score over its task's mutants."""
    return (row["mutation"]["killed"] + row["mutation"]["timeout"]) / mutants if mutants else None


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per system: raw pass rate (tests), files collecting / all passing, coverage, mutation, latency.

    Mutation score is over the same mutants for every system: a task's mutants are those mutmut made for
    it in any system's row (the same module gives the same mutants); a system whose file has no passing
    test reaching the code kills none of them.
    """
    mutants_of = task_mutants(rows)
    summary = {}
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        run = sum(r["tests_run"] for r in mine)
        killed = sum(r["mutation"]["killed"] + r["mutation"]["timeout"] for r in mine)
        mutants = sum(mutants_of[r["task"]] for r in mine)
        scores = [module_score(r, mutants_of[r["task"]]) for r in mine]
        lines = [r["line_coverage"] or 0.0 for r in mine]
        branches = [r["branch_coverage"] or 0.0 for r in mine]
        seconds = sorted(r["seconds"] for r in mine)
        summary[system] = {
            "tasks": len(mine),
            "pass_rate": sum(r["tests_passed"] for r in mine) / run if run else 0.0,
            "files_collecting": sum(r["collected"] for r in mine) / len(mine),
            "files_all_pass": sum(r["all_pass"] for r in mine) / len(mine),
            "line_coverage": statistics.mean(lines),
            "branch_coverage": statistics.mean(branches),
            "mutation_score": killed / mutants if mutants else None,
            "line_branch_median": statistics.median(r.get("line_branch_coverage") or 0.0 for r in mine),
            "mutation_median": statistics.median(x for x in scores if x is not None) if any(
                x is not None for x in scores) else None,
            "mutants_timeout": sum(r["mutation"]["timeout"] for r in mine),
            "seconds_p50": statistics.median(seconds),
            "seconds_p90": seconds[min(len(seconds) - 1, int(0.9 * len(seconds)))],
        }
    return summary


def to_markdown(result: dict) -> str:
    """The results table (and, for a module set, one row per module and system)."""
    lora = f", LoRA {result['lora']} (sha256 {result.get('lora_sha256')})" if result["lora"] else ""
    lines = [f"# Evaluation {result['created']}", "", f"Command: `{result['command']}`  ",
             *([f"Summary recomputed from the saved rows: `{result['report_command']}`  "]
               if result.get("report_command") else []),
             f"Git: {result['git_sha']}  ", f"Machine: {result['machine']}  ",
             f"Model: {result['model']} (sha256 {result['model_sha256']}){lora}", ""]
    pct = lambda value: "-" if value is None else f"{value:.1f}"  # noqa: E731
    for name, summary in result["summary"].items():
        lines += [f"## {name}", "",
                  "| system | tasks | test pass rate | files collect | files all pass | line cov % | branch cov % "
                  "| median line+branch % | mutation score | median mutation score | s p50 | s p90 |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for system, s in summary.items():
            mutation = "-" if s["mutation_score"] is None else f"{100 * s['mutation_score']:.1f} %"
            median = s.get("mutation_median")
            median = "-" if median is None else f"{100 * median:.1f} %"
            lines.append(
                f"| {system} | {s['tasks']} | {100 * s['pass_rate']:.1f} % | {100 * s['files_collecting']:.0f} % "
                f"| {100 * s['files_all_pass']:.0f} % | {s['line_coverage']:.1f} | {s['branch_coverage']:.1f} "
                f"| {pct(s.get('line_branch_median'))} | {mutation} | {median} "
                f"| {s['seconds_p50']:.1f} | {s['seconds_p90']:.1f} |"
            )
        lines.append("")
        if name.startswith("module"):
            lines += module_rows(result["rows"][name])
    lines += ["Pass rate: passing test functions / test functions run, over all files (a file that does not "
              "collect counts 0 of 0 and lowers 'files collect'). Coverage and mutation score are measured on the "
              "passing tests only; mutation score = (killed + timeout) / all mutants of the set's tasks (mutmut; a "
              "task's mutants are those made in any system's run, so every system is scored on the same mutants, "
              "and mutants no passing test reaches count as survived). Seconds: wall time per task including "
              "validation.", ""]
    return "\n".join(lines)


def module_rows(rows: list[dict]) -> list[str]:
    """Per module and system: tests passing/run, coverage, mutation score, seconds and the plugin's time split."""
    mutants_of = task_mutants(rows)
    pct = lambda value: "-" if value is None else f"{value:.1f}"  # noqa: E731
    lines = ["| module | system | tests passing / run | line % | branch % | line+branch % | mutants killed "
             "| mutation score | s | model calls | s prompt / decode / sandbox | variants kept (+points) | stopped |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (r["task"], r["system"])):
        score = module_score(row, mutants_of[row["task"]])
        plugin = row.get("plugin_report") or {}
        split = (f"{plugin.get('prompt_seconds', 0):.0f} / {plugin.get('decode_seconds', 0):.0f} / "
                 f"{plugin.get('sandbox_seconds', 0):.0f}") if plugin else "-"
        killed = row["mutation"]["killed"] + row["mutation"]["timeout"]
        stopped = plugin.get("stopped") or "-"
        amplified = (f"{plugin['tests_amplified']} (+{plugin.get('amplified_points', 0):.1f})"
                     if "tests_amplified" in plugin else "-")
        lines.append(
            f"| {row['task']} | {row['system']} | {row['tests_passed']} / {row['tests_run']} "
            f"| {pct(row['line_coverage'])} | {pct(row['branch_coverage'])} | {pct(row.get('line_branch_coverage'))} "
            f"| {killed} / {mutants_of[row['task']]} | {'-' if score is None else f'{100 * score:.1f} %'} "
            f"| {row['seconds']:.0f} | {row['model_calls']} | {split} | {amplified} | {stopped} |"
        )
    return lines + [""]


def plot(result: dict, target: Path) -> None:
    """Bar chart: pass rate, line coverage and mutation score per system and set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(result["summary"])
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4), squeeze=False)
    for ax, name in zip(axes[0], sets):
        systems = list(result["summary"][name])
        metrics = [("pass rate", "pass_rate", 100), ("line cov", "line_coverage", 1),
                   ("mutation", "mutation_score", 100)]
        width = 0.8 / len(systems)
        for index, system in enumerate(systems):
            values = [(result["summary"][name][system][key] or 0) * scale for _, key, scale in metrics]
            ax.bar([m + index * width for m in range(len(metrics))], values, width, label=system)
        ax.set_xticks([m + width * (len(systems) - 1) / 2 for m in range(len(metrics))], [m[0] for m in metrics])
        ax.set_ylim(0, 100)
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    parser.add_argument("--model", default="1.5b")
    parser.add_argument("--lora")
    parser.add_argument("--limit", type=int, help="tasks per set")
    parser.add_argument("--module-limit", type=int, help="tasks of the module-level set (default: --limit)")
    parser.add_argument("--sets", default="function,module")
    parser.add_argument("--module-set", choices=sorted(MODULE_SETS), default="fresh-8",
                        help="which pinned module set the module level runs (fresh-8: the target loop's benchmark)")
    parser.add_argument("--modules", help="comma-separated modules of the set to run (default: all)")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="a [tool.utgen] setting for the pipeline runs, e.g. max_calls=12 (repeatable)")
    parser.add_argument("--split", choices=["test", "val"], default="test",
                        help="MBPP split of the function-level set: test (held out) or val (for choosing a model)")
    parser.add_argument("--skip-base", action="store_true", help="run only the --lora adapter, not the base model")
    parser.add_argument("--systems", default="raw,pipeline,pynguin",
                        help="which of raw, pipeline, pynguin to run (pipeline is the slow one)")
    parser.add_argument("--pynguin-seconds", type=int, default=30)
    parser.add_argument("--pynguin-base-python", default=shutil.which("python3.10") or "python3.10",
                        help="a Python 3.10 to create Pynguin's venv with")
    parser.add_argument("--remeasure", action="store_true",
                        help="with --report: measure each saved row's test file again (same seconds and calls)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path, nargs="+", metavar="JSON",
                        help="measure nothing: recompute the summary, table, chart and LATEST.md of saved eval-*.json "
                             "files (several: their rows side by side, written under --out)")
    args = parser.parse_args(argv)
    command = "python -m eval " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.report:
        result = merge_results([json.loads(path.read_text()) for path in args.report])
        if args.remeasure:
            result["rows"] = {name: remeasure(rows, args.module_set if name.startswith("module") else None)
                              for name, rows in result["rows"].items()}
        result["summary"] = {name: summarise(r) for name, r in result["rows"].items() if r}
        result["report_command"] = command
        stem = args.report[0].with_suffix("") if len(args.report) == 1 else args.out / f"eval-{result['created']}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        write_result(result, stem)
        return 0
    if args.skip_base and not args.lora:
        parser.error("--skip-base needs --lora: without an adapter there is nothing else to run")
    git_sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True).stdout.strip()
    systems = set(args.systems.split(","))
    settings = {}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--config takes KEY=VALUE, got {item!r}")
        try:
            settings[key.strip()] = json.loads(value)  # numbers, true/false
        except json.JSONDecodeError:
            settings[key.strip()] = value
    variants = ([] if args.skip_base else [("base", "none")]) + ([("lora", args.lora)] if args.lora else [])
    # Rows made with settings other than the defaults say so: side by side with a default run they stay apart.
    pipeline_system = "-pipeline" + (f" ({', '.join(f'{k}={v}' for k, v in settings.items())})" if settings else "")
    if not systems & {"raw", "pipeline"}:
        variants = []  # Pynguin only: no model to load
    rows: dict[str, list[dict]] = {}
    identity = None
    with tempfile.TemporaryDirectory(prefix="utgen-eval-tasks-") as tmp:
        task_sets = {}
        if "function" in args.sets:
            title = "held-out" if args.split == "test" else "validation"
            task_sets[f"function-level (MBPP {title} split)"] = mbpp_split_tasks(Path(tmp), args.limit, args.split)
        if "module" in args.sets:
            task_sets[f"module-level (PyPI modules, {args.module_set})"] = pypi_tasks(
                args.module_set, args.module_limit or args.limit, args.modules.split(",") if args.modules else None)
        for name, tasks in task_sets.items():
            rows[name] = []
            for label, lora in variants:
                overrides = {**settings, "model": args.model, "lora": lora}
                config = load_config(REPO, overrides)
                identity = identify_model(config)
                backend = make_backend(config, identity)
                for task in tasks:
                    if "raw" in systems:
                        source, seconds = raw_file(backend, task, config.max_tokens)
                        rows[name].append(evaluate_task(task, f"{label}-raw", source, seconds, 1))
                    if "pipeline" in systems:
                        source, seconds, details = pipeline_file(task, overrides)
                        rows[name].append(evaluate_task(task, label + pipeline_system, source, seconds,
                                                        details["model_calls"], details))
                    print(json.dumps(rows[name][-1])[:300], flush=True)
            if name.startswith("module") and "pynguin" in systems:
                python = pynguin_python(args.pynguin_base_python)
                for task in tasks:
                    source, seconds = pynguin_file(task, args.pynguin_seconds, python)
                    rows[name].append(evaluate_task(task, "pynguin", source, seconds, 0))
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    result = {
        "created": created, "command": command, "git_sha": git_sha, "machine": machine(),
        "model": identity.model_id if identity else None, "model_sha256": identity.sha256 if identity else None,
        "lora": args.lora, "lora_sha256": identity.lora_sha256 if identity else None,
        "summary": {name: summarise(r) for name, r in rows.items() if r}, "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_result(result, args.out / f"eval-{created}")
    return 0


def remeasure(rows: list[dict], module_set: str | None) -> list[dict]:
    """The rows measured again from their saved test files (module-level rows only; others stay)."""
    if module_set is None:
        return rows
    tasks = {task.task_id: task for task in pypi_tasks(module_set, None)}
    return [{**row, **evaluate_task(tasks[row["task"]], row["system"], row["test_source"], row["seconds"],
                                    row["model_calls"], row.get("plugin_report"))} for row in rows]


def merge_results(results: list[dict]) -> dict:
    """Saved runs as one: rows of the same set side by side, each run's command, git and model kept."""
    if len(results) == 1:
        return results[0]
    merged = {**results[-1], "rows": {}, "runs": [
        {k: r.get(k) for k in ("created", "command", "git_sha", "machine", "model", "lora")} for r in results]}
    merged["command"] = " ; ".join(r["command"] for r in results)
    merged["git_sha"] = " ; ".join(dict.fromkeys(r["git_sha"] for r in results))
    for key in ("model", "model_sha256", "lora", "lora_sha256"):
        merged[key] = next((r[key] for r in results if r.get(key)), None)
    # Two runs of the same system with different adapters (run7 against a candidate) stay apart: a later
    # run's rows are named after its adapter file.
    adapter_of: dict[str, str | None] = {}
    for result in results:
        label = Path(result["lora"]).stem if result.get("lora") else None
        for name, rows in result["rows"].items():
            for row in rows:
                first = adapter_of.setdefault(row["system"], result.get("lora_sha256"))
                if first != result.get("lora_sha256") and label:
                    row = {**row, "system": f"{row['system']} ({label})"}
                merged["rows"].setdefault(name, []).append(row)
    return merged


def write_result(result: dict, stem: Path) -> None:
    """``stem``.json/.md/.png and LATEST.md beside them (each written atomically); prints the table."""
    table = to_markdown(result)
    atomic_write(stem.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic_write(stem.with_suffix(".md"), table)
    plot(result, stem.with_suffix(".png"))
    atomic_write(stem.parent / "LATEST.md", table + f"\n![chart]({stem.with_suffix('.png').name})\n")
    print(table)
