"""The evaluation protocols on the held-out edges: what a scorer is asked, and HR/NDCG/Recall@K of its answers.

Every user in `gd.val` / `gd.test` has one held-out movie. A scorer gives a score to every movie; the
movies the user is known to have rated are left out of the ranking (for val: the training movies; for
test: the training movies and the val movie), and the rank of the held-out movie among the rest gives the
metrics. Two protocols say what the scorer is asked with:

* `"latest"` (a): the user's latest known movie, as in DGL's PinSage example (`LatestNNRecommender`):
  for val the latest training movie, for test the val movie (the step just before the test movie).
* `"history"` (b): the user's last `history` (default `HISTORY_LENGTH` = 10) known movies, as the
  recommender of notebooks 06-07 is asked with the movies a visitor liked. How the movies are combined is
  the scorer's `combine` option: `"mean"` of the normalised vectors (embeddings only), or per-movie scores
  fused by `"sum"` or `"max"`. Note that with an exhaustive search `"mean"` and `"sum"` rank identically
  (q.v_j is the mean of the v_i.v_j); they differ only when each liked movie's search is cut at
  `per_movie_limit` candidates, as a vector database search is.

Models and baselines are fitted on the training edges only; val and test differ only in how far along
each user's time line the query is. `prepare_evaluation(gd, chained=False)` gives the literal variant
instead, in which test is also queried from the training history (two steps ahead of its target).

Scorers take a query array `[n_queries, n]` of movie node indices, padded with -1 (latest movie last), and
return a float array `[n_queries, n_movies]`. Baselines: `PopularityBaseline` (training counts),
`ItemKNNBaseline` (cosine between movies' user sets), `TransitionsBaseline` (how often a movie was rated
right before or after the query movie, or only right after it), `helpers.training.baselines.NextMovieBaseline` (per
movie a query and a candidate vector and a bias, no graph); a trained model's query and candidate vectors go
through `query_candidate_scorer`, one set of vectors compared by cosine through `embedding_scorer`.

Ties in the scores are broken at random, in expectation: if `g` other candidates score higher than the
held-out movie and `e` score the same, its position is taken as uniform on `g..g+e`, which makes count
based scorers (popularity, transitions) neither flattered nor punished by the order of their ties.
Standard errors are `std(per-user values, ddof=1) / sqrt(n_users)`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from helpers.evaluation.metrics import K_DEFAULT, METRICS, EvaluationError, rank_metrics

HISTORY_LENGTH = 10
SPLITS: tuple[str, ...] = ("val", "test")
PROTOCOLS: tuple[str, ...] = ("latest", "history")
SPLIT_DESCRIPTION = (
    "per user with >= 3 ratings, time-ordered: last rating = test, second-to-last = val, the rest = training "
    "graph (all models fitted on it); candidates = every movie the user has not rated before the target "
    "(val: not in training; test: not in training and not the val movie)"
)
PROTOCOL_HISTORY: dict[str, int] = {"latest": 1, "history": HISTORY_LENGTH}  # movies each protocol queries with
PROTOCOL_DESCRIPTIONS: dict[str, str] = {
    "latest": "query = the user's latest movie before the target (val: latest training movie; test: the val "
              "movie), as in DGL's PinSage example",
    "history": "query = the user's last {history} movies before the target, combined by the scorer's "
               "`combine` method (pinsage: mean of the normalised vectors unless the model name says otherwise)",
}


def check_indices(values: np.ndarray, size: int, what: str, column: str) -> None:
    values = np.asarray(values)
    bad = np.unique(values[(values < 0) | (values >= size)])
    if len(bad):
        shown = ", ".join(str(v) for v in bad[:10]) + (" ..." if len(bad) > 10 else "")
        raise EvaluationError(
            f"{what}: {column} node indices {shown} are outside 0..{size - 1}; they must be node indices of "
            f"this graph (map MovieLens ids with `movie_indices`), rebuild the graph with notebook 02 if it is stale."
        )


@dataclass(frozen=True)
class EvaluationData:
    """What each split's users are known to have watched, and their held-out movies, as arrays.

    With `chained` (the default), each split is evaluated knowing the splits before it: the test query
    history ends with the user's validation movie and that movie is no longer a candidate, so test asks
    the same "what next?" as validation, one step later. Without it, test is queried from the training
    history alone (two steps ahead, with the validation movie among the candidates)."""

    n_movies: int
    seen: dict[str, sp.csr_matrix]        # split -> [n_users, n_movies] bool: movies known before the target
    histories: dict[str, np.ndarray]      # split -> [n_users, max_history] time-ordered, latest last, padded -1
    targets: dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (user indices, held-out movie indices)
    dataset: str = ""
    chained: bool = True

    @classmethod
    def from_frames(cls, train: pd.DataFrame, splits: Mapping[str, pd.DataFrame], n_movies: int,
                    n_users: int | None = None, dataset: str = "", max_history: int = 50,
                    chained: bool = True) -> EvaluationData:
        """Build from frames with `user`, `movie` (node indices) and, for `train`, `timestamp` columns;
        `splits` in time order (val, then test). Training rows with the same timestamp keep their order in
        `train`, as the graph's split does."""
        for name, frame in {"train": train, **splits}.items():
            needed = {"user", "movie", "timestamp"} if name == "train" else {"user", "movie"}
            missing = needed - set(frame.columns)
            if missing:
                raise EvaluationError(f"the {name} frame lacks column(s) {sorted(missing)}")
        users = train["user"].to_numpy(np.int64)
        movies = train["movie"].to_numpy(np.int64)
        if n_users is None:
            n_users = int(max([users.max(initial=-1)] + [f["user"].max() for f in splits.values() if len(f)]) + 1)
        check_indices(movies, n_movies, "train", "movie")
        check_indices(users, n_users, "train", "user")
        known = sp.csr_matrix((np.ones(len(users), dtype=bool), (users, movies)), shape=(n_users, n_movies))
        known.sum_duplicates()

        order = np.lexsort((train["timestamp"].to_numpy(np.int64), users))  # stable: ties keep frame order
        users_sorted, movies_sorted = users[order], movies[order]
        starts = np.searchsorted(users_sorted, np.arange(n_users))
        ends = np.searchsorted(users_sorted, np.arange(n_users), side="right")
        history = np.full((n_users, max_history), -1, dtype=np.int64)
        for offset in range(1, max_history + 1):  # column -offset holds the offset-th latest movie
            has = ends - offset >= starts
            history[has, -offset] = movies_sorted[ends[has] - offset]

        seen: dict[str, sp.csr_matrix] = {}
        histories: dict[str, np.ndarray] = {}
        targets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, frame in splits.items():
            split_users = frame["user"].to_numpy(np.int64)
            split_movies = frame["movie"].to_numpy(np.int64)
            check_indices(split_users, n_users, name, "user")
            check_indices(split_movies, n_movies, name, "movie")
            repeated = split_users[np.bincount(split_users, minlength=n_users)[split_users] > 1]
            if len(repeated):
                raise EvaluationError(f"{name}: users {np.unique(repeated)[:10].tolist()} have more than one held-out "
                                      "row; the split holds one movie per user (rebuild with notebook 02).")
            no_history = split_users[history[split_users, -1] < 0]
            if len(no_history):
                raise EvaluationError(
                    f"{name}: users {no_history[:10].tolist()} have no training movie to query with; the split "
                    "must leave every evaluated user at least one training interaction (rebuild with notebook 02)."
                )
            seen[name], histories[name], targets[name] = known, history, (split_users, split_movies)
            if chained:  # the next split knows this one's movies
                history = history.copy()
                history[split_users, :-1] = history[split_users, 1:]
                history[split_users, -1] = split_movies
                known = (known + sp.csr_matrix((np.ones(len(split_users), dtype=bool), (split_users, split_movies)),
                                               shape=known.shape)).tocsr()
        return cls(n_movies=n_movies, seen=seen, histories=histories, targets=targets, dataset=dataset,
                   chained=chained)

    def queries(self, split: str, users: np.ndarray, protocol: str, history: int = HISTORY_LENGTH) -> np.ndarray:
        """Padded query lists `[len(users), n]` of `split`'s `users` under `protocol` ("latest": n = 1;
        "history": n = `history`), latest movie last."""
        histories = self.histories[split]
        if protocol == "latest":
            return histories[users, -1:]
        if protocol == "history":
            if not 1 <= history <= histories.shape[1]:
                raise EvaluationError(f"history={history} must be between 1 and {histories.shape[1]}")
            return histories[users, -history:]
        raise EvaluationError(f"Unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")


