"""Offline evaluation on the held-out edges: HR/NDCG/Recall@K, two query protocols, three baselines.

Every user in `gd.val` / `gd.test` has one held-out movie. A scorer gives a score to every movie; the
movies the user is known to have rated are left out of the ranking (for val: the training movies; for
test: the training movies and the val movie), and the rank of the held-out movie among the rest gives the
metrics. Two protocols say what the scorer is asked with:

* `"latest"` (a): the user's latest known movie, as in DGL's PinSage example (`LatestNNRecommender`):
  for val the latest training movie, for test the val movie (the step just before the test movie).
* `"history"` (b): the user's last `history` (default `HISTORY_LENGTH` = 10) known movies, as the
  recommender of notebooks 04-05 is asked with the movies a visitor liked. How the movies are combined is
  the scorer's `combine` option: `"mean"` of the normalised vectors (embeddings only), or per-movie scores
  fused by `"sum"` or `"max"`. Note that with an exhaustive search `"mean"` and `"sum"` rank identically
  (q.v_j is the mean of the v_i.v_j); they differ only when each liked movie's search is cut at
  `per_movie_limit` candidates, as a vector database search is.

Models and baselines are fitted on the training edges only; val and test differ only in how far along
each user's time line the query is. `prepare_evaluation(gd, chained=False)` gives the literal variant
instead, in which test is also queried from the training history (two steps ahead of its target).

Scorers take a query array `[n_queries, n]` of movie node indices, padded with -1 (latest movie last), and
return a float array `[n_queries, n_movies]`. Baselines: `PopularityBaseline` (training counts),
`ItemKNNBaseline` (cosine between movies' user sets), `TransitionsBaseline` (how often a movie was rated
right before or after the query movie, or only right after it), `helpers.next_movie.NextMovieBaseline` (per
movie a query and a candidate vector and a bias, no graph); a trained model's query and candidate vectors go
through `query_candidate_scorer`, one set of vectors compared by cosine through `embedding_scorer`.

Ties in the scores are broken at random, in expectation: if `g` other candidates score higher than the
held-out movie and `e` score the same, its position is taken as uniform on `g..g+e`, which makes count
based scorers (popularity, transitions) neither flattered nor punished by the order of their ties.
Standard errors are `std(per-user values, ddof=1) / sqrt(n_users)`.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from helpers.artifacts import atomic_path, write_manifest
from helpers.config import Settings
from helpers.errors import RecsysError

K_DEFAULT = 10
HISTORY_LENGTH = 10
SPLITS: tuple[str, ...] = ("val", "test")
PROTOCOLS: tuple[str, ...] = ("latest", "history")
METRICS: tuple[str, ...] = ("hr", "ndcg", "recall")
COMBINE_METHODS: tuple[str, ...] = ("mean", "sum", "max")
METRICS_FILE = "metrics.json"
SPLIT_DESCRIPTION = (
    "per user with >= 3 ratings, time-ordered: last rating = test, second-to-last = val, the rest = training "
    "graph (all models fitted on it); candidates = every movie the user has not rated before the target "
    "(val: not in training; test: not in training and not the val movie)"
)
PROTOCOL_DESCRIPTIONS: dict[str, str] = {
    "latest": "query = the user's latest movie before the target (val: latest training movie; test: the val "
              "movie), as in DGL's PinSage example",
    "history": "query = the user's last {history} movies before the target, combined by the scorer's "
               "`combine` method (pinsage: mean of the normalised vectors unless the model name says otherwise)",
}


class EvaluationError(RecsysError, ValueError):
    """Input the evaluation cannot use; the message names the offending ids and says what to do."""


class Scorer(Protocol):
    """Anything that scores every movie for a batch of padded query lists."""

    n_movies: int

    def __call__(self, queries: np.ndarray) -> np.ndarray: ...


# ----------------------------------------------------------------------------------------------------------
# Metrics on ranked lists (the building blocks; `evaluate_scores` computes the same from ranks directly)
# ----------------------------------------------------------------------------------------------------------

def _relevance(ranked: np.ndarray, target: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Flags `[n, k]`: is the movie at each of the top-k positions a target; and the number of targets."""
    ranked = np.asarray(ranked)
    target = np.asarray(target)
    if target.ndim == 1:
        target = target[:, None]
    if ranked.ndim != 2 or target.ndim != 2 or len(ranked) != len(target):
        raise EvaluationError(f"ranked must be [n, >=k] and target [n] or [n, t]; got {ranked.shape} and {target.shape}")
    if ranked.shape[1] < k:
        raise EvaluationError(f"ranked lists hold {ranked.shape[1]} movies, fewer than k={k}")
    valid = target >= 0  # -1 pads rows with fewer targets
    hits = ((ranked[:, :k, None] == target[:, None, :]) & valid[:, None, :]).any(axis=2)
    return hits, valid.sum(axis=1)


