"""Query encoders: how the engine turns a visitor's liked movies into the vector it searches Milvus with.

Milvus holds every movie's candidate vector; the model's score of movie j for a query vector q is q . c_j
(`helpers.training.embeddings`). A `QueryEncoder` gives, for liked movie ids (in the order they were liked):
* `movie_vectors(liked)`: one query vector per liked movie (the per-movie searches of `combine="max"` /
  `"sum"`, and the explanation "because you liked ...");
* `encode(liked)`: the one query vector of the whole list (`combine="mean"`, the default).

`MeanQueryEncoder` is today's encoder: the mean of the liked movies' query vectors from the embeddings
artifact, as the evaluation's history protocol scores it (`helpers.evaluation.QueryCandidateScorer`). A
sequence encoder (order-aware) can stand behind the same interface.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from helpers.config import Settings
from helpers.training.embeddings import MovieEmbeddings, load_movie_embeddings
from helpers.errors import RecsysError


class UnknownQueryMovies(RecsysError, KeyError):
    """Liked movie ids the encoder has no query vector for; `.movie_ids` lists them."""

    def __init__(self, movie_ids: list[int]):
        super().__init__(movie_ids)
        self.movie_ids = movie_ids


class QueryEncoder(Protocol):
    dim: int

    def movie_vectors(self, liked_movie_ids: Sequence[int]) -> np.ndarray: ...

    def encode(self, liked_movie_ids: Sequence[int]) -> np.ndarray: ...


class MeanQueryEncoder:
    """The mean of the liked movies' query vectors (`[dim]` float32)."""

    def __init__(self, movie_ids: np.ndarray, query_vectors: np.ndarray):
        movie_ids = np.asarray(movie_ids, dtype=np.int64)
        query_vectors = np.asarray(query_vectors, dtype=np.float32)
        if query_vectors.ndim != 2 or len(query_vectors) != len(movie_ids):
            raise ValueError(f"{len(movie_ids)} movie ids for query vectors of shape {query_vectors.shape}")
        self.row = {int(m): i for i, m in enumerate(movie_ids)}
        self.query_vectors = query_vectors
        self.dim = int(query_vectors.shape[1])

    @classmethod
    def from_embeddings(cls, embeddings: MovieEmbeddings) -> MeanQueryEncoder:
        return cls(embeddings.movie_ids, embeddings.query_vectors)

    @classmethod
    def from_settings(cls, settings: Settings) -> MeanQueryEncoder:
        """From the embeddings artifact of `settings` (notebook 03's), or an error naming the notebook."""
        return cls.from_embeddings(load_movie_embeddings(settings))

    def movie_vectors(self, liked_movie_ids: Sequence[int]) -> np.ndarray:
        missing = [int(m) for m in liked_movie_ids if int(m) not in self.row]
        if missing:
            raise UnknownQueryMovies(missing)
        return self.query_vectors[[self.row[int(m)] for m in liked_movie_ids]]

    def encode(self, liked_movie_ids: Sequence[int]) -> np.ndarray:
        if not len(liked_movie_ids):
            raise ValueError("no liked movies to encode: give at least one movie id")
        return self.movie_vectors(liked_movie_ids).mean(axis=0)