def prepare_evaluation(gd: Any, max_history: int = 50, chained: bool = True) -> EvaluationData:
    """`EvaluationData` of a `GraphData` (its train/val/test frames); build it once and reuse it per epoch."""
    if isinstance(gd, EvaluationData):
        return gd
    return EvaluationData.from_frames(
        gd.train, {"val": gd.val, "test": gd.test}, n_movies=len(gd.movie_ids), n_users=len(gd.user_ids),
        dataset=getattr(gd, "dataset", ""), max_history=max_history, chained=chained,
    )


def movie_indices(movie_ids: Iterable[int], known_ids: np.ndarray) -> np.ndarray:
    """Node indices of MovieLens `movie_ids` given the graph's `movie_ids` (node index -> id); unknown ids
    raise an `EvaluationError` that names them."""
    known_ids = np.asarray(known_ids, dtype=np.int64)
    wanted = np.asarray(list(movie_ids), dtype=np.int64)
    unknown = wanted[~np.isin(wanted, known_ids)]
    if len(unknown):
        raise EvaluationError(f"Unknown movie id(s) {unknown[:10].tolist()}: they are not in this dataset's catalog.")
    return pd.Series(np.arange(len(known_ids)), index=known_ids).loc[wanted].to_numpy(np.int64)


def check_queries(queries: np.ndarray, n_movies: int) -> np.ndarray:
    queries = np.asarray(queries, dtype=np.int64)
    if queries.ndim == 1:
        queries = queries[:, None]
    bad = np.unique(queries[(queries < -1) | (queries >= n_movies)])
    if len(bad):
        raise EvaluationError(f"query movie node indices {bad[:10].tolist()} are outside 0..{n_movies - 1} "
                              "(-1 = padding)")
    empty = np.flatnonzero((queries < 0).all(axis=1))
    if len(empty):
        raise EvaluationError(f"query rows {empty[:10].tolist()} hold no movie (only -1 padding)")
    return queries


