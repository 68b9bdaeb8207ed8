"""helpers.evaluation: metrics, the two protocols, the baselines, metrics.json."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from helpers.artifacts import StaleArtifactError, read_manifest, write_manifest
from helpers.config import get_settings
from helpers.evaluation.baselines import ItemKNNBaseline, PopularityBaseline, TransitionsBaseline
from helpers.evaluation.metrics import rank_metrics
from helpers.evaluation.protocols import (
    EvaluationError,
    evaluate_models,
    evaluate_scores,
    movie_indices,
    prepare_evaluation,
)
from helpers.evaluation.report import metrics_frame, metrics_records, read_metrics, write_metrics
from helpers.evaluation.scorers import EmbeddingScorer, embedding_scorer, query_candidate_scorer
from helpers.graph.build import GraphData
from helpers.training.baselines import fit_baselines


# -- a plain reference on ranked lists: what rank_metrics must agree with ---------------------------------
def _relevance(ranked: np.ndarray, target: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Flags `[n, k]`: is the movie at each of the top-k positions a target; and the number of targets."""
    ranked = np.asarray(ranked)
    target = np.asarray(target)
    if target.ndim == 1:
        target = target[:, None]
    if ranked.ndim != 2 or target.ndim != 2 or len(ranked) != len(target):
        raise ValueError(f"ranked must be [n, >=k] and target [n] or [n, t]; got {ranked.shape} and {target.shape}")
    if ranked.shape[1] < k:
        raise ValueError(f"ranked lists hold {ranked.shape[1]} movies, fewer than k={k}")
    valid = target >= 0  # -1 pads rows with fewer targets
    hits = ((ranked[:, :k, None] == target[:, None, :]) & valid[:, None, :]).any(axis=2)
    return hits, valid.sum(axis=1)


def hit_rate_at_k(ranked: np.ndarray, target: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query 1.0 if any target is in the top `k` of `ranked` (`[n, >=k]` movie indices), else 0.0.
    `target` is `[n]` or `[n, t]` padded with -1."""
    hits, _ = _relevance(ranked, target, k)
    return hits.any(axis=1).astype(np.float64)


def ndcg_at_k(ranked: np.ndarray, target: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query DCG@k / ideal DCG@k with binary relevance (position p counts 1/log2(p+2))."""
    hits, n_targets = _relevance(ranked, target, k)
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(n_targets, k)]
    return np.divide(hits @ discounts, ideal, out=np.zeros(len(hits)), where=ideal > 0)


def recall_at_k(ranked: np.ndarray, target: np.ndarray, k: int = 10) -> np.ndarray:
    """Per query the share of its targets found in the top `k` (equals HR@k with one target per query)."""
    hits, n_targets = _relevance(ranked, target, k)
    return np.divide(hits.sum(axis=1), n_targets, out=np.zeros(len(hits)), where=n_targets > 0)


def top_k(scores: np.ndarray, k: int = 10, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `k` best scores per row, best first; `exclude` is a boolean mask of movies to skip."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None:
        scores[exclude] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)



