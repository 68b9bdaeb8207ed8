"""helpers.evaluation.cold_start: the new-movie protocol's events, reveals, ranks and bootstrap on toys with known
answers (hiding movies and appending them as columns, the per-movie table, the demo's sample of users too), the
fold-in, and the benchmark on the sample. Cost: about 9 s (the toys under 1 s; the smoke run of
`python -m bench.new_movies`, 2 s of training, the rest)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.evaluation.cold_start import (
    STRATA,
    appended_columns,
    event_hits,
    first_raters,
    hide_movies,
    new_movie_events,
    per_movie,
    per_movie_table,
    revealed,
    stratified_bootstrap,
    users_sample,
    without_movies,
)
from helpers.evaluation.metrics import EvaluationError


def ratings(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    users, movies, times = zip(*rows, strict=True)
    return pd.DataFrame({"user_id": users, "movie_id": movies, "rating": 4.0, "timestamp": times})


def test_events_are_consecutive_pairs_into_a_hidden_movie_from_later_users():
    # movie 9 is hidden. Its raters by time: user 1 (t=1), user 2 (t=2), user 3 (t=5), user 4 (t=5).
    toy = ratings([(1, 5, 0), (1, 9, 1),                 # user 1: 5 -> 9, but user 1 is among the first 2
                   (2, 9, 2), (2, 6, 3),                 # user 2: 9 first, nothing before it
                   (3, 7, 4), (3, 9, 5), (3, 8, 6),      # user 3: 7 -> 9 is an event
                   (4, 9, 5), (4, 3, 5), (4, 2, 9),      # user 4: 3 and 9 share t=5; by movie id 3 comes first: 3 -> 9
                   (5, 8, 1), (5, 4, 2)])                # user 5 never rates 9
    events = new_movie_events(toy, [9], first=2)
    assert events[["user_id", "query_id", "movie_id"]].values.tolist() == [[3, 7, 9], [4, 3, 9]]
    assert len(new_movie_events(toy, [9], first=4)) == 0  # every rater of 9 is now among its first raters
    both = new_movie_events(toy, [9, 7], first=2)  # A must not be hidden: 7 -> 9 goes; nothing leads into 7
    assert both[["user_id", "query_id", "movie_id"]].values.tolist() == [[4, 3, 9]]
    raters = first_raters(toy, [9], first=3)
    assert raters["user_id"].tolist() == [1, 2, 3] and raters["order"].tolist() == [0, 1, 2]  # t=5 tie: user 3 first
    assert revealed(raters, 0).empty and revealed(raters, 2)["user_id"].tolist() == [1, 2]


def test_hidden_movies_are_drawn_evenly_from_popularity_quartiles():
    toy = ratings([(u, m, u) for m in range(40) for u in range(m + 1)])  # movie m has m + 1 ratings
    hidden = hide_movies(toy, n_hidden=8, seed=3)
    assert hidden.groupby("stratum", observed=True).size().tolist() == [2, 2, 2, 2]
    assert (hidden.loc[hidden["stratum"] == STRATA[0], "ratings"] <= 10).all()
    assert (hidden.loc[hidden["stratum"] == STRATA[3], "ratings"] > 30).all()
    assert hidden.equals(hide_movies(toy, n_hidden=8, seed=3))
    with pytest.raises(EvaluationError):
        hide_movies(toy, n_hidden=2)


def test_event_hits_rank_the_target_among_all_columns_but_the_query():
    scores = np.array([[9.0, 5.0, 1.0, 3.0], [0.0, 1.0, 2.0, 3.0]])
    hits = event_hits(lambda q: scores[:len(q)], np.array([0, 3]), np.array([2, 0]), k=2)
    assert hits.tolist() == [0.0, 0.0]  # row 0: 5 and 3 beat the target; row 1: 2 and 1 beat it (3 is the query)
    assert event_hits(lambda q: scores[:len(q)], np.array([0, 3]), np.array([1, 2]), k=1).tolist() == [1.0, 1.0]


def test_hidden_movies_leave_training_and_come_back_as_columns_after_the_known_ones():
    from pathlib import Path

    from helpers.data.movielens import MovieLens

    toy = ratings([(1, 5, 0), (1, 9, 1), (2, 7, 2), (2, 9, 3), (3, 8, 4), (3, 7, 5)])
    movies = pd.DataFrame({"movie_id": [5, 7, 8, 9], "title": list("abcd"), "year": pd.array([None] * 4, "Int64"),
                           "genres": [[]] * 4})
    known = without_movies(MovieLens("toy", toy, movies, None, Path(".")), [9, 8])
    assert known.movies["movie_id"].tolist() == [5, 7] and set(known.ratings["movie_id"]) == {5, 7}
    assert known.ratings.index.tolist() == list(range(3))
    hidden = pd.DataFrame({"movie_id": [9, 8]})
    events = pd.DataFrame({"movie_id": [8, 9, 9]})
    assert appended_columns(events, hidden, n_known=2).tolist() == [3, 2, 2]  # hidden's order: 9 -> 2, 8 -> 3
    with pytest.raises(EvaluationError, match="not hidden"):
        appended_columns(pd.DataFrame({"movie_id": [5]}), hidden, n_known=2)


def test_the_demo_on_a_sample_of_users_keeps_their_ratings_and_the_movies_they_rated():
    """Notebook 03's new-movie demo on a large dataset: every rating of the drawn users, only the movies they rated;
    None, or as many users as there are, is the dataset itself. Instant."""
    from pathlib import Path

    from helpers.data.movielens import MovieLens

    toy = ratings([(1, 5, 0), (1, 9, 1), (2, 7, 2), (2, 9, 3), (3, 8, 4), (3, 7, 5), (4, 6, 6)])
    movies = pd.DataFrame({"movie_id": [5, 6, 7, 8, 9], "title": list("abcde"),
                           "year": pd.array([None] * 5, "Int64"), "genres": [[]] * 5})
    ml = MovieLens("toy", toy, movies, None, Path("."))
    assert users_sample(ml, None) is ml and users_sample(ml, 4) is ml and users_sample(ml, 10) is ml
    demo = users_sample(ml, 2, seed=1)
    kept = set(demo.ratings["user_id"])
    assert len(kept) == 2 and demo.ratings.equals(toy[toy["user_id"].isin(kept)].reset_index(drop=True))
    assert demo.movies["movie_id"].tolist() == sorted(set(demo.ratings["movie_id"]))
    assert set(users_sample(ml, 2, seed=1).ratings["user_id"]) == kept  # seeded
    with pytest.raises(EvaluationError, match="users=0"):
        users_sample(ml, 0)


def test_per_movie_table_sets_the_models_hit_rates_side_by_side():
    hidden = pd.DataFrame({"movie_id": [1, 2, 3], "ratings": [3, 8, 20], "stratum": [STRATA[0], STRATA[1], STRATA[3]]})
    events = pd.DataFrame({"movie_id": [1, 1, 2, 2, 2, 2]})
    a = per_movie(events, np.array([1.0, 0.0, 1.0, 1.0, 1.0, 0.0]), hidden)
    b = per_movie(events, np.zeros(6), hidden)
    table = per_movie_table({"a": a, "b": b}, hidden)
    assert table["events"].tolist() == [2, 4, 0] and table["ratings"].tolist() == [3, 8, 20]
    assert table["HR@10 a"].tolist()[:2] == [0.5, 0.75] and table["HR@10 b"].tolist()[:2] == [0.0, 0.0]
    assert np.isnan(table.at[3, "HR@10 a"])  # no events: no hit rate, not 0
    with pytest.raises(EvaluationError, match="at least one"):
        per_movie_table({}, hidden)


def test_bootstrap_per_stratum_and_macro_with_paired_differences():
    hidden = pd.DataFrame({"movie_id": [1, 2, 3, 4], "stratum": [STRATA[0], STRATA[0], STRATA[1], STRATA[2]]})
    events = pd.DataFrame({"movie_id": [1, 1, 2, 3, 3]})
    a = per_movie(events, np.array([1.0, 1.0, 0.0, 1.0, 0.0]), hidden)
    b = per_movie(events, np.zeros(5), hidden)
    table = stratified_bootstrap({"a": a, "b": b}, reference="a", resamples=500)
    assert table.loc[("a", STRATA[0]), "hr"] == pytest.approx(2 / 3) and table.loc[("a", STRATA[1]), "hr"] == 0.5
    assert np.isnan(table.loc[("a", STRATA[2]), "hr"]) and table.loc[("a", STRATA[2]), "events"] == 0
    assert table.loc[("a", "macro"), "hr"] == pytest.approx((2 / 3 + 0.5) / 2)  # strata without events left out
    assert table.loc[("b", "macro"), "diff"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert 0 <= table.loc[("b", "macro"), "diff_low"] <= table.loc[("b", "macro"), "diff_high"] <= 1


def test_the_benchmark_runs_on_the_sample_with_tiny_budgets(tmp_path, monkeypatch, capsys):
    """The whole of `python -m bench.new_movies` on the sample, 2 s of training (about 8 s in all)."""
    import json

    from bench import new_movies

    monkeypatch.setenv("RECSYS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "new_movies.json"
    assert new_movies.main(["--dataset", "sample", "--hidden", "20", "--levels", "0", "5", "--time-budget", "2",
                            "--next-movie-steps", "20", "--resamples", "200", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "k = 5" in printed and "inductive pinsage minus each (macro)" in printed and "warm HR@10" in printed
    figures = json.loads(out.read_text())["figures"]
    assert set(figures["levels"]) == {"0", "5"} and figures["info"]["events"] > 0
    models = {row["model"] for row in figures["levels"]["5"]["table"]}
    assert models == {"inductive pinsage", "features only", "neighbour mean", "item-knn [revealed]",
                      "next-movie fold-in", "popularity"}


def test_the_fold_in_learns_a_new_column_from_its_pairs_and_competes_in_the_others():
    import torch

    from helpers.training.baselines import fold_in_candidates
    from helpers.training.inference import MovieVectors

    rng = np.random.default_rng(0)
    query, candidate = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)
    vectors = MovieVectors(query=query, candidate=candidate)
    pairs = np.array([[i, (i + 1) % 6] for i in range(6)] * 5)
    none = fold_in_candidates(vectors, np.zeros(0), np.zeros(0), 2, np.zeros((0, 2)))
    np.testing.assert_allclose(none, np.tile(candidate.mean(0), (2, 1)), atol=1e-6)  # no evidence: the prior
    folded = fold_in_candidates(vectors, np.array([3, 3, 3]), np.array([0, 0, 0]), 2, pairs, steps=300)
    assert query[3] @ folded[0] > query[3] @ folded[1]  # new movie 0 follows movie 3
    assert (query @ folded[1]).mean() < (query @ candidate.mean(0)).mean()  # no pairs of its own: it lost ground
    assert torch.isfinite(torch.from_numpy(folded)).all()
