"""The synthetic `sample` dataset (600 users, 420 movies, ~39k ratings) in the ML-1M file format, written
deterministically from a seed."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.artifacts import atomic_path, generated_folder_ready
from helpers.data.movielens import DAT_FILES, DatasetError

SAMPLE_VERSION = 1  # bump when the generator changes, so cached samples are written again
SAMPLE_MARKER = "sample.json"
ML1M_GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
               "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
               "Western")
_ADJECTIVES = ("Silent", "Crimson", "Last", "Broken", "Golden", "Midnight", "Hidden", "Wild", "Lost", "Electric",
               "Frozen", "Distant", "Burning", "Secret", "Iron", "Velvet", "Hollow", "Bright", "Savage", "Quiet")
_NOUNS = ("Harbor", "Kingdom", "Echo", "Frontier", "Garden", "Signal", "Empire", "River", "Stranger", "Horizon",
          "Protocol", "Carnival", "Orchard", "Lighthouse", "Voyage", "Detective", "Station", "Summer", "Machine",
          "Legacy")


# accented titles, kept in MovieLens' style ("Misérables, Les"); all encodable in latin-1 like ML-1M
_FOREIGN_TITLES = ("Misérables, Les", "Café des Étoiles", "Amélie à Paris", "Señor Álvarez", "Noël à Québec",
                   "Crème Brûlée", "Mañana", "Fête Foraine, La", "Niño Perdido, El", "Göteborg Blues",
                   "Année Dernière, L'", "Smörgåsbord", "Über den Wolken", "Ça Commence Aujourd'hui")
_SEQUELS = ("", " II", " III", " IV", " V", " VI")


@dataclass(frozen=True)
class SampleShape:
    """Sizes and strengths of the synthetic sample (defaults: ~600 users, ~420 movies, ~35k ratings)."""

    users: int = 600
    movies: int = 420
    taste_groups: int = 8
    median_ratings_per_user: float = 48.0
    continue_series: float = 0.85  # chance to watch the next part of a series right after this one
    random_pick: float = 0.12  # chance that a pick ignores taste and series (a popular movie)
    taste_boost: float = 10.0  # how much more a user picks series of their own taste group


def ensure_sample(cache_dir: Path, seed: int = 42) -> Path:
    """The sample's folder `cache_dir/sample-seed<seed>/`, written first if it is missing or incomplete."""
    folder = Path(cache_dir) / f"sample-seed{seed}"
    if generated_folder_ready(folder, SAMPLE_MARKER, {"version": SAMPLE_VERSION, "seed": seed}, DAT_FILES):
        return folder
    return write_sample(folder, seed)


def write_sample(directory: Path, seed: int = 42, shape: SampleShape = SampleShape()) -> Path:
    """Write the synthetic sample into `directory` in the ML-1M format (ratings.dat, movies.dat, users.dat,
    `::`-separated, latin-1) and a `sample.json` marker last; return `directory`.

    Movies come in series (1-6 parts, "Golden Harbor II"), each series belongs to one of several taste groups
    (2-3 favourite genres) and has a popularity drawn from a long-tailed distribution. Each user belongs to
    a taste group, picks series mostly from it (weighted by popularity) and usually watches a series' parts in
    order, one after the other. So the next movie is predictable from the last one, which a popularity
    ranking cannot see. Every user has at least 5 ratings; timestamps strictly increase per user.
    Deterministic: the same seed writes the same bytes. Only the four files named here are written.
    """
    directory = Path(directory)
    ratings, movies, users = _generate_sample(np.random.default_rng(seed), shape)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SAMPLE_MARKER).unlink(missing_ok=True)
    texts = {
        "ratings.dat": "".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in ratings),
        "movies.dat": "".join(f"{m}::{title} ({year})::{'|'.join(genres)}\n" for m, title, year, genres in movies),
        "users.dat": "".join(f"{u}::{g}::{a}::{o}::{z}\n" for u, g, a, o, z in users),
    }
    for file_name, text in texts.items():
        with atomic_path(directory / file_name) as tmp:
            tmp.write_bytes(text.encode("latin-1"))
    info = {"seed": seed, "version": SAMPLE_VERSION, "ratings": len(ratings), "movies": len(movies),
            "users": len(users)}
    with atomic_path(directory / SAMPLE_MARKER) as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    return directory


def _sample_titles(rng: np.random.Generator, count: int) -> list[str]:
    english = [f"{a} {n}" for a in _ADJECTIVES for n in _NOUNS]
    rng.shuffle(english)
    titles = list(_FOREIGN_TITLES) + [t if rng.random() < 0.7 else f"The {t}" for t in english]
    if count > len(titles):
        raise DatasetError(f"the sample can name at most {len(titles)} series, not {count}: give a SampleShape "
                           "with fewer movies")
    order = rng.permutation(count)  # spread the accented titles over the catalogue
    return [titles[i] for i in order]


