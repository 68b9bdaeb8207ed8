"""Synthetic MovieLens at any size, in the ML-25M/ML-32M release format (`ratings.csv`, `movies.csv`).

`RECSYS_DATASET=synthetic-32m` (or `synthetic-5m`, `synthetic-250k`, `synthetic-1000000`) names a dataset
that `helpers.data.loader.load_movielens` generates into `RECSYS_CACHE/<name>-seed<seed>/` on first use and then
reads like a downloaded ML-32M. `python -m helpers.data.synthetic --ratings 32000000 --out DIR` writes one
anywhere. It is the scalable sibling of the small `sample` (`helpers.data.sample.write_sample`): the same idea
(movies in series, users in taste groups who pick series of their taste and watch the parts in order),
drawn with array operations instead of a per-user Python loop, so `sample`'s recorded bytes stay as they are.

Shape, fitted on the real copies in `../shared/movielens` (`python -m helpers.data.fit` re-measures them):

* users: `ratings / 159.25` of them (ML-32M: 32,000,204 ratings / 200,948 users); every user >= 20 ratings.
  Ratings per user: above TAIL_FROM = 50 (65 % of users; ML-1M 70 %, ML-100K 60 %) a power law
  P(n) ~ n^-ALPHA with ALPHA = 1.95, the Hill estimate above 50 (ML-1M 1.86, ML-100K 2.04); below 50
  log-uniform from 20. The tail is capped where the mean comes to 159.25 (about 1,300 ratings; at most
  40 % of the catalogue), then the part above 20 is scaled so the file holds exactly `ratings` rows.
* movies: 3,883 at ML-1M size growing as ratings^0.899 (87,585 at ML-32M). Popularity by rank r/n follows a
  broken power law: slope HEAD_SLOPE = 0.69 for the first BREAK = 52.5 % of the catalogue (ML-1M 0.74,
  ML-100K 0.63), then TAIL_SLOPE = 5.8 (ML-1M 6.7, ML-100K 4.9): a long head and a steep cut-off of
  rarely rated movies, as the real rank-frequency curves have.
* time: each user's ratings have strictly increasing timestamps between 1995 and 2023 in the order picked;
  parts of a series follow each other sooner than unrelated movies.
* ratings in half stars (0.5-5.0), higher for the user's taste group; 19 genres of the CSV releases plus
  "(no genres listed)"; titles with a year, some with commas and accents (quoted, UTF-8).

The ratings are drawn and written in chunks of users (`chunk_users`), so memory stays at a few hundred MB
at any size; the same seed and size write the same bytes.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.artifacts import atomic_path, generated_folder_ready
from helpers.data.movielens import GENRE_SEPARATOR, NO_GENRES
from helpers.errors import RecsysError

PREFIX = "synthetic-"
MARKER = "synthetic.json"
VERSION = 1
RATINGS_PER_USER = 32_000_204 / 200_948  # ML-32M
MIN_RATINGS = 20
ALPHA = 1.95  # P(n ratings) ~ n^-ALPHA, Hill estimate above 50 ratings, mean of ML-1M (1.86) and ML-100K (2.04)
HEAD_SLOPE, TAIL_SLOPE, BREAK = 0.69, 5.8, 0.525  # movie popularity vs rank share: mean of ML-1M and ML-100K fits
TAIL_FROM, TAIL_SHARE = 50, 0.65  # the power law holds above 50 ratings, for 65 % of users (ML-1M 70 %, ML-100K 60 %)
MAX_USER_SHARE = 0.4  # the most active user rates at most this share of the catalogue
MIN_MOVIES = 800  # small sizes: enough movies for users averaging 159 ratings under that cap
ML1M_POINT, ML32M_POINT = (1_000_209, 3_883), (32_000_204, 87_585)  # (ratings, movies) of the releases
GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
FIRST_TIME, LAST_TIME = 789_652_009, 1_697_164_000  # the first and last timestamps of ML-32M (1995-2023)
_WORDS_A = ("Silent", "Crimson", "Last", "Broken", "Golden", "Midnight", "Hidden", "Wild", "Lost", "Electric",
            "Frozen", "Distant", "Burning", "Secret", "Iron", "Velvet", "Hollow", "Bright", "Savage", "Quiet",
            "Paper", "Glass", "Northern", "Falling", "Endless")
_WORDS_B = ("Harbor", "Kingdom", "Echo", "Frontier", "Garden", "Signal", "Empire", "River", "Stranger", "Horizon",
            "Protocol", "Carnival", "Orchard", "Lighthouse", "Voyage", "Detective", "Station", "Summer", "Machine",
            "Legacy", "Mirror", "Winter", "Island", "Circus", "Letter")
_ACCENTED = ("Misérables, Les", "Café des Étoiles", "Amélie à Paris", "Señor Álvarez", "Noël à Québec",
             "Fête Foraine, La", "Niño Perdido, El", "Göteborg Blues", "Über den Wolken", "Ça Commence")
_SEQUELS = ("", " II", " III", " IV", " V", " VI")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([km]?)$")


class SyntheticError(RecsysError, ValueError):
    """A synthetic dataset name or size that cannot be generated; the message says what to use."""


def ratings_of(name: str) -> int | None:
    """The number of ratings a `synthetic-<size>` name asks for (`synthetic-32m` -> 32,000,000), None for
    other names; a malformed size raises `SyntheticError`."""
    if not name.startswith(PREFIX):
        return None
    match = _SIZE.match(name[len(PREFIX):].lower())
    if not match:
        raise SyntheticError(f"{name!r}: write the size as a number of ratings, e.g. synthetic-32m, synthetic-250k "
                             f"or synthetic-1000000.")
    ratings = int(float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)])
    if ratings < 1_000:
        raise SyntheticError(f"{name!r} asks for {ratings:,} ratings; synthetic datasets start at 1k "
                             f"(use RECSYS_DATASET=sample for a tiny one).")
    return ratings


@dataclass(frozen=True)
class SyntheticShape:
    """Sizes of one synthetic dataset (`shape_for(ratings)` derives them from the releases' proportions)."""

    ratings: int
    users: int
    movies: int
    taste_groups: int
    continue_series: float = 0.85  # chance to watch the next part of a series right after this one
    random_pick: float = 0.12  # share of picks that ignore taste (a popular movie of any group)
    taste_boost: float = 10.0  # how much more a user picks series of their own taste group


def shape_for(ratings: int) -> SyntheticShape:
    """Users and movies for `ratings` ratings, as in the MovieLens releases (see the module docstring)."""
    if ratings < 1_000:
        raise SyntheticError(f"{ratings:,} ratings is too few; generate at least 1,000.")
    users = max(2, round(ratings / RATINGS_PER_USER))
    exponent = math.log(ML32M_POINT[1] / ML1M_POINT[1]) / math.log(ML32M_POINT[0] / ML1M_POINT[0])
    # at least MIN_MOVIES, so that the cap on one user (40 % of the catalogue) leaves room for the average
    movies = max(MIN_MOVIES, round(ML1M_POINT[1] * (ratings / ML1M_POINT[0]) ** exponent))
    return SyntheticShape(ratings=ratings, users=users, movies=movies,
                          taste_groups=int(np.clip(round(movies / 1500), 6, 60)))


def _capped_mean(cap: float) -> float:
    """Mean of the ratings-per-user mixture below (log-uniform body, power-law tail capped at `cap`)."""
    body = (TAIL_FROM - MIN_RATINGS) / math.log(TAIL_FROM / MIN_RATINGS)
    a = ALPHA - 1.0
    tail = TAIL_FROM + TAIL_FROM / (1 - a) * ((cap / TAIL_FROM) ** (1 - a) - 1)
    return (1 - TAIL_SHARE) * body + TAIL_SHARE * tail


def user_cap(movies: int) -> int:
    """The most ratings one user gets: where the tail's cap gives RATINGS_PER_USER on average, at most
    MAX_USER_SHARE of the catalogue."""
    low, high = float(TAIL_FROM), 1e7
    for _ in range(100):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if _capped_mean(mid) < RATINGS_PER_USER else (low, mid)
    return int(max(TAIL_FROM + 1, min(low, MAX_USER_SHARE * movies)))


def user_counts(rng: np.random.Generator, shape: SyntheticShape) -> np.ndarray:
    """Ratings per user: TAIL_SHARE of users follow the power law (ALPHA) from TAIL_FROM up to `user_cap`,
    the rest are log-uniform between MIN_RATINGS and TAIL_FROM; the part above MIN_RATINGS is then scaled
    (by a factor near 1) so the counts sum to `shape.ratings` exactly."""
    if shape.users * MIN_RATINGS > shape.ratings:
        raise SyntheticError(f"{shape.ratings:,} ratings cannot give {shape.users:,} users {MIN_RATINGS} each")
    cap = user_cap(shape.movies)
    tail = rng.random(shape.users) < TAIL_SHARE
    raw = np.where(tail, TAIL_FROM * (1.0 - rng.random(shape.users)) ** (-1.0 / (ALPHA - 1.0)),
                   MIN_RATINGS * (TAIL_FROM / MIN_RATINGS) ** rng.random(shape.users))
    raw = np.minimum(raw, cap)
    extra = raw - MIN_RATINGS
    target = shape.ratings - MIN_RATINGS * shape.users
    scaled = np.minimum(extra * (target / extra.sum()), cap - MIN_RATINGS)
    counts = MIN_RATINGS + np.floor(scaled).astype(np.int64)
    short = shape.ratings - int(counts.sum())  # rounding and the cap: hand the rest to random users below the cap
    while short > 0:
        room = np.flatnonzero(counts < cap)
        if len(room) == 0:
            raise SyntheticError(f"{shape.ratings:,} ratings do not fit {shape.users:,} users of at most {cap:,}")
        pick = rng.choice(room, size=min(short, len(room)), replace=False)
        counts[pick] += 1
        short = shape.ratings - int(counts.sum())
    return counts


def popularity_weights(n: int) -> np.ndarray:
    """Relative popularity of rank shares (i + 0.5) / n: the fitted broken power law, largest first."""
    x = (np.arange(n) + 0.5) / n
    return np.exp(-HEAD_SLOPE * np.log(np.minimum(x, BREAK)) - TAIL_SLOPE * np.log(np.maximum(x / BREAK, 1.0)))


@dataclass
class _Catalogue:
    movie_ids: np.ndarray        # [n_movies] MovieLens-style ids, in series order (part k of series s)
    series_start: np.ndarray     # [n_series] first movie position of each series
    series_length: np.ndarray    # [n_series]
    series_group: np.ndarray     # [n_series] taste group
    series_weight: np.ndarray    # [n_series] popularity
    series_quality: np.ndarray   # [n_series] rating offset
    movie_weight: np.ndarray     # [n_movies] popularity of each movie (for random picks)
    rows: list[tuple[int, str, str]]  # movies.csv rows: (movieId, "Title (year)", "A|B")


def _catalogue(rng: np.random.Generator, shape: SyntheticShape) -> _Catalogue:
    lengths = rng.choice(np.arange(1, 7), size=shape.movies, p=[0.55, 0.2, 0.1, 0.07, 0.05, 0.03])
    ends = np.cumsum(lengths)
    n_series = int(np.searchsorted(ends, shape.movies)) + 1
    lengths = lengths[:n_series]
    lengths[-1] -= int(ends[n_series - 1] - shape.movies)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # popularity: the fitted curve over series ranks, parts fading by 0.8 per sequel
    weight = popularity_weights(n_series)[rng.permutation(n_series)]
    group = rng.integers(shape.taste_groups, size=n_series)
    quality = rng.normal(0.0, 0.5, size=n_series)
    series_of = np.repeat(np.arange(n_series), lengths)
    part = np.arange(shape.movies) - starts[series_of]
    movie_weight = weight[series_of] * 0.8 ** part
    ids = np.sort(rng.choice(np.arange(1, int(shape.movies * 1.3) + 2), size=shape.movies, replace=False))
    movie_ids = ids[rng.permutation(shape.movies)]

    taste_genres = [rng.choice(len(GENRES), size=int(rng.integers(2, 4)), replace=False)
                    for _ in range(shape.taste_groups)]
    first_year = rng.integers(1920, 2021, size=n_series)
    rows: list[tuple[int, str, str]] = []
    for s in range(n_series):
        own = taste_genres[group[s]]
        genres = set(rng.choice(own, size=int(rng.integers(1, len(own) + 1)), replace=False).tolist())
        if rng.random() < 0.3:
            genres.add(int(rng.integers(len(GENRES))))
        genre_text = NO_GENRES if rng.random() < 0.02 else GENRE_SEPARATOR.join(GENRES[g] for g in sorted(genres))
        if rng.random() < 0.01:
            title = _ACCENTED[int(rng.integers(len(_ACCENTED)))]
        else:
            title = f"{_WORDS_A[int(rng.integers(len(_WORDS_A)))]} {_WORDS_B[int(rng.integers(len(_WORDS_B)))]}"
            if rng.random() < 0.5:
                title += f" of the {_WORDS_B[int(rng.integers(len(_WORDS_B)))]}"
        article = ", The" if rng.random() < 0.15 else ""  # MovieLens style: "Broken Circus II, The (2009)"
        year = int(first_year[s])
        for k in range(int(lengths[s])):
            rows.append((int(movie_ids[starts[s] + k]), f"{title}{_SEQUELS[min(k, 5)]}{article} ({min(year, 2023)})",
                         genre_text))
            year += int(rng.integers(1, 5))
    return _Catalogue(movie_ids=movie_ids, series_start=starts, series_length=lengths, series_group=group,
                      series_weight=weight, series_quality=quality, movie_weight=movie_weight, rows=rows)


def _draw_picks(rng: np.random.Generator, cat: _Catalogue, shape: SyntheticShape, user_group: np.ndarray,
                wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to `wanted[u]` movie positions per local user `u`, in picking order, with replacement.
    Returns (user, movie position, same-series-as-previous flag), user-major."""
    n_series = len(cat.series_start)
    mean_run = float(np.mean(np.minimum(cat.series_length, 3))) * (1 - shape.random_pick) + shape.random_pick
    draws = np.ceil(wanted / mean_run).astype(np.int64) + 2
    users = np.repeat(np.arange(len(wanted)), draws)
    series = np.empty(len(users), dtype=np.int64)
    for g in np.unique(user_group):  # inverse-CDF draws per taste group
        p = cat.series_weight * np.where(cat.series_group == g, shape.taste_boost, 1.0)
        cdf = np.cumsum(p)
        mine = np.flatnonzero(user_group[users] == g)
        series[mine] = np.minimum(np.searchsorted(cdf, rng.random(len(mine)) * cdf[-1]), n_series - 1)
    run = np.minimum(cat.series_length[series], rng.geometric(1 - shape.continue_series, size=len(series)))
    random_pick = rng.random(len(series)) < shape.random_pick
    run[random_pick] = 1
    cdf_movies = np.cumsum(cat.movie_weight)
    single = np.minimum(np.searchsorted(cdf_movies, rng.random(int(random_pick.sum())) * cdf_movies[-1]),
                        len(cdf_movies) - 1)
    first = cat.series_start[series]
    first[random_pick] = single
    user_rep = np.repeat(users, run)
    offset = np.arange(len(user_rep)) - np.repeat(np.cumsum(run) - run, run)
    movie = np.repeat(first, run) + offset
    return user_rep, movie, offset > 0


def _user_chunk(rng: np.random.Generator, cat: _Catalogue, shape: SyntheticShape, first_user: int,
                counts: np.ndarray) -> pd.DataFrame:
    """The ratings of users `first_user ..` (1-based ids) with `counts[u]` distinct movies each."""
    n = len(counts)
    user_group = rng.integers(shape.taste_groups, size=n)
    users = np.empty(0, np.int64)
    movies = np.empty(0, np.int64)
    sequel = np.empty(0, bool)
    order = np.empty(0, np.int64)
    have = np.zeros(n, dtype=np.int64)
    for round_ in range(12):
        need = counts - have
        todo = np.flatnonzero(need > 0)
        if len(todo) == 0:
            break
        u, m, s = _draw_picks(rng, cat, shape, user_group[todo], need[todo] * (2 ** min(round_, 4)))
        users = np.concatenate([users, todo[u]])
        movies = np.concatenate([movies, m])
        sequel = np.concatenate([sequel, s])
        order = np.concatenate([order, np.arange(len(order), len(order) + len(u))])
        # keep each user's first pick of a movie, then their first counts[u] picks
        key = users * shape.movies + movies
        _, first_seen = np.unique(key, return_index=True)
        keep = np.sort(first_seen)
        users, movies, sequel, order = users[keep], movies[keep], sequel[keep], order[keep]
        by_user = np.lexsort((order, users))
        users, movies, sequel, order = users[by_user], movies[by_user], sequel[by_user], order[by_user]
        rank = np.arange(len(users)) - np.searchsorted(users, users)
        keep = rank < counts[users]
        users, movies, sequel, order = users[keep], movies[keep], sequel[keep], order[keep]
        have = np.bincount(users, minlength=n)
    for u in np.flatnonzero(have < counts):  # a very active user the rounds left short: top up exactly
        seen = movies[users == u]
        p = cat.movie_weight.copy()
        p[seen] = 0.0
        extra = rng.choice(shape.movies, size=int(counts[u] - have[u]), replace=False, p=p / p.sum())
        users = np.concatenate([users, np.full(len(extra), u)])
        movies = np.concatenate([movies, extra])
        sequel = np.concatenate([sequel, np.zeros(len(extra), bool)])
        order = np.concatenate([order, np.arange(len(order), len(order) + len(extra))])
    by_user = np.lexsort((order, users))
    users, movies, sequel = users[by_user], movies[by_user], sequel[by_user]

    # time: a span per user, gaps exponential (a third as long inside a series), strictly increasing
    span = np.clip(np.exp(rng.normal(math.log(2 * 365 * 86400), 1.2, size=n)), 86400, 20 * 365 * 86400)
    span = np.minimum(span, (LAST_TIME - FIRST_TIME) * 0.9)
    start = FIRST_TIME + rng.random(n) * (LAST_TIME - FIRST_TIME - span)
    gaps = rng.exponential(1.0, size=len(users)) * np.where(sequel, 1 / 3, 1.0)
    cum = np.cumsum(gaps)
    user_start = np.searchsorted(users, np.arange(n))
    user_end = np.append(user_start[1:], len(users))
    before = np.where(user_start > 0, cum[np.maximum(user_start - 1, 0)], 0.0)
    total = cum[user_end - 1] - before
    share = (cum - before[users]) / total[users]
    rank = np.arange(len(users)) - user_start[users]
    timestamp = (start[users] + span[users] * share).astype(np.int64) + rank

    series_of = np.searchsorted(cat.series_start, movies, side="right") - 1
    liked = np.where(cat.series_group[series_of] == user_group[users], 0.6, -0.2)
    stars = 3.4 + liked + cat.series_quality[series_of] + rng.normal(0.0, 0.9, size=len(users))
    rating = np.clip(np.round(stars * 2) / 2, 0.5, 5.0)
    return pd.DataFrame({"userId": users + first_user, "movieId": cat.movie_ids[movies],
                         "rating": rating, "timestamp": timestamp})


def write_synthetic(directory: Path, ratings: int, seed: int = 42, chunk_users: int = 20_000,
                    progress: bool = False) -> Path:
    """Write `ratings.csv`, `movies.csv` (the ML-32M format) and a `synthetic.json` marker (last) into
    `directory`; return it. Deterministic for a (ratings, seed, chunk_users)."""
    shape = shape_for(ratings)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    cat = _catalogue(rng, shape)
    counts = user_counts(rng, shape)
    with atomic_path(directory / "movies.csv") as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("movieId", "title", "genres"))
        writer.writerows(sorted(cat.rows))
    with atomic_path(directory / "ratings.csv") as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write("userId,movieId,rating,timestamp\n")
        for first in range(0, shape.users, chunk_users):
            chunk = _user_chunk(rng, cat, shape, first + 1, counts[first:first + chunk_users])
            chunk.to_csv(handle, header=False, index=False, float_format="%.1f", lineterminator="\n")
            if progress:
                print(f"  users {first + len(chunk['userId'].unique()):,}/{shape.users:,}", flush=True)
    info = {"version": VERSION, "seed": seed, "chunk_users": chunk_users, **asdict(shape)}
    with atomic_path(directory / MARKER) as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    return directory


def ensure_synthetic(cache_dir: Path, name: str, seed: int = 42) -> Path:
    """The folder `cache_dir/<name>-seed<seed>/` of a `synthetic-<size>` dataset, written first if needed."""
    ratings = ratings_of(name)
    if ratings is None:
        raise SyntheticError(f"{name!r} is not a synthetic dataset name (synthetic-<size>, e.g. synthetic-32m)")
    folder = Path(cache_dir) / f"{name}-seed{seed}"
    if generated_folder_ready(folder, MARKER, {"version": VERSION, "seed": seed, "ratings": ratings},
                              ("ratings.csv", "movies.csv")):
        return folder
    return write_synthetic(folder, ratings, seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.data.synthetic",
                                     description="Write a synthetic MovieLens (ratings.csv, movies.csv) of any size.")
    parser.add_argument("--ratings", type=int, required=True, help="number of ratings, e.g. 32000000")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--chunk-users", type=int, default=20_000, help="users drawn and written per chunk")
    args = parser.parse_args(argv)
    shape = shape_for(args.ratings)
    print(f"{shape.ratings:,} ratings, {shape.users:,} users, {shape.movies:,} movies -> {args.out}", flush=True)
    write_synthetic(args.out, args.ratings, args.seed, args.chunk_users, progress=True)


if __name__ == "__main__":
    main()

