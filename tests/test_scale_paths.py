"""The paths that keep ML-32M size within memory and time, on small data: item-kNN in chunks with top-k pruning
and on each user's latest ratings, the transitions in one sparse build, evaluation on a fixed random subset of
users, and the Milvus index choice.

Cost: about 5 s (NumPy/SciPy on a few hundred users; two small Milvus Lite collections).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import helpers.evaluation.baselines as baselines_module
from helpers.evaluation.baselines import ItemKNNBaseline, TransitionsBaseline, co_rating_work, latest_per_user
from helpers.evaluation.protocols import (
    EvaluationData,
    EvaluationError,
    evaluate_scores,
    prepare_evaluation,
    sample_rows,
)
from helpers.graph.build import GraphData


def random_graph(n_users: int = 120, n_movies: int = 60, seed: int = 0) -> GraphData:
    """Users with 5-30 distinct movies in time order; the last two are val and test."""
    rng = np.random.default_rng(seed)
    rows = {"train": [], "val": [], "test": []}
    for user in range(n_users):
        movies = rng.choice(n_movies, size=int(rng.integers(5, 30)), replace=False, p=None)
        for t, movie in enumerate(movies):
            split = "test" if t == len(movies) - 1 else "val" if t == len(movies) - 2 else "train"
            rows[split].append((user, int(movie), t))
    frames = {name: pd.DataFrame(r, columns=["user", "movie", "timestamp"]).assign(rating=np.float32(4.0))
              for name, r in rows.items()}
    return GraphData(graph=None, movie_ids=np.arange(n_movies, dtype=np.int64) + 1,
                     user_ids=np.arange(n_users, dtype=np.int64) + 1, dataset="sample", genres=[], **frames)


def dense_cosine(gd: GraphData) -> np.ndarray:
    matrix = np.zeros((len(gd.user_ids), len(gd.movie_ids)))
    matrix[gd.train["user"], gd.train["movie"]] = 1.0
    co = matrix.T @ matrix
    norms = np.sqrt(np.diag(co))
    sim = np.divide(co, np.outer(norms, norms), out=np.zeros_like(co), where=np.outer(norms, norms) > 0)
    np.fill_diagonal(sim, 0.0)
    return sim


def test_item_knn_in_chunks_is_exact() -> None:
    gd = random_graph()
    expected = dense_cosine(gd)
    for chunk in (1, 7, 1000):
        knn = ItemKNNBaseline(chunk=chunk).fit(gd)
        assert knn.kept is None  # 60 movies: below KNN_EXACT_UP_TO, every similarity kept
        assert np.allclose(knn.similarity.toarray(), expected, atol=1e-6)


def test_item_knn_keeps_the_top_k_per_movie() -> None:
    gd = random_graph()
    expected = dense_cosine(gd)
    knn = ItemKNNBaseline(neighbours=5, chunk=8).fit(gd)
    sim = knn.similarity.toarray()
    assert knn.kept == 5 and ((sim > 0).sum(axis=1) <= 5).all()
    for row, full in zip(sim, expected, strict=True):
        kept = np.flatnonzero(row)
        assert np.allclose(row[kept], full[kept])
        # nothing left out scores above what was kept
        assert full[np.setdiff1d(np.arange(len(full)), kept)].max() <= row[kept].min() + 1e-6
    with pytest.raises(EvaluationError, match="neighbours"):
        ItemKNNBaseline(neighbours=0)


def test_item_knn_prunes_automatically_above_the_exact_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(baselines_module, "KNN_EXACT_UP_TO", 50)
    monkeypatch.setattr(baselines_module, "KNN_NEIGHBOURS", 3)
    knn = ItemKNNBaseline().fit(random_graph())  # 60 movies > 50
    assert knn.kept == 3 and (np.diff(knn.similarity.indptr) <= 3).all()


def test_latest_per_user_keeps_each_users_latest_rows() -> None:
    """By time within each user; tied times: the later row is the later rating. Instant."""
    users = np.array([2, 0, 0, 1, 0, 0, 1])
    times = np.array([5, 3, 1, 9, 3, 2, 8])
    assert sorted(latest_per_user(users, times, 2).tolist()) == [0, 1, 3, 4, 6]  # user 0: rows 1 and 4 (t=3, t=3)
    assert sorted(latest_per_user(users, times, 1).tolist()) == [0, 3, 4]
    assert sorted(latest_per_user(users, times, 10).tolist()) == list(range(7))
    with pytest.raises(EvaluationError, match="at least 1"):
        latest_per_user(users, times, 0)


def test_co_rating_work_is_what_the_co_occurrence_counts_sum_to() -> None:
    """Each user adds n_u^2 to the co-occurrence counts (its diagonal included): their total is the sparse
    products' multiply-adds; with a cap, min(n_u, cap)^2. Instant."""
    assert co_rating_work(np.array([1, 3, 5])) == 1 + 9 + 25 and co_rating_work(np.array([1, 3, 5]), 2) == 1 + 4 + 4
    gd = random_graph()
    matrix, _ = baselines_module._train_matrix(gd)
    assert co_rating_work(np.diff(matrix.indptr)) == (matrix.T @ matrix).sum()
    capped, _ = baselines_module._train_matrix(gd, recent=6)
    assert co_rating_work(np.diff(matrix.indptr), 6) == (capped.T @ capped).sum() < (matrix.T @ matrix).sum()