def _generate_sample(rng: np.random.Generator, shape: SampleShape):
    """Rows for ratings.dat, movies.dat and users.dat (see `write_sample`)."""
    n_genres = len(ML1M_GENRES)
    taste_genres = [rng.choice(n_genres, size=int(rng.integers(2, 4)), replace=False)
                    for _ in range(shape.taste_groups)]

    # series: lengths 1-6, a taste group, genres, a long-tailed popularity, a first year
    series: list[dict] = []
    total = 0
    while total < shape.movies:
        length = int(min(rng.choice([1, 2, 3, 4, 5, 6], p=[0.2, 0.2, 0.2, 0.15, 0.15, 0.1]), shape.movies - total))
        group = int(rng.integers(shape.taste_groups))
        genres = set(rng.choice(taste_genres[group], size=int(rng.integers(1, len(taste_genres[group]) + 1)),
                                replace=False).tolist())
        if rng.random() < 0.3:
            genres.add(int(rng.integers(n_genres)))
        series.append({"length": length, "group": group, "genres": [ML1M_GENRES[g] for g in sorted(genres)],
                       "popularity": float(rng.pareto(1.2) + 0.05), "quality": float(rng.normal(0, 0.5)),
                       "year": int(rng.integers(1950, 1996))})
        total += length
    titles = _sample_titles(rng, len(series))
    movie_ids = np.sort(rng.choice(np.arange(1, int(shape.movies * 1.15) + 1), size=shape.movies, replace=False))
    movie_ids = rng.permutation(movie_ids)
    movies, parts = [], []  # parts[s] = movie ids of series s in order
    next_index = 0
    for info, title in zip(series, titles, strict=True):
        ids, year = [], info["year"]
        for k in range(info["length"]):
            mid = int(movie_ids[next_index])
            next_index += 1
            movies.append((mid, title + _SEQUELS[k], min(year, 2000), info["genres"]))
            ids.append(mid)
            year += int(rng.integers(1, 5))
        parts.append(ids)
    movies.sort()
    popularity = np.array([info["popularity"] for info in series])
    group_of = np.array([info["group"] for info in series])
    movie_pop = np.concatenate([popularity[s] * 0.8 ** np.arange(len(p)) for s, p in enumerate(parts)])
    all_movies = np.concatenate(parts)
    position = {int(m): i for i, m in enumerate(all_movies)}

    ratings, users = [], []
    ages, age_p = [1, 18, 25, 35, 45, 50, 56], [0.04, 0.18, 0.35, 0.2, 0.1, 0.08, 0.05]
    for user in range(1, shape.users + 1):
        group = int(rng.integers(shape.taste_groups))
        users.append((user, "M" if rng.random() < 0.7 else "F", int(rng.choice(ages, p=age_p)),
                      int(rng.integers(21)), f"{int(rng.integers(1000, 99999)):05d}"))
        wanted = int(np.clip(rng.lognormal(math.log(shape.median_ratings_per_user), 0.8), 5, 300))
        weights = popularity * np.where(group_of == group, shape.taste_boost, 1.0)
        started = np.zeros(len(series), dtype=bool)
        unseen = np.ones(len(all_movies), dtype=bool)
        picks: list[tuple[int, int]] = []  # (movie id, series index)
        while len(picks) < wanted:
            if rng.random() < shape.random_pick:
                if not unseen.any():
                    break
                p = movie_pop * unseen
                m = int(rng.choice(all_movies, p=p / p.sum()))
                picks.append((m, -1))
                unseen[position[m]] = False
                continue
            available = weights * ~started
            if available.sum() == 0:
                break
            s = int(rng.choice(len(series), p=available / available.sum()))
            started[s] = True
            for k, m in enumerate(parts[s]):
                if k > 0 and rng.random() > shape.continue_series:
                    break
                if unseen[position[m]] and len(picks) < wanted:
                    picks.append((m, s))
                    unseen[position[m]] = False
        clock = int(956_700_000 + rng.integers(0, 2 * 365 * 86400))
        previous_series = None
        for m, s in picks:
            same_series = s >= 0 and s == previous_series
            clock += max(60, int(rng.exponential(2 * 86400 if same_series else 6 * 86400)))
            liked = 0.8 if s >= 0 and group_of[s] == group else 0.0
            quality = series[s]["quality"] if s >= 0 else 0.0
            stars = min(5, max(1, round(3.2 + liked + quality + rng.normal(0, 0.8))))
            ratings.append((user, m, stars, clock))
            previous_series = s
    return ratings, movies, users

