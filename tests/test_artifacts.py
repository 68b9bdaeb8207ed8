"""helpers.artifacts: atomic writes, manifests, and every way `require` refuses an artifact."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.artifacts import (
    MissingArtifactError,
    StaleArtifactError,
    atomic_path,
    fingerprint,
    manifest_path,
    read_manifest,
    require,
    write_manifest,
)
from helpers.config import Settings, get_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return get_settings({"RECSYS_DATASET": "sample", "RECSYS_SEED": "42", "RECSYS_ARTIFACTS": str(tmp_path)})


def _write(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def test_written_artifact_is_accepted(settings: Settings) -> None:
    path = _write(settings.artifacts_dir / "graph.bin", "graph")
    manifest = write_manifest(path, "graph", settings, extra={"edges": 3})
    assert require(path, "graph", settings) == manifest == read_manifest(path)
    assert manifest["dataset"] == "sample" and manifest["seed"] == 42 and manifest["settings"] == {"edges": 3}
    assert json.loads(manifest_path(path).read_text())["fingerprint"] == fingerprint(path)


def test_missing_artifact_names_the_notebook(settings: Settings) -> None:
    with pytest.raises(MissingArtifactError) as info:
        require(settings.artifacts_dir / "graph.bin", "graph", settings)
    assert "notebooks/02_graph_construction.ipynb" in str(info.value)
    assert "RECSYS_DATASET=sample RECSYS_SEED=42" in str(info.value)


def test_half_written_artifact_without_manifest_is_refused(settings: Settings) -> None:
    path = _write(settings.artifacts_dir / "model.pt", "weights")  # interrupted before write_manifest
    with pytest.raises(MissingArtifactError, match="03_pinsage_training"):
        require(path, "model", settings)


def test_atomic_path_leaves_old_file_when_interrupted(settings: Settings) -> None:
    path = _write(settings.artifacts_dir / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]  # no temporary file left behind


@pytest.mark.parametrize("other", [{"RECSYS_DATASET": "ml-1m"}, {"RECSYS_SEED": "7"}])
def test_other_dataset_or_seed_is_stale(settings: Settings, tmp_path: Path, other: dict[str, str]) -> None:
    path = _write(settings.artifacts_dir / "graph.bin", "graph")
    write_manifest(path, "graph", settings)
    asked = get_settings({"RECSYS_DATASET": "sample", "RECSYS_ARTIFACTS": str(tmp_path), **other})
    with pytest.raises(StaleArtifactError, match="was built from sample with seed 42") as info:
        require(path, "graph", asked)
    assert "02_graph_construction" in str(info.value)


def test_changed_artifact_is_stale(settings: Settings) -> None:
    path = _write(settings.artifacts_dir / "graph.bin", "graph")
    write_manifest(path, "graph", settings)
    path.write_text("edited by hand")
    with pytest.raises(StaleArtifactError, match="changed after it was written"):
        require(path, "graph", settings)


def test_changed_input_makes_the_output_stale(settings: Settings) -> None:
    graph = _write(settings.artifacts_dir / "graph" / "graph.bin", "graph v1")
    write_manifest(settings.artifacts_dir / "graph", "graph", settings)
    model = _write(settings.artifacts_dir / "model.pt", "weights")
    write_manifest(model, "model", settings, inputs={"graph": settings.artifacts_dir / "graph"})
    require(model, "model", settings, inputs={"graph": settings.artifacts_dir / "graph"})
    _write(graph, "graph v2")  # notebook 02 was re-run
    write_manifest(settings.artifacts_dir / "graph", "graph", settings)
    with pytest.raises(StaleArtifactError, match="older graph"):
        require(model, "model", settings, inputs={"graph": settings.artifacts_dir / "graph"})


def test_folder_fingerprint_sees_names_and_contents(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    _write(folder / "a", "1")
    first = fingerprint(folder)
    _write(folder / "a", "2")
    second = fingerprint(folder)
    (folder / "a").rename(folder / "b")
    assert len({first, second, fingerprint(folder)}) == 3


def test_generated_folder_ready_needs_the_marker_written_last_and_every_file(tmp_path):
    """A generator's folder counts as done only with a matching marker and all its files (instant)."""
    from helpers.artifacts import generated_folder_ready

    files = ("a.csv", "b.csv")
    assert not generated_folder_ready(tmp_path, "done.json", {"seed": 1}, files)  # nothing written yet
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "done.json").write_text('{"seed": 1, "version": 3}')
    assert not generated_folder_ready(tmp_path, "done.json", {"seed": 1}, files)  # a file is missing
    (tmp_path / "b.csv").write_text("y")
    assert generated_folder_ready(tmp_path, "done.json", {"seed": 1, "version": 3}, files)
    assert not generated_folder_ready(tmp_path, "done.json", {"seed": 2}, files)  # another seed
    (tmp_path / "done.json").write_text("{not json")
    assert not generated_folder_ready(tmp_path, "done.json", {"seed": 1}, files)  # damaged marker