def frame(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    """(user, movie, timestamp) rows as a split frame."""
    users, movies, times = zip(*rows, strict=True) if rows else ((), (), ())
    return pd.DataFrame({"user": np.array(users, np.int64), "movie": np.array(movies, np.int64),
                         "rating": np.ones(len(rows), np.float32), "timestamp": np.array(times, np.int64)})


def tiny_graph(train: list[tuple[int, int, int]], val: list[tuple[int, int, int]],
               test: list[tuple[int, int, int]], n_users: int, n_movies: int) -> GraphData:
    """A GraphData built by hand (the evaluation reads only the frames and the id arrays)."""
    return GraphData(graph=None, movie_ids=np.arange(n_movies, dtype=np.int64) * 10 + 1,
                     user_ids=np.arange(n_users, dtype=np.int64) + 1, train=frame(train), val=frame(val),
                     test=frame(test), dataset="sample", genres=[])


@pytest.fixture
def gd() -> GraphData:
    # 3 users, 6 movies. Training histories in time order:
    #   user 0: 0, 1, 2      user 1: 0, 1, 3      user 2: 1, 2 (movie 2 and 4 share a timestamp: 4 comes later in train)
    train = [(0, 0, 1), (0, 1, 2), (0, 2, 3),
             (1, 0, 1), (1, 1, 2), (1, 3, 3),
             (2, 1, 1), (2, 2, 5), (2, 4, 5)]
    val = [(0, 3, 4), (1, 2, 4), (2, 0, 6)]
    test = [(0, 4, 5), (1, 5, 5), (2, 5, 7)]
    return tiny_graph(train, val, test, n_users=3, n_movies=6)


# ------------------------------------------------------------------------------------ metrics on lists
def test_metrics_on_ranked_lists():
    ranked = np.array([[5, 3, 1], [3, 5, 1], [1, 2, 4]])
    target = np.array([5, 5, 5])
    assert hit_rate_at_k(ranked, target, k=3).tolist() == [1.0, 1.0, 0.0]
    assert ndcg_at_k(ranked, target, k=3) == pytest.approx([1.0, 1 / math.log2(3), 0.0])
    assert hit_rate_at_k(ranked, target, k=1).tolist() == [1.0, 0.0, 0.0]


def test_recall_and_ndcg_with_several_targets():
    ranked = np.array([[7, 8, 9, 1]])
    targets = np.array([[8, 1, -1]])  # two targets, padded
    assert recall_at_k(ranked, targets, k=2).tolist() == [0.5]
    assert recall_at_k(ranked, targets, k=4).tolist() == [1.0]
    ideal = 1 + 1 / math.log2(3)
    assert ndcg_at_k(ranked, targets, k=4)[0] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)


def test_rank_metrics_match_ranked_lists_without_ties():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(200, 50))
    exclude = rng.random((200, 50)) < 0.2
    target = rng.integers(0, 50, size=200)
    exclude[np.arange(200), target] = False
    by_rank = rank_metrics(scores, target, exclude, k=10)
    ranked = top_k(scores, 10, exclude)
    assert by_rank["hr"] == pytest.approx(hit_rate_at_k(ranked, target, 10))
    assert by_rank["ndcg"] == pytest.approx(ndcg_at_k(ranked, target, 10))
    assert by_rank["recall"] == pytest.approx(recall_at_k(ranked, target, 10))


def test_ties_count_at_their_expected_position():
    scores = np.zeros((1, 20))  # the target ties with the 19 other candidates
    got = rank_metrics(scores, np.array([3]), None, k=10)
    assert got["hr"][0] == pytest.approx(10 / 20)
    assert got["ndcg"][0] == pytest.approx(sum(1 / math.log2(p + 2) for p in range(10)) / 20)
    scores[0, :5] = 1.0  # 5 better, target (index 7) ties with 14 others -> positions 5..19
    assert rank_metrics(scores, np.array([7]), None, k=10)["hr"][0] == pytest.approx(5 / 15)


# ------------------------------------------------------------------------------------ protocol data
def test_histories_are_time_ordered_latest_last(gd):
    data = prepare_evaluation(gd)
    assert data.queries("val", np.array([0, 1, 2]), "latest").ravel().tolist() == [2, 3, 4]
    assert data.queries("val", np.array([0, 2]), "history", history=3).tolist() == [[0, 1, 2], [1, 2, 4]]
    assert data.queries("val", np.array([2]), "history", history=4).tolist() == [[-1, 1, 2, 4]]
    with pytest.raises(EvaluationError, match="history=99"):
        data.queries("val", np.array([0]), "history", history=99)


