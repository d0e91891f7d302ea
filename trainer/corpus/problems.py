"""Problems with ground-truth code for the corpus: MBPP, stdlib modules and pinned PyPI modules.

A problem is the code shown in the prompt (a module, or a chunk of one cut as the plugin cuts it),
the import path its tests use, and a directory holding the ground truth at that import path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path

from pytest_utgen.discover import module_path
from pytest_utgen.prompt import build_messages, build_target_messages, split_source
from pytest_utgen.targets import Target, find_targets, module_header
from trainer.heldout import HELD_OUT_BENCHMARKS, eval_packages
from trainer.mbpp import mbpp_record

REPO = Path(__file__).resolve().parents[2]
MBPP = REPO.parent / "shared" / "data" / "mbpp.jsonl"

STDLIB_MODULES = [
    "colorsys", "shlex", "difflib", "textwrap", "calendar", "fractions", "graphlib", "quopri", "reprlib",
    "fnmatch", "statistics", "ipaddress", "getopt", "sched", "base64", "netrc", "plistlib", "numbers",
]
PYPI_MODULES = [
    ("parse==1.20.2", "parse"),
    ("iso8601==2.1.0", "iso8601.iso8601"),
    ("webcolors==24.8.0", "webcolors._conversion"),
    ("webcolors==24.8.0", "webcolors._normalization"),
    ("ordered-set==4.1.0", "ordered_set"),
    ("toposort==1.10", "toposort"),
    ("pyhumps==3.8.0", "humps.main"),
    ("hashids==1.3.1", "hashids"),
    ("base58==2.1.1", "base58"),
    ("shortuuid==1.0.13", "shortuuid.main"),
    ("more-itertools==10.5.0", "more_itertools.recipes"),
    ("more-itertools==10.5.0", "more_itertools.more"),
    ("sortedcontainers==2.4.0", "sortedcontainers.sortedlist"),
    ("jmespath==1.0.1", "jmespath.functions"),
    ("natsort==8.4.0", "natsort.natsort"),
    ("validators==0.34.0", "validators.domain"),
    ("validators==0.34.0", "validators.url"),
    ("jmespath==1.0.1", "jmespath.lexer"),
    ("natsort==8.4.0", "natsort.utils"),
    ("validators==0.34.0", "validators.card"),
    ("validators==0.34.0", "validators.hashes"),
    ("tabulate==0.9.0", "tabulate"),
]
CHUNK_TOKENS = 700
CHUNKS_PER_MODULE = 10
TARGETS_PER_MODULE = 12


@dataclass(frozen=True)
class Problem:
    """Code to write tests for, with its ground truth on disk."""

    task_id: str
    source: str
    module: str
    code: str
    root: str
    question: str | None = None
    target: dict | None = None  # a Target's fields: the problem is the plugin's prompt for one function/method
    header: str = ""  # with a target: the module's imports and constants, as the plugin shows them

    def messages(self) -> list[dict[str, str]]:
        """The plugin's prompt for this problem: the module (chunk) prompt, or the target prompt."""
        if self.target is not None:
            return build_target_messages(self.header, self.module, Target(**self.target))
        return build_messages(self.code, None if self.module == "solution" else self.module, self.question)


def assert_not_held_out(problems: list[Problem]) -> None:
    """Raise if any problem comes from a held-out benchmark or the eval module set."""
    banned = eval_packages()
    for problem in problems:
        origin = f"{problem.task_id} {problem.source}".lower()
        if any(name in origin for name in HELD_OUT_BENCHMARKS):
            raise ValueError(f"{problem.task_id}: held-out benchmark data must not enter the corpus")
        top = problem.module.split(".")[0].lower()
        distribution = problem.source.removeprefix("pypi:").split("==")[0].lower().replace("-", "_")
        if problem.module != "solution" and (top in banned or distribution in banned):
            raise ValueError(f"{problem.task_id}: {problem.module} belongs to the eval module set")