def sample_rows(n_rows: int, sample: int | None, seed: int = 0) -> np.ndarray:
    """Positions of a fixed random subset of `sample` of `n_rows` evaluated users (sorted; all of them
    when `sample` is None or not smaller): the same seed gives every model the same users."""
    if sample is None or sample >= n_rows:
        return np.arange(n_rows)
    if sample < 2:
        raise EvaluationError(f"sample={sample}: evaluate at least 2 users (a standard error needs two)")
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=sample, replace=False))


def per_user_values(score_fn: Callable[[np.ndarray], np.ndarray], gd: Any, split: str = "val",
                    protocol: str = "latest", k: int = K_DEFAULT, history: int = HISTORY_LENGTH,
                    batch_size: int = 512, sample: int | None = None, seed: int = 0,
                    users: np.ndarray | None = None) -> pd.DataFrame:
    """Each evaluated user's HR/NDCG/Recall@k of `score_fn` (rows: user node indices, in the split's order;
    columns `hr@k`, ...): what `evaluate_scores` averages, and what paired intervals between two models need.
    `users` (user node indices) keeps only those of the split's users; `sample` and `seed` as `evaluate_scores`."""
    data = prepare_evaluation(gd)
    if split not in data.targets:
        raise EvaluationError(f"Unknown split {split!r}; use one of {', '.join(data.targets)}")
    if k < 1:
        raise EvaluationError(f"k={k} must be at least 1")
    split_users, targets = data.targets[split]
    chosen = sample_rows(len(split_users), sample, seed)
    split_users, targets = split_users[chosen], targets[chosen]
    if users is not None:
        keep = np.isin(split_users, np.asarray(users, dtype=np.int64))
        split_users, targets = split_users[keep], targets[keep]
    per_user: dict[str, list[np.ndarray]] = {m: [np.zeros(0)] for m in METRICS}
    for start in range(0, len(split_users), batch_size):
        batch_users = split_users[start:start + batch_size]
        queries = data.queries(split, batch_users, protocol, history)
        scores = np.asarray(score_fn(queries))
        if scores.shape != (len(batch_users), data.n_movies):
            raise EvaluationError(f"the scorer returned shape {scores.shape}, "
                                  f"expected {(len(batch_users), data.n_movies)}")
        exclude = data.seen[split][batch_users].toarray()
        for name, values in rank_metrics(scores, targets[start:start + batch_size], exclude, k).items():
            per_user[name].append(values)
    return pd.DataFrame({f"{name}@{k}": np.concatenate(per_user[name]) for name in METRICS},
                        index=pd.Index(split_users, name="user"))


