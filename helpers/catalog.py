"""The SQL catalog: movies (with popularity), users and ratings, through SQLAlchemy 2 Core.

Where: `RECSYS_CATALOG_URL` (`settings.catalog_url`). By default an embedded SQLite file
`<artifacts>/<dataset>/catalog.sqlite`; or MySQL/MariaDB through PyMySQL, e.g. the docker-compose one,
`mysql+pymysql://recsys:<RECSYS_MYSQL_PASSWORD>@127.0.0.1:3306/movies` (`charset=utf8mb4` is added when
missing, and every table is utf8mb4, so "Misérables" and "Amélie" survive the round trip).

Tables: `movies` (movie_id, title, year, genres as "A|B", n_ratings, mean_rating), `movie_genres`
(movie_id, genre: one row per pair, for genre queries), `users` (user_id, gender, age, occupation, zip)
and `ratings` (user_id, movie_id, rating, timestamp). Every statement is SQLAlchemy Core with bound
parameters. Writes are bulk upserts (SQLite `ON CONFLICT DO UPDATE`, MySQL `ON DUPLICATE KEY UPDATE`)
inside one transaction: re-running changes nothing, and a failure leaves what was stored before.
One engine (connection pool) per process and URL (`get_engine`).
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from helpers.config import Settings
from helpers.errors import RecsysError

GENRE_SEPARATOR = "|"
DEFAULT_BATCH_SIZE = 10_000
SERVER_HINT = ("Start it with `docker compose up -d mysql` (docker-compose.yml), or unset RECSYS_CATALOG_URL "
               "to use the embedded SQLite file.")

_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci",
                  "mariadb_charset": "utf8mb4", "mariadb_collate": "utf8mb4_unicode_ci"}
metadata = sa.MetaData()
movies_table = sa.Table(
    "movies", metadata,
    sa.Column("movie_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("title", sa.String(1024), nullable=False),
    sa.Column("year", sa.Integer, nullable=True),
    sa.Column("genres", sa.String(1024), nullable=False, default=""),
    sa.Column("n_ratings", sa.Integer, nullable=False, default=0),
    sa.Column("mean_rating", sa.Float, nullable=True),
    sa.Index("ix_movies_n_ratings", "n_ratings"),
    **_TABLE_OPTIONS,
)
movie_genres_table = sa.Table(
    "movie_genres", metadata,
    sa.Column("movie_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("genre", sa.String(64), primary_key=True),
    sa.Index("ix_movie_genres_genre", "genre"),
    **_TABLE_OPTIONS,
)
users_table = sa.Table(
    "users", metadata,
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("gender", sa.String(16), nullable=True),
    sa.Column("age", sa.Integer, nullable=True),
    sa.Column("occupation", sa.Integer, nullable=True),
    sa.Column("zip", sa.String(32), nullable=True),
    **_TABLE_OPTIONS,
)
ratings_table = sa.Table(
    "ratings", metadata,
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("movie_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("rating", sa.Float, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Index("ix_ratings_movie_id", "movie_id"),
    **_TABLE_OPTIONS,
)


class CatalogError(RecsysError, RuntimeError):
    """The catalog cannot be reached or used, or was given bad input; the message says what to do."""


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


def _normalise_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True) if isinstance(url, str) else url.render_as_string(hide_password=True)


_ENGINES: dict[tuple[int, str], Engine] = {}  # (pid, url) -> Engine: one pool per process and URL


def get_engine(url: str) -> Engine:
    """This process's SQLAlchemy engine for `url` (created on first use)."""
    key = (os.getpid(), url)
    if key not in _ENGINES:
        parsed = _normalise_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(parsed)
            sa.event.listen(engine, "connect", _unicode_lower)
        elif backend in ("mysql", "mariadb"):
            engine = sa.create_engine(parsed, pool_pre_ping=True, pool_recycle=3600)
        else:
            raise CatalogError(f"Unsupported catalog database {safe_url(parsed)}: use sqlite:///path.sqlite or "
                               "mysql+pymysql://user:password@host:3306/database (RECSYS_CATALOG_URL).")
        _ENGINES[key] = engine
    return _ENGINES[key]


def _unicode_lower(dbapi_connection: Any, _record: Any) -> None:
    """SQLite's built-in lower() folds only ASCII letters, so "MISÉR" would not find "Misérables"; replace it
    with Python's (case-insensitive title search then matches MySQL's utf8mb4 collation)."""
    dbapi_connection.create_function("lower", 1, lambda text: text.lower() if isinstance(text, str) else text,
                                     deterministic=True)


def dispose_engine(url: str) -> None:
    engine = _ENGINES.pop((os.getpid(), url), None)
    if engine is not None:
        engine.dispose()


