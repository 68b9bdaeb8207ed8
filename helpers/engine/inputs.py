"""The engine's input checks and limits: every bad input is a `RecommendError` that says what to do."""
from __future__ import annotations

import numbers
import unicodedata
from collections import Counter
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
# an added movie (helpers.engine.adding, POST /movies); 1,000 ratings fit the API's 64 KB body limit
MAX_TITLE_CHARS = 200     # characters of an added movie's title
MIN_YEAR, MAX_YEAR = 1800, 2100  # years of an added movie, and of the API's year filters
MAX_NEW_RATINGS = 1_000   # first ratings an added movie may come with
MAX_TIMESTAMP = 4_102_444_800  # rating times are unix seconds up to 2100-01-01


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



def check_new_movie(title: Any, year: Any, genres: Any, ratings: Any, known_genres: Sequence[str],
                    rating_values: Sequence[float] | None) -> tuple[str, int, list[str], list[tuple[int, float, int]]]:
    """An added movie's input, checked: a non-empty title of at most `MAX_TITLE_CHARS` plain characters, a whole
    year in `MIN_YEAR`..`MAX_YEAR`, genres from `known_genres`, at most `MAX_NEW_RATINGS` ratings (user_id,
    rating, timestamp) with one per user, each rating one of `rating_values` (the dataset's scale; None: any
    finite number) and each time whole seconds in 0..`MAX_TIMESTAMP`. Returns (title, year, genres, ratings)."""
    if not isinstance(title, str) or not title.strip():
        raise RecommendError("title must be non-empty text, e.g. 'Golden Harbor IV'")
    title = title.strip()
    if len(title) > MAX_TITLE_CHARS or any(unicodedata.category(c) == "Cc" for c in title):
        raise RecommendError(f"title must be at most {MAX_TITLE_CHARS} characters of plain text (no control "
                             f"characters such as NUL), got {len(title)} characters")
    if isinstance(year, bool) or not isinstance(year, numbers.Integral) or not MIN_YEAR <= year <= MAX_YEAR:
        raise RecommendError(f"year must be a whole year from {MIN_YEAR} to {MAX_YEAR}, got {year!r}")
    checked = check_genres(genres, known_genres)
    if isinstance(ratings, (str, bytes)) or not isinstance(ratings, (Sequence, np.ndarray)):
        raise RecommendError("ratings must be a list of (user_id, rating, timestamp); give [] for none")
    if len(ratings) > MAX_NEW_RATINGS:
        raise RecommendError(f"{len(ratings)} ratings is more than the {MAX_NEW_RATINGS} an added movie may come "
                             "with; send its first ones")
    rows = []
    for row in ratings:
        user, value, when = row if isinstance(row, (Sequence, np.ndarray)) and len(row) == 3 else (None,) * 3
        if isinstance(user, bool) or not isinstance(user, numbers.Integral) or not 1 <= user <= MAX_ID:
            raise RecommendError(f"each rating is (user_id, rating, timestamp) with a whole user id; got {row!r}"[:200])
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or (
                rating_values is not None and float(value) not in {float(v) for v in rating_values}):
            scale = ", ".join(f"{v:g}" for v in rating_values) if rating_values is not None else "finite numbers"
            raise RecommendError(f"rating {value!r} of user {user} is not on the dataset's scale: use {scale}")
        if isinstance(when, bool) or not isinstance(when, numbers.Integral) or not 0 <= when <= MAX_TIMESTAMP:
            raise RecommendError(f"timestamp {when!r} of user {user} must be whole unix seconds from 0 to "
                                 f"{MAX_TIMESTAMP}")
        rows.append((int(user), float(value), int(when)))
    repeated = sorted(u for u, n in Counter(u for u, _, _ in rows).items() if n > 1)
    if repeated:
        raise RecommendError(f"users {repeated[:10]} rate the movie more than once: one rating per user")
    return title, int(year), checked or [], rows
