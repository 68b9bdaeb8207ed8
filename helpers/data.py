"""MovieLens loading: the five published formats, the download with MD5 check, and the synthetic `sample`.

`load_movielens(name, data_dir=None)` returns a `MovieLens` with three DataFrames in one shape for every
format (see docs/architecture.md):

| dataset           | files read                                   | encoding | users |
| ----------------- | -------------------------------------------- | -------- | ----- |
| `ml-100k`         | `u.data` (tab), `u.item`, `u.genre`, `u.user`, `u.occupation` (`|`) | latin-1 | yes |
| `ml-1m`, `sample` | `ratings.dat`, `movies.dat`, `users.dat` (`::`)  | latin-1  | yes   |
| `ml-latest-small`, `ml-25m`, `ml-32m` | `ratings.csv`, `movies.csv`  | UTF-8    | None  |

Without `data_dir` the published zip is downloaded from GroupLens into the cache folder (`RECSYS_CACHE`),
checked against its published MD5 and unpacked there. `sample` is written by this module itself
(`write_sample`) in the ML-1M format and read through the same loader.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.artifacts import atomic_path, generated_folder_ready
from helpers.config import ConfigError, Settings, check_dataset_name, get_settings
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

NO_GENRES = "(no genres listed)"
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")


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


# --------------------------------------------------------------------------------------------------
# Public entry points


def load_dataset(settings: Settings) -> MovieLens:
    """Load the dataset the settings name (`RECSYS_DATASET`, `RECSYS_DATA_DIR`, `RECSYS_CACHE`, `RECSYS_SEED`)."""
    return load_movielens(settings.dataset, settings.data_dir, cache_dir=settings.cache_dir, seed=settings.seed)


def load_movielens(name: str, data_dir: str | Path | None = None, *, cache_dir: Path | None = None,
                   seed: int = 42) -> MovieLens:
    """Load MovieLens `name` from `data_dir`, or (without it) from the cache, downloading it first if needed.

    `sample` is generated into `cache_dir/sample-seed<seed>/`, `synthetic-<size>` (helpers.synthetic) into
    `cache_dir/<name>-seed<seed>/` (both reused when complete). `cache_dir` defaults to `RECSYS_CACHE`.
    Raises `DatasetError` (or a subclass) with a message that says what to do.
    """
    from helpers import synthetic

    try:
        check_dataset_name(name)
        synthetic.ratings_of(name)
    except (ConfigError, synthetic.SyntheticError) as exc:
        raise DatasetError(str(exc)) from None
    if data_dir is not None:
        source = _resolve_data_dir(name, Path(data_dir).expanduser())
    else:
        cache = Path(cache_dir) if cache_dir is not None else get_settings().cache_dir
        if name == "sample":
            source = ensure_sample(cache, seed)
        elif name.startswith(synthetic.PREFIX):
            source = synthetic.ensure_synthetic(cache, name, seed)
        else:
            source = download(name, cache)
    reader = {"ml-100k": _read_ml100k, "ml-1m": _read_dat, "sample": _read_dat}.get(name, _read_csv_dataset)
    ratings, movies, users = reader(source)
    ml = MovieLens(name=name, ratings=ratings, movies=movies, users=users, source_dir=source)
    _check_consistency(ml)
    return ml


# --------------------------------------------------------------------------------------------------
# Locating files


def _resolve_data_dir(name: str, data_dir: Path) -> Path:
    """The folder holding `name`'s files: `data_dir` itself or `data_dir/<name>` (the zip's folder)."""
    expected = FILES.get(name, CSV_FILES)  # synthetic-<size>: the CSV release format
    if not data_dir.is_dir():
        raise DatasetFileError(
            f"Data folder {data_dir} does not exist. Point RECSYS_DATA_DIR (or data_dir=) at a folder holding "
            f"the {name} files ({', '.join(expected)}), or unset it to download {name} from GroupLens."
        )
    for candidate in (data_dir, data_dir / name):
        if all((candidate / f).is_file() for f in expected):
            return candidate
    missing = [f for f in expected if not (data_dir / f).is_file()]
    raise DatasetFileError(
        f"{data_dir} is missing {', '.join(missing)} for dataset {name}: the folder must hold "
        f"{', '.join(expected)} (as unpacked from {name}.zip). Point RECSYS_DATA_DIR at the unpacked folder, "
        f"or check that RECSYS_DATASET={name} is the dataset that folder holds."
    )


# --------------------------------------------------------------------------------------------------
# Download


def md5_of(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _no_network_hint(name: str) -> str:
    url = DOWNLOADS[name][0]
    return (f"If this machine has no network, download {url} elsewhere, unzip it, and set "
            f"RECSYS_DATA_DIR to the unzipped folder (the one holding {', '.join(FILES[name])}); "
            f"or use RECSYS_DATASET=sample, which needs no download.")


def _fetch(url: str, dest: Path, desc: str) -> None:
    """Stream `url` into `dest` with a tqdm progress bar; raise DownloadError on any network/HTTP failure."""
    import requests
    from tqdm.auto import tqdm

    try:
        with requests.get(url, stream=True, timeout=30) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            with open(dest, "wb") as handle, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                                   desc=desc) as bar:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    handle.write(chunk)
                    bar.update(len(chunk))
    except requests.RequestException as exc:
        raise DownloadError(f"Could not download {url}: {exc}") from exc


def _published_md5(name: str, url: str, cache_dir: Path) -> str | None:
    """The expected MD5: from the table, else from GroupLens' `<zip>.md5` (kept beside the zip for later)."""
    known = DOWNLOADS[name][1]
    if known:
        return known.lower()
    sidecar = cache_dir / f"{name}.zip.md5"
    if not sidecar.exists():
        tmp = cache_dir / f"{name}.zip.md5.partial"
        try:
            _fetch(url + ".md5", tmp, f"{name}.zip.md5")
            match = re.search(r"\b[0-9a-fA-F]{32}\b", tmp.read_text(errors="replace"))
            if not match:
                raise DownloadError(f"{url}.md5 holds no MD5")
            sidecar.write_text(match.group(0).lower() + "\n")
        except DownloadError as exc:
            warnings.warn(f"No published MD5 for {name} ({exc}); the zip is checked only for being a valid zip.",
                          stacklevel=3)
            return None
        finally:
            tmp.unlink(missing_ok=True)
    return sidecar.read_text().strip().lower()


