"""Movies added after training: the catalog table `added_movies`, the one source of truth every process reads.

A row holds an added movie's metadata, its first ratings, the graph neighbours it was embedded from and its two
vectors (the candidate vector Milvus holds, the query vector the engine's lookup reads). Its `movie_id` comes from
the table's autoincrement, which `helpers.stores.sql.reserve_added_ids` starts above the dataset's largest id at
every ingestion: the database picks the id, so two processes adding at once never get the same one.

`state` is the crash marker of the write across the two stores (Milvus has no transactions):
* `begin_add` inserts the row as "adding" (committed) before Milvus is touched;
* `publish` turns it "live" and inserts the `movies`, `movie_genres` and `ratings` rows in ONE transaction, so
  a movie is in the catalog's tables exactly when its row is live;
* `begin_remove` marks a live row "removing" before its Milvus row goes; `delete` removes every catalog row.
`publish`, `delete` (so `drop_unfinished`) and `replace_vectors` bump the catalog generation in their own
transaction (`helpers.stores.sql.bump_generation`), so every process's title index sees the change at once.
A row left "adding" or "removing" (a kill between the stores) is undone at the next engine start
(`helpers.engine.adding.resolve_leftovers`): an add's Milvus row and catalog rows are deleted, a removal's Milvus
row is put back from `candidate` and the row turns "live" again (`cancel_remove`).
The marker is a row rather than a file beside `stores.building.json` because the catalog is what every process
shares (API workers on other machines, with MySQL and a Milvus server), and because the marker then commits or
rolls back with the rows it guards.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from helpers.data.movielens import GENRE_SEPARATOR, genre_list
from helpers.stores.catalog import Catalog
from helpers.stores.sql import (
    CatalogError,
    added_movies_table,
    bump_generation,
    fold,
    movie_genres_table,
    movies_table,
    ratings_table,
    users_table,
)

ADDING, LIVE, REMOVING = "adding", "live", "removing"
table = added_movies_table


def owner() -> str:
    """This process, as the `owner` of the rows it marks: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class AddedMovie:
    """An added movie as the table holds it; `ratings` rows are (user_id, rating, timestamp)."""
    movie_id: int
    title: str
    year: int | None
    genres: list[str]
    ratings: list[tuple[int, float, int]]
    neighbours: list[tuple[int, float]]  # (graph movie id, visit weight) of the first layer, heaviest first
    candidate: np.ndarray
    query: np.ndarray
    state: str = LIVE
    owner: str = ""
    changed: float = 0.0


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).copy()


def _row(r: Any) -> AddedMovie:
    m = r._mapping
    return AddedMovie(movie_id=int(m["movie_id"]), title=m["title"], year=None if m["year"] is None else int(m["year"]),
                      genres=genre_list(m["genres"]), ratings=[tuple(x) for x in json.loads(m["ratings"])],
                      neighbours=[tuple(x) for x in json.loads(m["neighbours"])], candidate=_vector(m["candidate"]),
                      query=_vector(m["query"]), state=m["state"], owner=m["owner"], changed=float(m["changed"]))


