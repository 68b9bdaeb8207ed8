"""Movie vectors as scorers for the evaluation protocols: cosine of one set of vectors, or a model's query vectors
against its candidate vectors."""
from __future__ import annotations

from typing import Any

import numpy as np

from helpers.evaluation.baselines import check_combine
from helpers.evaluation.protocols import EvaluationError, check_queries, movie_indices
from helpers.ranking import COMBINE_METHODS, normalise_rows, score_liked


class EmbeddingScorer:
    """Movie vectors as a scorer (row i = movie node i). With one set of `vectors`: cosine similarity (the rows
    are normalised). With `query_vectors` too (a directed model, `helpers.training.inference.MovieVectors`): the inner
    product of the query movies' query vectors with the candidate `vectors`, both as they are (a bias
    dimension and the temperature are part of the score). Several query movies are combined by `combine`:
    "mean" of the query vectors (one search, the engine's default), or per-movie scores fused by "sum" or
    "max". With `per_movie_limit` (sum/max only), each query movie contributes only its `per_movie_limit`
    best movies, as a per-movie vector search does; movies no query movie retrieved score -inf."""

    def __init__(self, vectors: Any, combine: str = "mean", per_movie_limit: int | None = None,
                 query_vectors: Any = None):
        vectors = self._check(vectors, "movie")
        if query_vectors is None:
            vectors = normalise_rows(vectors)
            query_vectors = vectors
        else:
            query_vectors = self._check(query_vectors, "query")
            if query_vectors.shape != vectors.shape:
                raise EvaluationError(f"query vectors {query_vectors.shape} and candidate vectors {vectors.shape} "
                                      "must have the same shape: one of each per movie")
        self.vectors, self.query_vectors = vectors, query_vectors
        self.n_movies = len(vectors)
        self.combine = check_combine(combine, COMBINE_METHODS)
        if per_movie_limit is not None and per_movie_limit < 1:
            raise EvaluationError(f"per_movie_limit={per_movie_limit} must be at least 1 (or None for all movies)")
        self.per_movie_limit = per_movie_limit

    @staticmethod
    def _check(vectors: Any, what: str) -> np.ndarray:
        if hasattr(vectors, "detach"):
            vectors = vectors.detach().cpu().numpy()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise EvaluationError(f"{what} vectors must be a non-empty [n_movies, dim] array, "
                                  f"got shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
            raise EvaluationError(f"{what} vectors of node indices {bad[:10].tolist()} hold NaN or inf; "
                                  "retrain or re-infer")
        return vectors

    @classmethod
    def from_movie_ids(cls, movie_ids: np.ndarray, vectors: np.ndarray, graph_movie_ids: np.ndarray,
                       **options: Any) -> EmbeddingScorer:
        """Align vectors stored by MovieLens id (e.g. `load_movie_embeddings`) to the graph's node order;
        graph movies without a vector are named in the error."""
        movie_ids = np.asarray(movie_ids, dtype=np.int64)
        graph_movie_ids = np.asarray(graph_movie_ids, dtype=np.int64)
        missing = graph_movie_ids[~np.isin(graph_movie_ids, movie_ids)]
        if len(missing):
            raise EvaluationError(f"no vector for movie id(s) {missing[:10].tolist()}: the embeddings are from another "
                                  "graph; re-run notebook 03.")
        rows = movie_indices(graph_movie_ids, movie_ids)
        if options.get("query_vectors") is not None:
            options = {**options, "query_vectors": np.asarray(options["query_vectors"])[rows]}
        return cls(np.asarray(vectors)[rows], **options)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        queries = check_queries(queries, self.n_movies)
        valid = queries >= 0
        picked = self.query_vectors[np.where(valid, queries, 0)]  # [B, n, dim]
        limit = None if self.combine == "mean" else self.per_movie_limit  # "mean" is one search: no per-movie cut
        return score_liked(picked, valid, self.vectors, self.combine, limit)


def query_candidate_scorer(query_vectors: Any, candidate_vectors: Any, combine: str = "mean",
                           per_movie_limit: int | None = None) -> EmbeddingScorer:
    """A trained model's query and candidate vectors (e.g. `helpers.training.inference.MovieVectors`) as a scorer: the
    inner product of the query movies' query vectors with every candidate vector, combined by `combine`."""
    return EmbeddingScorer(candidate_vectors, combine=combine, per_movie_limit=per_movie_limit,
                           query_vectors=query_vectors)


def embedding_scorer(vectors: Any, combine: str = "mean", per_movie_limit: int | None = None) -> EmbeddingScorer:
    """PinSage (or any) movie vectors as a scorer for both protocols; row i belongs to movie node i."""
    return EmbeddingScorer(vectors, combine=combine, per_movie_limit=per_movie_limit)

