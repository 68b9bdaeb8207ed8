"""The recommendation engine: liked movie ids -> ranked, explained movies, from Milvus and the SQL catalog.

`RecommendationEngine.recommend(liked, k, genres, years)`:
1. checks the input (RecommendError with what to do on bad input);
2. checks that Milvus holds the liked movies (unknown ids are named in the error);
3. turns them into query vectors with its query encoder (`helpers.query`: by default the mean of the liked
   movies' query vectors from notebook 03's embeddings artifact) and searches Milvus, which holds the
   candidate vectors, by inner product, with the genre and year filters applied IN Milvus, combining the
   liked movies by `combine` (below), and drops the liked movies themselves;
4. joins the catalog for titles, years and genres, and says which liked movie each result came from
   (the liked movie whose query vector scores it highest).
An empty liked list returns the most rated movies passing the filters (`source="popular"`, score = number
of ratings).

How several liked movies are combined (`combine`), measured with notebook 03's history protocol
(protocol (b) of helpers.evaluate: a user's last 10 training movies as the liked list) by
`bench/recommend_latency.py --quality` (docs/benchmarks.md, notebook 04):
* `"mean"` (the default, the winner): one search with the normalised mean of the liked query vectors. On ML-1M
  (users 1-2999) validation HR@10 0.123 vs 0.107 for "max" (1.15x) and 0.115 for "sum"; test 0.108 vs
  0.100 and 0.105. It is also the fastest: one query vector whatever the number of liked movies.
* `"max"`: one search per liked movie (one Milvus call, one query vector per liked movie), each candidate
  scored by its best score from any liked movie. Exact: over-fetching `k + len(liked)` per query suffices.
* `"sum"`: one search per liked movie cut at `per_movie_limit` hits, similarities summed.
`numpy_recommend` is the same ranking by brute force over the embeddings in memory: the tests and the
benchmark hold the engine to it. (The figures above were measured with the symmetric max-margin model of
the time, whose vectors were unit length so that the scores were cosines.)
"""
from __future__ import annotations

import json
import numbers
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from helpers.artifacts import atomic_path, manifest_path, require, write_manifest
from helpers.catalog import Catalog, CatalogReport, control_characters, safe_url
from helpers.config import Settings, get_settings
from helpers.embeddings import embeddings_path, load_movie_embeddings, normalise
from helpers.query import MeanQueryEncoder, QueryEncoder, UnknownQueryMovies
from helpers.errors import RecsysError
from helpers.vectors import IngestReport, VectorStore, VectorStoreError

MAX_K = 100
MAX_LIKED = 200
MAX_ID = 2**63 - 1  # ids are signed 64-bit in both stores
STORES_BUILDING = "stores.building.json"
COMBINE_METHODS: tuple[str, ...] = ("mean", "max", "sum")
DEFAULT_COMBINE = "mean"
DEFAULT_PER_MOVIE_LIMIT = 100
STORES_RECORD = "stores.json"


class RecommendError(RecsysError, ValueError):
    """Bad input to the engine; the message says what to do."""


class StoresOutOfStepError(RecsysError, RuntimeError):
    """Milvus and the catalog disagree about which movies exist; re-run notebook 04."""


@dataclass(frozen=True)
class Recommendation:
    movie_id: int
    title: str
    year: int | None
    genres: list[str]
    score: float
    because_of: int | None  # the liked movie id this came from (None for the popularity fallback)
    because_of_title: str | None
    source: str  # "pinsage" or "popular"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- input checks ------------------------------------------------------------------------------------------