def summarise(values: pd.DataFrame) -> dict[str, float]:
    """Means and standard errors of per-user values (`per_user_values`), and `n_users`."""
    result: dict[str, float] = {}
    n = len(values)
    for column in values.columns:
        result[column] = float(values[column].mean()) if n else float("nan")
        result[f"{column}_stderr"] = float(values[column].std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    result["n_users"] = n
    return result


def evaluate_scores(score_fn: Callable[[np.ndarray], np.ndarray], gd: Any, split: str = "val",
                    protocol: str = "latest", k: int = K_DEFAULT, history: int = HISTORY_LENGTH,
                    batch_size: int = 512, sample: int | None = None, seed: int = 0,
                    users: np.ndarray | None = None) -> dict[str, float]:
    """HR/NDCG/Recall@k of `score_fn` on `split` under `protocol`, with standard errors.

    `gd` is a `GraphData` or a prepared `EvaluationData` (faster when called every epoch). With `sample`,
    only a fixed random subset of that many users (`sample_rows(.., seed)`) is ranked, still against every
    movie, in batches of `batch_size` (e.g. 10,000 users at ML-32M size); the standard error then also
    covers the choice of users. `users` (user node indices, e.g. a slice of `helpers.evaluation.slices`) keeps
    only those. Returns `{"hr@10": .., "hr@10_stderr": .., ..., "n_users": n}`."""
    return summarise(per_user_values(score_fn, gd, split, protocol, k, history, batch_size, sample, seed, users))


MetricsTable = dict[str, dict[str, dict[str, dict[str, float]]]]  # model -> protocol -> split -> metric -> value


def evaluate_models(models: Mapping[str, Callable[[np.ndarray], np.ndarray]], gd: Any,
                    protocols: Sequence[str] = PROTOCOLS, splits: Sequence[str] = SPLITS, k: int = K_DEFAULT,
                    history: int = HISTORY_LENGTH, sample: int | None = None, seed: int = 0,
                    users: Mapping[str, np.ndarray] | np.ndarray | None = None) -> MetricsTable:
    """Every model on every protocol and split, on the same users: `table[model][protocol][split][metric]`
    (with `sample`, the same random subset of users for every model; see `evaluate_scores`). `users`: user node
    indices to keep, one array for every split or one per split (a slice: `helpers.evaluation.slices`)."""
    data = prepare_evaluation(gd)

    def chosen(split: str) -> np.ndarray | None:
        return users.get(split) if isinstance(users, Mapping) else users

    return {name: {protocol: {split: evaluate_scores(scorer, data, split, protocol, k, history, sample=sample,
                                                     seed=seed, users=chosen(split)) for split in splits}
                   for protocol in protocols}
            for name, scorer in models.items()}

