"""The recommendation engine: liked movie ids -> ranked, explained movies, from Milvus and the SQL catalog.

`RecommendationEngine.recommend(liked, k, genres, years)`:
1. checks the input (RecommendError with what to do on bad input) and that the liked movies have query
   vectors in the encoder's lookup, in memory (unknown ids are named in the error; only then are the stores read,
   to say whether the ids are unknown or the stores out of step);
2. turns them, in the order given, into query vectors with its query encoder (`helpers.engine.query`, picked
   by `load_query_encoder` from `RECSYS_QUERY_ENCODER`: today the mean of the liked movies' query vectors,
   read through the encoder's `MovieVectorLookup`) and searches Milvus ONCE, which holds the candidate vectors, by
   inner product, with the genre and year filters applied IN Milvus, combining the liked movies by
   `combine` (below), and drops the liked movies themselves;
3. joins the catalog for titles, years and genres (ONE query), and says which liked movie each result came from
   (the liked movie whose query vector scores it highest, from the vectors the search returned) and which
   encoder made the query (`encoder`).
So a recommendation costs one Milvus round trip and one catalog query; whether the two stores agree is checked
when the engine opens (the stores record, an interrupted build) and by `health()`, never per request.
`recommend(..., timings={})` adds each stage's nanoseconds to the dict (`helpers.engine.timings`).
An empty liked list returns the most rated movies passing the filters (`source="popular"`, `encoder=None`,
score = number of ratings).

How several liked movies are combined (`combine`; each method is defined once in `helpers.ranking`):
* `"mean"` (the default): one search with the normalised mean of the liked movies' query vectors (the query
  encoder's vector), whatever the number of liked movies;
* `"max"`: one search per liked movie (one Milvus call, one query vector per liked movie), each candidate
  scored by its best score from any liked movie. Exact: over-fetching `k + len(liked)` per query suffices;
* `"sum"`: one search per liked movie cut at `per_movie_limit` hits, the scores summed.
Notebook 06 and `python -m bench.recommend_latency --quality` compare them with notebook 03's history protocol
(docs/benchmarks.md). `helpers.engine.reference.numpy_recommend` is the same ranking by brute force over the
vectors in memory: the tests and the benchmark hold the engine to it.
"""
from __future__ import annotations

import json
import logging
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from helpers.artifacts import manifest_path, require
from helpers.config import Settings, get_settings
from helpers.engine.adding import AddedMovieInfo, MovieAdmin
from helpers.engine.inputs import (
    DEFAULT_K,
    MAX_SEARCH_RESULTS,
    RecommendError,
    check_genres,
    check_ids,
    check_k,
    check_years,
)
from helpers.engine.query import QueryEncoder, load_query_encoder
from helpers.engine.timings import Stopwatch
from helpers.errors import RecsysError
from helpers.ranking import (
    COMBINE_METHODS,
    DEFAULT_COMBINE,
    DEFAULT_PER_MOVIE_LIMIT,
    fuse,
    normalise_rows,
    ranked,
)
from helpers.stores.build import (
    STORES_NOTEBOOK,
    StoresOutOfStepError,
    building_marker_path,
    recorded,
    recorded_movies,
    stores_record_path,
    verify_stores,
)
from helpers.stores.catalog import Catalog
from helpers.stores.milvus import VectorStore
from helpers.stores.milvus_client import VectorStoreError
from helpers.stores.sql import control_characters
from helpers.training.embeddings import embeddings_path

log = logging.getLogger(__name__)
PER_MOVIE = "per-movie"  # the `encoder` of combine="max"/"sum": each liked movie's own query vector searched


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
    # the query encoder that made the query vector ("mean", ...; PER_MOVIE for combine max/sum; None: popular)
    encoder: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Recommendations(list[Recommendation]):
    """`recommend()`'s ranked list; `.encoder` names the query encoder that answered even when no movie
    passed the filters (None for the popularity fallback)."""

    def __init__(self, items: Sequence[Recommendation] = (), encoder: str | None = None):
        super().__init__(items)
        self.encoder = encoder


