"""Baselines that count instead of learn, fitted on the training edges: popularity, item-kNN and transitions.

Their fits at ML-32M size (32M ratings): item-kNN's sparse products cost one multiply-add per ordered pair of a
user's movies, `co_rating_work` = sum over users of n_u^2, dominated by the most active users, so
`ItemKNNBaseline(recent=M)` fits on each user's latest M training ratings (sum of min(n_u, M)^2; notebook 03's
`large` preset sets it). The transitions sort the ratings by user and time once and count consecutive pairs into
one sparse matrix: O(R log R) in the R ratings, no cap needed."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from helpers.evaluation.protocols import EvaluationError, check_indices, check_queries


def check_combine(combine: str, allowed: Sequence[str]) -> str:
    if combine not in allowed:
        raise EvaluationError(f"Unknown combine method {combine!r}; use one of {', '.join(allowed)}")
    return combine


def _train_arrays(gd: Any) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The training edges' user and movie node indices, checked, with the numbers of users and movies."""
    n_movies = len(gd.movie_ids)
    users = gd.train["user"].to_numpy(np.int64)
    movies = gd.train["movie"].to_numpy(np.int64)
    check_indices(movies, n_movies, "train", "movie")
    n_users = len(gd.user_ids) if hasattr(gd, "user_ids") else int(users.max(initial=-1)) + 1
    check_indices(users, n_users, "train", "user")
    return users, movies, n_users, n_movies


def _train_matrix(gd: Any, recent: int | None = None) -> tuple[sp.csr_matrix, int]:
    """Binary users x movies matrix of the training interactions (with `recent`, each user's latest `recent`)."""
    users, movies, n_users, n_movies = _train_arrays(gd)
    if recent is not None:
        rows = latest_per_user(users, gd.train["timestamp"].to_numpy(np.int64), recent)
        users, movies = users[rows], movies[rows]
    matrix = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, movies)), shape=(n_users, n_movies))
    matrix.data[:] = 1.0  # a repeated (user, movie) pair counts once
    return matrix, n_movies


def latest_per_user(users: np.ndarray, timestamps: np.ndarray, limit: int) -> np.ndarray:
    """Positions of each user's latest `limit` rows by time (sorted by user, then time; ties in time: the later
    row counts as later, as the evaluation's histories order them)."""
    if limit < 1:
        raise EvaluationError(f"limit={limit}: keep at least 1 rating per user")
    order = np.lexsort((timestamps, users))  # stable: ties keep the rows' order
    ordered = users[order]
    from_end = np.searchsorted(ordered, ordered, side="right") - np.arange(len(order))  # 1 = the user's latest
    return order[from_end <= limit]


def co_rating_work(ratings_per_user: np.ndarray, recent: int | None = None) -> int:
    """Multiply-adds of item-kNN's co-occurrence counts: each user adds one per ordered pair of their movies, n_u^2
    (min(n_u, `recent`)^2 fitted on the latest `recent`). `ratings_per_user`: distinct training movies per user."""
    counts = np.asarray(ratings_per_user, dtype=np.int64)
    if recent is not None:
        counts = np.minimum(counts, recent)
    return int((counts ** 2).sum())


class _ItemItemScorer:
    """Scores from a movie x movie matrix: the query movies' rows, fused by sum or max."""

    n_movies: int
    similarity: sp.csr_matrix

    def __init__(self, combine: str = "sum"):
        self.combine = check_combine(combine, ("sum", "max"))
        self.similarity = None  # type: ignore[assignment]

    def _require_fit(self) -> None:
        if self.similarity is None:
            raise EvaluationError(f"{type(self).__name__} is not fitted: call .fit(gd) first")

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        self._require_fit()
        queries = check_queries(queries, self.n_movies)
        if self.combine == "sum" or queries.shape[1] == 1:
            rows, cols = np.nonzero(queries >= 0)
            pick = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, queries[rows, cols])),
                                 shape=(len(queries), self.n_movies))
            return (pick @ self.similarity).toarray()
        scores = np.full((len(queries), self.n_movies), -np.inf, dtype=np.float32)
        for column in queries.T:
            has = column >= 0
            scores[has] = np.maximum(scores[has], self.similarity[column[has]].toarray())
        return scores


class PopularityBaseline:
    """Every user gets the movies with the most training interactions (the query is ignored)."""

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None
        self.n_movies = 0

    def fit(self, gd: Any) -> PopularityBaseline:
        matrix, self.n_movies = _train_matrix(gd)
        self.counts = np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel()
        return self

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        if self.counts is None:
            raise EvaluationError("PopularityBaseline is not fitted: call .fit(gd) first")
        queries = check_queries(queries, self.n_movies)
        return np.broadcast_to(self.counts, (len(queries), self.n_movies))