def download(name: str, cache_dir: Path) -> Path:
    """Return the unpacked folder of `name` under `cache_dir`, downloading and verifying the zip if needed.

    The zip is streamed to `<name>.zip.partial` (never reused: a new download starts from scratch), its
    MD5 checked, and only then renamed to `<name>.zip`. A cached zip is re-verified before it is unpacked;
    a bad one is deleted. The unpacked folder appears in one rename, so it is either complete or absent.
    """
    if name not in DOWNLOADS:
        raise DatasetError(f"{name} is not downloadable; valid names: {', '.join(DOWNLOADS)}")
    cache_dir = Path(cache_dir)
    target = cache_dir / name
    if target.is_dir() and all((target / f).is_file() for f in FILES[name]):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    url = DOWNLOADS[name][0]
    zip_path = cache_dir / f"{name}.zip"
    try:
        expected = _published_md5(name, url, cache_dir)
        if zip_path.exists() and expected and md5_of(zip_path) != expected:
            zip_path.unlink()
            warnings.warn(f"Cached {zip_path} did not match its MD5 {expected}; deleted it, downloading again.",
                          stacklevel=2)
        if not zip_path.exists():
            partial = zip_path.with_name(zip_path.name + ".partial")
            partial.unlink(missing_ok=True)
            try:
                _fetch(url, partial, f"Downloading {name}.zip")
                actual = md5_of(partial)
                if expected and actual != expected:
                    raise ChecksumError(
                        f"Downloaded {url} has MD5 {actual}, but GroupLens publishes {expected}: the file is "
                        f"corrupt or incomplete and was deleted. Run again to retry the download, or "
                        f"download it yourself, unzip it and set RECSYS_DATA_DIR to the folder."
                    )
                os.replace(partial, zip_path)
            finally:
                partial.unlink(missing_ok=True)
    except DownloadError as exc:
        if isinstance(exc, ChecksumError):
            raise
        raise DownloadError(f"{exc}. {_no_network_hint(name)}") from exc
    return _unpack(name, zip_path, target)


