"""The engine's input checks and limits: every bad input is a `RecommendError` that says what to do."""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from helpers.errors import RecsysError

# Every limit of the engine, the API and the two pages, defined once. The API serves programs and allows more
# than the pages show a person: PAGE_MAX_K for the picker's slider and the web app's "How many", MAX_K for the API.
DEFAULT_K = 10            # recommendations when the caller does not say
MAX_K = 100               # recommendations one call may ask for (engine, API)
PAGE_MAX_K = 50           # recommendations the picker and the web app offer
MAX_LIKED = 200           # liked movies one call may send
MAX_SEARCH_RESULTS = 100  # titles one search may return (engine, GET /movies)
PAGE_MATCHES = 20         # titles the pages' type-ahead lists
PAGE_MIN_LETTERS = 2      # letters typed before the pages search
MAX_ID = 2**63 - 1        # ids are signed 64-bit in both stores


class RecommendError(RecsysError, ValueError):
    """Bad input to the engine; the message says what to do."""


# -- input checks ------------------------------------------------------------------------------------------
def check_ids(liked_movie_ids: Any) -> list[int]:
    if isinstance(liked_movie_ids, (str, bytes)) or not isinstance(liked_movie_ids, (Sequence, np.ndarray, set)):
        raise RecommendError(f"liked_movie_ids must be a list of movie ids, e.g. [1, 260], got {liked_movie_ids!r}")
    ids = []
    for value in liked_movie_ids:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise RecommendError(f"Movie ids are whole numbers; {value!r} is not. Find ids with search_titles().")
        if not 1 <= value <= MAX_ID:
            shown = str(int(value))
            shown = shown if len(shown) <= 24 else f"{shown[:20]}... ({len(shown)} digits)"
            raise RecommendError(f"Movie id {shown} is out of range: ids are whole numbers from 1 to 2**63-1. "
                                 "Find ids with search_titles().")
        ids.append(int(value))
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RecommendError(f"Liked movie ids repeat: {repeated}. List each movie once.")
    if len(ids) > MAX_LIKED:
        raise RecommendError(f"{len(ids)} liked movies is more than the {MAX_LIKED} the engine takes; pick fewer.")
    return ids


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= MAX_K:
        raise RecommendError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    return int(k)


def check_years(years: Any) -> tuple[int, int] | None:
    if years is None:
        return None
    try:
        low, high = years
    except (TypeError, ValueError):  # not a pair
        low = high = None
    if any(isinstance(y, bool) or not isinstance(y, numbers.Integral) for y in (low, high)):
        raise RecommendError(f"years must be a (first, last) pair of whole years, e.g. (1990, 1999), got {years!r}")
    if low > high:
        raise RecommendError(f"years={years!r}: the first year is after the last; give (earlier, later)")
    return int(low), int(high)


def check_genres(genres: Any, known: Sequence[str]) -> list[str] | None:
    if genres is None:
        return None
    if isinstance(genres, str) or not all(isinstance(g, str) for g in genres):
        raise RecommendError(f"genres must be a list of genre names, e.g. ['Comedy'], got {genres!r}")
    genres = list(dict.fromkeys(genres))
    unknown = [g for g in genres if g not in known]
    if unknown:
        raise RecommendError(f"Unknown genre(s) {unknown}. Known genres: {', '.join(known)}")
    return genres or None

