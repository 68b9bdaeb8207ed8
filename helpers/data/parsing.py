"""Reading the three MovieLens file formats into the common tables, with errors that name the file and line.

| dataset           | files read                                   | encoding | users |
| ----------------- | -------------------------------------------- | -------- | ----- |
| `ml-100k`         | `u.data` (tab), `u.item`, `u.genre`, `u.user`, `u.occupation` (`|`) | latin-1 | yes |
| `ml-1m`, `sample` | `ratings.dat`, `movies.dat`, `users.dat` (`::`)  | latin-1  | yes   |
| `ml-latest-small`, `ml-25m`, `ml-32m` | `ratings.csv`, `movies.csv`  | UTF-8    | None  |
"""
from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data.movielens import MAX_ID, MalformedFileError, MovieLens, genre_list

_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")


@dataclass(frozen=True)
class _Layout:
    """How one file is laid out: its separator, field names and a parser per field (for error messages)."""

    sep: str
    names: tuple[str, ...]
    parsers: tuple[Callable[[str], object], ...]
    encoding: str
    header: bool = False
    quoted: bool = False  # CSV quoting (the CSV datasets); the .dat/.item files have none


def _nonempty(value: str) -> str:
    if value == "":
        raise MalformedFileError("empty")
    return value


def _any(value: str) -> str:
    return value


def _id(value: str) -> int:
    """A MovieLens id: a whole number from 1 to 2**63-1."""
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise MalformedFileError("out of range: ids are whole numbers from 1 to 2**63-1")
    return number


def _rating(value: str) -> float:
    """A rating: a finite number from 0.5 to 5."""
    number = float(value)
    if not (math.isfinite(number) and 0.5 <= number <= 5):
        raise MalformedFileError("ratings are finite numbers from 0.5 to 5")
    return number


def _timestamp(value: str) -> int:
    number = int(value)
    if not 0 <= number <= MAX_ID:
        raise MalformedFileError("timestamps are whole seconds since 1970, from 0 to 2**63-1")
    return number


# vectorised twins of the strict parsers, run on every column after pandas read it (a NaN rating or an id of 0
# parses fine as a number; these find it, and `_find_bad_line` then names its line)
_COLUMN_CHECKS: dict[Callable[[str], object], Callable[[pd.Series], np.ndarray]] = {
    _id: lambda c: (c >= 1).to_numpy(),
    _rating: lambda c: (np.isfinite(c.to_numpy(dtype=np.float64)) & (c >= 0.5).to_numpy() & (c <= 5).to_numpy()),
    _timestamp: lambda c: (c >= 0).to_numpy(),
}


def _find_bad_line(path: Path, layout: _Layout) -> str | None:
    """Describe the first line of `path` that does not fit `layout`, or None if every line fits."""
    try:
        text = path.read_text(encoding=layout.encoding)
    except UnicodeDecodeError as exc:
        line_no = path.read_bytes()[: exc.start].count(b"\n") + 1
        return f"line {line_no} is not valid {layout.encoding} text ({exc.reason})"
    lines: Iterable[list[str]]
    raw_lines = text.splitlines()
    if layout.quoted:
        lines = csv.reader(raw_lines)
    else:
        lines = (line.split(layout.sep) for line in raw_lines)
    shown_sep = layout.sep
    for number, fields in enumerate(lines, start=1):
        if layout.header and number == 1:
            continue
        if not fields or fields == [""]:
            continue
        raw = raw_lines[number - 1] if not layout.quoted else shown_sep.join(fields)
        if len(fields) != len(layout.names):
            return (f"line {number} has {len(fields)} fields, expected {len(layout.names)} "
                    f"({shown_sep.join(layout.names)}) separated by {shown_sep!r}: {raw[:120]!r}")
        for field_name, value, parse in zip(layout.names, fields, layout.parsers, strict=True):
            try:
                parse(value)
            except (ValueError, TypeError, OverflowError) as exc:
                why = f": {exc}" if parse in _COLUMN_CHECKS else ""
                return f"line {number}: {field_name} {value[:40]!r} is not valid{why} ({raw[:120]!r})"
    return None


