"""Building both stores from the artifacts (`build_stores`), checking they agree, and the record of what was built."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.artifacts import atomic_path, write_manifest
from helpers.config import Settings
from helpers.stores.added import AddedMovies
from helpers.stores.catalog import Catalog, CatalogReport
from helpers.stores.errors import StoreError
from helpers.stores.milvus import IngestReport, VectorStore
from helpers.stores.milvus_client import STORES_NOTEBOOK
from helpers.stores.sql import safe_url, sqlite_path
from helpers.training.embeddings import embeddings_path, load_movie_embeddings

STORES_BUILDING = "stores.building.json"
STORES_RECORD = "stores.json"
MAX_RATING_VALUES = 20  # a dataset with more distinct ratings records no scale (any finite rating is taken)


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
                      only_in_vectors=sorted(vector_ids - catalog_ids),
                      only_in_catalog=sorted(catalog_ids - vector_ids),
                      different=sorted(both.loc[differs, "movie_id"].astype(int).tolist()))


@dataclass(frozen=True)
class StoresReport:
    catalog: CatalogReport
    vectors: IngestReport
    check: StoreCheck


def stores_record_path(settings: Settings) -> Path:
    return settings.artifacts_dir / STORES_RECORD


def write_stores_record(settings: Settings, vectors: IngestReport, check: StoreCheck, added: int = 0,
                        rating_values: list[float] | None = None) -> Path:
    """Record what was ingested where (stage `vectors`, input: the embeddings), so a later retraining shows
    up as a stale record instead of silently serving old vectors; `added`: how many of the movies were added
    after training, `rating_values`: the dataset's rating scale (what an added movie's ratings are checked on)."""
    path = stores_record_path(settings)
    record = {"milvus_uri": settings.milvus_uri, "catalog_url": safe_url(settings.catalog_url),
              "movies": vectors.count, "index_type": vectors.index.index_type, "metric": vectors.index.metric_type,
              "stores_agree": check.ok, "genre_fields": vectors.genre_fields,
              "added": added, "rating_values": rating_values}
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
    added = AddedMovies(catalog)
    rating_values = sorted({float(v) for v in ml.ratings["rating"].unique()[:MAX_RATING_VALUES + 1]})
    ml, movie_ids, vectors = keep_added_movies(settings, added, ml, embeddings) if catalog_exists(catalog) else (
        ml, embeddings.movie_ids, embeddings.vectors)
    catalog_report = catalog.ingest(ml, progress=progress)
    added.drop_unfinished()  # adds and removals a kill interrupted: the rebuilt stores hold neither
    store = VectorStore(settings)
    vector_report = store.ingest(movie_ids, vectors, ml.movies, progress=progress, replace_other_dim=True)
    check = verify_stores(store, catalog)
    check.raise_if_out_of_step()
    write_stores_record(settings, vector_report, check, added=len(movie_ids) - len(embeddings.movie_ids),
                        rating_values=rating_values if len(rating_values) <= MAX_RATING_VALUES else None)
    marker.unlink()
    return StoresReport(catalog_report, vector_report, check)


def catalog_exists(catalog: Catalog) -> bool:
    """Whether the catalog's database can be read already (a first build creates it)."""
    path = sqlite_path(catalog.url)
    return path is None or path.exists()


def keep_added_movies(settings: Settings, added: AddedMovies, ml: Any, embeddings: Any) -> tuple[Any, Any, Any]:
    """The dataset with the live added movies appended (their metadata and ratings), and the embeddings with
    their candidate vectors re-embedded by the current model (a retrained model moves every vector)."""
    movies, ratings = added.frames()
    if not len(movies):
        return ml, embeddings.movie_ids, embeddings.vectors
    from helpers.data.movielens import MovieLens
    from helpers.training.new_movies import NewMovieEmbedder

    clash = sorted(set(movies["movie_id"]) & set(ml.movies["movie_id"]))
    if clash:
        raise StoreError(f"Added movies {clash[:10]} have ids of the dataset's own movies (another dataset?): remove "
                         "them (python -m helpers.serving.admin remove ID) before building these stores.")
    by_id = ml.movies.set_index("movie_id")["year"]
    embedder = NewMovieEmbedder(settings, lambda ids: by_id.loc[ids])
    fresh = {}
    for movie in added.rows():
        vectors = embedder.embed(movie.title, movie.year, movie.genres, [u for u, _, _ in movie.ratings])
        fresh[movie.movie_id] = (vectors.candidate, vectors.query, vectors.neighbours)
    added.replace_vectors(fresh)
    merged = MovieLens(ml.name, pd.concat([ml.ratings, ratings.astype(ml.ratings.dtypes)], ignore_index=True),
                       pd.concat([ml.movies, movies], ignore_index=True), ml.users, ml.source_dir)
    ids = np.concatenate([embeddings.movie_ids, movies["movie_id"].to_numpy(dtype=np.int64)])
    return merged, ids, np.vstack([embeddings.vectors, np.stack([fresh[m][0] for m in movies["movie_id"]])])


def recorded(settings: Settings, key: str) -> Any:
    """One entry of the stores record for this Milvus URI (None without a record or the entry)."""
    try:
        record = json.loads(stores_record_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return record.get(key) if record.get("milvus_uri") == settings.milvus_uri else None


def recorded_movies(settings: Settings) -> int | None:
    """The movie count the stores record holds for this Milvus URI (None without a record)."""
    movies = recorded(settings, "movies")
    return None if movies is None else int(movies)
