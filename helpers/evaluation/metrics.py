"""Ranking metrics on ranked lists: HR@K, NDCG@K and Recall@K per query (the building blocks;
`helpers.evaluation.protocols` computes the same from ranks directly)."""
from __future__ import annotations

import numpy as np

from helpers.errors import RecsysError

K_DEFAULT = 10
METRICS: tuple[str, ...] = ("hr", "ndcg", "recall")


class EvaluationError(RecsysError, ValueError):
    """Input the evaluation cannot use; the message names the offending ids and says what to do."""


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

