"""helpers.graph on small MovieLens objects built by hand: schema, split, features, artifacts, bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.artifacts import MissingArtifactError, StaleArtifactError
from helpers.config import get_settings
from helpers.data.movielens import MovieLens
from helpers.graph.build import GraphData, GraphError, build_graph, graph_path, load_graph, save_graph, time_split
from helpers.graph.explore import describe_walk, random_walk
from helpers.graph.features import title_tokens, tokenize_title


def movielens(ratings: list[tuple[int, int, float, int]], movies: list[tuple[int, str, int | None, list[str]]],
              users: list[tuple[int, str, int, int, str]] | None = None, name: str = "sample") -> MovieLens:
    return MovieLens(
        name=name,
        ratings=pd.DataFrame(ratings, columns=["user_id", "movie_id", "rating", "timestamp"]).astype(
            {"user_id": "int64", "movie_id": "int64", "rating": "float32", "timestamp": "int64"}),
        movies=pd.DataFrame(movies, columns=["movie_id", "title", "year", "genres"]).astype(
            {"movie_id": "int64", "year": "Int64"}),
        users=None if users is None else pd.DataFrame(users, columns=["user_id", "gender", "age", "occupation", "zip"]),
        source_dir=Path("/nonexistent"),
    )


MOVIES = [(10, "Toy Story", 1995, ["Animation", "Comedy"]), (20, "Heat", 1995, ["Action", "Crime"]),
          (30, "Misérables, Les", None, ["Drama"]), (40, "Schindler's List", 1993, ["Drama", "War"]),
          (50, "Nobody Rated Me", 2000, [])]
USERS = [(1, "F", 25, 4, "10001"), (2, "M", 56, 16, "70072"), (3, "M", 25, 4, "55117")]
RATINGS = [
    # user 1: four ratings; the last two share a timestamp, so the larger movie id (40) counts as later
    (1, 20, 4.0, 100), (1, 10, 5.0, 50), (1, 40, 3.0, 300), (1, 30, 2.0, 300),
    # user 2: three ratings -> one train, one val, one test
    (2, 30, 1.0, 10), (2, 10, 2.0, 30), (2, 20, 3.0, 20),
    # user 3: two ratings -> all in train
    (3, 40, 5.0, 7), (3, 10, 4.0, 5),
]


@pytest.fixture
def toy() -> MovieLens:
    return movielens(RATINGS, MOVIES, USERS)


def random_movielens(n_users: int = 60, n_movies: int = 40, seed: int = 0, name: str = "sample") -> MovieLens:
    """Random ratings with many timestamp ties, users with 1..15 ratings."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, n_users + 1):
        picked = rng.choice(np.arange(1, n_movies + 1) * 3, size=rng.integers(1, 16), replace=False)
        rows += [(user, int(m), float(rng.integers(1, 6)), int(rng.integers(0, 8))) for m in picked]
    movies = [(m * 3, f"Movie {m}", 1950 + m, ["Drama"] if m % 2 else ["Comedy", "Drama"])
              for m in range(1, n_movies + 1)]
    return movielens(rows, movies, name=name)


def settings_for(tmp_path: Path, dataset: str = "sample", seed: int = 42):
    return get_settings(env={}, dataset=dataset, seed=seed, artifacts_root=tmp_path / "artifacts",
                        cache_dir=tmp_path / "cache")


def pairs(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(frame["user"].tolist(), frame["movie"].tolist(), strict=True))


# ------------------------------------------------------------------------------------------- schema
def test_schema_and_node_ids(toy):
    gd = build_graph(toy)
    g = gd.graph
    assert sorted(g.ntypes) == ["movie", "user"]
    assert sorted(g.canonical_etypes) == [("movie", "watched-by", "user"), ("user", "watched", "movie")]
    assert gd.movie_ids.tolist() == [10, 20, 30, 40, 50] and gd.movie_ids.dtype == np.int64
    assert gd.user_ids.tolist() == [1, 2, 3] and gd.user_ids.dtype == np.int64
    assert g.num_nodes("movie") == 5 and g.num_nodes("user") == 3  # movie 50 has no ratings but is a node
    assert gd.dataset == "sample"
    for etype in ("watched", "watched-by"):
        assert g.edges[etype].data["rating"].dtype == torch.float32
        assert g.edges[etype].data["timestamp"].dtype == torch.int64


