"""What training must never see, and the split every part agrees on. Imports nothing else of the project.

The eval harness (``eval``) reads its module set from here, and the corpus (``trainer.corpus``) refuses
every package of it: data shared by the two lives in the lower layer, so imports go ``eval -> trainer``.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")

# The eval harness's module-level sets: pinned PyPI distributions and the module of each that is tested.
# "first-12": the set the shipped adapter was chosen on (the function-level era).
EVAL_MODULES = [
    ("roman==4.2", "roman"),
    ("cachetools==5.3.3", "cachetools.keys"),
    ("pytimeparse==1.1.8", "pytimeparse.timeparse"),
    ("tomli==2.0.1", "tomli._re"),
    ("boltons==24.0.0", "boltons.mathutils"),
    ("humanize==4.9.0", "humanize.number"),
    ("python-slugify==8.0.4", "slugify.slugify"),
    ("toolz==0.12.1", "toolz.dicttoolz"),
    ("isodate==0.6.1", "isodate.isoduration"),
    ("semver==3.0.2", "semver._deprecated"),
    ("wcwidth==0.2.13", "wcwidth.wcwidth"),
    ("inflection==0.5.1", "inflection"),
]

# "fresh-8": picked for the target loop's benchmark after every tuning decision, from packages in neither the
# corpus lists nor EVAL_MODULES; held out from training like the rest.
FRESH_MODULES = [
    ("isoweek==1.3.3", "isoweek"),
    ("addict==2.4.0", "addict.addict"),
    ("jsonpointer==3.0.0", "jsonpointer"),
    ("funcy==2.0", "funcy.colls"),
    ("uritemplate==4.1.1", "uritemplate.variable"),
    ("intervaltree==3.1.0", "intervaltree.interval"),
    ("docopt==0.6.2", "docopt"),
    ("tinydb==4.8.0", "tinydb.queries"),
]

# "tune-classes": for tuning what the loop does with classes (special methods, objects as arguments): other
# modules of packages in EVAL_MODULES, whose modules are mostly functions; never reported as a result.
TUNING_CLASS_MODULES = [
    ("isodate==0.6.1", "isodate.duration"),
    ("boltons==24.0.0", "boltons.queueutils"),
    ("cachetools==5.3.3", "cachetools"),
]

MODULE_SETS = {"fresh-8": FRESH_MODULES, "first-12": EVAL_MODULES, "tune-classes": TUNING_CLASS_MODULES}

# Never in the corpus: held-out benchmarks (matched in a problem's id or source).
HELD_OUT_BENCHMARKS = ("humaneval", "human-eval", "human_eval", "evalplus", "livecodebench", "lcb")


def split_of(task_id: str) -> str:
    """train / val / test by a hash of the task id: 80/10/10, the same on every run and machine."""
    bucket = int(hashlib.sha256(f"split:{task_id}".encode()).hexdigest(), 16) % 10
    return "train" if bucket < 8 else ("val" if bucket == 8 else "test")


def eval_packages() -> set[str]:
    """Top-level packages and distributions of every eval module set (normalised: lower case, ``_``)."""
    names = set()
    for requirement, module in [entry for modules in MODULE_SETS.values() for entry in modules]:
        names.add(requirement.split("==")[0].lower().replace("-", "_"))
        names.add(module.split(".")[0].lower())
    return names