def test_test_split_knows_the_val_movie(gd):
    data = prepare_evaluation(gd)
    # val movies: user 0 -> 3, user 1 -> 2, user 2 -> 0
    assert data.queries("test", np.array([0, 1, 2]), "latest").ravel().tolist() == [3, 2, 0]
    assert data.queries("test", np.array([2]), "history", history=4).tolist() == [[1, 2, 4, 0]]
    assert data.seen["test"][0].toarray().ravel().tolist() == [True, True, True, True, False, False]
    assert data.seen["val"][0].toarray().ravel().tolist() == [True, True, True, False, False, False]
    literal = prepare_evaluation(gd, chained=False)
    assert literal.queries("test", np.array([0, 1, 2]), "latest").ravel().tolist() == [2, 3, 4]
    assert not literal.seen["test"][0, 3]


def test_training_movies_are_not_candidates(gd):
    # a scorer that loves the user's own training movies most, then movie 3, then the rest
    def scorer(queries: np.ndarray) -> np.ndarray:
        scores = np.zeros((len(queries), 6))
        scores[:, [0, 1, 2]] = 10.0
        scores[:, 3] = 5.0
        return scores
    got = evaluate_scores(scorer, gd, "val", "latest", k=1)
    # user 0 trained on 0, 1, 2 and wants 3: a hit only because 0, 1, 2 are left out;
    # user 1 wants 2 (someone else's training movie, so a candidate): a hit; user 2 wants 0: a hit
    assert got["n_users"] == 3
    assert got["hr@1"] == 1.0 and got["ndcg@1"] == 1.0
    # test split, the literal variant (val movie still a candidate): user 0 wants 4 (candidates 3, 4, 5:
    # 3 wins); user 1 wants 5 (2 wins), user 2 wants 5 (0 and 3 win)
    literal = prepare_evaluation(gd, chained=False)
    assert evaluate_scores(scorer, literal, "test", "latest", k=1)["hr@1"] == 0.0
    # k=2: users 0 and 1 have one better candidate and one tie (hit with probability 1/2), user 2 two better
    at_2 = evaluate_scores(scorer, literal, "test", "latest", k=2)
    assert at_2["hr@2"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert at_2["hr@2_stderr"] == pytest.approx(np.std([0.5, 0.5, 0], ddof=1) / math.sqrt(3))
    # chained (default): the val movie is known, so it is no candidate: user 0 (4 vs 5: a tie) and user 1
    # (4 vs 5) hit with probability 1/2 at k=1; user 2 (3 scores 5, 5 scores 0) misses
    chained = evaluate_scores(scorer, gd, "test", "latest", k=1)
    assert chained["hr@1"] == pytest.approx((0.5 + 0.5 + 0) / 3)


# ------------------------------------------------------------------------------------ baselines
def test_popularity_counts_training_interactions(gd):
    pop = PopularityBaseline().fit(gd)
    assert pop.counts.tolist() == [2, 3, 2, 1, 1, 0]
    assert pop(np.array([[2], [0]])).shape == (2, 6)


def test_item_knn_is_cosine_of_user_sets(gd):
    knn = ItemKNNBaseline().fit(gd)
    sim = knn.similarity.toarray()
    # users of movie 0: {0, 1}; movie 1: {0, 1, 2}; movie 2: {0, 2}
    assert sim[0, 1] == pytest.approx(2 / math.sqrt(2 * 3))
    assert sim[1, 2] == pytest.approx(2 / math.sqrt(3 * 2))
    assert sim[0, 2] == pytest.approx(1 / 2)
    assert np.allclose(sim, sim.T) and np.all(np.diag(sim) == 0)
    # history protocol: sum (default) or max of the rows
    assert knn(np.array([[0, 2]]))[0, 1] == pytest.approx(sim[0, 1] + sim[2, 1])
    assert ItemKNNBaseline("max").fit(gd)(np.array([[0, 2]]))[0, 1] == pytest.approx(max(sim[0, 1], sim[2, 1]))


def test_transitions_count_neighbours_in_time(gd):
    trans = TransitionsBaseline().fit(gd).similarity.toarray()
    # consecutive pairs: (0,1) (1,2) | (0,1) (1,3) | (1,2) (2,4); counted in both directions
    assert trans[0, 1] == trans[1, 0] == 2
    assert trans[1, 2] == 2 and trans[2, 4] == 1 and trans[1, 3] == 1
    assert trans[0, 2] == 0 and trans.sum() == 2 * 6


def test_transitions_after_only_counts_the_next_movie(gd):
    after = TransitionsBaseline(direction="after").fit(gd).similarity.toarray()
    assert after[0, 1] == 2 and after[1, 0] == 0 and after[2, 4] == 1 and after[4, 2] == 0
    assert after.sum() == 6
    with pytest.raises(EvaluationError, match="'sideways'"):
        TransitionsBaseline(direction="sideways")


def test_baselines_must_be_fitted():
    with pytest.raises(EvaluationError, match="fit"):
        ItemKNNBaseline()(np.array([[0]]))


def test_unknown_combine_method_is_named():
    with pytest.raises(EvaluationError, match="'median'"):
        TransitionsBaseline("median")


# ------------------------------------------------------------------------------------ embeddings
def test_embedding_mean_and_sum_rank_alike_without_a_limit():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 8))
    queries = np.array([[3, 7, 9], [-1, 2, 5]])
    mean = embedding_scorer(vectors, "mean")(queries)
    total = embedding_scorer(vectors, "sum")(queries)
    ratio = total / mean  # one positive factor per row (the norm of the summed unit vectors): same ranking
    assert np.allclose(ratio, ratio[:, :1], rtol=1e-4) and (ratio > 0).all()
    best = embedding_scorer(vectors, "max")(queries)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert best[1] == pytest.approx((unit[[2, 5]] @ unit.T).max(axis=0), abs=1e-5)


