"""Building both stores from the artifacts (`build_stores`), checking they agree, and the record of what was built."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.artifacts import atomic_path, write_manifest
from helpers.config import Settings
from helpers.stores.catalog import Catalog, CatalogReport
from helpers.stores.errors import StoreError
from helpers.stores.milvus import IngestReport, VectorStore
from helpers.stores.milvus_client import STORES_NOTEBOOK
from helpers.stores.sql import safe_url
from helpers.training.embeddings import embeddings_path, load_movie_embeddings

STORES_BUILDING = "stores.building.json"
STORES_RECORD = "stores.json"


class StoresOutOfStepError(StoreError):
    """Milvus and the catalog disagree about which movies exist; re-run the vector store notebook."""


# -- the two stores together ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreCheck:
    """Whether Milvus and the catalog hold the same movies with the same title, year and genres."""

    vectors: int
    catalog: int
    only_in_vectors: list[int] = field(default_factory=list)
    only_in_catalog: list[int] = field(default_factory=list)
    different: list[int] = field(default_factory=list)  # in both, but title/year/genres differ

    @property
    def ok(self) -> bool:
        return not (self.only_in_vectors or self.only_in_catalog or self.different)

    def __str__(self) -> str:
        if self.ok:
            return f"stores agree: {self.vectors:,} movies in Milvus and in the catalog"
        return (f"stores OUT OF STEP: Milvus {self.vectors:,} movies, catalog {self.catalog:,}; only in Milvus "
                f"{self.only_in_vectors[:10]}, only in the catalog {self.only_in_catalog[:10]}, different "
                f"details {self.different[:10]}")

    def raise_if_out_of_step(self) -> None:
        if not self.ok:
            raise StoresOutOfStepError(f"{self}. Re-run {STORES_NOTEBOOK} to ingest both again.")


def verify_stores(store: VectorStore, catalog: Catalog) -> StoreCheck:
    """Compare every movie in Milvus with the catalog (ids, then title, year and genres)."""
    in_vectors = store.metadata()
    in_catalog = catalog.all_movies()[["movie_id", "title", "year", "genres"]]
    vector_ids, catalog_ids = set(in_vectors["movie_id"].tolist()), set(in_catalog["movie_id"].tolist())
    both = in_vectors.merge(in_catalog, on="movie_id", suffixes=("_v", "_c"))
    differs = ((both["title_v"] != both["title_c"])
               | (both["year_v"].astype("Float64").fillna(-1) != both["year_c"].astype("Float64").fillna(-1))
               | (both["genres_v"].map(tuple) != both["genres_c"].map(tuple)))
    return StoreCheck(vectors=len(vector_ids), catalog=len(catalog_ids),
                      only_in_vectors=sorted(vector_ids - catalog_ids), only_in_catalog=sorted(catalog_ids - vector_ids),
                      different=sorted(both.loc[differs, "movie_id"].astype(int).tolist()))


@dataclass(frozen=True)
class StoresReport:
    catalog: CatalogReport
    vectors: IngestReport
    check: StoreCheck


def stores_record_path(settings: Settings) -> Path:
    return settings.artifacts_dir / STORES_RECORD


def write_stores_record(settings: Settings, vectors: IngestReport, check: StoreCheck) -> Path:
    """Record what was ingested where (stage `vectors`, input: the embeddings), so a later retraining shows
    up as a stale record instead of silently serving old vectors."""
    path = stores_record_path(settings)
    record = {"milvus_uri": settings.milvus_uri, "catalog_url": safe_url(settings.catalog_url),
              "movies": vectors.count, "index_type": vectors.index.index_type, "metric": vectors.index.metric_type,
              "stores_agree": check.ok, "genre_fields": vectors.genre_fields}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    write_manifest(path, "vectors", settings, inputs={"embeddings": embeddings_path(settings)})
    return path


def building_marker_path(settings: Settings) -> Path:
    return settings.artifacts_dir / STORES_BUILDING


def build_stores(settings: Settings, ml: Any = None, progress: bool = True) -> StoresReport:
    """Both stores in one call (the vector store notebook's build): ingest the catalog (MovieLens) and the
    embeddings artifact into Milvus, verify the two agree, and write the record. Safe to re-run, and safe to
    kill: each store is swapped in whole (the catalog's staging tables, Milvus' alias), and
    `stores.building.json` marks the build from its first write to the record, so an engine that starts after
    a kill checks the stores before serving."""
    from helpers.data.loader import load_dataset

    embeddings = load_movie_embeddings(settings)  # Milvus gets the candidate vectors
    ml = load_dataset(settings) if ml is None else ml
    marker = building_marker_path(settings)
    marker.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(marker) as tmp:
        tmp.write_text(json.dumps({"started": time.strftime("%Y-%m-%d %H:%M:%S"), "pid": os.getpid(),
                                   "milvus_uri": settings.milvus_uri, "catalog_url": safe_url(settings.catalog_url)}))
    catalog = Catalog(settings)
    catalog_report = catalog.ingest(ml, progress=progress)
    store = VectorStore(settings)
    vector_report = store.ingest(embeddings.movie_ids, embeddings.vectors, ml.movies, progress=progress,
                                 replace_other_dim=True)
    check = verify_stores(store, catalog)
    check.raise_if_out_of_step()
    write_stores_record(settings, vector_report, check)
    marker.unlink()
    return StoresReport(catalog_report, vector_report, check)


def recorded_movies(settings: Settings) -> int | None:
    """The movie count the stores record holds for this Milvus URI (None without a record)."""
    path = stores_record_path(settings)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return int(record["movies"]) if record.get("milvus_uri") == settings.milvus_uri and "movies" in record else None

