"""Notebook 01's stage: the sample through load_dataset, and the exploration figures and tables."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from helpers import plots
from helpers.config import get_settings
from helpers.data.loader import load_dataset, load_movielens
from helpers.data.movielens import MovieLens

SHARED = Path(__file__).resolve().parents[2] / "shared" / "movielens"


@pytest.fixture(scope="module")
def ml(tmp_path_factory: pytest.TempPathFactory) -> MovieLens:
    cache = tmp_path_factory.mktemp("cache")
    return load_dataset(get_settings({"RECSYS_DATASET": "sample", "RECSYS_CACHE": str(cache)}))


@pytest.mark.parametrize("plot", [plots.plot_rating_distribution, plots.plot_long_tail, plots.plot_genres,
                                  plots.plot_activity_over_time, plots.plot_graph_sketch])
def test_every_figure_is_titled_with_the_dataset(ml: MovieLens, plot) -> None:
    fig = plot(ml)
    try:
        titles = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
        assert any("synthetic sample, seed 42" in t for t in titles), titles
        if plot is not plots.plot_graph_sketch:  # the sketch has no axes to label
            assert all(ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes)
            assert any(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    finally:
        plt.close(fig)


def test_graph_counts(ml: MovieLens) -> None:
    table = plots.graph_counts(ml)
    assert table.loc["user nodes", "count"] == ml.ratings["user_id"].nunique()
    assert table.loc["movie nodes", "count"] == len(ml.movies)
    assert table.loc["watched edges (user → movie)", "count"] == len(ml.ratings)
    assert table.loc["watched-by edges (movie → user)", "count"] == len(ml.ratings)
    assert 0 < table.attrs["density"] < 1


def test_genre_table(ml: MovieLens) -> None:
    table = plots.genre_table(ml)
    assert set(table.index) == set(ml.genres)
    exploded = ml.movies.explode("genres").dropna(subset=["genres"])
    assert table["movies"].sum() == len(exploded)
    rated = exploded.merge(ml.ratings, on="movie_id")
    assert table["ratings"].sum() == len(rated)
    assert table["ratings"].is_monotonic_decreasing


def test_dataset_labels(tmp_path: Path) -> None:
    ratings = "1::10::5::978300760\n2999::10::4::978301968\n"
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text(ratings)
    (folder / "movies.dat").write_text("10::GoldenEye (1995)::Action\n")
    (folder / "users.dat").write_text("1::F::1::10::48067\n2999::M::56::16::70072\n")
    assert plots.dataset_label(load_movielens("ml-1m", folder)) == "ML-1M, users 1-2999"


@pytest.mark.skipif(not (SHARED / "ml-100k").is_dir(), reason=f"no real MovieLens copy at {SHARED}")
def test_full_ml100k_label_has_no_user_range() -> None:
    assert plots.dataset_label(load_movielens("ml-100k", SHARED / "ml-100k")) == "ML-100K"