def _check_ids(liked_movie_ids: Any) -> list[int]:
    if isinstance(liked_movie_ids, (str, bytes)) or not isinstance(liked_movie_ids, (Sequence, np.ndarray, set)):
        raise RecommendError(f"liked_movie_ids must be a list of movie ids, e.g. [1, 260], got {liked_movie_ids!r}")
    ids = []
    for value in liked_movie_ids:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise RecommendError(f"Movie ids are whole numbers; {value!r} is not. Find ids with search_titles().")
        if not 1 <= value <= MAX_ID:
            shown = str(int(value))
            shown = shown if len(shown) <= 24 else f"{shown[:20]}... ({len(shown)} digits)"
            raise RecommendError(f"Movie id {shown} is out of range: ids are whole numbers from 1 to 2**63-1. "
                                 "Find ids with search_titles().")
        ids.append(int(value))
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RecommendError(f"Liked movie ids repeat: {repeated}. List each movie once.")
    if len(ids) > MAX_LIKED:
        raise RecommendError(f"{len(ids)} liked movies is more than the {MAX_LIKED} the engine takes; pick fewer.")
    return ids


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= MAX_K:
        raise RecommendError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    return int(k)


def _check_years(years: Any) -> tuple[int, int] | None:
    if years is None:
        return None
    try:
        low, high = years
        if any(isinstance(y, bool) or not isinstance(y, numbers.Integral) for y in (low, high)):
            raise TypeError
    except (TypeError, ValueError):
        raise RecommendError(f"years must be a (first, last) pair of whole years, e.g. (1990, 1999), got {years!r}") from None
    if low > high:
        raise RecommendError(f"years={years!r}: the first year is after the last; give (earlier, later)")
    return int(low), int(high)


def _check_genres(genres: Any, known: Sequence[str]) -> list[str] | None:
    if genres is None:
        return None
    if isinstance(genres, str) or not all(isinstance(g, str) for g in genres):
        raise RecommendError(f"genres must be a list of genre names, e.g. ['Comedy'], got {genres!r}")
    genres = list(dict.fromkeys(genres))
    unknown = [g for g in genres if g not in known]
    if unknown:
        raise RecommendError(f"Unknown genre(s) {unknown}. Known genres: {', '.join(known)}")
    return genres or None


# -- fusion (shared by the engine and the NumPy reference) ---------------------------------------------------
def fuse(per_query: list[list[tuple[int, float]]], combine: str) -> dict[int, tuple[float, int]]:
    """Candidate -> (fused score, index of the liked movie that contributed most) from per-query hit lists."""
    fused: dict[int, tuple[float, int, float]] = {}  # id -> (score, best query, best similarity)
    for q, hits in enumerate(per_query):
        for movie_id, score in hits:
            if movie_id not in fused:
                fused[movie_id] = (score, q, score)
                continue
            total, best_q, best = fused[movie_id]
            if combine == "max":
                fused[movie_id] = (max(total, score), q if score > best else best_q, max(best, score))
            else:  # "sum"
                fused[movie_id] = (total + score, q if score > best else best_q, max(best, score))
    return {movie_id: (score, q) for movie_id, (score, q, _) in fused.items()}


def _ranked(candidates: dict[int, tuple[float, int]], exclude: set[int], k: int) -> list[tuple[int, float, int]]:
    """The top `k` (id, score, query index), highest score first, ties by lower id."""
    rows = [(mid, s, q) for mid, (s, q) in candidates.items() if mid not in exclude]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return rows[:k]


