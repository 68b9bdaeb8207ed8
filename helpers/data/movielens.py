"""The project's one shape of a MovieLens dataset (`MovieLens`), the files each release holds, and the dataset
errors."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.errors import RecsysError

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"


# name -> (zip URL, published MD5 of the zip). None: the MD5 is fetched from GroupLens' `<zip>.md5` at
# download time (ml-latest-small: we could not establish its published value with confidence).
DOWNLOADS: dict[str, tuple[str, str | None]] = {
    "ml-100k": (f"{GROUPLENS_URL}/ml-100k.zip", "0e33842e24a9c977be4e0107933c0723"),
    "ml-1m": (f"{GROUPLENS_URL}/ml-1m.zip", "c4d9eecfca2ab87c1945afe126590906"),
    "ml-latest-small": (f"{GROUPLENS_URL}/ml-latest-small.zip", None),
    "ml-25m": (f"{GROUPLENS_URL}/ml-25m.zip", "6b51fb2759a8657d3bfcbfc42b592ada"),
    "ml-32m": (f"{GROUPLENS_URL}/ml-32m.zip", "d472be332d4daa821edc399621853b57"),
}
DAT_FILES = ("ratings.dat", "movies.dat", "users.dat")
ML100K_FILES = ("u.data", "u.item", "u.genre", "u.user", "u.occupation")
CSV_FILES = ("ratings.csv", "movies.csv")
FILES: dict[str, tuple[str, ...]] = {
    "ml-100k": ML100K_FILES,
    "ml-1m": DAT_FILES,
    "sample": DAT_FILES,
    "ml-latest-small": CSV_FILES,
    "ml-25m": CSV_FILES,
    "ml-32m": CSV_FILES,
}
NO_GENRES = "(no genres listed)"  # the CSV releases' marker for a movie without genres
GENRE_SEPARATOR = "|"  # genres in one text: "Comedy|Drama" (the files, the SQL catalog)


class DatasetError(RecsysError, ValueError):
    """The dataset cannot be loaded; the message says what is wrong and what to do."""


class DatasetFileError(DatasetError, FileNotFoundError):
    """A file the dataset needs is missing."""


class MalformedFileError(DatasetError):
    """A dataset file has a line the loader cannot read (the message names the file and line)."""


class ChecksumError(DatasetError):
    """A downloaded zip does not match its published MD5 (the bad file was deleted)."""


class DownloadError(DatasetError):
    """The zip could not be downloaded (no network, HTTP error)."""


@dataclass
class MovieLens:
    """One MovieLens dataset in the project's common shape."""

    name: str
    ratings: pd.DataFrame  # user_id int64, movie_id int64, rating float32, timestamp int64 (unix seconds)
    movies: pd.DataFrame  # movie_id int64, title str, year Int64 (nullable), genres list[str]
    users: pd.DataFrame | None  # user_id int64, gender str, age int64, occupation int64, zip str
    source_dir: Path

    @property
    def genres(self) -> list[str]:
        """Every genre that occurs, sorted."""
        return sorted({g for genres in self.movies["genres"] for g in genres})

    def summary(self) -> dict[str, int]:
        """Counts: ratings, users who rated, movies in the catalogue, movies with a rating."""
        return {
            "ratings": len(self.ratings),
            "users": int(self.ratings["user_id"].nunique()),
            "movies": len(self.movies),
            "rated_movies": int(self.ratings["movie_id"].nunique()),
        }

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v:,}" for k, v in self.summary().items())
        return f"MovieLens({self.name!r}, {counts}, source_dir={str(self.source_dir)!r})"


MAX_ID = 2**63 - 1  # ids are signed 64-bit integers in every store


def genre_list(value: Any) -> list[str]:
    """A movie's genres as a list, from any form they are stored in: a list, "Comedy|Drama", empty or missing
    (None, NaN), or the CSV releases' "(no genres listed)" (no genres)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [] if value == NO_GENRES else [g for g in value.split(GENRE_SEPARATOR) if g]
    return [str(g) for g in value]
