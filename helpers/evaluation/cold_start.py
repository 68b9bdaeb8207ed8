"""The new-movie protocol (issue 17, `python -m bench.new_movies`): how well a movie the model never trained on
is placed, from its first k ratings.

* `hide_movies`: about `n_hidden` rated movies, seeded, the same number from each quartile of their number of
  ratings (the strata); everything about them (ratings, edges, training pairs, softmax columns) is left out of
  training by building the graph from `without_movies`.
* `first_raters`: each hidden movie's first `first` ratings by time (ties: by user id); the first k of them are
  revealed at level k (k in `LEVELS`).
* `new_movie_events`: consecutive pairs A -> h in users' time-ordered histories (ties in a second: by movie id,
  as the graph's split orders them) where h is hidden and A is not, from users who are not among h's first
  `first` raters: the same events for every k, none of them revealed at any k.
* `event_hits`: h ranked among all movies (all but A) by a model's score from A; HR@k per event. The hidden
  movies' vectors come after the graph's movies, so `appended_columns` gives each event's h as a score column.
* `per_movie` counts hits and events per hidden movie; `per_movie_table` sets several models' HR side by side.
* `users_sample`: the ratings of a seeded sample of users, for a demo of the protocol on a large dataset (notebook
  03 on the `large` preset: the graph rebuilt without the hidden movies grows with the ratings).
* `stratified_bootstrap`: HR per stratum (hits over events) and macro-averaged over the strata with events, with
  95% intervals from resampling movies within each stratum (10,000 resamples, fixed seed); paired differences
  between two models use the same resamples. `scipy.stats.bootstrap` has no stratified resampling, hence numpy.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from helpers.data.movielens import MovieLens
from helpers.evaluation.metrics import K_DEFAULT, EvaluationError, rank_metrics

LEVELS: tuple[int, ...] = (0, 1, 5, 20)
FIRST_RATERS = 20
STRATA = ("Q1 (rarest)", "Q2", "Q3", "Q4 (most rated)")


def hide_movies(ratings: pd.DataFrame, n_hidden: int = 300, seed: int = 0) -> pd.DataFrame:
    """Hidden movies: columns movie_id, ratings (their count), stratum (popularity quartile, `STRATA`); the same
    number drawn from each quartile (fewer where a quartile is smaller), seeded."""
    if n_hidden < len(STRATA):
        raise EvaluationError(f"n_hidden={n_hidden}: hide at least {len(STRATA)} movies, one per stratum")
    counts = ratings["movie_id"].value_counts().sort_index()
    quartile = pd.qcut(counts.rank(method="first"), len(STRATA), labels=list(STRATA))
    rng = np.random.default_rng(seed)
    chosen = []
    for stratum in STRATA:
        movies = counts.index[quartile == stratum].to_numpy()
        take = min(n_hidden // len(STRATA), len(movies))
        chosen.append(pd.DataFrame({"movie_id": np.sort(rng.choice(movies, take, replace=False)),
                                    "stratum": stratum}))
    hidden = pd.concat(chosen, ignore_index=True)
    hidden["ratings"] = counts.loc[hidden["movie_id"]].to_numpy()
    return hidden[["movie_id", "ratings", "stratum"]]


def without_movies(ml: MovieLens, movie_ids) -> MovieLens:
    """`ml` without the movies `movie_ids` and every rating of them: what training sees of the hidden movies."""
    hidden = np.asarray(movie_ids)
    return MovieLens(ml.name, ml.ratings[~ml.ratings["movie_id"].isin(hidden)].reset_index(drop=True),
                     ml.movies[~ml.movies["movie_id"].isin(hidden)].reset_index(drop=True), ml.users, ml.source_dir)


def users_sample(ml: MovieLens, users: int | None, seed: int = 0) -> MovieLens:
    """`ml` itself when `users` is None or not fewer than its users; else the ratings of `users` of them, drawn
    with `seed`, and the movies they rated (a movie nobody of them rated would be a node without edges)."""
    if users is None:
        return ml
    if users < 1:
        raise EvaluationError(f"users={users}: keep at least one user, or None for all of them")
    ids = np.sort(ml.ratings["user_id"].unique())
    if users >= len(ids):
        return ml
    chosen = np.sort(np.random.default_rng(seed).choice(ids, users, replace=False))
    ratings = ml.ratings[ml.ratings["user_id"].isin(chosen)].reset_index(drop=True)
    movies = ml.movies[ml.movies["movie_id"].isin(ratings["movie_id"].unique())].reset_index(drop=True)
    return MovieLens(ml.name, ratings, movies, ml.users, ml.source_dir)


def appended_columns(events: pd.DataFrame, hidden: pd.DataFrame, n_known: int) -> np.ndarray:
    """Each event's hidden movie as a score column when the hidden movies' vectors are stacked, in `hidden`'s
    order, after the `n_known` graph movies' (column `n_known + i` is `hidden`'s row i)."""
    position = pd.Series(np.arange(len(hidden)), index=hidden["movie_id"].to_numpy())
    unknown = sorted(set(events["movie_id"]) - set(position.index))
    if unknown:
        raise EvaluationError(f"events into movies that are not hidden: {unknown[:5]}; build the events from "
                              "hidden['movie_id']")
    return n_known + position.loc[events["movie_id"]].to_numpy()


def _by_time(ratings: pd.DataFrame) -> pd.DataFrame:
    return ratings.sort_values(["user_id", "timestamp", "movie_id"], kind="stable", ignore_index=True)


def first_raters(ratings: pd.DataFrame, hidden_ids, first: int = FIRST_RATERS) -> pd.DataFrame:
    """Each hidden movie's first `first` ratings by time (ties by user id), with their `order` (0-based)."""
    rows = ratings[ratings["movie_id"].isin(np.asarray(hidden_ids))]
    rows = rows.sort_values(["movie_id", "timestamp", "user_id"], kind="stable", ignore_index=True)
    rows["order"] = rows.groupby("movie_id").cumcount()
    return rows[rows["order"] < first].reset_index(drop=True)