def mbpp_problems(cache: Path) -> list[Problem]:
    """Every MBPP problem, its reference solution as ``solution.py``."""
    problems = []
    for line in MBPP.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = mbpp_record(json.loads(line))
        root = cache / "mbpp" / record["task_id"]
        root.mkdir(parents=True, exist_ok=True)
        (root / "solution.py").write_text(record["code"] + "\n", encoding="utf-8")
        problems.append(Problem(record["task_id"], "mbpp", "solution", record["code"], str(root), record["question"]))
    return problems


def preloaded_by_pytest() -> set[str]:
    """Modules already imported once pytest is: a copy of those could not shadow the real one in a test run."""
    script = "import json, sys, pytest, coverage; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def module_chunks(task_prefix: str, source: str, module: str, module_file: Path, root: Path) -> list[Problem]:
    """The module cut into prompt-sized chunks, as the plugin cuts it (at most CHUNKS_PER_MODULE)."""
    text = module_file.read_text(encoding="utf-8")
    chunks = [c for c in split_source(text, CHUNK_TOKENS) if c.names]
    return [Problem(f"{task_prefix}-{index}", source, module, chunk.code, str(root))
            for index, chunk in enumerate(chunks[:CHUNKS_PER_MODULE])]


def target_problems(task_prefix: str, source: str, module: str, module_file: Path, root: Path) -> list[Problem]:
    """One problem per function or method, prompted as the plugin's target loop prompts it (at most
    TARGETS_PER_MODULE, spread over the module)."""
    text = module_file.read_text(encoding="utf-8")
    targets = find_targets(text)
    step = max(1, len(targets) // TARGETS_PER_MODULE)
    header = module_header(text)
    return [Problem(f"{task_prefix}-t-{target.qualname}", source, module, target.code, str(root),
                    target=asdict(target), header=header)
            for target in targets[::step][:TARGETS_PER_MODULE]]


def stdlib_problems(cache: Path) -> list[Problem]:
    """Chunks of pure-Python stdlib modules, each copied alone into its own root."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    preloaded = preloaded_by_pytest()
    problems = []
    for name in STDLIB_MODULES:
        path = stdlib / f"{name}.py"
        if name in preloaded or not path.is_file():
            continue
        root = cache / "stdlib" / name
        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / path.name)
        source = f"stdlib:{sys.version_info.major}.{sys.version_info.minor}"
        problems += module_chunks(f"stdlib-{name}", source, name, root / path.name, root)
        problems += target_problems(f"stdlib-{name}", source, name, root / path.name, root)
    return problems


def pypi_problems(cache: Path) -> list[Problem]:
    """Chunks of pinned PyPI modules, installed with pip into the cache."""
    problems = []
    for requirement, module in PYPI_MODULES:
        root = cache / "site" / requirement.replace("==", "-")
        if not root.is_dir():
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(root),
                            requirement], check=True, capture_output=True)
        problems += module_chunks(f"pypi-{module}", f"pypi:{requirement}", module, module_path(root, module), root)
        problems += target_problems(f"pypi-{module}", f"pypi:{requirement}", module, module_path(root, module), root)
    return problems


def build_problems(cache: Path) -> list[Problem]:
    """All problems, checked against the held-out lists."""
    problems = mbpp_problems(cache) + stdlib_problems(cache) + pypi_problems(cache)
    assert_not_held_out(problems)
    return problems


def write_problems(problems: list[Problem], target: Path) -> None:
    """problems.jsonl: one problem per line, with its prompt messages."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8") as handle:
        for problem in problems:
            handle.write(json.dumps({**asdict(problem), "messages": problem.messages()}) + "\n")


def read_problems(path: Path) -> list[Problem]:
    """Problems written by :func:`write_problems`."""
    fields = set(Problem.__dataclass_fields__)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Problem(**{k: v for k, v in row.items() if k in fields}) for row in rows]