def test_split_by_time_per_user(toy):
    gd = build_graph(toy)
    movie = dict(enumerate(gd.movie_ids.tolist()))
    user = dict(enumerate(gd.user_ids.tolist()))
    as_ids = lambda f: sorted((user[u], movie[m]) for u, m in zip(f["user"], f["movie"], strict=True))  # noqa: E731
    assert as_ids(gd.test) == [(1, 40), (2, 10)]   # user 1: tie at t=300 broken by movie id
    assert as_ids(gd.val) == [(1, 30), (2, 20)]
    assert as_ids(gd.train) == [(1, 10), (1, 20), (2, 30), (3, 10), (3, 40)]  # user 3 (2 ratings) keeps all
    assert list(gd.train.columns) == ["user", "movie", "rating", "timestamp"]
    assert gd.train.dtypes.tolist() == [np.int64, np.int64, np.float32, np.int64]
    # train is ordered by user, then time, so a user's latest training movie is their last row
    assert [movie[m] for m in gd.train["movie"]] == [10, 20, 30, 10, 40]


def test_training_graph_holds_only_training_edges(toy):
    gd = build_graph(toy)
    g = gd.graph
    src, dst = g.edges(etype="watched")
    assert set(zip(src.tolist(), dst.tolist(), strict=True)) == pairs(gd.train)
    for held_out in (gd.val, gd.test):
        assert not g.has_edges_between(torch.tensor(held_out["user"].to_numpy()),
                                       torch.tensor(held_out["movie"].to_numpy()), etype="watched").any()
    # edge i of both types is train row i
    assert src.tolist() == gd.train["user"].tolist() and dst.tolist() == gd.train["movie"].tolist()
    back_src, back_dst = g.edges(etype="watched-by")
    assert back_src.tolist() == dst.tolist() and back_dst.tolist() == src.tolist()
    for etype in ("watched", "watched-by"):
        assert g.edges[etype].data["rating"].tolist() == gd.train["rating"].tolist()
        assert g.edges[etype].data["timestamp"].tolist() == gd.train["timestamp"].tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_properties_on_random_ratings(seed):
    ml = random_movielens(seed=seed)
    gd = build_graph(ml)
    assert len(gd.train) + len(gd.val) + len(gd.test) == len(ml.ratings)
    assert gd.graph.num_edges("watched") == len(gd.train)
    counts = ml.ratings.groupby("user_id").size()
    held = np.sort(gd.user_index(counts[counts >= 3].index.to_numpy()))
    for frame in (gd.val, gd.test):
        assert frame["user"].is_unique and np.array_equal(np.sort(frame["user"].to_numpy()), held)
    all_pairs = pairs(gd.train) | pairs(gd.val) | pairs(gd.test)
    assert len(all_pairs) == len(ml.ratings)
    # per user, (timestamp, movie id) of train < val < test
    key = lambda f: {u: (t, m) for u, t, m in zip(f["user"], f["timestamp"], f["movie"], strict=True)}  # noqa: E731
    val, test = key(gd.val), key(gd.test)
    latest_train = gd.train.groupby("user").apply(lambda f: max(zip(f["timestamp"], f["movie"], strict=True)),
                                                  include_groups=False)
    for u in held:
        assert latest_train[u] < val[u] < test[u]


def test_time_split_labels():
    user = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    movie = np.array([5, 4, 3, 1, 2, 9, 8, 7])
    stamp = np.array([1, 1, 0, 4, 3, 2, 3, 1])
    order, label = time_split(user, movie, stamp)
    assert order.tolist() == [2, 1, 0, 4, 3, 7, 5, 6]
    assert label.tolist() == [0, 1, 2, 0, 0, 0, 1, 2]


# ----------------------------------------------------------------------------------------- features
def test_movie_features(toy):
    gd = build_graph(toy)
    data = gd.graph.nodes["movie"].data
    assert data["id"].tolist() == [0, 1, 2, 3, 4]
    assert gd.genres == ["Action", "Animation", "Comedy", "Crime", "Drama", "War"]
    assert data["genres"].dtype == torch.float32 and data["genres"].shape == (5, 6)
    assert data["genres"].tolist()[0] == [0, 1, 1, 0, 0, 0] and data["genres"][4].sum() == 0
    year = data["year"]
    assert year.dtype == torch.float32 and year.shape == (5,)
    assert year[2] == 0  # unknown year
    known = year[[0, 1, 3, 4]].double()
    assert abs(known.mean()) < 1e-6 and known[0] == known[1] and known[2] < known[0] < known[3]
    title = data["title"]
    assert title.dtype == torch.int64 and title.shape[0] == 5
    decoded = [[gd.title_vocab[i] for i in row if i] for row in title.tolist()]
    assert decoded == [["toy", "story"], ["heat"], ["misérables", "les"], ["schindlers", "list"],
                       ["nobody", "rated", "me"]]
    assert gd.title_vocab[:2] == ["<pad>", "<unk>"]


