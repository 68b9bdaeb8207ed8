"""The added movies as a source of query vectors for `helpers.engine.query.MovieVectorLookup`, so that an added
movie can be liked: read from the catalog's `added_movies` table (the one all processes share), and read again
whenever asked about an id it does not hold or the catalog's generation moved (one cheap query, only for requests
that like an added movie), so a movie another process added is known at once, and one it removed is forgotten."""
from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from helpers.config import Settings
from helpers.stores.added import AddedMovies
from helpers.stores.catalog import Catalog
from helpers.stores.sql import sqlite_path


class AddedVectorSource:
    """The live added movies' query vectors (name "added"). `dim` None: the lookup's own (the vectors were
    computed by the model of the embeddings, and `build_stores` re-embeds them after a retraining)."""
    name = "added"
    dim = None

    def __init__(self, settings: Settings):
        self.added = AddedMovies(Catalog(settings))
        self._vectors: dict[int, np.ndarray] = {}
        self._generation: int | None = None
        self._lock = threading.Lock()

    def _refresh(self, generation: int) -> None:
        with self._lock:  # rows read after the generation: at least as new as it says
            self._vectors = {m.movie_id: m.query for m in self.added.rows()}
            self._generation = generation

    def known(self, movie_ids: Sequence[int]) -> np.ndarray:
        ids = [int(m) for m in movie_ids]
        if ids:
            generation = self.added.catalog.generation()
            if generation != self._generation or any(m not in self._vectors for m in ids):
                self._refresh(generation)
        return np.array([m in self._vectors for m in ids], dtype=bool)

    def vectors(self, movie_ids: Sequence[int]) -> np.ndarray:
        return np.stack([self._vectors[int(m)] for m in movie_ids]).astype(np.float32)


def added_vector_source(settings: Settings) -> AddedVectorSource | None:
    """The factory `VECTOR_SOURCES` calls: None while the catalog file does not exist (nothing added yet)."""
    path = sqlite_path(settings.catalog_url)
    return None if path is not None and not path.exists() else AddedVectorSource(settings)
