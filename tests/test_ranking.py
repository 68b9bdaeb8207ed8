"""Each combine method is defined once (`helpers.ranking.score_liked`); its callers are held to one plain-loop
reference written here: the evaluation's batched scorers and the engine's NumPy reference (the engine itself is
held to that reference over Milvus in tests/test_recommend.py). About 1 s."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.engine.reference import numpy_recommend
from helpers.evaluation.scorers import query_candidate_scorer
from helpers.ranking import COMBINE_METHODS, RankingError, score_liked


def loop_reference(query: np.ndarray, candidates: np.ndarray, combine: str, limit: int | None,
                   allowed: np.ndarray) -> np.ndarray:
    """One liked list, movie by movie, as the module docstring of helpers.ranking says it in words."""
    scores = np.full(len(candidates), -np.inf)
    if combine == "mean":
        mean = query.mean(axis=0)
        centre = mean / np.linalg.norm(mean)
        for j in np.flatnonzero(allowed):
            scores[j] = centre @ candidates[j]
        return scores
    got: dict[int, list[float]] = {}
    for q in query:
        hits = sorted(np.flatnonzero(allowed), key=lambda j: -(q @ candidates[j]))
        for j in hits[:limit] if limit is not None else hits:
            got.setdefault(int(j), []).append(float(q @ candidates[j]))
    for j, values in got.items():
        scores[j] = max(values) if combine == "max" else sum(values)
    return scores


def random_case(seed: int, n_movies: int = 60, dim: int = 8):
    rng = np.random.default_rng(seed)
    candidates = rng.normal(size=(n_movies, dim)).astype(np.float32)
    queries = rng.normal(size=(n_movies, dim)).astype(np.float32)
    allowed = rng.random(n_movies) < 0.6
    return rng, candidates, queries, allowed


@pytest.mark.parametrize("combine", COMBINE_METHODS)
def test_score_liked_is_the_loop_reference(combine: str) -> None:
    rng, candidates, queries, allowed = random_case(1)
    liked = rng.choice(len(queries), size=(3, 4), replace=False)
    valid = np.ones(liked.shape, dtype=bool)
    valid[2, 2:] = False  # a shorter list, padded
    limit = None if combine == "mean" else 7
    got = score_liked(queries[liked], valid, candidates, combine, limit, allowed)
    for row in range(3):
        want = loop_reference(queries[liked[row][valid[row]]], candidates, combine, limit, allowed)
        np.testing.assert_allclose(got[row], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("combine", COMBINE_METHODS)
def test_the_evaluation_scorer_ranks_as_the_reference(combine: str) -> None:
    rng, candidates, queries, _ = random_case(2)
    limit = None if combine == "mean" else 9
    scorer = query_candidate_scorer(queries, candidates, combine=combine, per_movie_limit=limit)
    batch = np.array([[3, 17, 40], [5, -1, -1], [-1, 8, 22]])  # padded with -1, latest last
    scores = scorer(batch)
    for row, movies in zip(scores, batch, strict=True):
        liked = movies[movies >= 0]
        want = loop_reference(queries[liked], candidates, combine, limit, np.ones(len(candidates), dtype=bool))
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("combine", COMBINE_METHODS)
def test_the_engine_reference_ranks_as_the_loop_reference(combine: str) -> None:
    rng, candidates, queries, allowed = random_case(3)
    movie_ids = np.arange(100, 100 + len(candidates))
    liked = [int(m) for m in rng.choice(movie_ids, size=4, replace=False)]
    got = numpy_recommend(movie_ids, candidates, liked, k=5, combine=combine, allowed=allowed, per_movie_limit=8,
                          query_vectors=queries)
    rows = np.searchsorted(movie_ids, liked)
    limit = None if combine != "sum" else max(8, 5 + len(liked))
    scores = loop_reference(queries[rows], candidates, combine, limit, allowed)
    scores[rows] = -np.inf  # liked movies never come back
    order = sorted(np.flatnonzero(np.isfinite(scores)), key=lambda j: (-scores[j], movie_ids[j]))[:5]
    assert [m for m, _, _ in got] == [int(movie_ids[j]) for j in order]
    np.testing.assert_allclose([s for _, s, _ in got], scores[order], rtol=1e-5, atol=1e-6)


def test_an_unknown_combine_method_is_refused() -> None:
    with pytest.raises(RankingError, match="mean, max, sum"):
        score_liked(np.zeros((1, 1, 2)), np.ones((1, 1), dtype=bool), np.zeros((3, 2)), "median")