def revealed(raters: pd.DataFrame, k: int) -> pd.DataFrame:
    """The ratings revealed at level `k`: the first `k` of `first_raters`."""
    return raters[raters["order"] < k].reset_index(drop=True)


def new_movie_events(ratings: pd.DataFrame, hidden_ids, first: int = FIRST_RATERS) -> pd.DataFrame:
    """Events (user_id, query_id = A, movie_id = h, timestamp): see the module docstring."""
    hidden = np.asarray(hidden_ids)
    ordered = _by_time(ratings)
    same_user = ordered["user_id"].to_numpy()[1:] == ordered["user_id"].to_numpy()[:-1]
    events = pd.DataFrame({"user_id": ordered["user_id"].to_numpy()[1:][same_user],
                           "query_id": ordered["movie_id"].to_numpy()[:-1][same_user],
                           "movie_id": ordered["movie_id"].to_numpy()[1:][same_user],
                           "timestamp": ordered["timestamp"].to_numpy()[1:][same_user]})
    events = events[events["movie_id"].isin(hidden) & ~events["query_id"].isin(hidden)]
    early = first_raters(ratings, hidden, first)
    excluded = events.merge(early[["movie_id", "user_id"]], on=["movie_id", "user_id"], how="left", indicator=True)
    return events[(excluded["_merge"] == "left_only").to_numpy()].reset_index(drop=True)


def event_hits(score_fn: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, targets: np.ndarray,
               k: int = K_DEFAULT, batch_size: int = 1024) -> np.ndarray:
    """HR@k of each event: `targets` (column indices of the scores) ranked among all columns but the query's own
    (`queries`: the query movie's column), from `score_fn(queries) -> [n, n_columns]`; ties in expectation."""
    hits = []
    for start in range(0, len(queries), batch_size):
        q, t = queries[start:start + batch_size], targets[start:start + batch_size]
        scores = np.asarray(score_fn(q), dtype=np.float64)
        if not np.isfinite(scores).all():
            raise EvaluationError("a new-movie scorer gave a non-finite score: check the vectors for NaN rows")
        exclude = np.zeros(scores.shape, dtype=bool)
        exclude[np.arange(len(q)), q] = True
        hits.append(rank_metrics(scores, t, exclude, k)["hr"])
    return np.concatenate(hits) if hits else np.zeros(0)