def hit_rate_at_k(ranked: np.ndarray, target: np.ndarray, k: int = K_DEFAULT) -> np.ndarray:
    """Per query 1.0 if any target is in the top `k` of `ranked` (`[n, >=k]` movie indices), else 0.0.
    `target` is `[n]` or `[n, t]` padded with -1."""
    hits, _ = _relevance(ranked, target, k)
    return hits.any(axis=1).astype(np.float64)


def ndcg_at_k(ranked: np.ndarray, target: np.ndarray, k: int = K_DEFAULT) -> np.ndarray:
    """Per query DCG@k / ideal DCG@k with binary relevance (position p counts 1/log2(p+2))."""
    hits, n_targets = _relevance(ranked, target, k)
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(n_targets, k)]
    return np.divide(hits @ discounts, ideal, out=np.zeros(len(hits)), where=ideal > 0)


def recall_at_k(ranked: np.ndarray, target: np.ndarray, k: int = K_DEFAULT) -> np.ndarray:
    """Per query the share of its targets found in the top `k` (equals HR@k with one target per query)."""
    hits, n_targets = _relevance(ranked, target, k)
    return np.divide(hits.sum(axis=1), n_targets, out=np.zeros(len(hits)), where=n_targets > 0)


def top_k(scores: np.ndarray, k: int = K_DEFAULT, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `k` best scores per row, best first; `exclude` is a boolean mask of movies to skip."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None:
        scores[exclude] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


# ----------------------------------------------------------------------------------------------------------
# What the evaluation needs from a GraphData, checked once
# ----------------------------------------------------------------------------------------------------------

def _check_indices(values: np.ndarray, size: int, what: str, column: str) -> None:
    values = np.asarray(values)
    bad = np.unique(values[(values < 0) | (values >= size)])
    if len(bad):
        shown = ", ".join(str(v) for v in bad[:10]) + (" ..." if len(bad) > 10 else "")
        raise EvaluationError(
            f"{what}: {column} node indices {shown} are outside 0..{size - 1}; they must be node indices of "
            f"this graph (map MovieLens ids with `movie_indices`), rebuild the graph with notebook 02 if it is stale."
        )


@dataclass(frozen=True)
class EvaluationData:
    """What each split's users are known to have watched, and their held-out movies, as arrays.

    With `chained` (the default), each split is evaluated knowing the splits before it: the test query
    history ends with the user's validation movie and that movie is no longer a candidate, so test asks
    the same "what next?" as validation, one step later. Without it, test is queried from the training
    history alone (two steps ahead, with the validation movie among the candidates)."""

    n_movies: int
    seen: dict[str, sp.csr_matrix]        # split -> [n_users, n_movies] bool: movies known before the target
    histories: dict[str, np.ndarray]      # split -> [n_users, max_history] time-ordered, latest last, padded -1
    targets: dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (user indices, held-out movie indices)
    dataset: str = ""
    chained: bool = True

    @classmethod
    def from_frames(cls, train: pd.DataFrame, splits: Mapping[str, pd.DataFrame], n_movies: int,
                    n_users: int | None = None, dataset: str = "", max_history: int = 50,
                    chained: bool = True) -> EvaluationData:
        """Build from frames with `user`, `movie` (node indices) and, for `train`, `timestamp` columns;
        `splits` in time order (val, then test). Training rows with the same timestamp keep their order in
        `train`, as the graph's split does."""
        for name, frame in {"train": train, **splits}.items():
            needed = {"user", "movie", "timestamp"} if name == "train" else {"user", "movie"}
            missing = needed - set(frame.columns)
            if missing:
                raise EvaluationError(f"the {name} frame lacks column(s) {sorted(missing)}")
        users = train["user"].to_numpy(np.int64)
        movies = train["movie"].to_numpy(np.int64)
        if n_users is None:
            n_users = int(max([users.max(initial=-1)] + [f["user"].max() for f in splits.values() if len(f)]) + 1)
        _check_indices(movies, n_movies, "train", "movie")
        _check_indices(users, n_users, "train", "user")
        known = sp.csr_matrix((np.ones(len(users), dtype=bool), (users, movies)), shape=(n_users, n_movies))
        known.sum_duplicates()

        order = np.lexsort((train["timestamp"].to_numpy(np.int64), users))  # stable: ties keep frame order
        users_sorted, movies_sorted = users[order], movies[order]
        starts = np.searchsorted(users_sorted, np.arange(n_users))
        ends = np.searchsorted(users_sorted, np.arange(n_users), side="right")
        history = np.full((n_users, max_history), -1, dtype=np.int64)
        for offset in range(1, max_history + 1):  # column -offset holds the offset-th latest movie
            has = ends - offset >= starts
            history[has, -offset] = movies_sorted[ends[has] - offset]

        seen: dict[str, sp.csr_matrix] = {}
        histories: dict[str, np.ndarray] = {}
        targets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, frame in splits.items():
            split_users = frame["user"].to_numpy(np.int64)
            split_movies = frame["movie"].to_numpy(np.int64)
            _check_indices(split_users, n_users, name, "user")
            _check_indices(split_movies, n_movies, name, "movie")
            repeated = split_users[np.bincount(split_users, minlength=n_users)[split_users] > 1]
            if len(repeated):
                raise EvaluationError(f"{name}: users {np.unique(repeated)[:10].tolist()} have more than one held-out "
                                      "row; the split holds one movie per user (rebuild with notebook 02).")
            no_history = split_users[history[split_users, -1] < 0]
            if len(no_history):
                raise EvaluationError(
                    f"{name}: users {no_history[:10].tolist()} have no training movie to query with; the split "
                    "must leave every evaluated user at least one training interaction (rebuild with notebook 02)."
                )
            seen[name], histories[name], targets[name] = known, history, (split_users, split_movies)
            if chained:  # the next split knows this one's movies
                history = history.copy()
                history[split_users, :-1] = history[split_users, 1:]
                history[split_users, -1] = split_movies
                known = (known + sp.csr_matrix((np.ones(len(split_users), dtype=bool), (split_users, split_movies)),
                                               shape=known.shape)).tocsr()
        return cls(n_movies=n_movies, seen=seen, histories=histories, targets=targets, dataset=dataset,
                   chained=chained)

    def queries(self, split: str, users: np.ndarray, protocol: str, history: int = HISTORY_LENGTH) -> np.ndarray:
        """Padded query lists `[len(users), n]` of `split`'s `users` under `protocol` ("latest": n = 1;
        "history": n = `history`), latest movie last."""
        histories = self.histories[split]
        if protocol == "latest":
            return histories[users, -1:]
        if protocol == "history":
            if not 1 <= history <= histories.shape[1]:
                raise EvaluationError(f"history={history} must be between 1 and {histories.shape[1]}")
            return histories[users, -history:]
        raise EvaluationError(f"Unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")


def prepare_evaluation(gd: Any, max_history: int = 50, chained: bool = True) -> EvaluationData:
    """`EvaluationData` of a `GraphData` (its train/val/test frames); build it once and reuse it per epoch."""
    if isinstance(gd, EvaluationData):
        return gd
    return EvaluationData.from_frames(
        gd.train, {"val": gd.val, "test": gd.test}, n_movies=len(gd.movie_ids), n_users=len(gd.user_ids),
        dataset=getattr(gd, "dataset", ""), max_history=max_history, chained=chained,
    )


def movie_indices(movie_ids: Iterable[int], known_ids: np.ndarray) -> np.ndarray:
    """Node indices of MovieLens `movie_ids` given the graph's `movie_ids` (node index -> id); unknown ids
    raise an `EvaluationError` that names them."""
    known_ids = np.asarray(known_ids, dtype=np.int64)
    wanted = np.asarray(list(movie_ids), dtype=np.int64)
    unknown = wanted[~np.isin(wanted, known_ids)]
    if len(unknown):
        raise EvaluationError(f"Unknown movie id(s) {unknown[:10].tolist()}: they are not in this dataset's catalog.")
    return pd.Series(np.arange(len(known_ids)), index=known_ids).loc[wanted].to_numpy(np.int64)


# ----------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------

def _check_queries(queries: np.ndarray, n_movies: int) -> np.ndarray:
    queries = np.asarray(queries, dtype=np.int64)
    if queries.ndim == 1:
        queries = queries[:, None]
    bad = np.unique(queries[(queries < -1) | (queries >= n_movies)])
    if len(bad):
        raise EvaluationError(f"query movie node indices {bad[:10].tolist()} are outside 0..{n_movies - 1} (-1 = padding)")
    empty = np.flatnonzero((queries < 0).all(axis=1))
    if len(empty):
        raise EvaluationError(f"query rows {empty[:10].tolist()} hold no movie (only -1 padding)")
    return queries


def _discount_prefix(k: int) -> np.ndarray:
    """D[p] = sum of 1/log2(i+2) for i < p, p = 0..k."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])


def rank_metrics(scores: np.ndarray, target: np.ndarray, exclude: np.ndarray | None, k: int = K_DEFAULT) -> dict[str, np.ndarray]:
    """Per-query expected HR/NDCG/Recall@k of one held-out movie per row, ties broken at random in
    expectation. `exclude` (bool `[n, n_movies]`) marks movies that are not candidates (the target never is)."""
    rows = np.arange(len(scores))
    own = scores[rows, target]
    if np.isnan(own).any():
        raise EvaluationError("the scorer gave NaN to a held-out movie; check the embeddings for NaN rows")
    candidates = np.ones(scores.shape, dtype=bool) if exclude is None else ~exclude
    candidates[rows, target] = False
    greater = ((scores > own[:, None]) & candidates).sum(axis=1)
    equal = ((scores == own[:, None]) & candidates).sum(axis=1)
    hr = np.clip(k - greater, 0, equal + 1) / (equal + 1)
    prefix = _discount_prefix(k)
    first, last = np.minimum(greater, k), np.minimum(greater + equal + 1, k)
    ndcg = (prefix[last] - prefix[first]) / (equal + 1)
    return {"hr": hr, "ndcg": ndcg, "recall": hr.copy()}


def evaluate_scores(score_fn: Callable[[np.ndarray], np.ndarray], gd: Any, split: str = "val",
                    protocol: str = "latest", k: int = K_DEFAULT, history: int = HISTORY_LENGTH,
                    batch_size: int = 512) -> dict[str, float]:
    """HR/NDCG/Recall@k of `score_fn` on `split` under `protocol`, with standard errors.

    `gd` is a `GraphData` or a prepared `EvaluationData` (faster when called every epoch). Returns
    `{"hr@10": .., "hr@10_stderr": .., "ndcg@10": .., ..., "n_users": n}`."""
    data = prepare_evaluation(gd)
    if split not in data.targets:
        raise EvaluationError(f"Unknown split {split!r}; use one of {', '.join(data.targets)}")
    if k < 1:
        raise EvaluationError(f"k={k} must be at least 1")
    users, targets = data.targets[split]
    per_user: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for start in range(0, len(users), batch_size):
        batch_users = users[start:start + batch_size]
        queries = data.queries(split, batch_users, protocol, history)
        scores = np.asarray(score_fn(queries))
        if scores.shape != (len(batch_users), data.n_movies):
            raise EvaluationError(f"the scorer returned shape {scores.shape}, expected {(len(batch_users), data.n_movies)}")
        exclude = data.seen[split][batch_users].toarray()
        for name, values in rank_metrics(scores, targets[start:start + batch_size], exclude, k).items():
            per_user[name].append(values)
    result: dict[str, float] = {}
    n = len(users)
    for name in METRICS:
        values = np.concatenate(per_user[name]) if n else np.zeros(0)
        result[f"{name}@{k}"] = float(values.mean()) if n else float("nan")
        result[f"{name}@{k}_stderr"] = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    result["n_users"] = n
    return result


MetricsTable = dict[str, dict[str, dict[str, dict[str, float]]]]  # model -> protocol -> split -> metric -> value


def evaluate_models(models: Mapping[str, Callable[[np.ndarray], np.ndarray]], gd: Any,
                    protocols: Sequence[str] = PROTOCOLS, splits: Sequence[str] = SPLITS, k: int = K_DEFAULT,
                    history: int = HISTORY_LENGTH) -> MetricsTable:
    """Every model on every protocol and split, on the same users: `table[model][protocol][split][metric]`."""
    data = prepare_evaluation(gd)
    return {name: {protocol: {split: evaluate_scores(scorer, data, split, protocol, k, history) for split in splits}
                   for protocol in protocols}
            for name, scorer in models.items()}


# ----------------------------------------------------------------------------------------------------------
# Scorers: baselines and embeddings
# ----------------------------------------------------------------------------------------------------------

def _check_combine(combine: str, allowed: Sequence[str]) -> str:
    if combine not in allowed:
        raise EvaluationError(f"Unknown combine method {combine!r}; use one of {', '.join(allowed)}")
    return combine


def _train_matrix(gd: Any) -> tuple[sp.csr_matrix, int]:
    """Binary users x movies matrix of the training interactions."""
    n_movies = len(gd.movie_ids)
    users = gd.train["user"].to_numpy(np.int64)
    movies = gd.train["movie"].to_numpy(np.int64)
    _check_indices(movies, n_movies, "train", "movie")
    n_users = len(gd.user_ids) if hasattr(gd, "user_ids") else int(users.max(initial=-1)) + 1
    _check_indices(users, n_users, "train", "user")
    matrix = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, movies)), shape=(n_users, n_movies))
    matrix.data[:] = 1.0  # a repeated (user, movie) pair counts once
    return matrix, n_movies


class _ItemItemScorer:
    """Scores from a movie x movie matrix: the query movies' rows, fused by sum or max."""

    n_movies: int
    similarity: sp.csr_matrix

    def __init__(self, combine: str = "sum"):
        self.combine = _check_combine(combine, ("sum", "max"))
        self.similarity = None  # type: ignore[assignment]

    def _require_fit(self) -> None:
        if self.similarity is None:
            raise EvaluationError(f"{type(self).__name__} is not fitted: call .fit(gd) first")

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        self._require_fit()
        queries = _check_queries(queries, self.n_movies)
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
        queries = _check_queries(queries, self.n_movies)
        return np.broadcast_to(self.counts, (len(queries), self.n_movies))


class ItemKNNBaseline(_ItemItemScorer):
    """Cosine similarity between movies' sets of training users: |U_i & U_j| / sqrt(|U_i| |U_j|)."""

    def fit(self, gd: Any) -> ItemKNNBaseline:
        matrix, self.n_movies = _train_matrix(gd)
        co = (matrix.T @ matrix).tocsr()
        norms = np.sqrt(co.diagonal()).astype(np.float32)
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        similarity = sp.diags(inverse) @ co @ sp.diags(inverse)
        similarity.setdiag(0.0)
        similarity.eliminate_zeros()
        self.similarity = similarity.tocsr().astype(np.float32)
        return self


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
        _, self.n_movies = _train_matrix(gd)
        users = gd.train["user"].to_numpy(np.int64)
        movies = gd.train["movie"].to_numpy(np.int64)
        order = np.lexsort((gd.train["timestamp"].to_numpy(np.int64), users))
        users, movies = users[order], movies[order]
        same_user = users[1:] == users[:-1]
        before, after = movies[:-1][same_user], movies[1:][same_user]
        ones = np.ones(len(before), dtype=np.float32)
        forward = sp.csr_matrix((ones, (before, after)), shape=(self.n_movies, self.n_movies))
        transitions = (forward + forward.T if self.direction == "both" else forward).tocsr()
        transitions.setdiag(0.0)
        transitions.eliminate_zeros()
        self.similarity = transitions
        return self


class EmbeddingScorer:
    """Movie vectors as a scorer (row i = movie node i). With one set of `vectors`: cosine similarity (the rows
    are normalised). With `query_vectors` too (a directed model, `helpers.train.MovieVectors`): the inner
    product of the query movies' query vectors with the candidate `vectors`, both as they are (a bias
    dimension and the temperature are part of the score). Several query movies are combined by `combine`:
    "mean" of the query vectors (one search, the engine's default), or per-movie scores fused by "sum" or
    "max". With `per_movie_limit` (sum/max only), each query movie contributes only its `per_movie_limit`
    best movies, as a per-movie vector search does; movies no query movie retrieved score -inf."""

    def __init__(self, vectors: Any, combine: str = "mean", per_movie_limit: int | None = None,
                 query_vectors: Any = None):
        vectors = self._check(vectors, "movie")
        if query_vectors is None:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            query_vectors = vectors
        else:
            query_vectors = self._check(query_vectors, "query")
            if query_vectors.shape != vectors.shape:
                raise EvaluationError(f"query vectors {query_vectors.shape} and candidate vectors {vectors.shape} "
                                      "must have the same shape: one of each per movie")
        self.vectors, self.query_vectors = vectors, query_vectors
        self.n_movies = len(vectors)
        self.combine = _check_combine(combine, COMBINE_METHODS)
        if per_movie_limit is not None and per_movie_limit < 1:
            raise EvaluationError(f"per_movie_limit={per_movie_limit} must be at least 1 (or None for all movies)")
        self.per_movie_limit = per_movie_limit

    @staticmethod
    def _check(vectors: Any, what: str) -> np.ndarray:
        if hasattr(vectors, "detach"):
            vectors = vectors.detach().cpu().numpy()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise EvaluationError(f"{what} vectors must be a non-empty [n_movies, dim] array, got shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
            raise EvaluationError(f"{what} vectors of node indices {bad[:10].tolist()} hold NaN or inf; retrain or re-infer")
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
        queries = _check_queries(queries, self.n_movies)
        valid = queries >= 0
        picked = self.query_vectors[np.where(valid, queries, 0)]  # [B, n, dim]
        if self.combine == "mean":  # one search with the mean vector: per_movie_limit does not apply
            query = (picked * valid[..., None]).sum(axis=1)
            query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
            return query @ self.vectors.T
        similarity = picked @ self.vectors.T  # [B, n, n_movies]
        if self.per_movie_limit is not None and self.per_movie_limit < self.n_movies:
            cut = np.partition(similarity, -self.per_movie_limit, axis=2)[..., -self.per_movie_limit, None]
            retrieved = similarity >= cut
        else:
            retrieved = np.ones(similarity.shape, dtype=bool)
        retrieved &= valid[..., None]
        if self.combine == "max":
            scores = np.where(retrieved, similarity, -np.inf).max(axis=1)
        else:
            scores = np.where(retrieved, similarity, 0.0).sum(axis=1)
        return np.where(retrieved.any(axis=1), scores, -np.inf)


def query_candidate_scorer(query_vectors: Any, candidate_vectors: Any, combine: str = "mean",
                           per_movie_limit: int | None = None) -> EmbeddingScorer:
    """A trained model's query and candidate vectors (e.g. `helpers.train.MovieVectors`) as a scorer: the
    inner product of the query movies' query vectors with every candidate vector, combined by `combine`."""
    return EmbeddingScorer(candidate_vectors, combine=combine, per_movie_limit=per_movie_limit,
                           query_vectors=query_vectors)


def embedding_scorer(vectors: Any, combine: str = "mean", per_movie_limit: int | None = None) -> EmbeddingScorer:
    """PinSage (or any) movie vectors as a scorer for both protocols; row i belongs to movie node i."""
    return EmbeddingScorer(vectors, combine=combine, per_movie_limit=per_movie_limit)


def fit_baselines(gd: Any, combine: str = "sum", next_movie_steps: int | None = None,
                  seed: int = 42) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The baselines fitted on `gd`'s training edges, by name: popularity, item-kNN, transitions (before or
    after), transitions [after] (the movie watched next) and next-movie [no graph] (`helpers.next_movie`,
    trained for `next_movie_steps` steps; default `next_movie_steps_for(gd.dataset)`) with `seed`."""
    from helpers.next_movie import NextMovieBaseline, next_movie_steps_for

    steps = next_movie_steps if next_movie_steps is not None else next_movie_steps_for(getattr(gd, "dataset", ""))
    return {
        "popularity": PopularityBaseline().fit(gd),
        "item-knn": ItemKNNBaseline(combine).fit(gd),
        "transitions": TransitionsBaseline(combine).fit(gd),
        "transitions [after]": TransitionsBaseline(combine, direction="after").fit(gd),
        "next-movie [no graph]": NextMovieBaseline(steps=steps, seed=seed).fit(gd),
    }


# ----------------------------------------------------------------------------------------------------------
# metrics.json and a readable table
# ----------------------------------------------------------------------------------------------------------

def metrics_path(settings: Settings) -> Path:
    return settings.artifacts_dir / METRICS_FILE


def write_metrics(settings: Settings, table: MetricsTable, *, k: int = K_DEFAULT, history: int = HISTORY_LENGTH,
                  dataset_label: str | None = None, split: str = SPLIT_DESCRIPTION,
                  inputs: dict[str, Path] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write `artifacts_dir/metrics.json` atomically with its manifest (stage "model"):
    `{"dataset", "dataset_label", "split", "k", "seed", "history", "protocols", "n_users": {split: n},
    "models": {model: {protocol: {split: {metric: value, metric_stderr: value}}}}, ...extra}`."""
    if not table:
        raise EvaluationError("the metrics table is empty: evaluate at least one model before writing metrics.json")
    n_users: dict[str, int] = {}
    models: dict[str, Any] = {}
    for model, protocols in table.items():
        models[model] = {}
        for protocol, splits in protocols.items():
            models[model][protocol] = {}
            for split, metrics in splits.items():
                n = int(metrics.get("n_users", 0))
                if n_users.setdefault(split, n) != n:
                    raise EvaluationError(f"{model}/{protocol}/{split} was scored on {n} users, others on "
                                          f"{n_users[split]}: evaluate every model on the same split")
                models[model][protocol][split] = {m: v for m, v in metrics.items() if m != "n_users"}
    document = {
        "dataset": settings.dataset,
        "dataset_label": dataset_label or settings.dataset,
        "split": split,
        "k": k,
        "seed": settings.seed,
        "history": history,
        "protocols": {p: d.format(history=history) for p, d in PROTOCOL_DESCRIPTIONS.items()},
        "tie_breaking": "random, in expectation",
        "stderr": "std(per-user values, ddof=1) / sqrt(n_users)",
        "n_users": n_users,
        "models": models,
        **(extra or {}),
    }
    path = metrics_path(settings)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2))
    write_manifest(path, "model", settings, inputs=inputs, extra={"k": k, "history": history})
    return path


