"""Stage 05 (vector store): what `build_stores`, the notebook's one call, leaves behind, its re-runs, and the
notebook's shape. (scripts/test.sh executes the notebook itself with nbval on the sample.)"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from helpers.artifacts import read_manifest
from helpers.config import PROJECT_ROOT
from helpers.stages import SERIES, notebook_for
from helpers.stores.build import build_stores, building_marker_path, stores_record_path
from helpers.stores.catalog import Catalog
from helpers.stores.milvus import VectorStore
from helpers.stores.milvus_client import disconnect
from helpers.training.embeddings import embeddings_path, save_movie_embeddings

from conftest import make_test_embeddings, sample_settings

NOTEBOOK = PROJECT_ROOT / notebook_for("vectors")
NEXT = Path(SERIES[[s.artifact for s in SERIES].index("vectors") + 1].notebook).name  # the engine's notebook


@pytest.fixture
def settings(tmp_path, sample_ml):
    settings = sample_settings(tmp_path)
    save_movie_embeddings(settings, *make_test_embeddings(sample_ml.movies))
    yield settings
    disconnect(settings.milvus_uri)


def test_build_stores_records_what_it_ingested(settings, sample_ml) -> None:
    report = build_stores(settings, ml=sample_ml, progress=False)
    assert report.check.ok and report.vectors.count == report.catalog.movies == len(sample_ml.movies)
    record = json.loads(stores_record_path(settings).read_text())
    assert record["milvus_uri"] == settings.milvus_uri and record["movies"] == len(sample_ml.movies)
    assert (record["index_type"], record["metric"]) == ("FLAT", "IP")
    manifest = read_manifest(stores_record_path(settings))
    assert manifest["stage"] == "vectors"
    assert manifest["inputs"]["embeddings"] == read_manifest(embeddings_path(settings))["fingerprint"]
    assert not building_marker_path(settings).exists()  # the crash marker goes once the record is written


def test_rerun_changes_nothing(settings, sample_ml) -> None:
    build_stores(settings, ml=sample_ml, progress=False)
    store, catalog = VectorStore(settings), Catalog(settings)
    vectors_before, catalog_before = store.metadata(), catalog.counts()
    again = build_stores(settings, ml=sample_ml, progress=False)
    assert again.vectors.removed == 0 and again.check.ok
    assert store.metadata().equals(vectors_before) and catalog.counts() == catalog_before


def test_a_retrained_model_with_another_size_replaces_the_collection(settings, sample_ml) -> None:
    build_stores(settings, ml=sample_ml, progress=False)
    save_movie_embeddings(settings, *make_test_embeddings(sample_ml.movies, dim=8))
    report = build_stores(settings, ml=sample_ml, progress=False)
    assert report.check.ok and VectorStore(settings).dim() == 8


def test_missing_embeddings_name_the_training_notebook(tmp_path, sample_ml) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(notebook_for("model"))):
        build_stores(sample_settings(tmp_path), ml=sample_ml, progress=False)


def test_notebook_shape() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    sources = "\n".join(c.source for c in code)
    assert nb.cells[0].cell_type == "markdown" and "Learning objectives" in nb.cells[0].source
    assert code[0].source.strip() == "from helpers.notebook import init_notebook\n\nsettings = init_notebook()"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "commit without outputs"
    # one path per job: build_stores (with its crash marker) fills the stores; nothing ingests by hand
    assert "build_stores(settings, ml)" in sources and ".ingest(" not in sources
    assert "store.close()" in code[-1].source and "catalog.close()" in code[-1].source  # frees the Lite file
    assert "RecommendationEngine" not in sources  # the engine is the next notebook's
    assert "Recap" in nb.cells[-1].source and NEXT in nb.cells[-1].source