def test_item_knn_on_each_users_latest_ratings() -> None:
    """`recent` at least every user's count: the exact item-kNN; below it, the cosine of the users' latest
    `recent` movies, computed densely. Instant."""
    gd = random_graph()
    most = int(gd.train.groupby("user").size().max())
    exact = ItemKNNBaseline().fit(gd).similarity.toarray()
    assert np.array_equal(ItemKNNBaseline(recent=most).fit(gd).similarity.toarray(), exact)
    latest = gd.train.sort_values(["user", "timestamp"], kind="stable").groupby("user").tail(6)
    expected = dense_cosine(GraphData(graph=None, movie_ids=gd.movie_ids, user_ids=gd.user_ids, train=latest,
                                      val=gd.val, test=gd.test, dataset="sample", genres=[]))
    capped = ItemKNNBaseline(recent=6, chunk=7).fit(gd)
    assert np.allclose(capped.similarity.toarray(), expected, atol=1e-6) and not np.allclose(expected, exact)
    with pytest.raises(EvaluationError, match="recent=0"):
        ItemKNNBaseline(recent=0)


def test_transitions_in_one_sparse_build_equal_the_sum_with_the_diagonal_cleared() -> None:
    """The counts as they were computed before (forward + forward.T, then the diagonal set to 0), on a graph with
    a movie rated twice in a row (a self-transition, left out). Instant."""
    gd = random_graph()
    twice = gd.train.iloc[[0]].assign(timestamp=gd.train["timestamp"].iloc[0])
    train = pd.concat([gd.train, twice], ignore_index=True)
    gd = GraphData(graph=None, movie_ids=gd.movie_ids, user_ids=gd.user_ids, train=train, val=gd.val, test=gd.test,
                   dataset="sample", genres=[])
    ordered = train.sort_values(["user", "timestamp"], kind="stable")
    users, movies = ordered["user"].to_numpy(), ordered["movie"].to_numpy()
    same = users[1:] == users[:-1]
    n = len(gd.movie_ids)
    forward = sp.csr_matrix((np.ones(same.sum(), np.float32), (movies[:-1][same], movies[1:][same])), shape=(n, n))
    for direction, before in (("both", forward + forward.T), ("after", forward)):
        before = before.tolil()
        before.setdiag(0.0)
        fitted = TransitionsBaseline(direction=direction).fit(gd).similarity
        assert np.array_equal(fitted.toarray(), before.toarray()) and (fitted.data > 0).all()
        assert fitted.dtype == np.float32 and fitted.has_canonical_format


def test_sampled_evaluation_is_the_full_one_on_the_chosen_users() -> None:
    gd = random_graph(n_users=300)
    data = prepare_evaluation(gd)
    scorer = ItemKNNBaseline().fit(gd)
    full = evaluate_scores(scorer, data, "test", "history")
    assert evaluate_scores(scorer, data, "test", "history", sample=10_000) == full  # more than there are
    sampled = evaluate_scores(scorer, data, "test", "history", sample=100, seed=3, batch_size=16)
    assert sampled["n_users"] == 100
    chosen = sample_rows(300, 100, seed=3)
    assert np.array_equal(chosen, sample_rows(300, 100, seed=3)) and len(np.unique(chosen)) == 100
    users, movies = data.targets["test"]
    subset = EvaluationData(n_movies=data.n_movies, seen=data.seen, histories=data.histories,
                               targets={"test": (users[chosen], movies[chosen])})
    by_hand = evaluate_scores(scorer, subset, "test", "history")
    assert sampled == pytest.approx(by_hand)
    assert sampled["hr@10_stderr"] > full["hr@10_stderr"]  # fewer users, a wider interval
    with pytest.raises(EvaluationError, match="at least 2"):
        evaluate_scores(scorer, data, "test", "history", sample=1)


def test_index_choice_by_size_and_override() -> None:
    from helpers.config import ConfigError, get_settings
    from helpers.stores.milvus_index import EXACT_UP_TO_SERVER, choose_index

    assert choose_index(87_585, lite=False).index_type == "FLAT"  # ML-32M's catalogue: exact
    assert choose_index(EXACT_UP_TO_SERVER, lite=False).index_type == "FLAT"
    above = choose_index(EXACT_UP_TO_SERVER + 1, lite=False)
    assert above.index_type == "HNSW" and above.build_params == {"M": 16, "efConstruction": 200}
    assert above.search_params(10) == {"metric_type": "IP", "params": {"ef": 64}}
    assert choose_index(50_000_000, lite=True).index_type == "FLAT"  # Lite: HNSW measured no faster
    forced = choose_index(1_000, lite=False, setting="ivf_flat")
    assert forced.index_type == "IVF_FLAT" and forced.build_params == {"nlist": 126}
    assert forced.search_params(10)["params"] == {"nprobe": 32} and "RECSYS_MILVUS_INDEX" in forced.reason
    assert get_settings({"RECSYS_MILVUS_INDEX": "hnsw"}).milvus_index == "HNSW"
    assert get_settings({}).milvus_index == "auto"
    with pytest.raises(ConfigError, match="FLAT, IVF_FLAT, HNSW"):
        get_settings({"RECSYS_MILVUS_INDEX": "DISKANN"})


def test_the_store_builds_the_index_the_setting_asks_for(tmp_path, sample_ml) -> None:
    """RECSYS_MILVUS_INDEX reaches the collection (Milvus Lite); the default stays exact for a catalogue."""
    from helpers.stores.milvus import VectorStore
    from helpers.stores.milvus_client import disconnect

    from conftest import make_test_embeddings, sample_settings

    ids, vectors = make_test_embeddings(sample_ml.movies)
    for setting, expected in (("auto", "FLAT"), ("HNSW", "HNSW")):
        settings = sample_settings(tmp_path / setting, milvus_index=setting)
        store = VectorStore(settings)
        try:
            report = store.ingest(ids, vectors, sample_ml.movies, progress=False)
            assert report.index.index_type == expected == store.index().index_type
            assert len(store.search(vectors[:1], limit=5)[0]) == 5
        finally:
            store.close()
            disconnect(settings.milvus_uri)