KNN_EXACT_UP_TO = 10_000  # movies: up to this many, ItemKNNBaseline keeps every similarity (exact)
KNN_NEIGHBOURS = 200  # above it, each movie keeps its 200 most similar movies (ML-25M/32M size)


class ItemKNNBaseline(_ItemItemScorer):
    """Cosine similarity between movies' sets of training users: |U_i & U_j| / sqrt(|U_i| |U_j|).

    Computed `chunk` movies at a time with sparse products (never a dense movies x movies matrix), each
    movie keeping its `neighbours` most similar movies. `neighbours="auto"` keeps all of them (exact) up to
    `KNN_EXACT_UP_TO` movies and `KNN_NEIGHBOURS` above; None always keeps all. With `recent`, U_i holds only the
    users among whose latest `recent` training ratings movie i is (`co_rating_work` counts what that saves)."""

    def __init__(self, combine: str = "sum", neighbours: int | str | None = "auto", chunk: int = 512,
                 recent: int | None = None):
        super().__init__(combine)
        if neighbours not in ("auto", None) and not (isinstance(neighbours, int) and neighbours >= 1):
            raise EvaluationError(f"neighbours={neighbours!r}: give a whole number >= 1, 'auto' or None (all)")
        if chunk < 1:
            raise EvaluationError(f"chunk={chunk} must be at least 1")
        if recent is not None and recent < 1:
            raise EvaluationError(f"recent={recent}: give a whole number >= 1, or None (every training rating)")
        self.neighbours, self.chunk, self.recent = neighbours, chunk, recent
        self.kept: int | None = None  # neighbours kept per movie after fit (None: all)

    def fit(self, gd: Any) -> ItemKNNBaseline:
        matrix, self.n_movies = _train_matrix(gd, self.recent)
        keep = self.neighbours
        if keep == "auto":
            keep = None if self.n_movies <= KNN_EXACT_UP_TO else KNN_NEIGHBOURS
        self.kept = keep
        counts = np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()
        inverse = np.divide(1.0, np.sqrt(counts), out=np.zeros_like(counts), where=counts > 0).astype(np.float32)
        by_movie = matrix.T.tocsr()
        pieces = []
        for start in range(0, self.n_movies, self.chunk):
            stop = min(start + self.chunk, self.n_movies)
            co = (by_movie[start:stop] @ matrix).tocsr()  # [chunk, n_movies] co-occurrence counts
            co.data *= np.repeat(inverse[start:stop], np.diff(co.indptr))
            co.data *= inverse[co.indices]
            rows = np.repeat(np.arange(start, stop), np.diff(co.indptr))
            co.data[co.indices == rows] = 0.0  # a movie is not its own neighbour
            co.eliminate_zeros()
            pieces.append(co if keep is None else _top_per_row(co, keep))
        similarity = sp.vstack(pieces, format="csr") if pieces else sp.csr_matrix((0, self.n_movies))
        self.similarity = similarity.astype(np.float32)
        return self


def _top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """The `k` largest entries of each row of a row block (ties broken arbitrarily), selected with
    `np.argpartition` on the block made dense: [rows, n_movies] float32, e.g. 512 x 87,585 = 180 MB."""
    lengths = np.diff(matrix.indptr)
    if lengths.max(initial=0) <= k:
        return matrix
    dense = matrix.toarray()
    top = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(dense, top, axis=1)
    keep = values > 0
    rows = np.broadcast_to(np.arange(len(dense))[:, None], top.shape)
    return sp.csr_matrix((values[keep], (rows[keep], top[keep])), shape=matrix.shape)


class TransitionsBaseline(_ItemItemScorer):
    """How often each movie was rated right before or right after the query movie in the users'
    time-ordered training histories (ties in time keep the training frame's order). With
    `direction="after"` only the movies rated right AFTER the query movie count (a "next movie" model)."""

    DIRECTIONS = ("both", "after")

    def __init__(self, combine: str = "sum", direction: str = "both"):
        super().__init__(combine)
        if direction not in self.DIRECTIONS:
            raise EvaluationError(f"Unknown direction {direction!r}; use one of {', '.join(self.DIRECTIONS)}")
        self.direction = direction

    def fit(self, gd: Any) -> TransitionsBaseline:
        users, movies, _, self.n_movies = _train_arrays(gd)
        order = np.lexsort((gd.train["timestamp"].to_numpy(np.int64), users))
        users, movies = users[order], movies[order]
        counted = (users[1:] == users[:-1]) & (movies[1:] != movies[:-1])  # a movie is not its own transition
        before, after = movies[:-1][counted], movies[1:][counted]
        if self.direction == "both":
            before, after = np.concatenate([before, after]), np.concatenate([after, before])
        ones = np.ones(len(before), dtype=np.float32)  # repeated pairs are summed: the counts
        self.similarity = sp.csr_matrix((ones, (before, after)), shape=(self.n_movies, self.n_movies))
        return self

