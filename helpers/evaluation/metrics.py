"""Ranking metrics: HR@K, NDCG@K and Recall@K of one held-out movie per query, from its rank among the candidates.

With one held-out movie, HR@K is 1 when it is among the top K; NDCG@K discounts a hit at position p (0-based) by
1 / log2(p + 2); Recall@K equals HR@K. Ties are counted in expectation (the held-out movie's position is uniform
among the movies that score the same), so count-based scorers are neither flattered nor punished by their ties.
"""
from __future__ import annotations

import numpy as np

from helpers.errors import RecsysError

K_DEFAULT = 10
METRICS: tuple[str, ...] = ("hr", "ndcg", "recall")


class EvaluationError(RecsysError, ValueError):
    """Input the evaluation cannot use; the message names the offending ids and says what to do."""


def _discount_prefix(k: int) -> np.ndarray:
    """D[p] = sum of 1/log2(i+2) for i < p, p = 0..k."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])


def rank_metrics(scores: np.ndarray, target: np.ndarray, exclude: np.ndarray | None,
                 k: int = K_DEFAULT) -> dict[str, np.ndarray]:
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