def per_movie(events: pd.DataFrame, hits: np.ndarray, hidden: pd.DataFrame) -> pd.DataFrame:
    """Hits and events per hidden movie (movies without events included, with 0 events)."""
    totals = pd.DataFrame({"movie_id": events["movie_id"].to_numpy(), "hits": hits}).groupby("movie_id")["hits"]
    out = hidden.set_index("movie_id")[["stratum"]].copy()
    out["hits"] = totals.sum().reindex(out.index, fill_value=0.0)
    out["events"] = totals.size().reindex(out.index, fill_value=0)
    return out


def per_movie_table(models: Mapping[str, pd.DataFrame], hidden: pd.DataFrame, k: int = K_DEFAULT) -> pd.DataFrame:
    """One row per hidden movie: its stratum, ratings and events, and each model's `HR@k <model>` (its hits over
    the events; NaN for a movie without events). `models`: `per_movie` frames on the same events and movies."""
    table = hidden.set_index("movie_id")[["stratum", "ratings"]]
    if not models:
        raise EvaluationError("per_movie_table needs at least one model's per_movie frame")
    table = table.assign(events=next(iter(models.values()))["events"].reindex(table.index))
    for name, frame in models.items():
        table[f"HR@{k} {name}"] = frame["hits"].reindex(table.index) / table["events"].where(table["events"] > 0)
    return table


def stratified_bootstrap(models: Mapping[str, pd.DataFrame], reference: str | None = None,
                         resamples: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Rows (model, stratum | "macro"): hr, low, high, movies, events; with `reference`, also the paired
    difference `reference - model` with its interval (diff, diff_low, diff_high). `models`: `per_movie` frames
    on the same hidden movies. Strata without events get NaN and are left out of the macro average."""
    rng = np.random.default_rng(seed)
    frames = {name: frame.sort_index() for name, frame in models.items()}
    first = next(iter(frames.values()))
    draws: dict[str, np.ndarray] = {}
    for stratum in STRATA:
        index = np.flatnonzero((first["stratum"] == stratum).to_numpy() & (first["events"] > 0).to_numpy())
        if len(index):
            draws[stratum] = index[rng.integers(len(index), size=(resamples, len(index)))]
    stats: dict[str, dict[str, tuple[float, np.ndarray, int, int]]] = {}
    for name, frame in frames.items():
        hits, events = frame["hits"].to_numpy(), frame["events"].to_numpy()
        stats[name] = {}
        for stratum in STRATA:
            inside = (frame["stratum"] == stratum).to_numpy()
            n_events = int(events[inside].sum())
            if stratum not in draws:
                stats[name][stratum] = (float("nan"), np.full(resamples, np.nan), int(inside.sum()), 0)
                continue
            rows = draws[stratum]
            stats[name][stratum] = (hits[inside].sum() / n_events, hits[rows].sum(1) / events[rows].sum(1),
                                    int(inside.sum()), n_events)
        present = [s for s in STRATA if s in draws]
        stats[name]["macro"] = (float(np.mean([stats[name][s][0] for s in present])) if present else float("nan"),
                                np.mean([stats[name][s][1] for s in present], axis=0) if present
                                else np.full(resamples, np.nan),
                                sum(stats[name][s][2] for s in STRATA), sum(stats[name][s][3] for s in STRATA))
    rows = []
    for name in frames:
        for part, (hr, boot, movies, n_events) in stats[name].items():
            row = {"model": name, "stratum": part, "hr": hr, "low": _q(boot, 0.025), "high": _q(boot, 0.975),
                   "movies": movies, "events": n_events}
            if reference is not None and name != reference:
                ref_hr, ref_boot = stats[reference][part][:2]
                row.update(diff=ref_hr - hr, diff_low=_q(ref_boot - boot, 0.025), diff_high=_q(ref_boot - boot, 0.975))
            rows.append(row)
    return pd.DataFrame(rows).set_index(["model", "stratum"])


def _q(values: np.ndarray, q: float) -> float:
    return float("nan") if np.isnan(values).all() else float(np.quantile(values, q))