def metrics_frame(table: MetricsTable | Mapping[str, Any], k: int = K_DEFAULT, numeric: bool = False,
                  digits: int = 3) -> pd.DataFrame:
    """A readable DataFrame: rows (model, protocol), columns (split, metric), cells "0.154 ± 0.007"
    (or the bare means with `numeric=True`). Accepts a table or the dict read from metrics.json."""
    if "models" in table and isinstance(table.get("models"), Mapping):
        k = int(table.get("k", k))
        table = table["models"]
    labels = {"hr": f"HR@{k}", "ndcg": f"NDCG@{k}", "recall": f"Recall@{k}"}
    rows: dict[tuple[str, str], dict[tuple[str, str], Any]] = {}
    columns: list[tuple[str, str]] = []
    for model, protocols in table.items():
        for protocol, splits in protocols.items():
            row = rows.setdefault((model, protocol), {})
            for split, metrics in splits.items():
                for name in METRICS:
                    key = f"{name}@{k}"
                    if key not in metrics:
                        continue
                    mean, err = metrics[key], metrics.get(f"{key}_stderr", float("nan"))
                    column = (split, labels[name])
                    row[column] = mean if numeric else f"{mean:.{digits}f} ± {err:.{digits}f}"
                    if column not in columns:
                        columns.append(column)
    frame = pd.DataFrame([rows[key] for key in rows], columns=pd.MultiIndex.from_tuples(columns, names=["split", "metric"]),
                         index=pd.MultiIndex.from_tuples(list(rows), names=["model", "protocol"]))
    return frame