def test_user_features_where_the_dataset_has_them(toy):
    gd = build_graph(toy)
    data = gd.graph.nodes["user"].data
    assert data["id"].tolist() == [0, 1, 2]
    assert gd.user_vocab == {"gender": ["F", "M"], "age": [25, 56], "occupation": [4, 16]}
    assert data["gender"].tolist() == [0, 1, 1] and data["age"].tolist() == [0, 1, 0]
    assert data["occupation"].tolist() == [0, 1, 0]
    assert all(data[k].dtype == torch.int64 for k in ("gender", "age", "occupation"))

    without = build_graph(movielens(RATINGS, MOVIES, users=None))
    assert set(without.graph.nodes["user"].data) == {"id"} and without.user_vocab == {}


def test_title_tokens_pad_and_truncate():
    ids, vocab = title_tokens(["a b", "b", "c d e f"], max_tokens=3)
    assert ids.shape == (3, 3)
    assert vocab == ["<pad>", "<unk>", "b", "a", "c", "d", "e"]  # most frequent first, then alphabetical
    assert ids.tolist() == [[3, 2, 0], [2, 0, 0], [4, 5, 6]]
    assert tokenize_title("Star Wars: Episode IV - A New Hope") == ["star", "wars", "episode", "iv", "a", "new", "hope"]


def test_movie_and_user_index(toy):
    gd = build_graph(toy)
    assert gd.movie_index([40, 10]).tolist() == [3, 0] and gd.user_index([3]).tolist() == [2]
    with pytest.raises(GraphError, match="999"):
        gd.movie_index([10, 999])


# ----------------------------------------------------------------------------------------- bad input
def test_unknown_movie_ids_are_named(toy):
    bad = movielens(RATINGS + [(1, 777, 3.0, 5), (2, 888, 3.0, 5)], MOVIES, USERS)
    with pytest.raises(GraphError, match=r"2 rating\(s\).*777, 888"):
        build_graph(bad)


def test_other_bad_input_is_explained():
    with pytest.raises(GraphError, match="user id.*not in the users table.*\\b9\\b"):
        build_graph(movielens(RATINGS + [(9, 10, 3.0, 1)], MOVIES, USERS))
    with pytest.raises(GraphError, match="more than once.*user 1 / movie 10"):
        build_graph(movielens(RATINGS + [(1, 10, 3.0, 999)], MOVIES, USERS))
    with pytest.raises(GraphError, match="movie ids twice.*10"):
        build_graph(movielens(RATINGS, MOVIES + [(10, "Again", 1990, [])], USERS))
    with pytest.raises(GraphError, match="no ratings"):
        build_graph(movielens([], MOVIES, USERS))
    ml = movielens(RATINGS, MOVIES, USERS)
    ml.movies = ml.movies.drop(columns=["genres"])
    with pytest.raises(GraphError, match="lacks column.*genres"):
        build_graph(ml)
    ml = movielens(RATINGS, MOVIES, USERS)
    ml.movies["genres"] = "Drama|War"
    with pytest.raises(GraphError, match="lists of genre names"):
        build_graph(ml)
    with pytest.raises(GraphError, match="Unknown split 'tests'.*'test'"):
        build_graph(movielens(RATINGS, MOVIES, USERS)).split("tests")


# ----------------------------------------------------------------------------------------- artifacts
def assert_same(a: GraphData, b: GraphData) -> None:
    assert a.dataset == b.dataset and a.genres == b.genres and a.title_vocab == b.title_vocab
    assert a.user_vocab == b.user_vocab
    assert np.array_equal(a.movie_ids, b.movie_ids) and np.array_equal(a.user_ids, b.user_ids)
    for name in ("train", "val", "test"):
        pd.testing.assert_frame_equal(a.split(name), b.split(name))
    assert a.graph.canonical_etypes == b.graph.canonical_etypes
    for ntype in a.graph.ntypes:
        assert a.graph.num_nodes(ntype) == b.graph.num_nodes(ntype)
        assert set(a.graph.nodes[ntype].data) == set(b.graph.nodes[ntype].data)
        for key, value in a.graph.nodes[ntype].data.items():
            assert torch.equal(value, b.graph.nodes[ntype].data[key])
    for etype in a.graph.canonical_etypes:
        assert all(torch.equal(x, y)
                   for x, y in zip(a.graph.edges(etype=etype), b.graph.edges(etype=etype), strict=True))
        for key, value in a.graph.edges[etype].data.items():
            assert torch.equal(value, b.graph.edges[etype].data[key])


