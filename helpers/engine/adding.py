"""Adding a movie the model never saw, and removing it: `MovieAdmin`, behind `engine.add_movie` / `remove_movie`.

`add_movie(title, year, genres, ratings)`:
1. checks the input (`helpers.engine.inputs.check_new_movie`: genres from the catalog, ratings on the dataset's
   scale from the stores record, users the catalog knows): bad input is a `RecommendError`, nothing written;
2. embeds the movie with the trained model through the inductive path (`NewMovieEmbedder`, loaded on the first
   add): walks from its raters into the training graph, the neighbours' stored layer vectors pooled;
3. writes, in this order: the `added_movies` row as "adding" (the crash marker; the database gives the id), the
   Milvus row (upsert + flush), then ONE catalog transaction that makes the row "live" and inserts the movie's
   catalog rows. Any failure deletes what was written (`_undo`); a kill leaves the marker, and the next engine
   start deletes the movie from both stores (`resolve_leftovers`) before serving.
`remove_movie(movie_id)` removes an added movie (never a MovieLens one): marker "removing", Milvus, then the
catalog rows in one transaction. A failure before that transaction puts the movie back (`_restore`: its Milvus
row from the vector the catalog row keeps, the row "live" again); a kill leaves the marker, and the next start
restores the movie the same way: an add or a removal that did not finish leaves both stores as they were.
The API (`POST /movies`, `DELETE /movies/{id}`), `python -m helpers.serving.admin` and notebook 06 all call these.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from helpers.engine.inputs import RecommendError, check_ids, check_new_movie
from helpers.stores.added import ADDING, LIVE, REMOVING, AddedMovie, AddedMovies
from helpers.stores.build import STORES_NOTEBOOK, recorded
from helpers.stores.errors import StoreError
from helpers.stores.sql import CatalogError
from helpers.training.new_movies import NewMovieEmbedder

log = logging.getLogger(__name__)
LEFTOVER_SECONDS = 300.0  # a marker older than this is a dead write even when its owner is on another machine


class UnknownAddedMovieError(RecommendError):
    """No movie with that id (a 404 in the API)."""


class NotAnAddedMovieError(RecommendError):
    """The id is one of the dataset's own movies, which are never removed (a 409 in the API)."""


@dataclass(frozen=True)
class AddedMovieInfo:
    """What `add_movie` returns: the new movie and the graph movies its vector came from."""
    movie_id: int
    title: str
    year: int | None
    genres: list[str]
    n_ratings: int
    neighbours: list[dict[str, Any]]  # {"movie_id", "title", "weight"}, heaviest first