# -- the engine ----------------------------------------------------------------------------------------------
class RecommendationEngine:
    """Recommendations from the Milvus collection and the SQL catalog that `STORES_NOTEBOOK` filled.
    One Milvus client and one SQLAlchemy engine per process; `close()` releases them (and Milvus Lite's file).
    `encoder` turns liked movies into query vectors: a `QueryEncoder`, or a name for `load_query_encoder`
    (default: `settings.query_encoder`, i.e. RECSYS_QUERY_ENCODER, "auto")."""

    def __init__(self, settings: Settings | None = None, combine: str = DEFAULT_COMBINE,
                 per_movie_limit: int = DEFAULT_PER_MOVIE_LIMIT, encoder: QueryEncoder | str | None = None):
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
                                       f"{STORES_NOTEBOOK} first.")
            # fails with "run the vector store notebook" when the tables are missing, or when the collection was
            # built without the per-genre fields that genre filters use (an earlier version)
            self.store.check_genre_fields(self.catalog.genres())
            self._check_interrupted_build()
            self._admin: MovieAdmin | None = None
            self.admin.resolve_leftovers()  # an add or removal killed between the stores is undone first
            self.encoder = (encoder if isinstance(encoder, QueryEncoder)
                            else load_query_encoder(self.settings, encoder))
            log.info("%r", self)
        except BaseException:
            self.store.close()
            raise

    def _check_record(self) -> None:
        """When `build_stores` left a record for this Milvus URI, fail if the embeddings changed since."""
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
                f"left the {check}. Re-run {STORES_NOTEBOOK} (or build_stores) to finish it.")

    # -- recommendations -------------------------------------------------------------------------------------
    def recommend(self, liked_movie_ids: Sequence[int], k: int = DEFAULT_K, genres: Sequence[str] | None = None,
                  years: tuple[int, int] | None = None, timings: dict[str, int] | None = None) -> list[Recommendation]:
        """The `k` movies most like `liked_movie_ids` (in `genres`, released within `years`), best first.
        One Milvus search and one catalog query (none to Milvus for an empty list). `timings`: a dict to add
        each stage's nanoseconds to (`helpers.engine.timings.STAGES`); None (the default) times nothing."""
        clock = Stopwatch(timings)
        liked = check_ids(liked_movie_ids)
        k = check_k(k)
        years = check_years(years)
        genres = check_genres(genres, self.genres())
        if not liked:
            clock.lap("validation")
            popular = self._popular(k, genres, years)
            clock.lap("catalog")
            return Recommendations(popular, encoder=None)
        self._check_known(liked)
        clock.lap("validation")
        query = self.encoder.movie_vectors(liked)
        if self.combine == "mean":
            centre = normalise_rows(self.encoder.encode(liked)[None, :])
            clock.lap("encoding")
            hits = self.store.search(centre, limit=k + len(liked), genres=genres, years=years, with_vectors=True)[0]
            clock.lap("search")
            exclude = set(liked)
            top = [(h.movie_id, h.score, int(np.argmax(query @ h.vector)))
                   for h in hits if h.movie_id not in exclude][:k]
        else:
            clock.lap("encoding")
            limit = k + len(liked) if self.combine == "max" else max(self.per_movie_limit, k + len(liked))
            per_query = self.store.search(query, limit=limit, genres=genres, years=years)
            clock.lap("search")
            fused = fuse([[(h.movie_id, h.score) for h in hits] for hits in per_query], self.combine)
            top = ranked(fused, set(liked), k)
        clock.lap("explanation")
        name = self.encoder.name if self.combine == "mean" else PER_MOVIE
        return Recommendations(self._explain(top, liked, name, clock), encoder=name)

    def _check_known(self, liked: list[int]) -> None:
        """Liked ids must have a query vector in the encoder's lookup (in memory: no store is asked when they
        all do). Per request the engine trusts the lookup; that Milvus holds the same movies is the stores
        record's and `health()`'s business, checked at start-up and on /health, not on every call. Only when
        some id is missing are the stores read, to say whose fault it is: ids known nowhere are bad input
        (RecommendError); real movies without a query vector are the stores' fault (StoresOutOfStepError)."""
        missing = self.encoder.lookup.missing(liked)  # the artifact's vectors, then the added movies
        if not missing:
            return
        in_catalog = set(self.catalog.movies(missing))
        stored = self.store.get(missing, with_vectors=False)
        unknown = [m for m in missing if m not in in_catalog and m not in stored]
        only_in_catalog = [m for m in missing if m in in_catalog and m not in stored]
        in_milvus = [m for m in missing if m in stored]
        parts = []
        if unknown:
            parts.append(f"unknown movie id(s) {unknown}: they are not in the catalog; find ids with search_titles()")
        if only_in_catalog:
            parts.append(f"movie id(s) {only_in_catalog} are in the catalog but have no embedding: the stores are out "
                         f"of step, re-run {STORES_NOTEBOOK}")
        if in_milvus:
            parts.append(f"movie id(s) {in_milvus} are in Milvus but have no query vector in the embeddings artifact "
                         f"(nor among the added movies): re-run {STORES_NOTEBOOK} so that Milvus holds "
                         "the vectors of notebook 03's embeddings")
        if unknown:
            raise RecommendError("; ".join(parts))
        raise StoresOutOfStepError("; ".join(parts))  # the client asked for real movies: the stores are at fault

    def _explain(self, top: list[tuple[int, float, int]], liked: list[int], encoder: str,
                 clock: Stopwatch) -> list[Recommendation]:
        rows = self.catalog.movies([m for m, _, _ in top] + liked)  # one query: the hits and the liked titles
        clock.lap("catalog")
        missing = [m for m, _, _ in top if m not in rows]
        if missing:
            raise StoresOutOfStepError(f"Movie id(s) {missing} are in Milvus but not in the catalog: re-run "
                                       f"{STORES_NOTEBOOK} to ingest both stores again.")
        out = []
        for movie_id, score, q in top:
            row, source = rows[movie_id], liked[q]
            out.append(Recommendation(movie_id=movie_id, title=row["title"], year=row["year"], genres=row["genres"],
                                      score=float(score), because_of=source,
                                      because_of_title=rows[source]["title"] if source in rows else None,
                                      source="pinsage", encoder=encoder))
        clock.lap("explanation")
        return out

    def _popular(self, k: int, genres: list[str] | None, years: tuple[int, int] | None) -> list[Recommendation]:
        return [Recommendation(movie_id=r["movie_id"], title=r["title"], year=r["year"], genres=r["genres"],
                               score=float(r["n_ratings"]), because_of=None, because_of_title=None, source="popular")
                for r in self.catalog.popular(k, genres=genres, years=years)]

    # -- added movies -----------------------------------------------------------------------------------------
    @property
    def admin(self) -> MovieAdmin:
        """Adds and removes movies (`helpers.engine.adding`); the model loads on the first add."""
        if self._admin is None:
            self._admin = MovieAdmin(self)
        return self._admin

    def add_movie(self, title: str, year: int, genres: Sequence[str],
                  ratings: Sequence[tuple[int, float, int]] = ()) -> AddedMovieInfo:
        """Add a movie the model never saw, with its first ratings (user_id, rating, timestamp), to both stores:
        embedded by the trained model from its features and its raters' graph neighbours, searchable and
        recommendable at once in every process (`helpers.engine.adding`)."""
        return self.admin.add_movie(title, year, genres, ratings)

    def remove_movie(self, movie_id: int) -> None:
        """Remove an added movie from both stores (the dataset's own movies are never removed)."""
        self.admin.remove_movie(movie_id)

    # -- look-ups ---------------------------------------------------------------------------------------------
    def search_titles(self, query: str, limit: int = DEFAULT_K) -> list[dict]:
        """Movies whose title contains `query` (ignoring case and accents), most rated first: {movie_id, title, year,
        genres}."""
        if not isinstance(query, str):
            raise RecommendError(f"query must be text, got {query!r}")
        if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or not 1 <= limit <= MAX_SEARCH_RESULTS:
            raise RecommendError(f"limit must be a whole number from 1 to {MAX_SEARCH_RESULTS}, got {limit!r}")
        if control_characters(query):
            raise RecommendError(f"The query holds control characters {control_characters(query)[:5]} (such as "
                                 "NUL): search with plain text.")
        if not query.strip():
            return []
        return [{key: r[key] for key in ("movie_id", "title", "year", "genres")}
                for r in self.catalog.search_titles(query.strip(), int(limit))]

    def movie(self, movie_id: int) -> dict:
        """One movie's catalog row (title, year, genres, n_ratings, mean_rating)."""
        (movie_id,) = check_ids([movie_id])
        row = self.catalog.movie(movie_id)
        if row is None:
            raise RecommendError(f"Unknown movie id {movie_id}: find ids with search_titles()")
        return row

    def genres(self) -> list[str]:
        return self.catalog.genres()

    def health(self) -> dict[str, Any]:
        """Whether each store works right now and holds what the stores record says, from reads of the real
        tables and collection (cheap at any size: movies are counted, never ratings):
        {"ok", "stores": {"milvus", "catalog"}, "movies": {"milvus", "catalog", "record", "added"}, "building",
        "problems": [what is wrong, in which store, and what to do],
        "encoder": {"name", "requested", "fallback_reason"}} (a fallback to the mean is no problem: it answers)."""
        problems: list[str] = []
        counts: dict[str, int | None] = {"milvus": None, "catalog": None, "record": recorded_movies(self.settings),
                                         "added": None}
        try:  # the record counts the movies added before the build; those added since count too
            counts["added"] = self.admin.added.live_count()
            if counts["record"] is not None:
                counts["record"] += counts["added"] - int(recorded(self.settings, "added") or 0)
        except RecsysError as error:
            problems.append(f"catalog: {error}")
        try:
            if self.store.lite and not Path(self.store.uri).exists():
                raise VectorStoreError(f"The Milvus Lite file {self.store.uri} is gone: rebuild it with "
                                       f"{STORES_NOTEBOOK}, then restart the API or page.")
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
                problems.append(f"{name}: holds no movies: run {STORES_NOTEBOOK}.")
        milvus, catalog, record = counts["milvus"], counts["catalog"], counts["record"]
        if milvus and catalog:
            if record is not None:
                for name, count in (("milvus", milvus), ("catalog", catalog)):
                    if count != record:
                        wrong.add(name)
                        problems.append(f"{name}: holds {count:,} movies but the stores record says {record:,}: "
                                        f"it changed after {STORES_NOTEBOOK} filled it; re-run it.")
            elif milvus != catalog:
                wrong.update(("milvus", "catalog"))
                problems.append(f"Milvus holds {milvus:,} movies and the catalog {catalog:,}: re-run "
                                f"{STORES_NOTEBOOK}.")
        stores = {name: name not in wrong for name in ("milvus", "catalog")}
        return {"ok": not problems, "stores": stores, "movies": counts,
                "building": building_marker_path(self.settings).exists(), "problems": problems,
                "encoder": self.encoder.describe()}

    def __repr__(self) -> str:
        encoder = getattr(self, "encoder", None)
        return (f"RecommendationEngine(dataset={self.settings.dataset!r}, combine={self.combine!r}, "
                f"encoder={encoder!r})")

    def close(self) -> None:
        """Release the Milvus client (and Milvus Lite's file lock) and the catalog's connection pool."""
        self.store.close()
        self.catalog.close()

    def __enter__(self) -> RecommendationEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

