"""The movie vector store: one Milvus collection keyed by MovieLens movie id, through pymilvus `MilvusClient`.

Where: `RECSYS_MILVUS_URI` (`settings.milvus_uri`). By default a Milvus Lite file under
`<artifacts>/<dataset>/milvus.db`, embedded in this process; or a server such as the docker-compose one,
`http://127.0.0.1:19530` (with `RECSYS_MILVUS_TOKEN` when it has authentication on).

Collection `movies` (an alias, see Crash safety): `movie_id` INT64 primary key, `embedding` FLOAT_VECTOR,
`title` VARCHAR, `year` INT64 (0 when unknown: Milvus 2.3 servers have no nullable fields, and a year range filter
never matches 0), `genres` ARRAY<VARCHAR> (what `get` and `metadata` read), and one BOOL field per genre, named by
`helpers.stores.milvus_rows.genre_field` (`genre_Comedy`, `genre_Sci_2dFi`), which the genre filter uses
(`genre_Comedy == true or genre_Sci_2dFi == true`: 8 times faster than `array_contains_any` on the ARRAY on
Milvus Lite). A collection built before the genre fields existed gets a clear error from the engine and from a
filtered search: re-run the vector store notebook (13 s on ML-1M) rather than keep a second, slower filter path.

Metric and index: `IP` (inner product), because the model scores movie j for a query q as q . c_j with c_j the
candidate vector stored here (a per-movie bias as its last dimension, so not unit length); the index by collection
size, `FLAT` (exact, filters exact too) up to 1,000,000 rows and always on Lite: `helpers.stores.milvus_index`.

Consistency: the collection is created with `consistency_level="Strong"`, and the ingestion checks (count,
ids, verify) read with Strong. On a server a Strong read waits for the next time tick: ~200 ms per call
measured on milvus-server 2.3.5, which would make one recommendation cost 0.4-0.6 s. So the serving reads
(`get`, `search`) use `"Session"`: a process sees its own writes at once (tests, the vector store notebook), and
every process sees data that was flushed, as `ingest` does before it switches.

Crash safety: readers use the alias `movies`. `VectorStore.ingest` builds a new physical collection
`movies__<time>`, flushes, loads and verifies its count, and only then switches the alias to it and drops the old
one; a kill or a failure before the switch leaves the old collection serving (the next ingestion drops the
unfinished build). Milvus Lite and the server both support aliases. Every Milvus call goes through `VectorStore._call`,
so every Milvus failure, serving or building, becomes a `VectorStoreError` that names the action and says what to do
(the API answers it with a 503); a collection that a restarted server has not loaded yet is loaded and the call
retried once.

Milvus Lite allows ONE process per `.db` folder (it takes a lock): close the client (`VectorStore.close`)
before another notebook kernel opens the file, or point every process at a server.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from helpers.config import Settings
from helpers.stores.milvus_client import (
    CALL_TIMEOUT_SECONDS,
    STORES_NOTEBOOK,
    VectorStoreError,
    connect,
    disconnect,
    driver_errors,
    fault,
    filter_expression,
    is_lite_uri,
    quiet_iterator_warning,
)
from helpers.stores.milvus_index import IndexChoice, choose_index
from helpers.stores.milvus_rows import collection_schema, movie_rows, schema_genre_fields

COLLECTION = "movies"
DEFAULT_BATCH_SIZE = 1_000


@dataclass(frozen=True)
class IngestReport:
    rows: int  # rows sent (upserted)
    removed: int  # ids that were in the collection but not in the new embeddings
    count: int  # rows in the collection afterwards (verified equal to `rows`)
    seconds: float
    index: IndexChoice
    genre_fields: dict[str, str]  # genre -> its BOOL field

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


SERVING_CONSISTENCY = "Session"


@dataclass(frozen=True)
class Hit:
    movie_id: int
    score: float
    vector: np.ndarray | None = None  # only when asked for (`search(..., with_vectors=True)`)


class VectorStore:
    """The `movies` collection at `settings.milvus_uri`: create, ingest (build + alias switch), get, search.

    Readers use the name `movies`, which is an alias of the physical collection `movies__<time>` that the
    last completed ingestion built."""

    def __init__(self, settings: Settings, collection: str = COLLECTION):
        self.uri = settings.milvus_uri
        self.lite = is_lite_uri(self.uri)
        self.index_setting = settings.milvus_index
        self.collection = collection
        self.client = connect(self.uri, settings.milvus_token)
        self._index: IndexChoice | None = None
        self._genre_fields: dict[str, str] | None = None
        if self.exists():  # a reopened collection must be loaded before get/search
            self.load()

    @contextlib.contextmanager
    def _failing_as(self, action: str) -> Iterator[None]:
        """Turn a Milvus failure (`driver_errors`) inside the block into `fault(..., action)`."""
        try:
            yield
        except driver_errors() as exc:
            raise fault(self.uri, exc, action) from exc

    def _call(self, action: str, method: str, *args: Any, reload: bool = True, **kwargs: Any) -> Any:
        """`self.client.<method>(...)`, the one way this class calls Milvus: within `CALL_TIMEOUT_SECONDS`
        (building passes `timeout=None`), every failure a `VectorStoreError` naming `action`, and with `reload`
        a collection that is not loaded (a restarted server) loaded and the call retried once."""
        kwargs.setdefault("timeout", CALL_TIMEOUT_SECONDS)
        try:
            with self._failing_as(action):
                return getattr(self.client, method)(*args, **kwargs)
        except VectorStoreError as error:
            if not (reload and "not loaded" in str(error.__cause__).lower()):
                raise
            try:
                self.load()
            except VectorStoreError:
                raise error  # noqa: B904 (its cause is set: the driver's failure, which says more than the reload's)
        with self._failing_as(action):
            return getattr(self.client, method)(*args, **kwargs)

    # -- set-up -------------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self._call("looking for the collection", "has_collection", self.collection))

    def physical(self) -> str | None:
        """The physical collection the alias `self.collection` names, or None."""
        aliases = self._call("listing aliases", "list_aliases").get("aliases", [])
        if self.collection in aliases:
            return self._call("reading an alias", "describe_alias", self.collection)["collection_name"]
        return None

    def dim(self) -> int | None:
        """The vector size of the existing collection, or None when there is none."""
        if not self.exists():
            return None
        for field in self._call("describing the collection", "describe_collection", self.collection)["fields"]:
            if field["name"] == "embedding":
                return int(field["params"]["dim"])
        raise VectorStoreError(f"Collection {self.collection!r} at {self.uri} has no 'embedding' field: it was "
                               "not made by this project. Drop it or use another RECSYS_MILVUS_URI.")

    def _create_physical(self, name: str, dim: int, index: IndexChoice, genre_fields: dict[str, str]) -> None:
        with self._failing_as("preparing the collection's schema and index"):  # built here, nothing sent yet
            schema = collection_schema(self.client, dim, genre_fields)
            params = self.client.prepare_index_params()
            params.add_index("embedding", index_type=index.index_type, metric_type=index.metric_type,
                             params=index.build_params)
        self._call("creating a collection", "create_collection", name, schema=schema, index_params=params,
                   consistency_level="Strong", timeout=None)

    def _check_dim(self, dim: int, replace_other_dim: bool) -> None:
        existing = self.dim()
        if existing is not None and existing != dim and not replace_other_dim:
            raise VectorStoreError(
                f"Collection {self.collection!r} at {self.uri} holds {existing}-d vectors but the embeddings are "
                f"{dim}-d (the model changed). Nothing was changed; to replace it ingest with "
                f"replace_other_dim=True (build_stores does) or call `VectorStore(settings).drop()` first.")

    def index(self) -> IndexChoice:
        """The index the existing collection was built with."""
        info = self._serve("describing the index", "describe_index", self.collection, "embedding")
        build = {k: int(v) for k, v in info.items() if k in ("M", "efConstruction", "nlist")}
        return IndexChoice(info["index_type"], info["metric_type"], build, "as built")

    def genre_fields(self) -> dict[str, str]:
        """Genre -> BOOL field of the collection, read from its schema once per process (and after each ingest)."""
        if self._genre_fields is None:
            described = self._serve("describing the collection", "describe_collection", self.collection)
            self._genre_fields = schema_genre_fields(described["fields"])
        return dict(self._genre_fields)

    def check_genre_fields(self, genres: Sequence[str]) -> None:
        """Fail, saying what to do, unless the collection has the BOOL field of every one of `genres`."""
        known = self.genre_fields()
        missing = [g for g in genres if g not in known]
        if missing and not known:
            raise self._without_genre_fields()
        if missing:
            raise VectorStoreError(f"Genres {missing[:10]} have no field in the {self.collection!r} collection at "
                                   f"{self.uri}: it holds other movies than the catalog; re-run {STORES_NOTEBOOK}.")

    def _without_genre_fields(self) -> VectorStoreError:
        return VectorStoreError(f"The {self.collection!r} collection at {self.uri} was built by an earlier version of "
                                f"this project, without the per-genre fields that genre filters use: re-run "
                                f"{STORES_NOTEBOOK} to rebuild it.")

    def load(self) -> None:
        """Load the collection into memory for search (needed again after reopening)."""
        self._call("loading the collection", "load_collection", self.physical() or self.collection, reload=False,
                   timeout=None)

    def _builds(self) -> list[str]:
        """Physical collections that ingestions of `self.collection` made (the live one among them)."""
        prefix = f"{self.collection}__"
        return [n for n in self._call("listing collections", "list_collections") if n.startswith(prefix)]

    def drop(self) -> None:
        """Drop the collection: the alias, the collection it names and any unfinished builds."""
        if self.collection in self._call("listing aliases", "list_aliases").get("aliases", []):
            self._call("dropping the alias", "drop_alias", self.collection, timeout=None)
        for name in self._builds():
            self._call("dropping a collection", "drop_collection", name, timeout=None)
        self._index = None

    # -- writing ------------------------------------------------------------------------------------------
    def ingest(self, movie_ids: np.ndarray, vectors: np.ndarray, movies: pd.DataFrame,
               batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True,
               replace_other_dim: bool = False) -> IngestReport:
        """Build the movies into a NEW collection (batched inserts, progress bar), flush, load, check its
        count, and only then point the alias `self.collection` at it and drop the previous one. Readers see
        the old collection until the switch and the new one after it, never a half-built one: a failure or a
        kill leaves the old one serving (the unfinished build is dropped by the next ingestion). All rows are
        validated before the first write. `replace_other_dim`: allow replacing vectors of another size."""
        from tqdm.auto import tqdm

        if batch_size < 1:
            raise VectorStoreError(f"batch_size must be at least 1, got {batch_size}")
        rows, genre_fields = movie_rows(movie_ids, vectors, movies)
        dim = len(rows[0]["embedding"])
        self._check_dim(dim, replace_other_dim)
        start = time.perf_counter()
        previous = self.physical()
        old_ids = self.ids() if previous else np.zeros(0, dtype=np.int64)
        for debris in set(self._builds()) - {previous}:  # builds that never went live (a killed ingestion)
            self._call("dropping an unfinished build", "drop_collection", debris, timeout=None)
        index = choose_index(len(rows), self.lite, self.index_setting)
        build = f"{self.collection}__{time.time_ns()}"
        self._create_physical(build, dim, index, genre_fields)
        try:
            with tqdm(total=len(rows), desc=f"insert into {build}", unit="movie", disable=not progress) as bar:
                for first in range(0, len(rows), batch_size):
                    batch = rows[first:first + batch_size]
                    self._call("inserting movies", "insert", build, batch, timeout=None)
                    bar.update(len(batch))
            self._call("flushing the new collection", "flush", build, timeout=None)
            self._call("loading the new collection", "load_collection", build, reload=False, timeout=None)
            result = self._call("counting the new collection", "query", build, filter="", output_fields=["count(*)"],
                                consistency_level="Strong", timeout=None)
            count = int(result[0]["count(*)"])
            if count != len(rows):
                raise VectorStoreError(f"After inserting {len(rows)} movies the new collection at {self.uri} holds "
                                       f"{count}: nothing was switched, the old collection still serves. Run the "
                                       "ingestion again.")
        except BaseException:  # a failure or an interrupt: drop the build, whatever stopped it, and re-raise
            with contextlib.suppress(VectorStoreError):
                self._call("dropping the unfinished build", "drop_collection", build, timeout=None)
            raise
        self._switch(build, previous)
        self._index, self._genre_fields = index, genre_fields
        removed = len(np.setdiff1d(old_ids, np.asarray(movie_ids, dtype=np.int64)))
        return IngestReport(rows=len(rows), removed=removed, count=count,
                            seconds=time.perf_counter() - start, index=index, genre_fields=genre_fields)

    def _switch(self, build: str, previous: str | None) -> None:
        """Point the alias at `build`, then drop `previous`."""
        aliases = self._call("listing aliases", "list_aliases").get("aliases", [])
        if self.collection in aliases:
            self._call("switching the alias", "alter_alias", build, self.collection, timeout=None)
        else:
            self._call("creating the alias", "create_alias", build, self.collection, timeout=None)
        if previous and previous != build:
            self._call("dropping the previous collection", "drop_collection", previous, timeout=None)

    def put(self, movie_ids: np.ndarray, vectors: np.ndarray, movies: pd.DataFrame) -> None:
        """Upsert movies (added ones; `movies` as for `ingest`) into the live collection, with its genre fields,
        and flush them; the rows are checked before anything is written."""
        fields = self.genre_fields()
        if not fields:
            raise self._without_genre_fields()
        rows, _ = movie_rows(movie_ids, vectors, movies, fields)
        self._serve("adding movies", "upsert", self.collection, rows, timeout=None)
        self._call("flushing the added movies", "flush", self.physical() or self.collection, timeout=None)

    def delete(self, movie_ids: Sequence[int]) -> None:
        """Delete `movie_ids` (added movies) from the live collection and flush."""
        self._serve("removing movies", "delete", self.collection, ids=[int(i) for i in movie_ids], timeout=None)
        self._call("flushing the removal", "flush", self.physical() or self.collection, timeout=None)

    # -- reading ------------------------------------------------------------------------------------------
    def _require(self) -> None:
        if not self.exists():
            raise self._missing()

    def _missing(self) -> VectorStoreError:
        return VectorStoreError(f"No {self.collection!r} collection at {self.uri}: run "
                                f"{STORES_NOTEBOOK} (with this RECSYS_MILVUS_URI) first.")

    def _serve(self, action: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """A serving read in ONE round trip, with no "does the collection exist" call first: only when it fails
        naming a collection is the collection looked for, so that a dropped one says which notebook to run (a
        timeout or a server that is down fails at once, without a second wait)."""
        try:
            return self._call(action, method, *args, **kwargs)
        except VectorStoreError as error:
            if "collection" not in str(error.__cause__).lower():
                raise
            found = True
            with contextlib.suppress(VectorStoreError):  # Milvus itself is down: the call's own failure says so
                found = self.exists()
            if found:
                raise
            raise self._missing() from error

    def count(self, consistency: str = "Strong") -> int:
        """Rows in the collection (`consistency="Bounded"` for a cheap check that may lag a fresh write)."""
        self._require()
        result = self._call("counting movies", "query", self.collection, filter="", output_fields=["count(*)"],
                            consistency_level=consistency)
        return int(result[0]["count(*)"])

    def ids(self) -> np.ndarray:
        """Every movie id in the collection, sorted."""
        return self.metadata(fields=("movie_id",))["movie_id"].to_numpy(dtype=np.int64)

    def metadata(self, fields: Sequence[str] = ("movie_id", "title", "year", "genres")) -> pd.DataFrame:
        """Every row's `fields` (no vectors), ordered by movie id; `year` 0 comes back as missing."""
        self._require()
        quiet_iterator_warning()
        found: list[dict[str, Any]] = []
        iterator = self._call("reading every movie", "query_iterator", self.collection, batch_size=5_000,
                              filter="movie_id >= 0", output_fields=list(fields))
        try:
            with self._failing_as("reading every movie"):
                while batch := iterator.next():
                    found.extend({f: row[f] for f in fields} for row in batch)
        finally:
            with contextlib.suppress(*driver_errors()):  # closing is best effort: the result is read or failed
                iterator.close()
        frame = pd.DataFrame(found, columns=list(fields))
        if "genres" in frame:
            frame["genres"] = frame["genres"].map(list)
        if "year" in frame:
            frame["year"] = pd.array([None if y in (0, None) else int(y) for y in frame["year"]], dtype="Int64")
        return frame.sort_values("movie_id", ignore_index=True).astype({"movie_id": np.int64})

    def get(self, movie_ids: Sequence[int], with_vectors: bool = True) -> dict[int, dict[str, Any]]:
        """The stored rows of `movie_ids` that exist, by id (`embedding` as float32 arrays when asked)."""
        if not movie_ids:
            return {}
        fields = ["movie_id", "title", "year", "genres"] + (["embedding"] if with_vectors else [])
        rows = self._serve("fetching movies by id", "get", self.collection, ids=[int(i) for i in movie_ids],
                          output_fields=fields, consistency_level=SERVING_CONSISTENCY)
        out = {}
        for row in rows:
            row = dict(row)
            if with_vectors:
                row["embedding"] = np.asarray(row["embedding"], dtype=np.float32)
            row["genres"] = list(row["genres"])
            row["year"] = int(row["year"]) or None
            out[int(row["movie_id"])] = row
        return out

    def search(self, queries: np.ndarray, limit: int, genres: Sequence[str] | None = None,
               years: tuple[int, int] | None = None, exclude_ids: Iterable[int] | None = None,
               with_vectors: bool = False) -> list[list[Hit]]:
        """For each query vector, the `limit` most similar movies (inner product) passing the filters: one
        round trip (`_serve`) for all the query vectors, the hits' vectors with them when `with_vectors`."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if self._index is None:
            self._index = self.index()
        fields = None
        if genres:
            known = self.genre_fields()
            if not known:
                raise self._without_genre_fields()
            fields = [known[g] for g in genres if g in known]
            if not fields:  # no movie in the collection has any of these genres
                return [[] for _ in queries]
        expr = filter_expression(fields, years, exclude_ids)
        result = self._serve("searching", "search", self.collection, data=queries.tolist(), limit=int(limit),
                            filter=expr, output_fields=["embedding"] if with_vectors else ["movie_id"],
                            search_params=self._index.search_params(limit), consistency_level=SERVING_CONSISTENCY)
        return [[Hit(int(hit.id), float(hit.distance),
                     np.asarray(hit["entity"]["embedding"], dtype=np.float32) if with_vectors else None)
                 for hit in hits] for hits in result]

    def close(self) -> None:
        """Release the client (and, for Milvus Lite, the file lock)."""
        disconnect(self.uri)