def test_query_candidate_scorer_uses_both_sides_as_they_are():
    rng = np.random.default_rng(2)
    candidate = np.hstack([rng.normal(size=(30, 4)), rng.normal(scale=3, size=(30, 1))])  # last column: a bias
    query = np.hstack([rng.normal(size=(30, 4)) * 10, np.ones((30, 1))])
    queries = np.array([[3, 7, 9], [-1, -1, 5]])
    mean = query_candidate_scorer(query, candidate)(queries)
    want = np.stack([query[[3, 7, 9]].mean(0), query[5]]) @ candidate.T
    ratio = mean / want  # the engine normalises the mean query: a positive factor per row, the same ranking
    assert np.allclose(ratio, ratio[:, :1], rtol=1e-4) and (ratio > 0).all()
    best = query_candidate_scorer(query, candidate, "max")(queries)
    assert best[0] == pytest.approx((query[[3, 7, 9]] @ candidate.T).max(axis=0), rel=1e-5)
    cosine = embedding_scorer(candidate)(queries)  # one set of vectors: cosine, which ranks differently here
    assert not np.array_equal(np.argsort(-mean[0])[:10], np.argsort(-cosine[0])[:10])
    with pytest.raises(EvaluationError, match="same shape"):
        query_candidate_scorer(query[:, :3], candidate)
    aligned = EmbeddingScorer.from_movie_ids(np.arange(30)[::-1], candidate[::-1], np.arange(30),
                                                query_vectors=query[::-1])
    assert np.allclose(aligned(queries), mean, rtol=1e-5)


def test_per_movie_limit_keeps_only_each_movies_nearest():
    vectors = np.array([[1, 0], [0.9, 0.1], [0.5, 0.5], [0, 1], [0.2, 0.8]], dtype=np.float32)
    limited = embedding_scorer(vectors, "sum", per_movie_limit=2)(np.array([[0], [3]]))
    assert np.isfinite(limited).tolist() == [[True, True, False, False, False], [False, False, False, True, True]]
    both = embedding_scorer(vectors, "max", per_movie_limit=2)(np.array([[0, 3]]))
    assert np.isfinite(both).tolist() == [[True, True, False, True, True]]
    with pytest.raises(EvaluationError, match="per_movie_limit"):
        embedding_scorer(vectors, "sum", per_movie_limit=0)