def _read_table(path: Path, layout: _Layout, dtypes: dict[str, object] | None = None) -> pd.DataFrame:
    """Read `path` with pandas' C parser; on any problem, name the file and the first bad line."""
    try:
        if layout.sep == "::":  # the C parser takes one-character separators; no title holds \x1f
            source: object = io.StringIO(path.read_text(encoding=layout.encoding).replace("::", "\x1f"))
            sep, encoding = "\x1f", None
        else:
            source, sep, encoding = path, layout.sep, layout.encoding
        frame = pd.read_csv(source, sep=sep, header=0 if layout.header else None, names=list(layout.names),
                            dtype=dtypes or str, encoding=encoding, keep_default_na=False, na_values=[""],
                            quoting=csv.QUOTE_MINIMAL if layout.quoted else csv.QUOTE_NONE, engine="c")
        required = [n for n, parse in zip(layout.names, layout.parsers, strict=True) if parse is not _any]
        if frame[required].isna().to_numpy().any():
            raise MalformedFileError("missing value")
        for name, parse in zip(layout.names, layout.parsers, strict=True):
            if parse in _COLUMN_CHECKS and not _COLUMN_CHECKS[parse](frame[name]).all():
                raise MalformedFileError(f"a value of {name} is out of range")
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=list(layout.names))
    except (ValueError, OverflowError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        problem = _find_bad_line(path, layout) or str(exc)
        raise MalformedFileError(
            f"Cannot read {path}: {problem}. Fix or remove that line, or replace the file with a fresh copy "
            f"(delete the folder under RECSYS_CACHE to download it again)."
        ) from None
    if len(frame) == 0:
        raise MalformedFileError(
            f"{path} holds no rows{' (only its header line)' if layout.header else ' (it is empty)'}: the dataset "
            "is incomplete. Replace the file with a fresh copy (delete the folder under RECSYS_CACHE to download "
            "it again); nothing stored was changed.")
    return frame


def split_title(titles: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Split published titles into (title without the trailing " (1995)", year as nullable Int64).

    Titles are kept as published otherwise ("Misérables, Les"); a range "(1975-1979)" gives its first year.
    """
    titles = titles.astype(str).str.strip()
    parts = titles.str.extract(_TITLE_YEAR)
    has_year = parts["year"].notna()
    clean = titles.where(~has_year, parts["title"])
    year = pd.to_numeric(parts["year"], errors="coerce").astype("Int64")
    return clean.astype(str), year


def _movies_frame(ids: pd.Series, titles: pd.Series, genres: list[list[str]]) -> pd.DataFrame:
    title, year = split_title(titles)
    return pd.DataFrame({"movie_id": ids.astype(np.int64).to_numpy(), "title": title.to_numpy(),
                         "year": pd.array(year, dtype="Int64"), "genres": genres}).astype({"title": str})


_RATING_DTYPES = {"user_id": np.int64, "movie_id": np.int64, "rating": np.float32, "timestamp": np.int64}


def _ratings_layout(sep: str, encoding: str, header: bool = False) -> _Layout:
    return _Layout(sep, tuple(_RATING_DTYPES), (_id, _id, _rating, _timestamp), encoding, header)


def read_dat(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """ML-1M format (also the sample): `::`-separated, latin-1, no header."""
    ratings = _read_table(folder / "ratings.dat", _ratings_layout("::", "latin-1"), _RATING_DTYPES)
    movies_raw = _read_table(folder / "movies.dat",
                             _Layout("::", ("movie_id", "title", "genres"), (_id, _nonempty, _any), "latin-1"),
                             {"movie_id": np.int64, "title": str, "genres": str})
    movies = _movies_frame(movies_raw["movie_id"], movies_raw["title"], [genre_list(g) for g in movies_raw["genres"]])
    users = _read_table(folder / "users.dat",
                        _Layout("::", ("user_id", "gender", "age", "occupation", "zip"),
                                (_id, _nonempty, int, int, _any), "latin-1"),
                        {"user_id": np.int64, "gender": str, "age": np.int64, "occupation": np.int64, "zip": str})
    users["zip"] = users["zip"].fillna("").astype(str)
    return ratings, movies, users


def read_ml100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """ML-100K: `u.data` tab-separated; `u.item`/`u.user`/`u.genre`/`u.occupation` `|`-separated; latin-1."""
    ratings = _read_table(folder / "u.data", _ratings_layout("\t", "latin-1"), _RATING_DTYPES)
    genre_names = _read_table(folder / "u.genre", _Layout("|", ("genre", "index"), (_nonempty, int), "latin-1"),
                              {"genre": str, "index": np.int64}).sort_values("index")["genre"].tolist()
    flag_names = tuple(f"g{i}" for i in range(len(genre_names)))
    item_layout = _Layout("|", ("movie_id", "title", "release_date", "video_release_date", "url", *flag_names),
                          (_id, _nonempty, _any, _any, _any, *([int] * len(flag_names))), "latin-1")
    items = _read_table(folder / "u.item", item_layout,
                        {"movie_id": np.int64, "title": str, "release_date": str, "video_release_date": str,
                         "url": str, **{f: np.int64 for f in flag_names}})
    flags = items[list(flag_names)].to_numpy()
    # "unknown" is ML-100K's flag for "no genre" (movie 267): it becomes an empty list, as in the CSV datasets
    genres = [[genre_names[j] for j in np.flatnonzero(row) if genre_names[j] != "unknown"] for row in flags]
    movies = _movies_frame(items["movie_id"], items["title"], genres)
    release_year = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce").dt.year
    movies["year"] = movies["year"].fillna(pd.Series(pd.array(release_year, dtype="Int64")))
    occupations = [line.strip() for line in (folder / "u.occupation").read_text(encoding="latin-1").splitlines()
                   if line.strip()]
    users = _read_table(folder / "u.user",
                        _Layout("|", ("user_id", "age", "gender", "occupation", "zip"),
                                (_id, int, _nonempty, _nonempty, _any), "latin-1"),
                        {"user_id": np.int64, "age": np.int64, "gender": str, "occupation": str, "zip": str})
    unknown = sorted(set(users["occupation"]) - set(occupations))
    if unknown:
        raise MalformedFileError(f"{folder / 'u.user'} uses occupations {unknown} that "
                                 f"{folder / 'u.occupation'} does not list.")
    users["occupation"] = users["occupation"].map({o: i for i, o in enumerate(occupations)}).astype(np.int64)
    users["zip"] = users["zip"].fillna("").astype(str)
    return ratings, movies, users[["user_id", "gender", "age", "occupation", "zip"]]


def read_csv_dataset(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, None]:
    """ml-latest-small, ML-25M, ML-32M: UTF-8 CSV with a header; no user table."""
    ratings = _read_table(folder / "ratings.csv", _ratings_layout(",", "utf-8", header=True), _RATING_DTYPES)
    movies_raw = _read_table(folder / "movies.csv",
                             _Layout(",", ("movie_id", "title", "genres"), (_id, _nonempty, _any), "utf-8",
                                     header=True, quoted=True),
                             {"movie_id": np.int64, "title": str, "genres": str})
    movies = _movies_frame(movies_raw["movie_id"], movies_raw["title"], [genre_list(g) for g in movies_raw["genres"]])
    return ratings, movies, None


def check_consistency(ml: MovieLens) -> None:
    """Ids are unique and every rating points at a known movie (and user, where there is a user table)."""
    where = ml.source_dir
    duplicated = ml.movies["movie_id"][ml.movies["movie_id"].duplicated()]
    if len(duplicated):
        raise MalformedFileError(f"{where}: movie ids listed twice in the movie file: {duplicated.head(5).tolist()}")
    unknown_movies = np.setdiff1d(ml.ratings["movie_id"].unique(), ml.movies["movie_id"].to_numpy())
    if len(unknown_movies):
        raise MalformedFileError(f"{where}: {len(unknown_movies)} rated movie ids are not in the movie file, "
                                 f"e.g. {unknown_movies[:5].tolist()}. Use a complete copy of the dataset.")
    if ml.users is not None:
        unknown_users = np.setdiff1d(ml.ratings["user_id"].unique(), ml.users["user_id"].to_numpy())
        if len(unknown_users):
            raise MalformedFileError(f"{where}: {len(unknown_users)} user ids in the ratings are not in the user "
                                     f"file, e.g. {unknown_users[:5].tolist()}. Use a complete copy of the dataset.")
    bad = ml.ratings[(ml.ratings["rating"] < 0) | (ml.ratings["rating"] > 5)]
    if len(bad):
        raise MalformedFileError(f"{where}: ratings must be between 0.5 and 5, found {bad['rating'].iloc[0]} "
                                 f"(user {bad['user_id'].iloc[0]}, movie {bad['movie_id'].iloc[0]}).")

