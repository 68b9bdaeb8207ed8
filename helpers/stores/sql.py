"""The SQL layer under the catalog: its tables, one SQLAlchemy engine per process and URL, bulk inserts, folded text."""
from __future__ import annotations

import os
import sqlite3
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from helpers.stores.errors import StoreError

DEFAULT_BATCH_SIZE = 50_000  # rows per executemany call in `bulk_insert`
# a MariaDB that stops answering fails a statement after this long instead of hanging its caller (the API's title
# search runs on the event loop); a batch of DEFAULT_BATCH_SIZE rows takes about a second
MYSQL_READ_TIMEOUT_S = 30
STAGING_SUFFIX = "__new"
RETIRED_SUFFIX = "__old"
SERVER_HINT = ("Start it with `docker compose up -d mysql` (docker-compose.yml), or unset RECSYS_CATALOG_URL "
               "to use the embedded SQLite file.")
_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci",
                  "mariadb_charset": "utf8mb4", "mariadb_collate": "utf8mb4_unicode_ci"}
metadata = sa.MetaData()
movies_table = sa.Table(
    "movies", metadata,
    sa.Column("movie_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("title", sa.String(1024), nullable=False),
    # binary collation on MySQL, so both backends compare the folded text exactly alike
    sa.Column("title_folded", sa.String(1024).with_variant(sa.String(1024, collation="utf8mb4_bin"), "mysql",
                                                           "mariadb"), nullable=False),
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
# one row (id 1): bumped in the same transaction as every catalog write (an ingestion swaps it in with the new
# tables), so a process that keeps something built from the catalog in memory (`helpers.stores.titles`) reads it
# per use and rebuilds when it changed
generation_table = sa.Table(
    "catalog_generation", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
    **_TABLE_OPTIONS,
)

# movies added after training (helpers.stores.added): the one source of truth every process reads. The id comes
# from the autoincrement, started above the dataset's largest id at ingestion; `state` is the crash marker.
added_movies_table = sa.Table(
    "added_movies", metadata,
    sa.Column("movie_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("state", sa.String(16), nullable=False),  # "adding", "live" or "removing"
    sa.Column("owner", sa.String(160), nullable=False),  # host:pid of the process that set the state
    sa.Column("changed", sa.Float, nullable=False),  # unix time the state was set
    sa.Column("title", sa.String(1024), nullable=False),
    sa.Column("year", sa.Integer, nullable=True),
    sa.Column("genres", sa.String(1024), nullable=False),
    sa.Column("ratings", sa.Text(2**24), nullable=False),  # JSON [[user_id, rating, timestamp], ...]
    sa.Column("neighbours", sa.Text(2**16), nullable=False),  # JSON [[movie_id, weight], ...] of the first layer
    sa.Column("candidate", sa.LargeBinary(2**16), nullable=False),  # float32 bytes: the vector Milvus holds
    sa.Column("query", sa.LargeBinary(2**16), nullable=False),  # float32 bytes: the lookup's query vector
    sqlite_autoincrement=True,
    **_TABLE_OPTIONS,
)


class CatalogError(StoreError):
    """The catalog cannot be reached or used, or was given bad input; the message says what to do."""

    store = "catalog"


# what a database call raises when the catalog fails: SQLAlchemy wraps the drivers' (sqlite3, PyMySQL) errors
# in DBAPIError, and a SQLite file opened by `_sqlite_engine`'s creator can fail with sqlite3's own
DRIVER_ERRORS: tuple[type[Exception], ...] = (sa.exc.SQLAlchemyError, sqlite3.Error)


def _normalise_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    return (make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True)


_ENGINES: dict[tuple[int, str], Engine] = {}  # (pid, url) -> Engine: one pool per process and URL


def get_engine(url: str) -> Engine:
    """This process's SQLAlchemy engine for `url` (created on first use)."""
    key = (os.getpid(), url)
    if key not in _ENGINES:
        try:
            parsed = _normalise_url(url)
            backend = parsed.get_backend_name()
            if backend == "sqlite":
                engine = _sqlite_engine(parsed)
            elif backend in ("mysql", "mariadb"):
                engine = sa.create_engine(parsed, pool_pre_ping=True, pool_recycle=3600,
                                         connect_args={"read_timeout": MYSQL_READ_TIMEOUT_S})
            else:
                raise CatalogError(f"Unsupported catalog database {safe_url(parsed)}: use sqlite:///path.sqlite or "
                                   "mysql+pymysql://user:password@host:3306/database (RECSYS_CATALOG_URL).")
        except (sa.exc.ArgumentError, ImportError) as exc:  # not a URL, or its driver is not installed
            raise CatalogError(f"RECSYS_CATALOG_URL cannot be used ({exc}): give sqlite:///path.sqlite, or "
                               "mysql+pymysql://user:password@host:3306/database with PyMySQL installed "
                               "(`pip install -r requirements.txt`).") from exc
        _ENGINES[key] = engine
    return _ENGINES[key]


def _sqlite_engine(parsed: URL) -> Engine:
    """SQLite with transactional DDL (SQLAlchemy's recipe: the driver's own transaction handling off, BEGIN
    emitted by us), so an ingestion's CREATE/DROP/RENAME commit or roll back together. A file URL opens the
    file read-write but never creates it: a catalog deleted under a running API is an error, not a new empty
    file (`Catalog.create` makes the file)."""
    path = parsed.database
    if path and path != ":memory:":
        target = f"file:{Path(path).resolve()}?mode=rw"
        engine = sa.create_engine(parsed, creator=lambda: sqlite3.connect(target, uri=True, check_same_thread=False))
    else:
        engine = sa.create_engine(parsed)

    @sa.event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def dispose_engine(url: str) -> None:
    engine = _ENGINES.pop((os.getpid(), url), None)
    if engine is not None:
        engine.dispose()


def fold(text: str) -> str:
    """Text as title search compares it: accents removed, case folded ("Misérables" -> "miserables")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def control_characters(text: str) -> list[str]:
    """The control characters (NUL, escapes, ...) in `text`, as code points such as 'U+0000'."""
    return sorted({f"U+{ord(c):04X}" for c in text if unicodedata.category(c) == "Cc"})


def bulk_insert(conn: Connection, table: sa.Table, columns: dict[str, Sequence[Any]],
                chunk_rows: int = DEFAULT_BATCH_SIZE, progress: Any = None) -> int:
    """Insert column arrays (equal lengths; NumPy arrays or lists, None for NULL) into `table` through the
    driver's `executemany`, `chunk_rows` rows per call: no per-row dicts, no ORM. Returns the rows inserted.
    Identifiers are quoted by the dialect; every value is a bound parameter."""
    names = list(columns)
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise CatalogError(f"bulk_insert into {table.name}: columns of different lengths {sorted(lengths)}")
    (n_rows,) = lengths
    quote_id = conn.dialect.identifier_preparer.quote
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    statement = (f"INSERT INTO {quote_id(table.name)} ({', '.join(quote_id(n) for n in names)}) "
                 f"VALUES ({', '.join([marker] * len(names))})")
    for first in range(0, n_rows, chunk_rows):
        chunk = [values[first:first + chunk_rows] for values in columns.values()]
        rows = list(zip(*(c.tolist() if isinstance(c, np.ndarray) else list(c) for c in chunk), strict=True))
        conn.exec_driver_sql(statement, rows)
        if progress is not None:
            progress.update(len(rows))
    return n_rows


def bump_generation(conn: Connection) -> None:
    """Move the catalog's generation on, inside `conn`'s transaction: every catalog write but an ingestion (which
    swaps in its own row) calls it, so a process that keeps something built from the catalog rebuilds it."""
    table = generation_table
    done = conn.execute(table.update().where(table.c.id == 1).values(generation=table.c.generation + 1))
    if done.rowcount == 0:
        conn.execute(table.insert().values(id=1, generation=1))


def reserve_added_ids(conn: Connection, largest: int) -> None:
    """Start `added_movies`' autoincrement above `largest` (the dataset's largest movie id), inside `conn`'s
    transaction: a placeholder row with that id advances the counter on SQLite and MySQL alike and goes at once."""
    table = added_movies_table
    if conn.execute(sa.select(table.c.movie_id).where(table.c.movie_id >= int(largest)).limit(1)).first():
        return  # the counter is already past it
    conn.execute(table.insert().values(movie_id=int(largest), state="reserved", owner="", changed=0.0, title="",
                                       genres="", ratings="[]", neighbours="[]", candidate=b"", query=b""))
    conn.execute(table.delete().where(table.c.movie_id == int(largest)))


def staging_table(table: sa.Table, suffix: str, target: sa.MetaData) -> sa.Table:
    """A copy of `table` named `<name><suffix>`, without its secondary indexes (built after the bulk load)."""
    return sa.Table(table.name + suffix, target, *(c._copy() for c in table.columns), **_TABLE_OPTIONS)