def test_embeddings_are_aligned_by_movie_id(gd):
    stored_ids = gd.movie_ids[::-1].copy()
    vectors = np.arange(12, dtype=np.float32).reshape(6, 2)[::-1] + 1  # row i of stored = node 5 - i
    scorer = EmbeddingScorer.from_movie_ids(stored_ids, vectors, gd.movie_ids)
    assert scorer.vectors[0] == pytest.approx((np.array([0, 1]) + 1) / np.linalg.norm([1, 2]))
    with pytest.raises(EvaluationError, match=r"no vector for movie id\(s\) \[51\]"):
        EmbeddingScorer.from_movie_ids(stored_ids[1:], vectors[1:], gd.movie_ids)


def test_nan_vectors_are_refused():
    vectors = np.ones((3, 2))
    vectors[1, 0] = np.nan
    with pytest.raises(EvaluationError, match=r"node indices \[1\]"):
        embedding_scorer(vectors)


# ------------------------------------------------------------------------------------ bad input
def test_unknown_node_indices_in_a_split_are_named(gd):
    gd.val.loc[1, "movie"] = 99
    with pytest.raises(EvaluationError, match="val: movie node indices 99"):
        prepare_evaluation(gd)


def test_queries_out_of_range_are_named(gd):
    with pytest.raises(EvaluationError, match=r"\[6\]"):
        PopularityBaseline().fit(gd)(np.array([[6]]))
    with pytest.raises(EvaluationError, match="no movie"):
        embedding_scorer(np.ones((6, 2)))(np.array([[-1, -1]]))


def test_unknown_movie_ids_are_named(gd):
    assert movie_indices([21, 1], gd.movie_ids).tolist() == [2, 0]
    with pytest.raises(EvaluationError, match=r"\[7, 8\]"):
        movie_indices([1, 7, 8], gd.movie_ids)


def test_unknown_split_protocol_and_bad_scores(gd):
    pop = PopularityBaseline().fit(gd)
    with pytest.raises(EvaluationError, match="split 'train'"):
        evaluate_scores(pop, gd, "train")
    with pytest.raises(EvaluationError, match="protocol 'random'"):
        evaluate_scores(pop, gd, "val", "random")
    with pytest.raises(EvaluationError, match="shape"):
        evaluate_scores(lambda q: np.zeros((len(q), 5)), gd)


def test_two_held_out_rows_for_one_user_are_named(gd):
    gd.val.loc[2, "user"] = 0
    with pytest.raises(EvaluationError, match=r"users \[0\] have more than one"):
        prepare_evaluation(gd)


def test_users_without_training_movies_are_named():
    gd = tiny_graph(train=[(0, 0, 1)], val=[(1, 1, 2)], test=[(1, 2, 3)], n_users=2, n_movies=3)
    with pytest.raises(EvaluationError, match=r"users \[1\]"):
        prepare_evaluation(gd)