def numpy_recommend(movie_ids: np.ndarray, vectors: np.ndarray, liked_movie_ids: Sequence[int], k: int = 10,
                    combine: str = DEFAULT_COMBINE, allowed: np.ndarray | None = None,
                    per_movie_limit: int = DEFAULT_PER_MOVIE_LIMIT,
                    query_vectors: np.ndarray | None = None) -> list[tuple[int, float, int]]:
    """Reference ranking by brute force in memory: (movie id, score, liked movie id it came from), best first.
    `vectors` are the candidate vectors and `query_vectors` (default: `vectors`) the query vectors, as in
    the embeddings artifact; `allowed` is a boolean mask over `movie_ids` (the filters); liked movies never
    come back."""
    movie_ids = np.asarray(movie_ids, dtype=np.int64)
    liked = [int(m) for m in liked_movie_ids]
    by_id = np.argsort(movie_ids)
    rows = by_id[np.clip(np.searchsorted(movie_ids, liked, sorter=by_id), 0, len(movie_ids) - 1)]
    if not np.array_equal(movie_ids[rows], liked):
        raise RecommendError(f"liked movie id(s) {sorted(set(liked) - set(movie_ids[rows].tolist()))} have no vector")
    query = (vectors if query_vectors is None else query_vectors)[rows]
    similarity = query @ vectors.T  # [n_liked, n_movies]
    mask = np.ones(len(movie_ids), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if combine == "mean":
        scores = similarity.mean(axis=0) / max(float(np.linalg.norm(query.mean(axis=0))), 1e-12)
    elif combine == "max":
        scores = similarity.max(axis=0)
    elif combine == "sum":
        limit = max(per_movie_limit, k + len(liked))
        masked = np.where(mask, similarity, -np.inf)
        cut = np.sort(masked, axis=1)[:, -min(limit, mask.sum())][:, None]
        retrieved = (masked >= cut) & mask
        scores = np.where(retrieved, similarity, 0.0).sum(axis=0)
        mask = mask & retrieved.any(axis=0)
    else:
        raise RecommendError(f"Unknown combine method {combine!r}; use one of {', '.join(COMBINE_METHODS)}")
    candidates = np.flatnonzero(mask & ~np.isin(movie_ids, liked))
    if len(candidates) > 4 * k:  # only the best few need the exact (score, id) ordering
        candidates = candidates[np.argpartition(-scores[candidates], 4 * k)[:4 * k]]
    order = candidates[np.lexsort((movie_ids[candidates], -scores[candidates]))][:k]
    best = similarity[:, order].argmax(axis=0)
    return [(int(movie_ids[i]), float(scores[i]), liked[int(b)]) for i, b in zip(order, best, strict=True)]


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
            raise StoresOutOfStepError(f"{self}. Re-run notebooks/04_vector_store.ipynb to ingest both again.")


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
              "stores_agree": check.ok}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    write_manifest(path, "vectors", settings, inputs={"embeddings": embeddings_path(settings)})
    return path


def building_marker_path(settings: Settings) -> Path:
    return settings.artifacts_dir / STORES_BUILDING


def build_stores(settings: Settings, ml: Any = None, progress: bool = True) -> StoresReport:
    """Notebook 04 in one call: ingest the catalog (MovieLens) and the embeddings artifact into Milvus,
    verify the two agree, and write the record. Safe to re-run, and safe to kill: each store is swapped in
    whole (the catalog's staging tables, Milvus' alias), and `stores.building.json` marks the build from
    its first write to the record, so an engine that starts after a kill checks the stores before serving."""
    from helpers.data import load_dataset

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


