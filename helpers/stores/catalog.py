"""The SQL catalog: movies (with popularity), users and ratings, through SQLAlchemy 2 Core.

Where: `RECSYS_CATALOG_URL` (`settings.catalog_url`). By default an embedded SQLite file
`<artifacts>/<dataset>/catalog.sqlite`; or MySQL/MariaDB through PyMySQL, e.g. the docker-compose one,
`mysql+pymysql://recsys:<RECSYS_MYSQL_PASSWORD>@127.0.0.1:3306/movies` (`charset=utf8mb4` is added when
missing, and every table is utf8mb4, so "Misérables" and "Amélie" survive the round trip).

Tables: `movies` (movie_id, title, year, genres as "A|B", n_ratings, mean_rating), `movie_genres`
(movie_id, genre: one row per pair, for genre queries), `users` (user_id, gender, age, occupation, zip),
`ratings` (user_id, movie_id, rating, timestamp) and `catalog_generation` (one row, bumped by every write).
Every statement is SQLAlchemy Core with bound parameters. `movies.title_folded` is the title lower-cased with
accents removed (`fold`), computed once at ingestion: title search compares folded text with folded text, so
"miserables" finds "Misérables" on SQLite and MySQL alike. It searches in memory (`helpers.stores.titles`), with
one query per search for the generation, so a catalog that another process rewrote is searched as it is now.

Ingestion replaces the whole catalog at once (`ingest`): the rows are bulk-loaded (driver `executemany` over column
arrays, `bulk_insert`) into staging tables `<table>__new`, which then take the live tables' place. On SQLite all of
it is ONE transaction; on MySQL/MariaDB (where DDL commits) the staging tables are filled first and swapped in with
one atomic `RENAME TABLE`. A failure or a kill at any point leaves the catalog as it was; re-running gives the same
rows (ratings are replaced, never added to). One engine (connection pool) per process and URL (`get_engine`).
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from helpers.config import Settings, get_settings
from helpers.data.movielens import GENRE_SEPARATOR, genre_list
from helpers.stages import notebook_for
from helpers.stores.sql import (
    DEFAULT_BATCH_SIZE,
    DRIVER_ERRORS,
    RETIRED_SUFFIX,
    SERVER_HINT,
    STAGING_SUFFIX,
    CatalogError,
    bulk_insert,
    control_characters,
    dispose_engine,
    fold,
    generation_table,
    get_engine,
    metadata,
    movie_genres_table,
    movies_table,
    ratings_table,
    reserve_added_ids,
    safe_url,
    sqlite_path,
    staging_table,
    users_table,
)
from helpers.stores.titles import TitleIndex

STORES_NOTEBOOK = notebook_for("vectors")  # the notebook that fills both stores (helpers.stages)


@dataclass(frozen=True)
class CatalogReport:
    movies: int
    users: int
    ratings: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        rows = self.movies + self.users + self.ratings
        return rows / self.seconds if self.seconds > 0 else float("inf")


def _none_if_na(value: Any) -> Any:
    return None if value is None or (not isinstance(value, (list, tuple, np.ndarray)) and pd.isna(value)) else value


def _movie_fields(m: Any) -> dict[str, Any]:
    """A movie's public fields from its catalog columns (a row's mapping, or a `TitleIndex` row)."""
    return {"movie_id": int(m["movie_id"]), "title": m["title"],
            "year": None if m["year"] is None else int(m["year"]), "genres": genre_list(m["genres"]),
            "n_ratings": int(m["n_ratings"]),
            "mean_rating": None if m["mean_rating"] is None else float(m["mean_rating"])}


class Catalog:
    """The catalog at `url`, else at `settings.catalog_url` (default: the settings from the environment):
    create tables, ingest MovieLens, look movies up. Every database failure is a `CatalogError`."""

    def __init__(self, settings: Settings | None = None, url: str | None = None):
        self.url = url if url is not None else (settings or get_settings()).catalog_url
        self.engine = get_engine(self.url)
        self._genres: list[str] | None = None
        self._titles: TitleIndex | None = None
        self._titles_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Catalog({safe_url(self.url)!r})"

    def fault(self, exc: BaseException, action: str) -> CatalogError:
        """A database failure while `action` as a `CatalogError` that says which problem it is and what to do."""
        text = str(getattr(exc, "orig", exc)).strip()
        message = (text.splitlines()[0] if text else type(exc).__name__)[:300]
        where = safe_url(self.url)
        path = sqlite_path(self.url)
        if "Unknown database" in message:
            database = make_url(self.url).database
            return CatalogError(f"The catalog database {database!r} does not exist at {where}: create it "
                                f"(CREATE DATABASE {database} CHARACTER SET utf8mb4) or fix RECSYS_CATALOG_URL.")
        if path is not None and not path.exists():
            return CatalogError(f"The catalog file {path} is gone ({message}): rebuild it with "
                                f"{STORES_NOTEBOOK} (or helpers.stores.build.build_stores), then restart "
                                "the API or page.")
        if any(s in message for s in ("no such table", "doesn't exist", "no such column", "Unknown column")):
            return CatalogError(f"The catalog at {where} is missing tables or columns ({message}): it was never "
                                f"built or was built by an older version. Run {STORES_NOTEBOOK} (with "
                                "this RECSYS_CATALOG_URL) to rebuild it.")
        if any(s in message for s in ("malformed", "not a database", "file is encrypted", "disk I/O error")):
            return CatalogError(f"The catalog file {path or where} is damaged ({message}): delete it and rebuild it "
                                f"with {STORES_NOTEBOOK} (README: 'When a store is damaged or "
                                "stopped').")
        return CatalogError(f"Cannot use the catalog database at {where} while {action} ({message}). {SERVER_HINT}")

    @contextlib.contextmanager
    def _begin(self, action: str) -> Iterator[Connection]:
        """A transaction, committed when the block ends; every database failure in it, connecting included,
        rolls it back and becomes a `CatalogError` naming `action`."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DRIVER_ERRORS as exc:
            raise self.fault(exc, action) from exc

    def _read(self, statement: sa.Executable) -> list[Any]:
        """Run a query; every database failure (unreachable, missing table, damaged file) becomes a `CatalogError`."""
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(statement))
        except DRIVER_ERRORS as exc:
            raise self.fault(exc, "reading") from exc

    # -- writing ------------------------------------------------------------------------------------------
    def create(self) -> None:
        """Create the tables that are missing (existing ones and their rows are kept)."""
        path = sqlite_path(self.url)
        if path is not None and not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                sqlite3.connect(path).close()  # the engine opens files read-write only (see `_sqlite_engine`)
            except (OSError, sqlite3.Error) as exc:
                raise CatalogError(f"Cannot create the catalog file {path} ({exc}): check that its folder is "
                                   "writable, or set RECSYS_CATALOG_URL (RECSYS_ARTIFACTS) elsewhere.") from exc
        with self._begin("creating the tables") as conn:
            metadata.create_all(conn)

    def ingest(self, ml: Any, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True) -> CatalogReport:
        """Replace the catalog with a `MovieLens`' movies (with n_ratings/mean_rating from its ratings), users
        and ratings, all at once (see the module docstring). The input is checked first: empty tables,
        duplicate ids, ratings of unknown movies or control characters in titles change nothing."""
        from tqdm.auto import tqdm

        if batch_size < 1:
            raise CatalogError(f"batch_size must be at least 1, got {batch_size}")
        movies, genres = self.movie_columns(ml.movies, ml.ratings)
        users = self.user_columns(ml.users)
        ratings = self.rating_columns(ml.ratings, ml.movies)
        start = time.perf_counter()
        self.create()
        generation = {"id": [1], "generation": [self.generation() + 1]}  # swapped in with the tables it describes
        tables = {movies_table: movies, movie_genres_table: genres, users_table: users, ratings_table: ratings,
                  generation_table: generation}
        total = sum(len(next(iter(columns.values()))) for columns in tables.values())
        with tqdm(total=total, desc="catalog bulk load", unit="row", disable=not progress) as bar:
            if self.engine.dialect.name == "sqlite":
                self._replace_sqlite(tables, batch_size, bar)
            else:
                self._replace_mysql(tables, batch_size, bar)
        with self._begin("starting the added movies' ids") as conn:
            reserve_added_ids(conn, int(movies["movie_id"].max()))
        self._genres = None
        return CatalogReport(len(movies["movie_id"]), len(users["user_id"]), len(ratings["user_id"]),
                             time.perf_counter() - start)

    def _replace_sqlite(self, tables: dict[sa.Table, dict[str, Any]], batch_size: int, bar: Any) -> None:
        """One transaction: load staging tables, drop the live ones, rename, build the indexes."""
        staging_md = sa.MetaData()
        with self._begin("loading the new catalog") as conn:
            for table, columns in tables.items():
                staged = staging_table(table, STAGING_SUFFIX, staging_md)
                staged.drop(conn, checkfirst=True)
                staged.create(conn)
                bulk_insert(conn, staged, columns, batch_size, bar)
            for table in tables:
                table.drop(conn, checkfirst=True)  # its indexes go with it
                conn.execute(sa.text(f"ALTER TABLE {table.name}{STAGING_SUFFIX} RENAME TO {table.name}"))
                for index in table.indexes:
                    index.create(conn)

    def _replace_mysql(self, tables: dict[sa.Table, dict[str, Any]], batch_size: int, bar: Any) -> None:
        """Staging tables filled and indexed first, then ONE atomic RENAME TABLE swaps all five in; a kill
        before it leaves only staging tables behind (dropped by the next run), never a half-filled live one."""
        staging_md = sa.MetaData()
        for table, columns in tables.items():
            staged = staging_table(table, STAGING_SUFFIX, staging_md)
            with self._begin(f"creating the staging table {staged.name}") as conn:
                staged.drop(conn, checkfirst=True)
                staged.create(conn)
            with self._begin(f"loading {staged.name}") as conn:
                conn.execute(sa.text("SET SESSION unique_checks = 0"))  # the input was checked for duplicates
                bulk_insert(conn, staged, columns, batch_size, bar)
            with self._begin(f"indexing {staged.name}") as conn:
                for index in table.indexes:
                    sa.Index(index.name, *(staged.c[c.name] for c in index.columns)).create(conn)
        retired = [staging_table(table, RETIRED_SUFFIX, staging_md) for table in tables]
        with self._begin("swapping the new tables in") as conn:
            for old in retired:
                old.drop(conn, checkfirst=True)
            swaps = ", ".join(f"{t.name} TO {t.name}{RETIRED_SUFFIX}, {t.name}{STAGING_SUFFIX} TO {t.name}"
                              for t in tables)
            conn.execute(sa.text(f"RENAME TABLE {swaps}"))  # our own table names only
            for old in retired:
                old.drop(conn)

    @staticmethod
    def movie_columns(movies: pd.DataFrame, ratings: pd.DataFrame | None = None
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Columns for `movies` and `movie_genres`, with popularity from `ratings` and folded titles; checks
        ids and titles."""
        if movies is None or len(movies) == 0:
            raise CatalogError("The movies table is empty: nothing to store. Check the dataset's movie file.")
        duplicated = movies["movie_id"][movies["movie_id"].duplicated()]
        if len(duplicated):
            raise CatalogError(f"Duplicate movie ids in the movies table: {sorted(set(duplicated.tolist()))[:10]}")
        missing_title = movies["movie_id"][movies["title"].isna() | (movies["title"].astype(str).str.len() == 0)]
        if len(missing_title):
            raise CatalogError(f"Movies without a title: {missing_title.tolist()[:10]}")
        titles = movies["title"].astype(str).tolist()
        bad = [(int(m), control_characters(t)) for m, t in zip(movies["movie_id"], titles, strict=True)
               if control_characters(t)]
        if bad:
            raise CatalogError(f"Titles with control characters (e.g. NUL), movie id and characters: {bad[:10]}. "
                               "Fix the movie file.")
        ids = movies["movie_id"].to_numpy(dtype=np.int64)
        stats = pd.DataFrame({"n_ratings": np.zeros(0, dtype=np.int64), "mean_rating": np.zeros(0)})
        if ratings is not None and len(ratings):
            stats = ratings.groupby("movie_id")["rating"].agg(n_ratings="size", mean_rating="mean")
        stats = stats.reindex(ids)
        n_ratings = stats["n_ratings"].fillna(0).to_numpy(dtype=np.int64)
        means = stats["mean_rating"].astype(float).round(4).to_numpy()
        genre_lists = [list(dict.fromkeys(genre_list(g))) for g in movies["genres"]]
        lengths = np.fromiter(map(len, genre_lists), dtype=np.int64, count=len(genre_lists))
        columns = {"movie_id": ids, "title": titles, "title_folded": [fold(t) for t in titles],
                   "year": [None if pd.isna(y) else int(y) for y in movies["year"]],
                   "genres": [GENRE_SEPARATOR.join(g) for g in genre_lists], "n_ratings": n_ratings,
                   "mean_rating": [None if n == 0 else float(m) for n, m in zip(n_ratings, means, strict=True)]}
        genre_columns = {"movie_id": np.repeat(ids, lengths), "genre": [g for gs in genre_lists for g in gs]}
        return columns, genre_columns

    @staticmethod
    def user_columns(users: pd.DataFrame | None) -> dict[str, Any]:
        names = ["user_id", "gender", "age", "occupation", "zip"]
        if users is None or len(users) == 0:
            return {name: [] for name in names}
        duplicated = users["user_id"][users["user_id"].duplicated()]
        if len(duplicated):
            raise CatalogError(f"Duplicate user ids in the users table: {sorted(set(duplicated.tolist()))[:10]}")
        frame = users.reindex(columns=names)
        return {"user_id": frame["user_id"].to_numpy(dtype=np.int64),
                "gender": [_none_if_na(g) for g in frame["gender"]],
                "age": [None if pd.isna(a) else int(a) for a in frame["age"]],
                "occupation": [None if pd.isna(o) else int(o) for o in frame["occupation"]],
                "zip": [_none_if_na(z) for z in frame["zip"]]}

    @staticmethod
    def rating_columns(ratings: pd.DataFrame, movies: pd.DataFrame) -> dict[str, np.ndarray]:
        """The ratings as column arrays; 0 ratings, non-finite values, unknown movies or repeated pairs are errors."""
        if ratings is None or len(ratings) == 0:
            raise CatalogError("The ratings table is empty: popularity and the graph need ratings. Check the "
                               "dataset's ratings file; nothing was changed.")
        values = ratings["rating"].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise CatalogError("Some ratings are NaN or infinite: fix the ratings file; nothing was changed.")
        unknown = np.setdiff1d(ratings["movie_id"].unique(), movies["movie_id"].to_numpy())
        if len(unknown):
            raise CatalogError(f"Ratings of movies that are not in the movies table: {unknown[:10].tolist()}")
        duplicated = ratings.duplicated(["user_id", "movie_id"])
        if duplicated.any():
            first = ratings[duplicated].iloc[0]
            raise CatalogError(f"{int(duplicated.sum())} duplicate (user, movie) ratings, e.g. user "
                               f"{int(first['user_id'])} movie {int(first['movie_id'])}: keep one rating per pair.")
        return {"user_id": ratings["user_id"].to_numpy(dtype=np.int64),
                "movie_id": ratings["movie_id"].to_numpy(dtype=np.int64), "rating": values,
                "timestamp": ratings["timestamp"].to_numpy(dtype=np.int64)}

    # -- reading ------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Rows per table."""
        out = {}
        for table in (movies_table, movie_genres_table, users_table, ratings_table):
            out[table.name] = int(self._read(sa.select(sa.func.count()).select_from(table))[0][0])
        return out

    def movie_ids(self) -> np.ndarray:
        rows = self._read(sa.select(movies_table.c.movie_id).order_by(movies_table.c.movie_id))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def movies(self, movie_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The catalog rows of those `movie_ids` that exist, by id."""
        ids = sorted({int(i) for i in movie_ids})
        found: dict[int, dict[str, Any]] = {}
        for first in range(0, len(ids), 1_000):
            rows = self._read(sa.select(movies_table).where(movies_table.c.movie_id.in_(ids[first:first + 1_000])))
            found.update((d["movie_id"], d) for d in (_movie_fields(r._mapping) for r in rows))
        return found

    def all_movies(self) -> pd.DataFrame:
        """Every movie as a DataFrame (genres as lists), ordered by id."""
        rows = self._read(sa.select(movies_table).order_by(movies_table.c.movie_id))
        return pd.DataFrame([_movie_fields(r._mapping) for r in rows],
                            columns=["movie_id", "title", "year", "genres", "n_ratings", "mean_rating"])

    def movie(self, movie_id: int) -> dict[str, Any] | None:
        return self.movies([movie_id]).get(int(movie_id))

    def genres(self) -> list[str]:
        """Every genre in the catalog, sorted (cached until the next ingest)."""
        if self._genres is None:
            rows = self._read(sa.select(movie_genres_table.c.genre).distinct())
            self._genres = sorted(r[0] for r in rows)
        return list(self._genres)

    def popular(self, limit: int, genres: Sequence[str] | None = None, years: tuple[int, int] | None = None,
                exclude_ids: Iterable[int] = ()) -> list[dict[str, Any]]:
        """The most rated movies (ties: higher mean rating, then lower id) passing the filters."""
        stmt = sa.select(movies_table)
        if genres:
            stmt = stmt.where(movies_table.c.movie_id.in_(
                sa.select(movie_genres_table.c.movie_id).where(movie_genres_table.c.genre.in_(list(genres)))))
        if years is not None:
            stmt = stmt.where(movies_table.c.year.between(int(years[0]), int(years[1])))
        excluded = [int(i) for i in exclude_ids]
        if excluded:
            stmt = stmt.where(movies_table.c.movie_id.not_in(excluded))
        stmt = stmt.order_by(movies_table.c.n_ratings.desc(), movies_table.c.mean_rating.desc(),
                             movies_table.c.movie_id).limit(int(limit))
        return [_movie_fields(r._mapping) for r in self._read(stmt)]

    def generation(self) -> int:
        """The catalog's generation: 0 before the first ingestion, then bumped by every write. One statement that
        also touches `movies`, so a table dropped under a running process fails here as it would in SQL."""
        current = sa.select(generation_table.c.generation).where(generation_table.c.id == 1).scalar_subquery()
        (row,) = self._read(sa.select(current, sa.select(movies_table.c.movie_id).limit(1).scalar_subquery()))
        return 0 if row[0] is None else int(row[0])

    def search_titles(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Movies whose title contains `query`, ignoring case and accents (both sides `fold`ed), most rated first
        (ties: lower id): from the in-memory `TitleIndex`, rebuilt first when the catalog's generation moved."""
        generation = self.generation()
        titles = self._titles
        if titles is None or titles.generation != generation:
            with self._titles_lock:  # one thread rebuilds; the others wait and use its index
                titles = self._titles
                if titles is None or titles.generation != generation:
                    titles = self._titles = self._title_index(generation)
        return [_movie_fields(titles.row(rank)) for rank in titles.search(fold(query), int(limit))]

    def _title_index(self, generation: int) -> TitleIndex:
        """The movies in rank order; read after `generation`, so they are at least as new as it says."""
        rows = self._read(sa.select(movies_table).order_by(movies_table.c.n_ratings.desc(), movies_table.c.movie_id))
        columns = {name: [r[i] for r in rows] for i, name in enumerate(movies_table.c.keys())}
        return TitleIndex.build(generation, columns["title_folded"], columns)

    def movie_count(self) -> int:
        """The number of movies, after checking that every table (and the folded titles) is there and, for
        SQLite, that the file still exists. Cheap at any size: only `movies` is counted, never the ratings."""
        path = sqlite_path(self.url)
        if path is not None and not path.exists():
            raise self.fault(FileNotFoundError(f"{path} was deleted"), "counting movies")
        for table in (movie_genres_table, users_table, ratings_table, generation_table):
            self._read(sa.select(sa.literal(1)).select_from(table).limit(1))
        self._read(sa.select(movies_table.c.title_folded).limit(1))
        return int(self._read(sa.select(sa.func.count()).select_from(movies_table))[0][0])

    def drop(self) -> None:
        """Drop the project's tables (only these five)."""
        with self._begin("dropping the tables") as conn:
            metadata.drop_all(conn)
        self._genres = None

    def close(self) -> None:
        dispose_engine(self.url)