# ------------------------------------------------------------------------------------ table and file
def test_evaluate_models_write_metrics_and_frame(gd, tmp_path):
    settings = get_settings({}, dataset="sample", artifacts_root=tmp_path, seed=7)
    table = evaluate_models(fit_baselines(gd), gd, history=2)
    assert set(table) == {"popularity", "item-knn", "transitions", "transitions [after]", "next-movie [no graph]"}
    assert set(table["item-knn"]) == {"latest", "history"} and set(table["item-knn"]["latest"]) == {"val", "test"}
    path = write_metrics(settings, table, protocols={"latest": 1, "history": 2}, dataset_label="tiny")
    saved = json.loads(path.read_text())
    assert path == tmp_path / "sample" / "metrics.json"
    assert (saved["schema_version"], saved["dataset"], saved["dataset_label"], saved["k"], saved["seed"]) == (
        2, "sample", "tiny", 10, 7)
    assert {p: v["history"] for p, v in saved["protocols"].items()} == {"latest": 1, "history": 2}
    assert "last 2 movies" in saved["protocols"]["history"]["description"]
    results = {(r["model"], r["protocol"], r["split"], r["slice"]): r for r in saved["results"]}
    assert len(results) == len(saved["results"]) == 5 * 2 * 2
    assert {r["n_users"] for r in saved["results"]} == {3}
    assert results[("transitions", "latest", "val", "all")]["metrics"]["hr@10"] == \
        table["transitions"]["latest"]["val"]["hr@10"]
    assert "hr@10_stderr" in results[("popularity", "history", "test", "all")]["metrics"]
    assert "n_users" not in results[("popularity", "history", "test", "all")]["metrics"]
    assert read_manifest(path)["stage"] == "model"
    assert read_metrics(settings) == saved

    shown = metrics_frame(saved)
    assert shown.shape == (10, 6)
    assert list(shown.columns.get_level_values(0)[:3]) == ["val"] * 3
    assert shown.loc[("popularity", "latest"), ("val", "HR@10")].count(" ± ") == 1
    assert metrics_frame(table, numeric=True).loc[("item-knn", "latest"), ("test", "NDCG@10")] == pytest.approx(
        table["item-knn"]["latest"]["test"]["ndcg@10"])


def test_failed_write_keeps_the_old_metrics(gd, tmp_path):
    settings = get_settings({}, dataset="sample", artifacts_root=tmp_path)
    table = evaluate_models({"popularity": PopularityBaseline().fit(gd)}, gd, protocols=("latest",))
    path = write_metrics(settings, table)
    before = path.read_text()
    with pytest.raises(TypeError):
        write_metrics(settings, table, extra={"not json": object()})
    assert path.read_text() == before
    mixed = {"a": table["popularity"], "b": {"latest": {"val": {**table["popularity"]["latest"]["val"], "n_users": 2}}}}
    with pytest.raises(EvaluationError, match="same split"):
        write_metrics(settings, mixed)
    with pytest.raises(EvaluationError, match="empty"):
        write_metrics(settings, {})
    with pytest.raises(EvaluationError, match="protocol 'latest' has no history length"):
        write_metrics(settings, table, protocols={"history": 10})
    with pytest.raises(EvaluationError, match="appears twice"):
        write_metrics(settings, metrics_records(table) * 2)
    with pytest.raises(EvaluationError, match=r"extra key\(s\) \['k'\]"):
        write_metrics(settings, table, extra={"k": 5})
    assert path.read_text() == before


def test_metrics_of_two_slices_with_different_users_per_split_round_trip(gd, tmp_path):
    """The schema carries slices: records of two slices, whose users differ per split (as when users are sampled),
    written, read back with the manifest check and shown with a slice level and the users behind each row."""
    settings = get_settings({}, dataset="sample", artifacts_root=tmp_path, seed=7)
    models = {"popularity": PopularityBaseline().fit(gd), "item-knn": ItemKNNBaseline().fit(gd)}
    everyone = evaluate_models(models, gd, protocols=("latest",))
    some = {name: {"latest": {"val": evaluate_scores(scorer, gd, "val", "latest", sample=2, seed=1),  # 2 of 3 users
                              "test": evaluate_scores(scorer, gd, "test", "latest")}}
            for name, scorer in models.items()}
    records = metrics_records(everyone) + metrics_records(some, slice="sampled")
    write_metrics(settings, records, protocols={"latest": 1})
    document = read_metrics(settings)
    assert document["results"] == json.loads(json.dumps(records))
    assert {(r["slice"], r["split"], r["n_users"]) for r in document["results"]} == {
        ("all", "val", 3), ("all", "test", 3), ("sampled", "val", 2), ("sampled", "test", 3)}
    assert list(document["protocols"]) == ["latest"]

    shown = metrics_frame(document)
    assert shown.index.names == ["model", "protocol", "slice"] and len(shown) == 4
    assert list(shown.columns[:4]) == [("val", "users"), ("val", "HR@10"), ("val", "NDCG@10"), ("val", "Recall@10")]
    assert shown.loc[("item-knn", "latest", "sampled"), ("val", "users")] == 2
    assert shown.loc[("item-knn", "latest", "all"), ("val", "users")] == 3
    assert ("test", "users") not in shown.columns  # the same users behind every test figure
    assert metrics_frame(document, users=True).loc[("popularity", "latest", "sampled"), ("test", "users")] == 3
    assert shown.loc[("popularity", "latest", "sampled"), ("val", "HR@10")].count(" ± ") == 1
    numeric = metrics_frame(records, numeric=True, users=False)
    assert "users" not in numeric.columns.get_level_values(1)
    assert numeric.loc[("item-knn", "latest", "sampled"), ("val", "HR@10")] == pytest.approx(
        some["item-knn"]["latest"]["val"]["hr@10"])


