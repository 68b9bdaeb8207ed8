"""helpers.data: every MovieLens format, bad input, the real copies, and the synthetic sample."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.config import DATASETS, get_settings
from helpers.data.loader import load_dataset, load_movielens
from helpers.data.movielens import DatasetError, DatasetFileError, MalformedFileError, MovieLens
from helpers.data.parsing import split_title
from helpers.data.sample import SampleShape, ensure_sample, write_sample

SHARED = Path(__file__).resolve().parents[2] / "shared" / "movielens"


# ---------------------------------------------------------------------------------------------- file writers

def write_ml1m(folder: Path, ratings: str | None = None, movies: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_bytes((ratings or "1::10::5::978300760\n1::20::3::978302109\n"
                                          "2::10::4::978301968\n").encode("latin-1"))
    (folder / "movies.dat").write_bytes((movies or "10::Misérables, Les (1995)::Drama|Musical\n"
                                         "20::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n"
                                         "30::Unrated (1990)::Comedy\n").encode("latin-1"))
    (folder / "users.dat").write_bytes("1::F::1::10::48067\n2::M::56::16::70072\n".encode("latin-1"))
    return folder


def write_ml100k(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("1\t1\t5\t874965758\n1\t267\t3\t876893171\n2\t1\t4\t888550871\n")
    genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
              "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
              "War", "Western"]
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(genres)) + "\n")
    flags_toy = ["0"] * 19
    flags_toy[3] = flags_toy[4] = flags_toy[5] = "1"
    flags_unknown = ["1"] + ["0"] * 18
    (folder / "u.item").write_bytes((
        f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{'|'.join(flags_toy)}\n"
        f"267|unknown||||{'|'.join(flags_unknown)}\n"
        f"543|Misérables, Les (1995)|01-Jan-1995||http://x|{'|'.join(['0'] * 8 + ['1'] + ['0'] * 10)}\n"
    ).encode("latin-1"))
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|T8H1N\n")
    (folder / "u.occupation").write_text("administrator\nartist\nother\ntechnician\n")
    return folder


def write_csv_dataset(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n"
                                        "7,2,0.5,1106635946\n", encoding="utf-8")
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n'
        '2,"Misérables, Les (1995)",Drama|War\n'
        '3,Hyena Road,(no genres listed)\n'
        '4,"Fawlty Towers (1975-1979)",Comedy\n', encoding="utf-8")
    return folder


# ---------------------------------------------------------------------------------------------- formats

def test_ml1m_format_keeps_accents_and_splits_years(tmp_path: Path) -> None:
    ml = load_movielens("ml-1m", write_ml1m(tmp_path / "ml-1m"))
    assert isinstance(ml, MovieLens) and ml.name == "ml-1m" and ml.source_dir == tmp_path / "ml-1m"
    movies = ml.movies.set_index("movie_id")
    assert movies.loc[10, "title"] == "Misérables, Les"
    assert movies.loc[20, "title"] == "Star Wars: Episode IV - A New Hope"  # single colons stay
    assert movies.loc[10, "year"] == 1995 and movies.loc[10, "genres"] == ["Drama", "Musical"]
    assert str(ml.movies["year"].dtype) == "Int64"
    assert ml.ratings.dtypes.to_dict() == {"user_id": np.int64, "movie_id": np.int64, "rating": np.float32,
                                           "timestamp": np.int64}
    assert ml.ratings["rating"].tolist() == [5.0, 3.0, 4.0]
    assert ml.users["user_id"].tolist() == [1, 2] and ml.users["zip"].tolist() == ["48067", "70072"]
    assert ml.users["age"].dtype == np.int64 and ml.users["occupation"].dtype == np.int64
    assert ml.summary() == {"ratings": 3, "users": 2, "movies": 3, "rated_movies": 2}


def test_ml100k_format_with_unknown_movie(tmp_path: Path) -> None:
    ml = load_movielens("ml-100k", write_ml100k(tmp_path / "ml-100k"))
    movies = ml.movies.set_index("movie_id")
    assert movies.loc[1, "title"] == "Toy Story" and movies.loc[1, "year"] == 1995
    assert movies.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert movies.loc[267, "title"] == "unknown" and pd.isna(movies.loc[267, "year"])
    assert movies.loc[267, "genres"] == []  # ML-100K's "unknown" genre flag means no genre
    assert movies.loc[543, "title"] == "Misérables, Les"
    users = ml.users.set_index("user_id")
    # occupations become their line number in u.occupation; zip codes stay text
    assert users.loc[1, "occupation"] == 3 and users.loc[2, "occupation"] == 2
    assert users.loc[2, "zip"] == "T8H1N" and users.loc[2, "gender"] == "F" and users.loc[2, "age"] == 53
    assert len(ml.ratings) == 3


@pytest.mark.parametrize("name", ["ml-latest-small", "ml-25m", "ml-32m"])
def test_csv_formats_have_no_users(tmp_path: Path, name: str) -> None:
    ml = load_movielens(name, write_csv_dataset(tmp_path / name))
    assert ml.users is None
    movies = ml.movies.set_index("movie_id")
    assert movies.loc[2, "title"] == "Misérables, Les" and movies.loc[2, "year"] == 1995
    assert movies.loc[3, "title"] == "Hyena Road" and pd.isna(movies.loc[3, "year"])
    assert movies.loc[3, "genres"] == []
    assert movies.loc[4, "title"] == "Fawlty Towers" and movies.loc[4, "year"] == 1975
    assert ml.ratings["rating"].tolist() == [4.0, 4.5, 0.5]
    assert ml.ratings["rating"].dtype == np.float32


def test_split_title_keeps_published_text() -> None:
    title, year = split_title(pd.Series(["City of Lost Children, The (Cité des enfants perdus, La) (1995)",
                                         "1900 (Novecento) (1976)", "Babylon 5", " Spaced Out (2001) "]))
    assert title.tolist() == ["City of Lost Children, The (Cité des enfants perdus, La)", "1900 (Novecento)",
                              "Babylon 5", "Spaced Out"]
    assert year.tolist()[:2] == [1995, 1976] and pd.isna(year[2]) and year[3] == 2001


def test_data_dir_may_be_the_folder_above_the_unzipped_one(tmp_path: Path) -> None:
    write_ml1m(tmp_path / "ml-1m")
    assert load_movielens("ml-1m", tmp_path).source_dir == tmp_path / "ml-1m"


def test_load_dataset_follows_settings(tmp_path: Path) -> None:
    write_ml1m(tmp_path / "data")
    settings = get_settings({"RECSYS_DATASET": "ml-1m", "RECSYS_DATA_DIR": str(tmp_path / "data"),
                             "RECSYS_CACHE": str(tmp_path / "cache")})
    assert load_dataset(settings).summary()["ratings"] == 3


# ---------------------------------------------------------------------------------------------- bad input

def test_unknown_dataset_lists_valid_names() -> None:
    with pytest.raises(DatasetError) as info:
        load_movielens("ml-2m")
    for name in DATASETS:
        assert name in str(info.value)


def test_missing_folder_and_missing_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetFileError, match="does not exist"):
        load_movielens("ml-1m", tmp_path / "nowhere")
    folder = write_ml1m(tmp_path / "ml-1m")
    (folder / "users.dat").unlink()
    with pytest.raises(DatasetFileError) as info:
        load_movielens("ml-1m", folder)
    message = str(info.value)
    assert "missing users.dat" in message and "ratings.dat, movies.dat, users.dat" in message
    assert (folder / "ratings.dat").exists()  # nothing is deleted


@pytest.mark.parametrize("bad_line, problem", [
    ("2::20::4\n", "line 3 has 3 fields, expected 4"),
    ("2::20::four::978301968\n", "line 3: rating 'four'"),
    ("2::20::4::978301968::9\n", "line 3 has 5 fields"),
    ("::20::4::978301968\n", "line 3: user_id ''"),
])
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, problem: str) -> None:
    folder = write_ml1m(tmp_path / "ml-1m", ratings="1::10::5::978300760\n1::20::3::978302109\n" + bad_line)
    with pytest.raises(MalformedFileError) as info:
        load_movielens("ml-1m", folder)
    assert "ratings.dat" in str(info.value) and problem in str(info.value)


def test_empty_title_is_malformed(tmp_path: Path) -> None:
    folder = write_ml1m(tmp_path / "ml-1m", movies="10::Heat (1995)::Action\n20::::Drama\n")
    with pytest.raises(MalformedFileError, match=r"movies.dat: line 2: title ''"):
        load_movielens("ml-1m", folder)


def test_malformed_csv_and_bad_utf8(tmp_path: Path) -> None:
    folder = write_csv_dataset(tmp_path / "ml-25m")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,x,4.5,1\n")
    with pytest.raises(MalformedFileError, match=r"ratings.csv: line 3: movie_id 'x'"):
        load_movielens("ml-25m", folder)
    write_csv_dataset(folder)
    (folder / "movies.csv").write_bytes("movieId,title,genres\n1,Misérables (1995),Drama\n".encode("latin-1"))
    with pytest.raises(MalformedFileError, match=r"movies.csv: line 2 is not valid utf-8"):
        load_movielens("ml-25m", folder)


@pytest.mark.parametrize("ratings, problem", [
    ("", "ratings.csv holds no rows (only its header line)"),
    ("userId,movieId,rating,timestamp\n", "ratings.csv holds no rows (only its header line)"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,99999999999999999999999,4.5,1\n",
     "ratings.csv: line 3: movie_id '99999999999999999999999' is not valid: out of range"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n0,2,4.5,1\n", "ratings.csv: line 3: user_id '0'"),
    ("userId,movieId,rating,timestamp\n1,1,nan,964982703\n", "ratings.csv: line 2: rating 'nan' is not valid"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,inf,1\n", "line 3: rating 'inf'"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,7,1\n", "line 3: rating '7'"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,-5\n", "line 2: timestamp '-5'"),
])
def test_empty_and_implausible_files_name_file_and_line(tmp_path: Path, ratings: str, problem: str) -> None:
    """Issue 13 (#7, #9): these loaded as 0 ratings or failed with a bare OverflowError / a pandas message (< 1 s)."""
    folder = write_csv_dataset(tmp_path / "ml-25m")
    (folder / "ratings.csv").write_text(ratings, encoding="utf-8")
    with pytest.raises(MalformedFileError) as info:
        load_movielens("ml-25m", folder)
    assert problem in str(info.value) and "ratings.csv" in str(info.value)


def test_an_empty_dat_file_is_an_error(tmp_path: Path) -> None:
    folder = write_ml1m(tmp_path / "ml-1m", ratings="\n")
    with pytest.raises(MalformedFileError, match=r"ratings.dat holds no rows \(it is empty\)"):
        load_movielens("ml-1m", folder)


def test_ratings_must_point_at_known_movies(tmp_path: Path) -> None:
    folder = write_ml1m(tmp_path / "ml-1m", ratings="1::10::5::978300760\n1::99::3::978302109\n")
    with pytest.raises(MalformedFileError, match=r"1 rated movie ids are not in the movie file, e.g. \[99\]"):
        load_movielens("ml-1m", folder)


# ---------------------------------------------------------------------------------------------- real copies

@pytest.mark.skipif(not (SHARED / "ml-100k").is_dir(), reason=f"no real MovieLens copy at {SHARED}")
def test_real_ml100k() -> None:
    ml = load_movielens("ml-100k", data_dir=SHARED / "ml-100k")
    assert ml.summary() == {"ratings": 100_000, "users": 943, "movies": 1_682, "rated_movies": 1_682}
    assert len(ml.users) == 943
    assert ml.movies.set_index("movie_id").loc[543, "title"] == "Misérables, Les"
    assert ml.movies["year"].isna().sum() == 1  # movie 267 "unknown"


@pytest.mark.skipif(not (SHARED / "ml-1m").is_dir(), reason=f"no real MovieLens copy at {SHARED}")
def test_real_ml1m_users_1_to_2999() -> None:
    ml = load_movielens("ml-1m", data_dir=SHARED / "ml-1m")
    assert ml.summary()["ratings"] == 487_650
    assert ml.summary()["users"] == 2_999 and ml.summary()["movies"] == 3_883
    assert ml.movies.set_index("movie_id").loc[73, "title"] == "Misérables, Les"
    assert ml.movies["year"].notna().all()
    assert len(ml.genres) == 18


# ---------------------------------------------------------------------------------------------- sample

@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> MovieLens:
    return load_movielens("sample", cache_dir=tmp_path_factory.mktemp("cache"), seed=42)


def test_sample_size_and_shape(sample: MovieLens) -> None:
    counts = sample.summary()
    assert 500 <= counts["users"] <= 800 and 300 <= counts["movies"] <= 500
    assert 30_000 <= counts["ratings"] <= 50_000
    assert sample.ratings.groupby("user_id").size().min() >= 5
    assert sample.users is not None and len(sample.users) == counts["users"]
    assert sample.movies["title"].str.contains("é").any()  # accents survive the latin-1 round trip
    assert sample.source_dir.name == "sample-seed42"
    assert not sample.ratings.duplicated(["user_id", "movie_id"]).any()
    # timestamps strictly increase within each user, so "the last movie" is well defined
    assert (sample.ratings.groupby("user_id")["timestamp"].diff().dropna() > 0).all()


def test_sample_has_a_long_tail(sample: MovieLens) -> None:
    per_movie = sample.ratings.groupby("movie_id").size().sort_values(ascending=False)
    top_decile = per_movie.head(len(per_movie) // 10).sum() / per_movie.sum()
    assert top_decile > 0.25, top_decile


def _hit_rate(sample: MovieLens, use_transitions: bool, k: int = 10) -> float:
    """HR@k on each user's last movie: popularity, or movies that followed the user's previous movie."""
    ordered = sample.ratings.sort_values(["user_id", "timestamp"])
    sequences = [g.to_numpy() for _, g in ordered.groupby("user_id")["movie_id"]]
    follows: dict[int, dict[int, int]] = {}
    for seq in sequences:
        for a, b in zip(seq[:-2], seq[1:-1], strict=True):
            follows.setdefault(a, {}).setdefault(b, 0)
            follows[a][b] += 1
    popularity = pd.Series(np.concatenate([s[:-1] for s in sequences])).value_counts()
    hits = 0
    for seq in sequences:
        seen = set(seq[:-1])
        ranked = sorted(follows.get(seq[-2], {}).items(), key=lambda kv: -kv[1]) if use_transitions else []
        candidates = [m for m, _ in ranked] + list(popularity.index)
        top = [m for m in dict.fromkeys(candidates) if m not in seen][:k]
        hits += seq[-1] in top
    return hits / len(sequences)


def test_sample_next_movie_signal_beats_popularity_widely(sample: MovieLens) -> None:
    popular, transitions = _hit_rate(sample, False), _hit_rate(sample, True)
    assert transitions > 2.5 * popular and transitions > 0.5, (popular, transitions)


def test_sample_is_deterministic_and_reused(tmp_path: Path) -> None:
    small = SampleShape(users=60, movies=40, median_ratings_per_user=8)
    a = write_sample(tmp_path / "a", seed=7, shape=small)
    b = write_sample(tmp_path / "b", seed=7, shape=small)
    c = write_sample(tmp_path / "c", seed=8, shape=small)
    for name in ("ratings.dat", "movies.dat", "users.dat"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "ratings.dat").read_bytes() != (c / "ratings.dat").read_bytes()

    folder = ensure_sample(tmp_path / "cache", seed=3)
    stamp = (folder / "ratings.dat").stat().st_mtime_ns
    assert ensure_sample(tmp_path / "cache", seed=3) == folder
    assert (folder / "ratings.dat").stat().st_mtime_ns == stamp  # complete: reused
    (folder / "sample.json").unlink()  # as if interrupted before the marker: written again
    os.utime(folder / "ratings.dat", ns=(0, 0))
    ensure_sample(tmp_path / "cache", seed=3)
    assert (folder / "ratings.dat").stat().st_mtime_ns != 0 and (folder / "sample.json").exists()


def test_sample_can_be_read_from_data_dir(tmp_path: Path) -> None:
    folder = write_sample(tmp_path / "s", seed=1, shape=SampleShape(users=50, movies=30, median_ratings_per_user=6))
    ml = load_movielens("sample", data_dir=folder)
    assert ml.summary()["users"] == 50 and ml.ratings.groupby("user_id").size().min() >= 5


# ---------------------------------------------------------------------------------------------- download

class _Server:
    """A local HTTP server over a folder that counts the requests per path."""

    def __init__(self, root: Path) -> None:
        import functools
        import http.server
        import threading

        self.hits: dict[str, int] = {}
        hits = self.hits

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                hits[self.path] = hits.get(self.path, 0) + 1
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def zip_release(files: Path, root: Path, name: str) -> str:
    """Pack the files of `files` under `name/` into `root/name.zip`, as GroupLens packs them; return its MD5."""
    import hashlib
    import zipfile

    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / f"{name}.zip", "w") as archive:
        for f in sorted(files.iterdir()):
            archive.write(f, f"{name}/{f.name}")
    return hashlib.md5((root / f"{name}.zip").read_bytes()).hexdigest()


@pytest.fixture
def served_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An ml-1m zip (files under `ml-1m/`, as GroupLens packs them) served from 127.0.0.1."""
    import helpers.data.download as data

    root = tmp_path / "www"
    md5 = zip_release(write_ml1m(tmp_path / "src" / "ml-1m"), root, "ml-1m")
    server = _Server(root)
    monkeypatch.setitem(data.DOWNLOADS, "ml-1m", (f"{server.url}/ml-1m.zip", md5))
    yield server, md5, tmp_path / "cache"
    server.close()


def test_download_checks_md5_shows_progress_and_is_reused(served_zip, capsys: pytest.CaptureFixture) -> None:
    server, md5, cache = served_zip
    ml = load_movielens("ml-1m", cache_dir=cache)
    assert ml.summary()["ratings"] == 3 and ml.source_dir == cache / "ml-1m"
    assert "Downloading ml-1m.zip" in capsys.readouterr().err  # the tqdm bar
    assert (cache / "ml-1m.zip").exists() and not (cache / "ml-1m.zip.partial").exists()
    assert load_movielens("ml-1m", cache_dir=cache).summary() == ml.summary()
    assert server.hits == {"/ml-1m.zip": 1}


def test_download_checksum_mismatch_deletes_the_file(served_zip, monkeypatch: pytest.MonkeyPatch) -> None:
    import helpers.data.download as data

    server, _, cache = served_zip
    monkeypatch.setitem(data.DOWNLOADS, "ml-1m", (f"{server.url}/ml-1m.zip", "0" * 32))
    with pytest.raises(data.ChecksumError) as info:
        load_movielens("ml-1m", cache_dir=cache)
    assert "was deleted" in str(info.value) and "Run again" in str(info.value)
    assert sorted(p.name for p in cache.iterdir()) == []  # no zip, no partial, no unpacked folder


def test_partial_download_is_never_reused(served_zip) -> None:
    server, md5, cache = served_zip
    cache.mkdir()
    (cache / "ml-1m.zip.partial").write_bytes(b"PK\x03\x04 half of a zip")
    load_movielens("ml-1m", cache_dir=cache)
    assert server.hits == {"/ml-1m.zip": 1} and not (cache / "ml-1m.zip.partial").exists()
    import helpers.data.download as data

    assert data.md5_of(cache / "ml-1m.zip") == md5


def test_corrupt_cached_zip_is_reverified_and_replaced(served_zip) -> None:
    server, md5, cache = served_zip
    cache.mkdir()
    (cache / "ml-1m.zip").write_bytes(b"not the zip")
    with pytest.warns(UserWarning, match="did not match its MD5"):
        ml = load_movielens("ml-1m", cache_dir=cache)
    assert ml.summary()["ratings"] == 3 and server.hits == {"/ml-1m.zip": 1}


def test_md5_from_published_md5_file_when_not_in_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import helpers.data.download as data

    root = tmp_path / "www"
    md5 = zip_release(write_csv_dataset(tmp_path / "src" / "ml-latest-small"), root, "ml-latest-small")
    (root / "ml-latest-small.zip.md5").write_text(f"MD5 (ml-latest-small.zip) = {md5}\n")
    server = _Server(root)
    try:
        monkeypatch.setitem(data.DOWNLOADS, "ml-latest-small", (f"{server.url}/ml-latest-small.zip", None))
        ml = load_movielens("ml-latest-small", cache_dir=tmp_path / "cache")
        assert ml.users is None and ml.summary()["ratings"] == 3
        assert (tmp_path / "cache" / "ml-latest-small.zip.md5").read_text().strip() == md5
        (root / "ml-latest-small.zip.md5").write_text("0" * 32)  # a wrong published MD5 is caught too
        with pytest.raises(data.ChecksumError):
            load_movielens("ml-latest-small", cache_dir=tmp_path / "cache2")
    finally:
        server.close()


def test_no_network_points_at_recsys_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import helpers.data.download as data

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setitem(data.DOWNLOADS, "ml-1m", (f"http://127.0.0.1:{port}/ml-1m.zip", "0" * 32))
    with pytest.raises(data.DownloadError) as info:
        load_movielens("ml-1m", cache_dir=tmp_path / "cache")
    assert "RECSYS_DATA_DIR" in str(info.value) and "RECSYS_DATASET=sample" in str(info.value)
    assert not any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("value, genres", [
    (["Comedy", "Drama"], ["Comedy", "Drama"]), ("Comedy|Drama", ["Comedy", "Drama"]), ("", []), (None, []),
    (float("nan"), []), ("(no genres listed)", []), (("Film-Noir",), ["Film-Noir"]),
])
def test_one_genre_parser_reads_every_stored_form(value: object, genres: list[str]) -> None:
    from helpers.data.movielens import genre_list

    assert genre_list(value) == genres
