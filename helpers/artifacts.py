"""Artifacts on disk: atomic writes and a manifest beside each file, so a later notebook can tell when
what it loads is missing or stale and say which notebook to run.

Every artifact `X` under `RECSYS_ARTIFACTS/<dataset>/` has `X.manifest.json` beside it:
`{"stage", "dataset", "seed", "fingerprint", "inputs": {name: fingerprint}, "settings": {...}, "created"}`.
The manifest is written last, after the artifact itself was moved into place, so an interrupted write
leaves either the old complete pair or an artifact without a manifest, which `require` refuses.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helpers.config import Settings
from helpers.errors import RecsysError
from helpers.stages import notebook_for


class ArtifactError(RecsysError, RuntimeError):
    """Base class: an artifact cannot be used; the message says which notebook to run."""


class MissingArtifactError(ArtifactError, FileNotFoundError):
    pass


class StaleArtifactError(ArtifactError):
    pass


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def fingerprint(path: Path) -> str:
    """SHA-256 of a file, or of every file in a folder (sorted by relative name)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block finishes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; swap it in for `path` only if the block finishes.

    A folder cannot be replaced in one rename, so the old one is renamed aside first and deleted after
    the new one is in place; on any error the temporary folder is removed and the old one put back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    old = path.with_name(f".{path.name}.old")
    try:
        yield tmp
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old.exists() and not path.exists():
                os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def holds_files(folder: Path, files: tuple[str, ...]) -> bool:
    """True when `folder` is a folder holding every one of `files`."""
    return folder.is_dir() and all((folder / name).is_file() for name in files)


def generated_folder_ready(folder: Path, marker: str, expected: dict[str, Any], files: tuple[str, ...]) -> bool:
    """True when a generator finished writing `folder`: its `marker` JSON (written last) holds `expected`
    and every one of `files` is there. A damaged or older marker counts as not ready."""
    try:
        info = json.loads((folder / marker).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (isinstance(info, dict) and all(info.get(key) == value for key, value in expected.items())
            and holds_files(folder, files))


def write_manifest(path: Path, stage: str, settings: Settings, inputs: dict[str, Path] | None = None,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write `path`'s manifest (call it after `path` itself is complete) and return it."""
    manifest = {
        "stage": stage,
        "dataset": settings.dataset,
        "seed": settings.seed,
        "fingerprint": fingerprint(path),
        "inputs": {name: read_manifest(p)["fingerprint"] for name, p in (inputs or {}).items()},
        "settings": extra or {},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_path(manifest_path(path)) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    mpath = manifest_path(path)
    if not mpath.exists():
        raise MissingArtifactError(f"{path} has no manifest {mpath.name}: it is missing or half-written.")
    return json.loads(mpath.read_text())


def require(path: Path, stage: str, settings: Settings, inputs: dict[str, Path] | None = None) -> dict[str, Any]:
    """Check that artifact `path` exists, is complete, was built for `settings` (dataset and seed) and from
    the current version of each of its `inputs`; return its manifest or raise an error naming the notebook."""
    notebook = notebook_for(stage)
    wanted = f"RECSYS_DATASET={settings.dataset} RECSYS_SEED={settings.seed}"
    if not path.exists() or not manifest_path(path).exists():
        raise MissingArtifactError(f"No {stage} artifact at {path}: run {notebook} with {wanted} first.")
    manifest = read_manifest(path)
    if (manifest["dataset"], manifest["seed"]) != (settings.dataset, settings.seed):
        raise StaleArtifactError(
            f"{path.name} was built from {manifest['dataset']} with seed {manifest['seed']}, but you asked for "
            f"{settings.dataset} with seed {settings.seed}: run {notebook} with {wanted}."
        )
    if fingerprint(path) != manifest["fingerprint"]:
        raise StaleArtifactError(f"{path} changed after it was written (its checksum differs): run {notebook} again.")
    for name, input_path in (inputs or {}).items():
        current = read_manifest(input_path)["fingerprint"] if manifest_path(input_path).exists() else None
        if manifest["inputs"].get(name) != current:
            raise StaleArtifactError(
                f"{path.name} was built from an older {name} than the one in {input_path.parent}: "
                f"run {notebook} again."
            )
    return manifest