def test_read_metrics_refuses_an_older_schema_and_a_changed_file(gd, tmp_path):
    settings = get_settings({}, dataset="sample", artifacts_root=tmp_path)
    path = write_metrics(settings, evaluate_models({"popularity": PopularityBaseline().fit(gd)}, gd))
    old = {"dataset": "sample", "k": 10, "n_users": {"val": 3}, "models": {"popularity": {}}}
    path.write_text(json.dumps(old))
    with pytest.raises(StaleArtifactError, match="changed after it was written"):
        read_metrics(settings)
    write_manifest(path, "model", settings)
    with pytest.raises(StaleArtifactError, match="schema 1.*run notebooks/03_pinsage_training.ipynb"):
        read_metrics(settings)
    with pytest.raises(EvaluationError, match="schema 1"):
        metrics_frame(old)


# ------------------------------------------------------------------------------------ on a real graph
def test_baselines_on_the_sample_graph_beat_chance(tmp_path):
    from helpers.data.loader import load_movielens
    from helpers.graph.build import build_graph

    graph = build_graph(load_movielens("sample", cache_dir=tmp_path))
    table = evaluate_models(fit_baselines(graph), graph, splits=("val",))
    chance = 10 / graph.n_movies
    for model, protocols in table.items():
        for protocol, splits in protocols.items():
            metrics = splits["val"]
            assert metrics["n_users"] == len(graph.val)
            assert 0.0 <= metrics["ndcg@10"] <= metrics["hr@10"] <= 1.0
            if model != "popularity":
                assert metrics["hr@10"] > chance, (model, protocol, metrics)


@pytest.mark.slow
def test_quality_benchmark_runs_on_the_sample(tmp_path, monkeypatch, capsys):
    from bench import quality

    monkeypatch.setenv("RECSYS_CACHE", str(tmp_path / "cache"))
    assert quality.main(["--dataset", "sample", "--time-budget", "3", "--no-progress",
                         "--artifacts", str(tmp_path / "artifacts"), "--out", str(tmp_path / "quality.json")]) == 0
    out = capsys.readouterr().out
    assert "dataset: synthetic sample" in out and "PinSage / item-kNN" in out
    figures = json.loads((tmp_path / "quality.json").read_text())
    assert "-m bench.quality --dataset sample" in figures["run"]["command"]
    assert figures["figures"]["table"]["pinsage"]["latest"]["val"]["hr@10"] >= 0
    saved = json.loads((tmp_path / "artifacts" / "sample" / "metrics.json").read_text())
    assert {"pinsage", "popularity", "item-knn", "transitions", "transitions [after]", "next-movie [no graph]",
            "pinsage [cosine, max]"} <= {r["model"] for r in saved["results"]}
    assert {p: v["history"] for p, v in saved["protocols"].items()} == {"latest": 1, "history": 10}
    assert saved["benchmark"]["train_seconds"] > 0 and saved["dataset_label"].startswith("synthetic sample")