def _alive(owner: str) -> bool:
    """Whether the process `host:pid` may still be writing: always, unless it is on this host and gone."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MovieAdmin:
    """Adds and removes movies on the stores of `engine` (a `RecommendationEngine`: its settings, Milvus client,
    catalog and genres)."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.added = AddedMovies(engine.catalog)
        self.embedder = NewMovieEmbedder(engine.settings, self._dataset_years)

    def _dataset_years(self, movie_ids: np.ndarray) -> pd.Series:
        rows = self.engine.catalog.movies(movie_ids.tolist())
        return pd.Series([rows[int(m)]["year"] if int(m) in rows else None for m in movie_ids])

    def add_movie(self, title: Any, year: Any, genres: Any, ratings: Any = ()) -> AddedMovieInfo:
        """Add one movie (title, year, genres, ratings as (user_id, rating, timestamp)) to both stores."""
        title, year, genres, rows = check_new_movie(title, year, genres, list(ratings), self.engine.genres(),
                                                    recorded(self.engine.settings, "rating_values"))
        users = [u for u, _, _ in rows]
        unknown = sorted(set(users) - self.added.known_users(users))
        if unknown:
            raise RecommendError(f"users {unknown[:10]} are not in the catalog: ratings must come from its users "
                                 "(see GET /movies/{id} for movies, the dataset's users table for users)")
        if not self.added.exists():
            raise CatalogError(f"The catalog has no added_movies table (it was built before movies could be added): "
                               f"re-run {STORES_NOTEBOOK}.")
        vectors = self.embedder.embed(title, year, genres, users)
        movie_id = self.added.begin_add(title, year, genres, rows, vectors.neighbours, vectors.candidate,
                                        vectors.query)
        try:
            self._put(movie_id, title, year, genres, vectors.candidate)
            self.added.publish(movie_id)
        except BaseException:
            self._undo(movie_id)
            raise
        titles = self.engine.catalog.movies([m for m, _ in vectors.neighbours])
        neighbours = [{"movie_id": m, "title": titles[m]["title"] if m in titles else None, "weight": w}
                      for m, w in vectors.neighbours]
        return AddedMovieInfo(movie_id, title, year, genres, len(rows), neighbours)

    def remove_movie(self, movie_id: Any) -> None:
        """Remove an added movie from both stores; a MovieLens movie is refused (`NotAnAddedMovieError`)."""
        (movie_id,) = check_ids([movie_id])
        row = self.added.get(movie_id)
        if row is None or row.state != LIVE:
            if row is None and self.engine.catalog.movie(movie_id) is not None:
                raise NotAnAddedMovieError(f"Movie {movie_id} is one of the dataset's own movies: only added movies "
                                           "can be removed.")
            if row is not None:
                doing = "added" if row.state == ADDING else "removed"
                raise RecommendError(f"Movie {movie_id} is being {doing} by another process: try again in a moment.")
            raise UnknownAddedMovieError(f"No added movie with id {movie_id}: find ids with /movies?q=...")
        if not self.added.begin_remove(movie_id):
            raise RecommendError(f"Movie {movie_id} is being removed by another process.")
        try:
            self.engine.store.delete([movie_id])
            self.added.delete(movie_id)
        except BaseException:
            self._restore(row)
            raise

    def _put(self, movie_id: int, title: str, year: int | None, genres: list[str], candidate: np.ndarray) -> None:
        frame = pd.DataFrame({"movie_id": [movie_id], "title": [title], "year": [year], "genres": [genres]})
        self.engine.store.put(np.array([movie_id]), candidate[None, :], frame)

    def _restore(self, movie: AddedMovie, quiet: bool = True) -> None:
        """Put a movie whose removal stopped half-way back as it was: its Milvus row from the candidate vector its
        catalog row keeps (its catalog rows were never deleted), then its row "live". `quiet` as for `_undo`."""
        try:
            self._put(movie.movie_id, movie.title, movie.year, movie.genres, movie.candidate)
            self.added.cancel_remove(movie.movie_id)
        except StoreError as error:
            if not quiet:
                raise
            log.error("could not restore the movie %s (the next start will): %s", movie.movie_id, error)

    def _undo(self, movie_id: int, quiet: bool = True) -> None:
        """Delete `movie_id` from Milvus, then from the catalog (its marker row last). `quiet`: a failure here is
        logged and left to `resolve_leftovers` (the marker stays), so the original error is the one raised."""
        try:
            self.engine.store.delete([movie_id])
            self.added.delete(movie_id)
        except StoreError as error:
            if not quiet:
                raise
            log.error("could not undo the added movie %s (the next start will): %s", movie_id, error)

    def leftovers(self) -> list[AddedMovie]:
        """Rows whose add or removal stopped half-way: owned by a dead process here, or older than
        `LEFTOVER_SECONDS`."""
        now = time.time()
        return [m for m in self.added.rows((ADDING, REMOVING))
                if not _alive(m.owner) or now - m.changed > LEFTOVER_SECONDS]

    def resolve_leftovers(self) -> list[int]:
        """Put every leftover back as it was before: a movie left "adding" deleted from both stores, one left
        "removing" restored in both. A failure here leaves the marker and the engine does not start."""
        done = []
        for movie in self.leftovers():
            if movie.state == ADDING:
                self._undo(movie.movie_id, quiet=False)
            else:
                self._restore(movie, quiet=False)
            log.warning("movie %s was left %s by %s: %s", movie.movie_id, movie.state, movie.owner,
                        "removed from both stores" if movie.state == ADDING else "restored in both stores")
            done.append(movie.movie_id)
        return done
