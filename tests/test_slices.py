"""helpers.evaluation.slices: the slices on a toy with known answers, paired intervals, metrics.json records.

Cost: about 1 s (toy frames; the bootstraps run 10,000 resamples of a few users; the sampled slices rank 300
users of a random toy graph)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.evaluation.protocols import evaluate_models, evaluate_scores, per_user_values, prepare_evaluation
from helpers.evaluation.report import metrics_frame
from helpers.evaluation.slices import (
    SLICES,
    comparison_records,
    paired_difference,
    paired_interval,
    paired_slices,
    slice_metrics,
    slice_users,
    verdict,
)
from helpers.graph.build import GraphData

from test_scale_paths import random_graph


def frame(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    users, movies, times = zip(*rows, strict=True)
    return pd.DataFrame({"user": np.array(users, np.int64), "movie": np.array(movies, np.int64),
                         "rating": np.ones(len(rows), np.float32), "timestamp": np.array(times, np.int64)})


@pytest.fixture
def gd() -> GraphData:
    """Users 0-2 are evaluated; 250 more only rate in training: movie 0 gets 25 training ratings, movie 1 61,
    movie 2 250, movie 3 2, movies 4-5 none."""
    fillers = [(3 + f, m, 1) for f in range(250) for m, n in ((2, 250), (1, 60), (0, 25)) if f < n]
    train = fillers + [(0, 3, 10), (1, 3, 10), (2, 1, 10)]
    val = [(0, 0, 10), (1, 1, 11), (2, 2, 11)]   # user 0's target shares its query's second
    test = [(0, 4, 12), (1, 4, 12), (2, 5, 11)]  # user 2's test shares its val movie's second
    return GraphData(graph=None, movie_ids=np.arange(6) * 10 + 1, user_ids=np.arange(253) + 1, train=frame(train),
                     val=frame(val), test=frame(test), dataset="sample", genres=[])


def test_slices_on_a_toy_with_known_answers(gd):
    val, test = slice_users(gd, "val"), slice_users(gd, "test")
    assert list(val) == list(SLICES)
    expected_val = {"all": [0, 1, 2], "target <20": [], "target 20-50": [0], "target 50-200": [1],
                    "target >=200": [2], "query <50": [0, 1], "target time != query time": [1, 2]}
    assert {name: users.tolist() for name, users in val.items()} == expected_val
    # test is queried from the val movie (chained): movies 0 (25), 1 (61), 2 (250); times 10/11/11 vs 12/12/11
    assert test["target <20"].tolist() == [0, 1, 2] and test["query <50"].tolist() == [0]
    assert test["target time != query time"].tolist() == [0, 1]


def test_users_restrict_evaluate_scores_and_models(gd):
    scores = np.tile(np.arange(6.0)[::-1], (3, 1))  # movie 0 first

    def scorer(queries: np.ndarray) -> np.ndarray:
        return scores[:len(queries)]

    every = per_user_values(scorer, gd, "val", k=1)
    one = evaluate_scores(scorer, gd, "val", k=1, users=np.array([0]))
    assert one["n_users"] == 1 and one["hr@1"] == every.loc[0, "hr@1"] == 1.0
    table = evaluate_models({"m": scorer}, gd, protocols=("latest",), k=1, users={"val": [1, 2], "test": [0]})
    assert table["m"]["latest"]["val"]["n_users"] == 2 and table["m"]["latest"]["test"]["n_users"] == 1


def test_paired_slices_difference_interval_and_detectable_difference(gd):
    index = pd.Index([0, 1, 2], name="user")
    per_user = {("a", "val"): pd.DataFrame({"hr@10": [1.0, 1.0, 0.0]}, index=index),
                ("b", "val"): pd.DataFrame({"hr@10": [0.0, 1.0, 1.0]}, index=index)}
    table = paired_slices(per_user, gd, "a", "b", "val", resamples=1000)
    diff = np.array([1.0, 0.0, -1.0])
    row = table.loc["all"]
    assert row["n"] == 3 and row["a - b"] == 0.0
    assert math.isclose(row["detectable"], 2.8 * diff.std(ddof=1) / math.sqrt(3))
    reference = stats.bootstrap((diff,), np.mean, n_resamples=1000, method="percentile",
                                random_state=np.random.default_rng(0))
    assert (row["low"], row["high"]) == (reference.confidence_interval.low, reference.confidence_interval.high)
    assert table.loc["target <20", "verdict"] == "no users" and table.loc["target 20-50", "n"] == 1
    records = comparison_records(table, "a", "b", "val", "hr@10")
    assert records[0]["slice"] == "all" and records[0]["n_users"] == 3 and records[1]["difference"] is None


def test_paired_difference_pairs_users_by_index_not_by_position():
    a = pd.Series([1.0, 0.0, 1.0, 1.0], index=[10, 11, 12, 13])
    b = pd.Series([0.0, 0.0, 1.0, 0.0, 1.0], index=[13, 12, 11, 10, 99])  # another order, one user a lacks
    paired = paired_difference(a, b)
    differences = np.array([1.0, -1.0, 1.0, 1.0])  # users 10, 11, 12, 13
    assert paired.n == 4 and paired.difference == pytest.approx(0.5)
    assert (paired.low, paired.high) == paired_interval(differences)
    assert paired.detectable == pytest.approx(2.8 * differences.std(ddof=1) / 2) and paired.verdict == "tie"
    assert paired_difference(a, a).verdict == "tie" and paired_difference(a + 1, a).verdict == "above"
    assert paired_difference(a.iloc[:1], b.iloc[:1]).verdict == "no users"  # no user in common


def test_verdict_words_follow_the_measuring_rule():
    assert verdict(0.01, 0.03) == "above" and verdict(-0.03, -0.01) == "below" and verdict(-0.01, 0.02) == "tie"
    assert verdict(-0.004, 0.01, margin=0.005) == "non-inferior" and verdict(-0.006, 0.01, margin=0.005) == "tie"
    assert paired_interval(np.ones(5)) == (1.0, 1.0) and all(map(math.isnan, paired_interval(np.ones(1))))


def test_slice_metrics_give_records_metrics_frame_shows(gd):
    scores = np.tile(np.arange(6.0), (3, 1))
    records, per_user = slice_metrics({"m": lambda q: scores[:len(q)], "n": lambda q: -scores[:len(q)]}, gd)
    assert {r["slice"] for r in records} == set(SLICES) and ("m", "test") in per_user
    shown = metrics_frame(records)
    assert shown.index.names == ["model", "protocol", "slice"]
    row = next(r for r in records if r["model"] == "m" and r["split"] == "val" and r["slice"] == "target 50-200")
    assert row["n_users"] == 1


def test_sampled_slices_rank_the_users_of_the_sampled_evaluation():
    """`slice_metrics(sample=, seed=)` ranks the users `evaluate_models` ranks with the same two, so the slices of a
    large dataset cost what its metrics.json costs, and its slice "all" is metrics.json's figure. Under 1 s."""
    gd = random_graph(n_users=300)
    scores = np.random.default_rng(0).random((300, len(gd.movie_ids)))

    def scorer(queries: np.ndarray) -> np.ndarray:
        return scores[queries[:, -1]]

    records, per_user = slice_metrics({"m": scorer}, gd, sample=100, seed=3)
    table = evaluate_models({"m": scorer}, gd, protocols=("latest",), sample=100, seed=3)
    for split in ("val", "test"):
        chosen = per_user_values(scorer, gd, split, sample=100, seed=3).index
        assert per_user[("m", split)].index.equals(chosen) and len(chosen) == 100
        whole = next(r for r in records if r["split"] == split and r["slice"] == "all")
        assert whole["n_users"] == table["m"]["latest"][split]["n_users"] == 100
        assert whole["metrics"]["hr@10"] == table["m"]["latest"][split]["hr@10"]
        assert sum(r["n_users"] for r in records if r["split"] == split and r["slice"].startswith("target ")
                   and "time" not in r["slice"]) == 100  # the popularity bins split the same 100 users
    assert len(slice_metrics({"m": scorer}, gd)[1][("m", "val")]) == 300  # no sample: every user
    data = prepare_evaluation(gd)  # prepared once by the caller: the same answers
    assert repr(slice_metrics({"m": scorer}, gd, sample=100, seed=3, data=data)[0]) == repr(records)  # NaN alike
    versus = paired_slices(per_user, gd, "m", "m", "val", resamples=100)
    assert versus.equals(paired_slices(per_user, gd, "m", "m", "val", resamples=100, data=data))