class AddedMovies:
    """The `added_movies` table of `catalog` (its engine, its error messages)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def exists(self) -> bool:
        """Whether the table is there (a catalog built before movies could be added has none)."""
        try:
            with self.catalog.engine.connect() as conn:
                return sa.inspect(conn).has_table(table.name)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise self.catalog.fault(exc, "looking for the added movies") from exc

    # -- the write, step by step -------------------------------------------------------------------------------
    def begin_add(self, title: str, year: int | None, genres: list[str], ratings: list[tuple[int, float, int]],
                  neighbours: list[tuple[int, float]], candidate: np.ndarray, query: np.ndarray) -> int:
        """Insert the row as "adding" (the crash marker) and return the id the database gave it."""
        values = {"state": ADDING, "owner": owner(), "changed": time.time(), "title": title, "year": year,
                  "genres": GENRE_SEPARATOR.join(genres), "ratings": json.dumps([list(r) for r in ratings]),
                  "neighbours": json.dumps([list(n) for n in neighbours]),
                  "candidate": np.asarray(candidate, np.float32).tobytes(),
                  "query": np.asarray(query, np.float32).tobytes()}
        with self.catalog._begin("reserving an id for the added movie") as conn:
            return int(conn.execute(table.insert().values(**values)).inserted_primary_key[0])

    def publish(self, movie_id: int) -> None:
        """In one transaction: the row "adding" -> "live", and the movie's rows in `movies`, `movie_genres` and
        `ratings`. Fails (changing nothing) when the row is no longer "adding" (undone meanwhile)."""
        with self.catalog._begin("publishing the added movie") as conn:
            found = conn.execute(sa.select(table).where(table.c.movie_id == movie_id)).first()
            movie = _row(found) if found is not None else None
            done = conn.execute(table.update().where(table.c.movie_id == movie_id, table.c.state == ADDING)
                                .values(state=LIVE, owner=owner(), changed=time.time()))
            if movie is None or done.rowcount != 1:
                raise CatalogError(f"The added movie {movie_id} was undone by another process before it was "
                                   "published (it was left half-written for too long): add it again.")
            self._insert_rows(conn, [movie])
            bump_generation(conn)

    @staticmethod
    def _insert_rows(conn: sa.Connection, movies: list[AddedMovie]) -> None:
        for movie in movies:
            values = [r[1] for r in movie.ratings]
            conn.execute(movies_table.insert().values(
                movie_id=movie.movie_id, title=movie.title, title_folded=fold(movie.title), year=movie.year,
                genres=GENRE_SEPARATOR.join(movie.genres), n_ratings=len(values),
                mean_rating=round(float(np.mean(values)), 4) if values else None))
            if movie.genres:
                conn.execute(movie_genres_table.insert(),
                             [{"movie_id": movie.movie_id, "genre": g} for g in movie.genres])
            if movie.ratings:
                conn.execute(ratings_table.insert(), [{"user_id": u, "movie_id": movie.movie_id, "rating": r,
                                                       "timestamp": t} for u, r, t in movie.ratings])

    def begin_remove(self, movie_id: int) -> bool:
        """Mark a live row "removing" (the crash marker of a removal); False when no live row has that id."""
        with self.catalog._begin("marking the added movie for removal") as conn:
            done = conn.execute(table.update().where(table.c.movie_id == movie_id, table.c.state == LIVE)
                                .values(state=REMOVING, owner=owner(), changed=time.time()))
            return done.rowcount == 1

    def cancel_remove(self, movie_id: int) -> None:
        """Turn a "removing" row "live" again (its removal was undone; its catalog rows were never deleted)."""
        with self.catalog._begin("restoring the added movie") as conn:
            conn.execute(table.update().where(table.c.movie_id == movie_id, table.c.state == REMOVING)
                         .values(state=LIVE, owner=owner(), changed=time.time()))

    def delete(self, movie_id: int) -> None:
        """Delete the movie from every catalog table in one transaction (its row last)."""
        with self.catalog._begin("deleting the added movie") as conn:
            for t in (ratings_table, movie_genres_table, movies_table, table):
                conn.execute(t.delete().where(t.c.movie_id == movie_id))
            bump_generation(conn)

    # -- reading -----------------------------------------------------------------------------------------------
    def rows(self, states: tuple[str, ...] = (LIVE,)) -> list[AddedMovie]:
        """The rows in `states`, by id; none when the table does not exist."""
        if not self.exists():
            return []
        stmt = sa.select(table).where(table.c.state.in_(states)).order_by(table.c.movie_id)
        return [_row(r) for r in self.catalog._read(stmt)]

    def get(self, movie_id: int) -> AddedMovie | None:
        if not self.exists():
            return None
        found = self.catalog._read(sa.select(table).where(table.c.movie_id == int(movie_id)))
        return _row(found[0]) if found else None

    def known_users(self, user_ids: list[int]) -> set[int]:
        """Those of `user_ids` the catalog knows: in its users table, or (datasets without one) in its ratings."""
        ids = sorted({int(u) for u in user_ids})
        if not ids:
            return set()
        has_users = self.catalog._read(sa.select(users_table.c.user_id).limit(1))
        column = users_table.c.user_id if has_users else ratings_table.c.user_id
        found: set[int] = set()
        for first in range(0, len(ids), 1_000):
            found.update(int(r[0]) for r in self.catalog._read(
                sa.select(column).where(column.in_(ids[first:first + 1_000])).distinct()))
        return found

    def live_count(self) -> int:
        if not self.exists():
            return 0
        stmt = sa.select(sa.func.count()).select_from(table).where(table.c.state == LIVE)
        return int(self.catalog._read(stmt)[0][0])

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The live added movies as the dataset's `movies` and `ratings` frames (for `build_stores`)."""
        live = self.rows()
        movies = pd.DataFrame({"movie_id": [m.movie_id for m in live], "title": [m.title for m in live],
                               "year": pd.array([m.year for m in live], dtype="Int64"),
                               "genres": [m.genres for m in live]})
        ratings = pd.DataFrame([(u, m.movie_id, r, t) for m in live for u, r, t in m.ratings],
                               columns=["user_id", "movie_id", "rating", "timestamp"])
        return movies, ratings

    def replace_vectors(self, vectors: dict[int, tuple[np.ndarray, np.ndarray, list[tuple[int, float]]]]) -> None:
        """Store re-embedded (candidate, query, neighbours) of live rows (after a retraining)."""
        with self.catalog._begin("storing the re-embedded added movies") as conn:
            for movie_id, (candidate, query, neighbours) in vectors.items():
                conn.execute(table.update().where(table.c.movie_id == movie_id).values(
                    candidate=np.asarray(candidate, np.float32).tobytes(),
                    query=np.asarray(query, np.float32).tobytes(),
                    neighbours=json.dumps([list(n) for n in neighbours])))
            bump_generation(conn)

    def drop_unfinished(self) -> list[int]:
        """Delete the rows left "adding" or "removing" (a rebuilt catalog has none of their movie rows)."""
        ids = [m.movie_id for m in self.rows((ADDING, REMOVING))]
        for movie_id in ids:
            self.delete(movie_id)
        return ids
