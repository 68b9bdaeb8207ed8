"""Combining several liked movies into one ranking: the combine methods, fusion of per-movie searches, top-k."""
from __future__ import annotations



COMBINE_METHODS: tuple[str, ...] = ("mean", "max", "sum")
DEFAULT_COMBINE = "mean"
DEFAULT_PER_MOVIE_LIMIT = 100


# -- fusion (shared by the engine and the NumPy reference) ---------------------------------------------------
def fuse(per_query: list[list[tuple[int, float]]], combine: str) -> dict[int, tuple[float, int]]:
    """Candidate -> (fused score, index of the liked movie that contributed most) from per-query hit lists."""
    fused: dict[int, tuple[float, int, float]] = {}  # id -> (score, best query, best similarity)
    for q, hits in enumerate(per_query):
        for movie_id, score in hits:
            if movie_id not in fused:
                fused[movie_id] = (score, q, score)
                continue
            total, best_q, best = fused[movie_id]
            if combine == "max":
                fused[movie_id] = (max(total, score), q if score > best else best_q, max(best, score))
            else:  # "sum"
                fused[movie_id] = (total + score, q if score > best else best_q, max(best, score))
    return {movie_id: (score, q) for movie_id, (score, q, _) in fused.items()}


def ranked(candidates: dict[int, tuple[float, int]], exclude: set[int], k: int) -> list[tuple[int, float, int]]:
    """The top `k` (id, score, query index), highest score first, ties by lower id."""
    rows = [(mid, s, q) for mid, (s, q) in candidates.items() if mid not in exclude]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return rows[:k]