# -- the engine ----------------------------------------------------------------------------------------------
class RecommendationEngine:
    """Recommendations from the Milvus collection and the SQL catalog that notebook 04 filled.
    One Milvus client and one SQLAlchemy engine per process; `close()` releases them (and Milvus Lite's file).
    `encoder` turns liked movies into query vectors (default: `MeanQueryEncoder` of the embeddings artifact)."""

    def __init__(self, settings: Settings | None = None, combine: str = DEFAULT_COMBINE,
                 per_movie_limit: int = DEFAULT_PER_MOVIE_LIMIT, encoder: QueryEncoder | None = None):
        if combine not in COMBINE_METHODS:
            raise RecommendError(f"Unknown combine method {combine!r}; use one of {', '.join(COMBINE_METHODS)}")
        if per_movie_limit < 1:
            raise RecommendError(f"per_movie_limit must be at least 1, got {per_movie_limit}")
        self.settings = settings or get_settings()
        self.combine = combine
        self.per_movie_limit = per_movie_limit
        self._check_record()
        self.store = VectorStore(self.settings)
        try:
            self.catalog = Catalog(self.settings)
            if self.store.count() == 0:
                raise VectorStoreError(f"The Milvus collection at {self.settings.milvus_uri} is empty: run "
                                       "notebooks/04_vector_store.ipynb first.")
            self.catalog.genres()  # fails with "run notebook 04" when the tables are missing
            self._check_interrupted_build()
            self.encoder = encoder or MeanQueryEncoder.from_settings(self.settings)
        except BaseException:
            self.store.close()
            raise

    def _check_record(self) -> None:
        """When notebook 04 left a record for this Milvus URI, fail if the embeddings changed since."""
        path = stores_record_path(self.settings)
        if manifest_path(path).exists() and json.loads(path.read_text()).get("milvus_uri") == self.settings.milvus_uri:
            require(path, "vectors", self.settings, inputs={"embeddings": embeddings_path(self.settings)})

    def _check_interrupted_build(self) -> None:
        """After a `build_stores` that never finished (killed), serve only if the two stores still agree."""
        marker = building_marker_path(self.settings)
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            return
        if info.get("milvus_uri") != self.settings.milvus_uri:
            return
        check = verify_stores(self.store, self.catalog)
        if not check.ok:
            raise StoresOutOfStepError(
                f"The stores build started {info.get('started')} (process {info.get('pid')}) did not finish and "
                f"left the {check}. Re-run notebooks/04_vector_store.ipynb (or build_stores) to finish it.")

    # -- recommendations -------------------------------------------------------------------------------------
    def recommend(self, liked_movie_ids: Sequence[int], k: int = 10, genres: Sequence[str] | None = None,
                  years: tuple[int, int] | None = None) -> list[Recommendation]:
        """The `k` movies most like `liked_movie_ids` (in `genres`, released within `years`), best first."""
        liked = _check_ids(liked_movie_ids)
        k = _check_k(k)
        years = _check_years(years)
        genres = _check_genres(genres, self.genres())
        if not liked:
            return self._popular(k, genres, years)
        stored = self.store.get(liked, with_vectors=False)
        self._check_known(liked, stored)
        try:
            query = self.encoder.movie_vectors(liked)
        except UnknownQueryMovies as error:
            raise StoresOutOfStepError(f"Movie id(s) {error.movie_ids} are in Milvus but have no query vector in the "
                                       "embeddings artifact: re-run notebooks/04_vector_store.ipynb so that Milvus "
                                       "holds the vectors of notebook 03's embeddings.") from None
        if self.combine == "mean":
            centre = normalise(self.encoder.encode(liked)[None, :])
            hits = self.store.search(centre, limit=k + len(liked), genres=genres, years=years, with_vectors=True)[0]
            exclude = set(liked)
            top = [(h.movie_id, h.score, int(np.argmax(query @ h.vector))) for h in hits if h.movie_id not in exclude][:k]
        else:
            limit = k + len(liked) if self.combine == "max" else max(self.per_movie_limit, k + len(liked))
            per_query = self.store.search(query, limit=limit, genres=genres, years=years)
            fused = fuse([[(h.movie_id, h.score) for h in hits] for hits in per_query], self.combine)
            top = _ranked(fused, set(liked), k)
        return self._explain(top, liked)

    def _check_known(self, liked: list[int], stored: dict[int, dict[str, Any]]) -> None:
        missing = [m for m in liked if m not in stored]
        if not missing:
            return
        in_catalog = sorted(self.catalog.movies(missing))
        unknown = [m for m in missing if m not in in_catalog]
        parts = []
        if unknown:
            parts.append(f"unknown movie id(s) {unknown}: they are not in the catalog; find ids with search_titles()")
        if in_catalog:
            parts.append(f"movie id(s) {in_catalog} are in the catalog but have no embedding: the stores are out of "
                         "step, re-run notebooks/04_vector_store.ipynb")
        if unknown:
            raise RecommendError("; ".join(parts))
        raise StoresOutOfStepError(parts[0])  # the client asked for a real movie: the server's stores are at fault

    def _explain(self, top: list[tuple[int, float, int]], liked: list[int]) -> list[Recommendation]:
        rows = self.catalog.movies([m for m, _, _ in top] + liked)
        missing = [m for m, _, _ in top if m not in rows]
        if missing:
            raise StoresOutOfStepError(f"Movie id(s) {missing} are in Milvus but not in the catalog: re-run "
                                       "notebooks/04_vector_store.ipynb to ingest both stores again.")
        out = []
        for movie_id, score, q in top:
            row, source = rows[movie_id], liked[q]
            out.append(Recommendation(movie_id=movie_id, title=row["title"], year=row["year"], genres=row["genres"],
                                      score=float(score), because_of=source,
                                      because_of_title=rows[source]["title"] if source in rows else None,
                                      source="pinsage"))
        return out

    def _popular(self, k: int, genres: list[str] | None, years: tuple[int, int] | None) -> list[Recommendation]:
        return [Recommendation(movie_id=r["movie_id"], title=r["title"], year=r["year"], genres=r["genres"],
                               score=float(r["n_ratings"]), because_of=None, because_of_title=None, source="popular")
                for r in self.catalog.popular(k, genres=genres, years=years)]

    # -- look-ups ---------------------------------------------------------------------------------------------
    def search_titles(self, query: str, limit: int = 10) -> list[dict]:
        """Movies whose title contains `query` (ignoring case and accents), most rated first: {movie_id, title, year, genres}."""
        if not isinstance(query, str):
            raise RecommendError(f"query must be text, got {query!r}")
        if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or not 1 <= limit <= MAX_K:
            raise RecommendError(f"limit must be a whole number from 1 to {MAX_K}, got {limit!r}")
        if control_characters(query):
            raise RecommendError(f"The query holds control characters {control_characters(query)[:5]} (such as "
                                 "NUL): search with plain text.")
        if not query.strip():
            return []
        return [{key: r[key] for key in ("movie_id", "title", "year", "genres")}
                for r in self.catalog.search_titles(query.strip(), int(limit))]

    def movie(self, movie_id: int) -> dict:
        """One movie's catalog row (title, year, genres, n_ratings, mean_rating)."""
        (movie_id,) = _check_ids([movie_id])
        row = self.catalog.movie(movie_id)
        if row is None:
            raise RecommendError(f"Unknown movie id {movie_id}: find ids with search_titles()")
        return row

    def genres(self) -> list[str]:
        return self.catalog.genres()

    def health(self) -> dict[str, Any]:
        """Whether each store works right now and holds what the stores record says, from reads of the real
        tables and collection (cheap at any size: movies are counted, never ratings):
        {"ok", "stores": {"milvus", "catalog"}, "movies": {"milvus", "catalog", "record"}, "building",
        "problems": [what is wrong, in which store, and what to do]}."""
        problems: list[str] = []
        counts: dict[str, int | None] = {"milvus": None, "catalog": None,
                                         "record": recorded_movies(self.settings)}
        try:
            if self.store.lite and not Path(self.store.uri).exists():
                raise VectorStoreError(f"The Milvus Lite file {self.store.uri} is gone: rebuild it with "
                                       "notebooks/04_vector_store.ipynb, then restart the API or page.")
            counts["milvus"] = self.store.count(consistency="Bounded")
        except RecsysError as error:
            problems.append(f"Milvus: {error}")
        try:
            counts["catalog"] = self.catalog.movie_count()
        except RecsysError as error:
            problems.append(f"catalog: {error}")
        wrong = {name for name in ("milvus", "catalog") if counts[name] is None}
        for name in ("milvus", "catalog"):
            if counts[name] == 0:
                wrong.add(name)
                problems.append(f"{name}: holds no movies: run notebooks/04_vector_store.ipynb.")
        milvus, catalog, record = counts["milvus"], counts["catalog"], counts["record"]
        if milvus and catalog:
            if record is not None:
                for name, count in (("milvus", milvus), ("catalog", catalog)):
                    if count != record:
                        wrong.add(name)
                        problems.append(f"{name}: holds {count:,} movies but the stores record says {record:,}: "
                                        "it changed after notebook 04; re-run notebooks/04_vector_store.ipynb.")
            elif milvus != catalog:
                wrong.update(("milvus", "catalog"))
                problems.append(f"Milvus holds {milvus:,} movies and the catalog {catalog:,}: re-run "
                                "notebooks/04_vector_store.ipynb.")
        stores = {name: name not in wrong for name in ("milvus", "catalog")}
        return {"ok": not problems, "stores": stores, "movies": counts,
                "building": building_marker_path(self.settings).exists(), "problems": problems}

    def close(self) -> None:
        """Release the Milvus client (and Milvus Lite's file lock) and the catalog's connection pool."""
        self.store.close()
        self.catalog.close()

    def __enter__(self) -> RecommendationEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
