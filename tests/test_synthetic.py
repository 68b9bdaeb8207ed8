"""The synthetic MovieLens of any size (helpers.data.synthetic): release format, shape, determinism, loading.

Cost: about 10 s (one 200k-rating dataset, written once per module, and a few 2k-rating ones).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.config import ConfigError, check_dataset_name, get_settings
from helpers.data import synthetic
from helpers.data.loader import load_dataset, load_movielens
from helpers.data.movielens import DatasetError

RATINGS = 200_000


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.write_synthetic(tmp_path_factory.mktemp("synthetic") / "synthetic-200k", RATINGS, seed=7,
                                     chunk_users=300)


@pytest.fixture(scope="module")
def ratings(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "ratings.csv")


def test_release_format(folder: Path, ratings: pd.DataFrame) -> None:
    assert (folder / "ratings.csv").read_text(encoding="utf-8").splitlines()[0] == "userId,movieId,rating,timestamp"
    movies = pd.read_csv(folder / "movies.csv")
    assert list(movies.columns) == ["movieId", "title", "genres"]
    assert movies["movieId"].is_unique and movies["movieId"].is_monotonic_increasing
    assert movies["title"].str.match(r".+ \(\d{4}\)$").all()
    assert set(ratings["rating"].unique()) <= {x / 2 for x in range(1, 11)}
    assert ratings["movieId"].isin(movies["movieId"]).all()
    genres = {g for text in movies["genres"] for g in text.split("|")}
    assert genres <= set(synthetic.GENRES) | {synthetic.NO_GENRES} and len(genres) >= 15
    assert movies["title"].str.contains(",").any()  # quoted titles ("Broken Circus II, The (2009)")


def test_sizes_and_users_have_at_least_twenty(ratings: pd.DataFrame) -> None:
    shape = synthetic.shape_for(RATINGS)
    per_user = ratings.groupby("userId").size()
    assert len(ratings) == RATINGS and len(per_user) == shape.users
    assert per_user.min() >= synthetic.MIN_RATINGS
    assert abs(per_user.mean() - synthetic.RATINGS_PER_USER) < 0.5
    assert not ratings.duplicated(["userId", "movieId"]).any()


def test_heavy_tails(ratings: pd.DataFrame) -> None:
    per_user = ratings.groupby("userId").size().to_numpy(float)
    tail = per_user[per_user >= 50]
    hill = 1 + len(tail) / np.log(tail / 49.5).sum()
    assert 1.7 < hill < 2.3, hill  # generated with ALPHA = 1.95
    assert np.median(per_user) < 0.8 * per_user.mean()  # skewed: the mean sits above the median
    per_movie = np.sort(ratings.groupby("movieId").size().to_numpy())[::-1]
    top = per_movie[: len(per_movie) // 10].sum() / per_movie.sum()
    assert top > 0.25, top  # the 10 % most rated movies hold a quarter of the ratings or more (uniform: 10 %)
    assert per_movie[-1] < 0.02 * per_movie[0]


def test_time_order(ratings: pd.DataFrame) -> None:
    assert ratings["userId"].is_monotonic_increasing
    steps = ratings.groupby("userId")["timestamp"].diff().dropna()
    assert (steps > 0).all()
    assert ratings["timestamp"].between(synthetic.FIRST_TIME, synthetic.LAST_TIME).all()


def test_same_seed_same_bytes_and_chunks_do_not_matter_for_the_shape(tmp_path: Path) -> None:
    a = synthetic.write_synthetic(tmp_path / "a", 2_000, seed=3)
    b = synthetic.write_synthetic(tmp_path / "b", 2_000, seed=3)
    c = synthetic.write_synthetic(tmp_path / "c", 2_000, seed=3, chunk_users=2)
    assert (a / "ratings.csv").read_bytes() == (b / "ratings.csv").read_bytes()
    assert (a / "movies.csv").read_bytes() == (c / "movies.csv").read_bytes()
    chunked = pd.read_csv(c / "ratings.csv")
    assert len(chunked) == 2_000 and chunked.groupby("userId").size().min() >= 20


def test_names_sizes_and_loading(tmp_path: Path) -> None:
    assert synthetic.ratings_of("synthetic-32m") == 32_000_000
    assert synthetic.ratings_of("synthetic-2.5k") == 2_500
    assert synthetic.ratings_of("ml-1m") is None
    assert check_dataset_name("synthetic-25m") == "synthetic-25m"
    with pytest.raises(ConfigError, match="synthetic-<size>"):
        check_dataset_name("synthetic-lots")
    with pytest.raises(DatasetError, match="start at 1k"):
        load_movielens("synthetic-10", cache_dir=tmp_path)
    settings = get_settings({"RECSYS_DATASET": "synthetic-2k", "RECSYS_CACHE": str(tmp_path)})
    ml = load_dataset(settings)
    assert ml.summary()["ratings"] == 2_000 and ml.users is None
    assert ml.source_dir == tmp_path / "synthetic-2k-seed42"
    assert ml.ratings["rating"].dtype == np.float32 and ml.movies["year"].notna().all()
    stamp = (ml.source_dir / "ratings.csv").stat().st_mtime_ns
    assert load_dataset(settings).summary() == ml.summary()  # reused, not written again
    assert (ml.source_dir / "ratings.csv").stat().st_mtime_ns == stamp


def test_shape_follows_the_releases() -> None:
    big = synthetic.shape_for(32_000_204)
    assert abs(big.users - 200_948) <= 1 and abs(big.movies - 87_585) <= 1
    one = synthetic.shape_for(1_000_209)
    assert one.movies == 3_883 and math.isclose(one.ratings / one.users, 159.25, rel_tol=0.01)
    with pytest.raises(synthetic.SyntheticError):
        synthetic.shape_for(10)


def test_fit_command_re_measures_the_exponents_on_the_real_copy(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m helpers.data.fit` on ML-100K gives the exponents synthetic.py cites (~1 s)."""
    from helpers.data.fit import main

    folder = Path(__file__).resolve().parents[2] / "shared" / "movielens" / "ml-100k"
    if not (folder / "u.data").is_file():
        pytest.skip(f"the shared copy of ML-100K is absent ({folder})")
    main(["--ml-100k", str(folder)])
    row = capsys.readouterr().out.splitlines()[-1].split()
    assert row[0] == "ml-100k" and abs(float(row[1]) - 2.04) < 0.01 and abs(float(row[3]) - 4.9) < 0.05
    with pytest.raises(SystemExit):
        main([])