def test_save_load_round_trip(toy, tmp_path):
    settings = settings_for(tmp_path)
    gd = build_graph(toy)
    path = save_graph(gd, settings)
    assert path == graph_path(settings) == settings.artifacts_dir / "graph" and path.is_dir()
    manifest = json.loads((path.parent / "graph.manifest.json").read_text())
    assert (manifest["stage"], manifest["dataset"], manifest["seed"]) == ("graph", "sample", 42)
    assert manifest["settings"]["n_train"] == len(gd.train)
    assert_same(gd, load_graph(settings))

    bigger = build_graph(random_movielens())
    save_graph(bigger, settings)  # overwriting an existing graph leaves no temporary folders behind
    assert_same(bigger, load_graph(settings))
    assert sorted(p.name for p in path.parent.iterdir()) == ["graph", "graph.manifest.json"]


def test_missing_and_stale_artifacts_name_notebook_02(toy, tmp_path):
    settings = settings_for(tmp_path)
    with pytest.raises(MissingArtifactError, match="02_graph_construction"):
        load_graph(settings)
    save_graph(build_graph(toy), settings)
    with pytest.raises(StaleArtifactError, match="02_graph_construction.*RECSYS_SEED=7"):
        load_graph(settings_for(tmp_path, seed=7))
    (graph_path(settings) / "val.parquet").write_bytes(b"changed")
    with pytest.raises(StaleArtifactError, match="02_graph_construction"):
        load_graph(settings)


def test_graph_of_another_dataset_is_refused(toy, tmp_path):
    ml_1m = movielens(RATINGS, MOVIES, USERS, name="ml-1m")
    sample_settings = settings_for(tmp_path)
    with pytest.raises(GraphError, match="built from 'ml-1m'.*RECSYS_DATASET=ml-1m"):
        save_graph(build_graph(ml_1m), sample_settings)
    # an ml-1m graph copied over the sample one (manifest included) is still refused
    one_m_settings = settings_for(tmp_path, dataset="ml-1m")
    save_graph(build_graph(ml_1m), one_m_settings)
    with pytest.raises(MissingArtifactError, match="02_graph_construction.*RECSYS_DATASET=sample"):
        load_graph(sample_settings)
    sample_settings.artifacts_dir.mkdir(parents=True)
    shutil.copytree(graph_path(one_m_settings), graph_path(sample_settings))
    shutil.copy(one_m_settings.artifacts_dir / "graph.manifest.json", sample_settings.artifacts_dir)
    with pytest.raises(StaleArtifactError, match="built from ml-1m.*02_graph_construction"):
        load_graph(sample_settings)


def test_failed_save_keeps_the_stored_graph(toy, tmp_path, monkeypatch):
    settings = settings_for(tmp_path)
    gd = build_graph(toy)
    save_graph(gd, settings)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        save_graph(build_graph(random_movielens()), settings)
    monkeypatch.undo()
    assert sorted(p.name for p in settings.artifacts_dir.iterdir()) == ["graph", "graph.manifest.json"]
    assert_same(gd, load_graph(settings))  # the graph stored before is untouched and still loads


# ------------------------------------------------------------------------------------------ exploring
def test_random_walk_follows_training_edges(toy):
    gd = build_graph(toy)
    steps = random_walk(gd, 10, hops=4, seed=1)
    assert [kind for kind, _ in steps] == ["movie", "user"] * 4 + ["movie"]
    assert steps[0] == ("movie", 10)
    train = {(u, m) for u, m in zip(gd.user_ids[gd.train["user"]], gd.movie_ids[gd.train["movie"]], strict=True)}
    for (_, movie), (_, user), (_, nxt) in zip(steps[0::2], steps[1::2], steps[2::2], strict=False):
        assert (user, movie) in train and (user, nxt) in train
    assert random_walk(gd, 10, hops=4, seed=1) == steps  # seeded: the same walk again
    text = describe_walk(steps, toy.movies)
    assert text.startswith("start at Toy Story (1995)") and text.count("watched by user") == 4
    with pytest.raises(GraphError, match="no training ratings"):
        random_walk(gd, 50)
