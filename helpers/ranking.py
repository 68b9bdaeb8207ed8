"""Combining several liked movies into one ranking: each combine method defined once.

A model scores movie j for a liked movie i as `q_i . c_j` (i's query vector, j's candidate vector). For several
liked movies:

* `"mean"`: one query vector, the normalised mean of the liked movies' query vectors (one vector search);
* `"max"`: each liked movie searches on its own; a movie scores its best score from any liked movie;
* `"sum"`: each liked movie searches on its own, cut at `per_movie_limit` hits; a movie scores the sum of the
  scores it got from the liked movies that retrieved it.

`score_liked` computes them by brute force for whole batches of liked lists: the evaluation's scorers
(`helpers.evaluation.scorers`) and the engine's reference (`helpers.engine.reference`) both call it. The engine
searches Milvus instead (one search with `normalise_rows` of the query for "mean", one per liked movie for
"max"/"sum", fused by `fuse`), and the tests hold it to the reference.
"""
from __future__ import annotations

import numpy as np

from helpers.errors import RecsysError

COMBINE_METHODS: tuple[str, ...] = ("mean", "max", "sum")
DEFAULT_COMBINE = "mean"
DEFAULT_PER_MOVIE_LIMIT = 100


class RankingError(RecsysError, ValueError):
    """A combine method the project does not know; the message lists the known ones."""


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows (along the last axis) scaled to unit length, as float32; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def score_liked(query_vectors: np.ndarray, valid: np.ndarray, candidates: np.ndarray, combine: str,
                per_movie_limit: int | None = None, allowed: np.ndarray | None = None) -> np.ndarray:
    """Scores `[B, M]` of `M` candidates for `B` liked lists combined by `combine` (see the module docstring).

    `query_vectors` `[B, n, d]`: the liked movies' query vectors, padded where `valid` `[B, n]` is False;
    `candidates` `[M, d]`; `allowed` `[M]` (the filters) and, for "max"/"sum", `per_movie_limit` (the hits each
    liked movie's search returns, among the allowed movies; None = all). A movie not allowed, or that no liked
    movie retrieved, scores -inf."""
    if combine not in COMBINE_METHODS:
        raise RankingError(f"unknown combine method {combine!r}: use one of {', '.join(COMBINE_METHODS)}")
    valid = np.asarray(valid, dtype=bool)
    allowed = np.ones(len(candidates), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if combine == "mean":
        query = normalise_rows((query_vectors * valid[..., None]).sum(axis=1))
        return np.where(allowed, query @ candidates.T, -np.inf)
    similarity = np.where(allowed, query_vectors @ candidates.T, -np.inf)  # [B, n, M]
    retrieved = np.isfinite(similarity) & valid[..., None]
    if per_movie_limit is not None and per_movie_limit < int(allowed.sum()):
        cut = np.partition(similarity, -per_movie_limit, axis=2)[..., -per_movie_limit, None]
        retrieved &= similarity >= cut
    if combine == "max":
        scores = np.where(retrieved, similarity, -np.inf).max(axis=1)
    else:
        scores = np.where(retrieved, similarity, 0.0).sum(axis=1)
    return np.where(retrieved.any(axis=1), scores, -np.inf)


def fuse(per_query: list[list[tuple[int, float]]], combine: str) -> dict[int, tuple[float, int]]:
    """The engine's "max"/"sum" over per-liked-movie search hits: candidate -> (fused score, index of the liked
    movie that scored it highest)."""
    fused: dict[int, tuple[float, int, float]] = {}  # id -> (score, best query, best similarity)
    for q, hits in enumerate(per_query):
        for movie_id, score in hits:
            if movie_id not in fused:
                fused[movie_id] = (score, q, score)
                continue
            total, best_q, best = fused[movie_id]
            combined = max(total, score) if combine == "max" else total + score
            fused[movie_id] = (combined, q if score > best else best_q, max(best, score))
    return {movie_id: (score, q) for movie_id, (score, q, _) in fused.items()}


def ranked(candidates: dict[int, tuple[float, int]], exclude: set[int], k: int) -> list[tuple[int, float, int]]:
    """The top `k` (id, score, query index), highest score first, ties by lower id."""
    rows = [(mid, s, q) for mid, (s, q) in candidates.items() if mid not in exclude]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return rows[:k]