def _unpack(name: str, zip_path: Path, target: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-unpack-", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(tmp)
        except zipfile.BadZipFile as exc:
            zip_path.unlink(missing_ok=True)
            raise ChecksumError(f"{zip_path} is not a valid zip ({exc}); deleted it. Run again to download "
                                f"it again.") from exc
        found = next((d for d in [tmp, *sorted(tmp.rglob("*"))]
                      if d.is_dir() and all((d / f).is_file() for f in FILES[name])), None)
        if found is None:
            raise DatasetFileError(f"{zip_path} does not hold the {name} files {', '.join(FILES[name])}.")
        if target.exists():  # an incomplete folder from an older run (complete ones returned earlier)
            shutil.rmtree(target)
        os.replace(found, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --------------------------------------------------------------------------------------------------
# Parsing with line-accurate errors


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
        raise ValueError("empty")
    return value


def _any(value: str) -> str:
    return value


MAX_ID = 2**63 - 1  # ids are signed 64-bit integers in every store


def _id(value: str) -> int:
    """A MovieLens id: a whole number from 1 to 2**63-1."""
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise ValueError("out of range: ids are whole numbers from 1 to 2**63-1")
    return number


def _rating(value: str) -> float:
    """A rating: a finite number from 0.5 to 5."""
    number = float(value)
    if not (math.isfinite(number) and 0.5 <= number <= 5):
        raise ValueError("ratings are finite numbers from 0.5 to 5")
    return number


def _timestamp(value: str) -> int:
    number = int(value)
    if not 0 <= number <= MAX_ID:
        raise ValueError("timestamps are whole seconds since 1970, from 0 to 2**63-1")
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
            raise ValueError("missing value")
        for name, parse in zip(layout.names, layout.parsers, strict=True):
            if parse in _COLUMN_CHECKS and not _COLUMN_CHECKS[parse](frame[name]).all():
                raise ValueError(f"a value of {name} is out of range")
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


def _split_genres(column: pd.Series) -> list[list[str]]:
    return [[] if g in ("", NO_GENRES) else g.split("|") for g in column.fillna("")]


_RATING_DTYPES = {"user_id": np.int64, "movie_id": np.int64, "rating": np.float32, "timestamp": np.int64}


def _ratings_layout(sep: str, encoding: str, header: bool = False) -> _Layout:
    return _Layout(sep, tuple(_RATING_DTYPES), (_id, _id, _rating, _timestamp), encoding, header)


def _read_dat(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """ML-1M format (also the sample): `::`-separated, latin-1, no header."""
    ratings = _read_table(folder / "ratings.dat", _ratings_layout("::", "latin-1"), _RATING_DTYPES)
    movies_raw = _read_table(folder / "movies.dat",
                             _Layout("::", ("movie_id", "title", "genres"), (_id, _nonempty, _any), "latin-1"),
                             {"movie_id": np.int64, "title": str, "genres": str})
    movies = _movies_frame(movies_raw["movie_id"], movies_raw["title"], _split_genres(movies_raw["genres"]))
    users = _read_table(folder / "users.dat",
                        _Layout("::", ("user_id", "gender", "age", "occupation", "zip"),
                                (_id, _nonempty, int, int, _any), "latin-1"),
                        {"user_id": np.int64, "gender": str, "age": np.int64, "occupation": np.int64, "zip": str})
    users["zip"] = users["zip"].fillna("").astype(str)
    return ratings, movies, users


def _read_ml100k(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
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


def _read_csv_dataset(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, None]:
    """ml-latest-small, ML-25M, ML-32M: UTF-8 CSV with a header; no user table."""
    ratings = _read_table(folder / "ratings.csv", _ratings_layout(",", "utf-8", header=True), _RATING_DTYPES)
    movies_raw = _read_table(folder / "movies.csv",
                             _Layout(",", ("movie_id", "title", "genres"), (_id, _nonempty, _any), "utf-8",
                                     header=True, quoted=True),
                             {"movie_id": np.int64, "title": str, "genres": str})
    movies = _movies_frame(movies_raw["movie_id"], movies_raw["title"], _split_genres(movies_raw["genres"]))
    return ratings, movies, None


def _check_consistency(ml: MovieLens) -> None:
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


# --------------------------------------------------------------------------------------------------
# The synthetic sample

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
        raise ValueError(f"the sample can name at most {len(titles)} series")
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
    for s, (info, title) in enumerate(zip(series, titles, strict=True)):
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
