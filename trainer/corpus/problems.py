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
# The v2 corpus adds whole distributions: pure Python, no runtime dependencies, none of them in an eval set
# (refused in code). Every module of each with a function or method to test, up to MODULES_PER_PACKAGE.
PYPI_PACKAGES = [
    "Unidecode==1.4.0", "appdirs==1.4.4", "asteval==1.0.10", "astral==3.2", "bidict==0.24.1", "cerberus==1.3.8",
    "click==8.5.1", "colorama==0.4.6", "colour==0.1.5", "commonmark==0.9.2", "configobj==5.0.9",
    "cron_descriptor==2.2.1", "cssselect==1.6.0", "decorator==5.3.1", "dictdiffer==0.10.0", "docutils==0.23",
    "dpath==2.2.0", "emoji==2.16.0", "geographiclib==2.1", "haversine==2.9.0", "humanfriendly==10.0",
    "idna==3.20", "isbnlib==3.10.14", "itsdangerous==2.2.0", "lark==1.3.1", "markdown==3.11.3",
    "markdown2==2.5.5", "mccabe==0.7.0", "mdurl==0.1.2", "mistune==3.4.0", "mpmath==1.4.1", "munch==4.0.0",
    "netaddr==1.3.0", "networkx==3.6.1", "oauthlib==4.0.1", "ply==3.11", "pyasn1==0.6.5", "pycodestyle==2.15.0",
    "pycparser==3.12", "pyflakes==4.1.0", "pygments==2.21.0", "pyjwt==2.15.1", "pyparsing==3.3.3",
    "python_dotenv==1.2.4", "python_stdnum==2.2", "pytweening==1.2.0", "pytz==2026.6", "rfc3986==2.0.0",
    "schedule==1.2.2", "schema==0.7.8", "semantic_version==2.10.0", "simpleeval==1.0.8", "six==1.17.0",
    "soupsieve==4.1.3", "sqlparse==0.6.1", "tenacity==9.2.1", "termcolor==3.3.0", "texttable==1.7.2",
    "toml==0.10.2", "tomlkit==0.15.2", "tqdm==4.70.1", "uritools==6.1.5", "voluptuous==0.16.0",
    "webencodings==0.6.1", "word2number==1.1", "xmltodict==1.0.4", "zipp==4.1.2",
]
MODULES_PER_PACKAGE = 8
MAX_MODULE_LINES = 2000  # larger files are mostly data tables or generated code
CORPORA = ("v1", "v2")
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
        root = installed(cache, requirement)
        problems += module_chunks(f"pypi-{module}", f"pypi:{requirement}", module, module_path(root, module), root)
        problems += target_problems(f"pypi-{module}", f"pypi:{requirement}", module, module_path(root, module), root)
    return problems


def installed(cache: Path, requirement: str) -> Path:
    """The distribution, installed alone (no dependencies) into its own root under the cache."""
    root = cache / "site" / requirement.replace("==", "-")
    if not root.is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(root), requirement],
                       check=True, capture_output=True)
    return root


def package_modules(root: Path, limit: int = MODULES_PER_PACKAGE) -> list[str]:
    """Importable modules of an installed distribution with something to test (tests, vendored code, ``__main__``
    and very large files left out), spread over the package when there are more than ``limit``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        parts = relative.with_suffix("").parts
        if relative.parts[0].endswith((".dist-info", ".data")) or relative.parts[0] in ("bin", "__pycache__") \
                or any(p in ("tests", "test", "testing", "_vendor", "vendor", "__main__", "conftest", "setup")
                       or p.startswith("test_") for p in parts):
            continue
        if len(relative.parts) > 1 and not all((root / Path(*relative.parts[:i]) / "__init__.py").is_file()
                                               for i in range(1, len(relative.parts))):
            continue  # not importable as a package path
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            if text.count("\n") > MAX_MODULE_LINES or not find_targets(text):
                continue
        except SyntaxError:
            continue
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    step = max(1, len(found) // limit)
    return found[::step][:limit]


def package_problems(cache: Path) -> list[Problem]:
    """Chunk and target problems of every selected module of the v2 distributions."""
    problems = []
    for requirement in PYPI_PACKAGES:
        root = installed(cache, requirement)
        for module in package_modules(root):
            source = f"pypi:{requirement}"
            problems += module_chunks(f"pypi-{module}", source, module, module_path(root, module), root)
            problems += target_problems(f"pypi-{module}", source, module, module_path(root, module), root)
    return problems


def build_problems(cache: Path, corpus: str = "v1") -> list[Problem]:
    """All problems of the ``corpus`` (v1: the shipped adapter's; v2: v1 and whole distributions), checked
    against the held-out lists."""
    problems = mbpp_problems(cache) + stdlib_problems(cache) + pypi_problems(cache)
    if corpus == "v2":
        problems += package_problems(cache)
    assert_not_held_out(problems)
    return problems


def problem_stats(problems: list[Problem]) -> dict:
    """Problems per source (``mbpp``, ``stdlib:3.x``, ``pypi:dist==version``): modules, chunk and target
    problems; and the totals."""
    per_source: dict[str, dict] = {}
    for problem in problems:
        entry = per_source.setdefault(problem.source, {"modules": set(), "chunks": 0, "targets": 0})
        entry["modules"].add(problem.module)
        entry["targets" if problem.target else "chunks"] += 1
    sources = {name: {**entry, "modules": len(entry["modules"])} for name, entry in sorted(per_source.items())}
    pypi = [name for name in sources if name.startswith("pypi:")]
    return {
        "problems": len(problems),
        "pypi_distributions": len({name.split("==")[0].lower().replace("-", "_") for name in pypi}),
        "pypi_modules": sum(sources[name]["modules"] for name in pypi),
        "sources": sources,
    }


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
