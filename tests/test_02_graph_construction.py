"""Stage 02 on real loaders: the `sample` dataset end to end (build, save, load), and the real MovieLens copies."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.config import get_settings
from helpers.data.loader import load_movielens
from helpers.graph.build import GraphData, build_graph, load_graph, save_graph
from helpers.graph.explore import degrees, describe_walk, random_walk

SHARED = Path(__file__).resolve().parents[2] / "shared" / "movielens"


@pytest.fixture(scope="module")
def sample_settings(tmp_path_factory, sample_cache):
    root = tmp_path_factory.mktemp("stage02")
    return get_settings(env={}, dataset="sample", seed=42, artifacts_root=root / "artifacts", cache_dir=sample_cache)


@pytest.fixture(scope="module")
def sample(sample_ml):
    """The sample MovieLens (conftest's session fixture, seed 42) and its graph."""
    return sample_ml, build_graph(sample_ml)


def check_graph(gd: GraphData, n_ratings: int, n_users: int, n_movies: int) -> None:
    """What every later stage relies on, checked on a real dataset."""
    g = gd.graph
    assert len(gd.train) + len(gd.val) + len(gd.test) == n_ratings
    assert g.num_nodes("user") == n_users == len(gd.user_ids)
    assert g.num_nodes("movie") == n_movies == len(gd.movie_ids)
    assert g.num_edges("watched") == g.num_edges("watched-by") == len(gd.train)
    for held_out in (gd.val, gd.test):
        assert held_out["user"].is_unique
        assert not g.has_edges_between(torch.tensor(held_out["user"].to_numpy()),
                                       torch.tensor(held_out["movie"].to_numpy()), etype="watched").any()
    # per user: every training rating comes before the val rating, which comes before the test rating
    last_train = gd.train.groupby("user")["timestamp"].max()
    both = gd.val.merge(gd.test, on="user", suffixes=("_val", "_test"))
    assert (last_train.loc[both["user"]].to_numpy() <= both["timestamp_val"].to_numpy()).all()
    assert (both["timestamp_val"] <= both["timestamp_test"]).all()
    movie = g.nodes["movie"].data
    assert movie["genres"].shape == (n_movies, len(gd.genres)) and movie["year"].shape == (n_movies,)
    assert movie["title"].shape[0] == n_movies and int(movie["title"].max()) < len(gd.title_vocab)
    assert (movie["title"][:, 0] > 0).all()  # every title has at least one token


def test_sample_graph(sample):
    ml, gd = sample
    check_graph(gd, len(ml.ratings), ml.ratings["user_id"].nunique(), len(ml.movies))
    assert len(gd.val) == len(gd.test) == gd.n_users  # every sample user has at least 5 ratings
    assert set(gd.graph.nodes["user"].data) == {"id", "gender", "age", "occupation"}
    assert gd.genres == ml.genres


def test_sample_round_trip_through_the_artifact(sample, sample_settings):
    _, gd = sample
    save_graph(gd, sample_settings)
    loaded = load_graph(sample_settings)
    assert loaded.dataset == "sample" and np.array_equal(loaded.movie_ids, gd.movie_ids)
    assert loaded.train.equals(gd.train) and loaded.val.equals(gd.val) and loaded.test.equals(gd.test)
    assert torch.equal(loaded.graph.nodes["movie"].data["title"], gd.graph.nodes["movie"].data["title"])


def test_walk_from_the_most_watched_sample_movie(sample):
    ml, gd = sample
    start = int(gd.movie_ids[degrees(gd)["movie"].argmax()])
    steps = random_walk(gd, start, hops=3, seed=42)
    assert len(steps) == 7 and steps[0] == ("movie", start)
    assert describe_walk(steps, ml.movies).count("\n") == 3


@pytest.mark.parametrize("name, ratings, users, movies", [
    ("ml-100k", 100_000, 943, 1_682),
    ("ml-1m", 487_650, 2_999, 3_883),  # the shared copy holds users 1-2999 only
])
def test_real_movielens(name, ratings, users, movies):
    folder = SHARED / name
    if not folder.exists():
        pytest.skip(f"no real {name} copy at {folder}")
    ml = load_movielens(name, folder)
    gd = build_graph(ml)
    check_graph(gd, ratings, users, movies)
    assert len(gd.val) == len(gd.test) == users  # every ML-100K / ML-1M user has at least 20 ratings


def test_degree_plot_is_labelled_with_the_dataset(sample):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.plots import dataset_label, plot_degree_distributions

    ml, gd = sample
    fig = plot_degree_distributions(gd, ml)
    assert dataset_label(ml) in fig._suptitle.get_text()
    assert [(ax.get_xscale(), ax.get_yscale()) for ax in fig.axes] == [("log", "log")] * 2
    assert sum(p.get_height() for p in fig.axes[0].patches) == gd.n_users
    plt.close(fig)
