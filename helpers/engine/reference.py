"""The engine's ranking by brute force over the vectors in memory: the reference the tests and benchmarks hold the
engine to."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from helpers.engine.inputs import RecommendError
from helpers.ranking import COMBINE_METHODS, DEFAULT_COMBINE, DEFAULT_PER_MOVIE_LIMIT, score_liked


def numpy_recommend(movie_ids: np.ndarray, vectors: np.ndarray, liked_movie_ids: Sequence[int], k: int = 10,
                    combine: str = DEFAULT_COMBINE, allowed: np.ndarray | None = None,
                    per_movie_limit: int = DEFAULT_PER_MOVIE_LIMIT,
                    query_vectors: np.ndarray | None = None,
                    query: np.ndarray | None = None) -> list[tuple[int, float, int]]:
    """Reference ranking by brute force in memory: (movie id, score, liked movie id it came from), best first.
    `vectors` are the candidate vectors and `query_vectors` (default: `vectors`) the query vectors, as in
    the embeddings artifact; `allowed` is a boolean mask over `movie_ids` (the filters); liked movies never
    come back. `query` (combine "mean" only): the one query vector `[dim]` of the whole list, as the engine's
    query encoder makes it (`engine.encoder.encode(liked)`); default: the mean of the liked movies' query vectors
    (`helpers.engine.query.MeanQueryEncoder`). The results are explained by the liked movies' own query vectors,
    as the engine explains them, whatever `query`."""
    movie_ids = np.asarray(movie_ids, dtype=np.int64)
    liked = [int(m) for m in liked_movie_ids]
    by_id = np.argsort(movie_ids)
    rows = by_id[np.clip(np.searchsorted(movie_ids, liked, sorter=by_id), 0, len(movie_ids) - 1)]
    if not np.array_equal(movie_ids[rows], liked):
        raise RecommendError(f"liked movie id(s) {sorted(set(liked) - set(movie_ids[rows].tolist()))} have no vector")
    if combine not in COMBINE_METHODS:
        raise RecommendError(f"Unknown combine method {combine!r}; use one of {', '.join(COMBINE_METHODS)}")
    if query is not None and combine != "mean":
        raise RecommendError(f"query= is the one query vector of combine='mean'; combine={combine!r} searches each "
                             "liked movie's own query vector: leave query out")
    liked_queries = (vectors if query_vectors is None else query_vectors)[rows]
    if query is not None and np.shape(query) != (vectors.shape[1],):
        raise RecommendError(f"query has shape {np.shape(query)}: give one vector of length {vectors.shape[1]}")
    # the "mean" of the one row `query` is `query` itself
    searched = liked_queries if query is None else np.asarray(query, dtype=np.float32)[None]
    limit = max(per_movie_limit, k + len(liked)) if combine == "sum" else None  # the engine's searches
    scores = score_liked(searched[None], np.ones((1, len(searched)), dtype=bool), vectors, combine, limit, allowed)[0]
    similarity = liked_queries @ vectors.T  # [n_liked, n_movies]: who each result came from
    mask = np.isfinite(scores)
    candidates = np.flatnonzero(mask & ~np.isin(movie_ids, liked))
    if len(candidates) > 4 * k:  # only the best few need the exact (score, id) ordering
        candidates = candidates[np.argpartition(-scores[candidates], 4 * k)[:4 * k]]
    order = candidates[np.lexsort((movie_ids[candidates], -scores[candidates]))][:k]
    best = similarity[:, order].argmax(axis=0)
    return [(int(movie_ids[i]), float(scores[i]), liked[int(b)]) for i, b in zip(order, best, strict=True)]