def _upsert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows`, updating the non-key columns of rows whose primary key exists (one statement)."""
    if not rows:
        return
    keys = {c.name for c in table.primary_key.columns}
    backend = conn.dialect.name
    if backend == "sqlite":
        from sqlalchemy.dialects.sqlite import insert

        stmt = insert(table)
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        stmt = stmt.on_conflict_do_update(index_elements=sorted(keys), set_=updates) if updates else \
            stmt.on_conflict_do_nothing(index_elements=sorted(keys))
    else:
        from sqlalchemy.dialects.mysql import insert

        stmt = insert(table)
        updates = {c.name: stmt.inserted[c.name] for c in table.columns if c.name not in keys}
        # with no non-key column, "update" a key to itself: MySQL's idiom for insert-or-ignore
        stmt = stmt.on_duplicate_key_update(updates or {name: stmt.inserted[name] for name in keys})
    conn.execute(stmt, rows)


def _batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for first in range(0, len(rows), size):
        yield rows[first:first + size]


def _none_if_na(value: Any) -> Any:
    return None if value is None or (not isinstance(value, (list, tuple, np.ndarray)) and pd.isna(value)) else value


def _genres_of(value: Any) -> list[str]:
    if value is None or isinstance(value, float):
        return []
    if isinstance(value, str):
        return [g for g in value.split(GENRE_SEPARATOR) if g]
    return [str(g) for g in value]


def _movie_dict(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {"movie_id": int(m["movie_id"]), "title": m["title"],
            "year": None if m["year"] is None else int(m["year"]),
            "genres": _genres_of(m["genres"]),
            "n_ratings": int(m["n_ratings"]),
            "mean_rating": None if m["mean_rating"] is None else float(m["mean_rating"])}


class Catalog:
    """The catalog at `settings.catalog_url` (or `url`): create tables, ingest MovieLens, look movies up."""

    def __init__(self, settings: Settings | None = None, url: str | None = None):
        if url is None:
            if settings is None:
                raise TypeError("Catalog needs settings or a url")
            url = settings.catalog_url
        self.url = url
        self.engine = get_engine(url)
        self._genres: list[str] | None = None

    def __repr__(self) -> str:
        return f"Catalog({safe_url(self.url)!r})"

    def _connect_error(self, exc: Exception) -> CatalogError:
        message = str(getattr(exc, "orig", exc))
        if "Unknown database" in message:
            database = make_url(self.url).database
            return CatalogError(f"The catalog database {database!r} does not exist at {safe_url(self.url)}: create it "
                                f"(CREATE DATABASE {database} CHARACTER SET utf8mb4) or fix RECSYS_CATALOG_URL.")
        return CatalogError(f"Cannot reach the catalog database at {safe_url(self.url)} ({message}). {SERVER_HINT}")

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction; failing to connect becomes a `CatalogError` that says what to do."""
        try:
            conn = self.engine.connect()
        except sa.exc.OperationalError as exc:
            raise self._connect_error(exc) from exc
        with conn, conn.begin():
            yield conn

    def _read(self, statement: sa.Executable) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(statement))
        except sa.exc.OperationalError as exc:
            if "no such table" in str(exc) or "doesn't exist" in str(exc):
                raise CatalogError(f"The catalog at {safe_url(self.url)} has no tables yet: run "
                                   "notebooks/04_vector_store.ipynb (with this RECSYS_CATALOG_URL) first.") from exc
            raise self._connect_error(exc) from exc

    # -- writing ------------------------------------------------------------------------------------------
    def create(self) -> None:
        """Create the tables that are missing (existing ones and their rows are kept)."""
        with self._begin() as conn:
            metadata.create_all(conn)

    def ingest(self, ml: Any, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True) -> CatalogReport:
        """Upsert a `MovieLens`' movies (with n_ratings/mean_rating from its ratings), users and ratings,
        in one transaction. The input is checked first: duplicate ids or ratings of unknown movies change nothing."""
        from tqdm.auto import tqdm

        if batch_size < 1:
            raise CatalogError(f"batch_size must be at least 1, got {batch_size}")
        movies, genre_rows = self.movie_rows(ml.movies, ml.ratings)
        users = self.user_rows(ml.users)
        ratings = self.rating_rows(ml.ratings, ml.movies)
        start = time.perf_counter()
        self.create()
        with self._begin() as conn:
            total = len(movies) + len(genre_rows) + len(users) + len(ratings)
            with tqdm(total=total, desc="catalog upsert", unit="row", disable=not progress) as bar:
                for batch in _batches(movies, batch_size):
                    _upsert(conn, movies_table, batch)
                    bar.update(len(batch))
                ids = [row["movie_id"] for row in movies]
                for first in range(0, len(ids), batch_size):  # a movie's genres are replaced, not merged
                    conn.execute(sa.delete(movie_genres_table).where(
                        movie_genres_table.c.movie_id.in_(ids[first:first + batch_size])))
                for table, rows in ((movie_genres_table, genre_rows), (users_table, users), (ratings_table, ratings)):
                    for batch in _batches(rows, batch_size):
                        _upsert(conn, table, batch)
                        bar.update(len(batch))
        self._genres = None
        return CatalogReport(len(movies), len(users), len(ratings), time.perf_counter() - start)

    @staticmethod
    def movie_rows(movies: pd.DataFrame, ratings: pd.DataFrame | None = None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Rows for `movies` and `movie_genres`, with popularity from `ratings`; checks ids and titles."""
        duplicated = movies["movie_id"][movies["movie_id"].duplicated()]
        if len(duplicated):
            raise CatalogError(f"Duplicate movie ids in the movies table: {sorted(set(duplicated.tolist()))[:10]}")
        missing_title = movies["movie_id"][movies["title"].isna() | (movies["title"].astype(str).str.len() == 0)]
        if len(missing_title):
            raise CatalogError(f"Movies without a title: {missing_title.tolist()[:10]}")
        stats = pd.DataFrame(columns=["n_ratings", "mean_rating"])
        if ratings is not None and len(ratings):
            stats = ratings.groupby("movie_id")["rating"].agg(n_ratings="size", mean_rating="mean")
        rows, genre_rows = [], []
        for movie_id, title, year, genres in zip(movies["movie_id"], movies["title"], movies["year"],
                                                 movies["genres"], strict=True):
            genre_list = _genres_of(genres)
            n = int(stats["n_ratings"].get(movie_id, 0)) if len(stats) else 0
            mean = float(stats["mean_rating"][movie_id]) if n else None
            rows.append({"movie_id": int(movie_id), "title": str(title), "year": None if pd.isna(year) else int(year),
                         "genres": GENRE_SEPARATOR.join(genre_list), "n_ratings": n,
                         "mean_rating": None if mean is None else round(mean, 4)})
            genre_rows.extend({"movie_id": int(movie_id), "genre": g} for g in dict.fromkeys(genre_list))
        return rows, genre_rows

    @staticmethod
    def user_rows(users: pd.DataFrame | None) -> list[dict[str, Any]]:
        if users is None or len(users) == 0:
            return []
        duplicated = users["user_id"][users["user_id"].duplicated()]
        if len(duplicated):
            raise CatalogError(f"Duplicate user ids in the users table: {sorted(set(duplicated.tolist()))[:10]}")
        frame = users.reindex(columns=["user_id", "gender", "age", "occupation", "zip"])
        return [{"user_id": int(u), "gender": _none_if_na(g), "age": None if pd.isna(a) else int(a),
                 "occupation": None if pd.isna(o) else int(o), "zip": _none_if_na(z)}
                for u, g, a, o, z in frame.itertuples(index=False, name=None)]

    @staticmethod
    def rating_rows(ratings: pd.DataFrame, movies: pd.DataFrame) -> list[dict[str, Any]]:
        if ratings is None or len(ratings) == 0:
            return []
        unknown = np.setdiff1d(ratings["movie_id"].unique(), movies["movie_id"].to_numpy())
        if len(unknown):
            raise CatalogError(f"Ratings of movies that are not in the movies table: {unknown[:10].tolist()}")
        duplicated = ratings.duplicated(["user_id", "movie_id"])
        if duplicated.any():
            first = ratings[duplicated].iloc[0]
            raise CatalogError(f"{int(duplicated.sum())} duplicate (user, movie) ratings, e.g. user "
                               f"{int(first['user_id'])} movie {int(first['movie_id'])}: keep one rating per pair.")
        frame = ratings[["user_id", "movie_id", "rating", "timestamp"]]
        return [{"user_id": int(u), "movie_id": int(m), "rating": float(r), "timestamp": int(t)}
                for u, m, r, t in frame.itertuples(index=False, name=None)]

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
            found.update((d["movie_id"], d) for d in map(_movie_dict, rows))
        return found

    def all_movies(self) -> pd.DataFrame:
        """Every movie as a DataFrame (genres as lists), ordered by id."""
        rows = self._read(sa.select(movies_table).order_by(movies_table.c.movie_id))
        return pd.DataFrame([_movie_dict(r) for r in rows],
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
        return [_movie_dict(r) for r in self._read(stmt)]

    def search_titles(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Movies whose title contains `query` (case-insensitive; % and _ match literally), most rated first."""
        stmt = (sa.select(movies_table)
                .where(movies_table.c.title.icontains(query, autoescape=True))
                .order_by(movies_table.c.n_ratings.desc(), movies_table.c.movie_id).limit(int(limit)))
        return [_movie_dict(r) for r in self._read(stmt)]

    def ping(self) -> bool:
        try:
            self._read(sa.select(sa.literal(1)))
            return True
        except CatalogError:
            return False

    def drop(self) -> None:
        """Drop the project's tables (only these four)."""
        with self._begin() as conn:
            metadata.drop_all(conn)
        self._genres = None

    def close(self) -> None:
        dispose_engine(self.url)
