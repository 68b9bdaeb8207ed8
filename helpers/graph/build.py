"""The users-movies heterograph and the per-user time split (notebook 02).

`build_graph(ml)` turns a `MovieLens` into a `GraphData`:

* node types `user` and `movie`; node index `i` is `user_ids[i]` / `movie_ids[i]` (MovieLens ids, ascending).
  Every movie of `ml.movies` is a node, also movies nobody rated; every user with a rating is a node.
* edge types `watched` (user -> movie) and `watched-by` (movie -> user), TRAINING ratings only. Edge `i` of
  both types is row `i` of `GraphData.train`, with `rating` and `timestamp` on both.
* the split, per user, by time: the last rating is test, the one before it validation, the rest train.
  Ratings with the same timestamp are ordered by movie id (the larger id counts as later), so the split is
  the same on every run. Users with fewer than 3 ratings keep all of them in train.
  A random split would put a user's later ratings in training and ask the model to "predict" earlier ones
  from them: that leaks the future and overstates quality. Splitting by time asks what happens next.
* movie features: `id` (arange, for an id embedding), `genres` multi-hot, `year` standardised (0 when
  unknown), `title` token ids padded with 0 (vocabulary in `GraphData.title_vocab`).
* user features where the dataset has users: `id`, and `gender`, `age`, `occupation` as codes 0..k-1
  (the original value of code `c` is `GraphData.user_vocab[name][c]`).

`save_graph` / `load_graph` keep it as the folder artifact `<artifacts>/<dataset>/graph` with a manifest.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from helpers.artifacts import atomic_folder, manifest_path, require, write_manifest
from helpers.config import Settings
from helpers.graph.features import GraphError, category_codes, genre_multi_hot, standardised_year, title_tokens
from helpers.stages import notebook_for

if TYPE_CHECKING:
    from helpers.data.movielens import MovieLens


STAGE = "graph"
FOLDER_NAME = "graph"
FORMAT_VERSION = 1
USER_FEATURES: tuple[str, ...] = ("gender", "age", "occupation")




@dataclass
class GraphData:
    graph: Any                     # dgl.DGLHeteroGraph, training edges only (see the module docstring)
    movie_ids: np.ndarray          # int64, node index -> MovieLens movie id
    user_ids: np.ndarray           # int64, node index -> MovieLens user id
    train: pd.DataFrame            # user, movie (node indices), rating, timestamp; sorted by user, then time
    val: pd.DataFrame              # one row per user with >= 3 ratings: their second-to-last rating
    test: pd.DataFrame             # one row per user with >= 3 ratings: their last rating
    dataset: str
    genres: list[str]              # column order of the multi-hot genre feature
    title_vocab: list[str] = field(default_factory=list)        # title-token id -> token (0 padding, 1 unknown)
    user_vocab: dict[str, list[Any]] = field(default_factory=dict)  # user feature -> original value per code

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_movies(self) -> int:
        return len(self.movie_ids)

    def split(self, name: str) -> pd.DataFrame:
        """The `train`, `val` or `test` frame."""
        if name not in ("train", "val", "test"):
            raise GraphError(f"Unknown split {name!r}: use 'train', 'val' or 'test'.")
        return getattr(self, name)

    def movie_index(self, movie_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Node indices of MovieLens `movie_ids`; a clear error names ids that are not in the graph."""
        return _index_of(self.movie_ids, movie_ids, "movie", self.dataset)

    def user_index(self, user_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Node indices of MovieLens `user_ids`; a clear error names ids that are not in the graph."""
        return _index_of(self.user_ids, user_ids, "user", self.dataset)


def _index_of(known: np.ndarray, ids: Sequence[int] | np.ndarray, kind: str, dataset: str) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    pos = np.searchsorted(known, ids).clip(max=max(len(known) - 1, 0))
    missing = ids[(len(known) == 0) | (known[pos] != ids)] if len(ids) else ids[:0]
    if len(missing):
        raise GraphError(f"{len(np.unique(missing))} {kind} id(s) not in the {dataset} graph, e.g. "
                         f"{_examples(missing)}. Use {kind} ids from this dataset's {kind}s table.")
    return pos.astype(np.int64)


def _examples(values: np.ndarray | Sequence[Any], limit: int = 5) -> str:
    uniq = list(pd.unique(pd.Series(values)))
    shown = ", ".join(str(v) for v in uniq[:limit])
    return shown + (f" (and {len(uniq) - limit} more)" if len(uniq) > limit else "")


# ----------------------------------------------------------------------------------------------- checks
def _check_columns(frame: pd.DataFrame | None, name: str, columns: Sequence[str]) -> None:
    if frame is None:
        raise GraphError(f"MovieLens.{name} is missing; load the dataset with helpers.data.loader.load_movielens.")
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise GraphError(f"MovieLens.{name} lacks column(s) {', '.join(absent)}; it has "
                         f"{', '.join(map(str, frame.columns))}. Load the dataset with "
                         "helpers.data.loader.load_movielens.")


def _check_input(ml: MovieLens) -> None:
    _check_columns(ml.ratings, "ratings", ("user_id", "movie_id", "rating", "timestamp"))
    _check_columns(ml.movies, "movies", ("movie_id", "title", "year", "genres"))
    if len(ml.ratings) == 0:
        raise GraphError(f"{ml.name} has no ratings: there is nothing to build a graph from.")
    for col in ("user_id", "movie_id", "rating", "timestamp"):
        if ml.ratings[col].isna().any():
            raise GraphError(f"{ml.name} ratings have missing values in {col!r}; drop or fix those rows first.")
    dup_movies = ml.movies["movie_id"][ml.movies["movie_id"].duplicated()]
    if len(dup_movies):
        raise GraphError(f"{ml.name} movies list some movie ids twice, e.g. {_examples(dup_movies.to_numpy())}; "
                         "each movie must appear once.")
    unknown = ~ml.ratings["movie_id"].isin(ml.movies["movie_id"])
    if unknown.any():
        ids = ml.ratings.loc[unknown, "movie_id"].to_numpy()
        raise GraphError(f"{int(unknown.sum())} rating(s) in {ml.name} refer to {len(np.unique(ids))} movie id(s) that "
                         f"are not in the movies table, e.g. {_examples(ids)}. Use a movies file that matches "
                         "the ratings (both from the same MovieLens release).")
    if ml.users is not None:
        _check_columns(ml.users, "users", ("user_id", *USER_FEATURES))
        unknown = ~ml.ratings["user_id"].isin(ml.users["user_id"])
        if unknown.any():
            ids = ml.ratings.loc[unknown, "user_id"].to_numpy()
            raise GraphError(f"{int(unknown.sum())} rating(s) in {ml.name} refer to user id(s) that are not in the "
                             f"users table, e.g. {_examples(ids)}. Use a users file that matches the ratings.")
    dup = ml.ratings.duplicated(["user_id", "movie_id"])
    if dup.any():
        pairs = ml.ratings.loc[dup, ["user_id", "movie_id"]].head(5).itertuples(index=False)
        raise GraphError(f"{int(dup.sum())} (user, movie) pair(s) in {ml.name} are rated more than once, e.g. "
                         f"{', '.join(f'user {u} / movie {m}' for u, m in pairs)}; keep one rating per pair "
                         "(e.g. the latest) before building the graph.")


# ------------------------------------------------------------------------------------------------ split
def time_split(user: np.ndarray, movie: np.ndarray, timestamp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order ratings per user by time and label each one 0 (train), 1 (val) or 2 (test).

    Returns `(order, label)`: `order` sorts the ratings by user, timestamp, movie (equal timestamps: the
    larger movie id counts as later); `label[i]` belongs to rating `order[i]`. A user's last rating is test and
    the one before it validation, if the user has at least 3 ratings; otherwise all are train.
    """
    order = np.lexsort((movie, timestamp, user))
    sorted_users = user[order]
    counts = np.bincount(sorted_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    from_end = counts[sorted_users] - 1 - (np.arange(len(order)) - starts[sorted_users])
    label = np.zeros(len(order), dtype=np.int8)
    held_out = counts[sorted_users] >= 3
    label[held_out & (from_end == 1)] = 1
    label[held_out & (from_end == 0)] = 2
    return order, label


# ---------------------------------------------------------------------------------------------- build
def _heterograph(train: pd.DataFrame, n_users: int, n_movies: int) -> Any:
    import torch

    from helpers.dgl_import import dgl

    users = torch.tensor(train["user"].to_numpy(np.int64))
    movies = torch.tensor(train["movie"].to_numpy(np.int64))
    graph = dgl.heterograph(
        {("user", "watched", "movie"): (users, movies), ("movie", "watched-by", "user"): (movies, users)},
        num_nodes_dict={"user": n_users, "movie": n_movies},
    )
    for etype in ("watched", "watched-by"):
        graph.edges[etype].data["rating"] = torch.tensor(train["rating"].to_numpy(np.float32))
        graph.edges[etype].data["timestamp"] = torch.tensor(train["timestamp"].to_numpy(np.int64))
    return graph


def build_graph(ml: MovieLens) -> GraphData:
    """Build the training heterograph, the per-user time split and the node features of `ml`.

    Raises `GraphError` (naming examples) for ratings of unknown movies or users, repeated (user, movie)
    pairs, duplicate movie ids, missing columns or an empty ratings table."""
    import torch

    _check_input(ml)
    movies = ml.movies.sort_values("movie_id").reset_index(drop=True)
    movie_ids = movies["movie_id"].to_numpy(np.int64)
    user_ids = np.unique(ml.ratings["user_id"].to_numpy(np.int64))
    user = np.searchsorted(user_ids, ml.ratings["user_id"].to_numpy(np.int64))
    movie = np.searchsorted(movie_ids, ml.ratings["movie_id"].to_numpy(np.int64))
    timestamp = ml.ratings["timestamp"].to_numpy(np.int64)
    rating = ml.ratings["rating"].to_numpy(np.float32)

    order, label = time_split(user, movie, timestamp)
    ordered = pd.DataFrame({"user": user[order], "movie": movie[order], "rating": rating[order],
                            "timestamp": timestamp[order]})
    train, val, test = (ordered[label == k].reset_index(drop=True) for k in (0, 1, 2))

    graph = _heterograph(train, len(user_ids), len(movie_ids))
    genres, genre_names = genre_multi_hot(movies["genres"])
    titles, vocab = title_tokens(movies["title"].tolist())
    movie_data = graph.nodes["movie"].data
    movie_data["id"] = torch.arange(len(movie_ids), dtype=torch.int64)
    movie_data["genres"] = torch.from_numpy(genres)
    movie_data["year"] = torch.from_numpy(standardised_year(movies["year"]))
    movie_data["title"] = torch.from_numpy(titles)
    graph.nodes["user"].data["id"] = torch.arange(len(user_ids), dtype=torch.int64)

    user_vocab: dict[str, list[Any]] = {}
    if ml.users is not None:
        users = ml.users.drop_duplicates("user_id").set_index("user_id").loc[user_ids]
        for name in USER_FEATURES:
            codes, user_vocab[name] = category_codes(users[name])
            graph.nodes["user"].data[name] = torch.from_numpy(codes)
    return GraphData(graph=graph, movie_ids=movie_ids, user_ids=user_ids, train=train, val=val, test=test,
                     dataset=ml.name, genres=genre_names, title_vocab=vocab, user_vocab=user_vocab)


# ------------------------------------------------------------------------------------------ artifacts
def graph_path(settings: Settings) -> Path:
    """The graph artifact folder: `<artifacts>/<dataset>/graph`."""
    return settings.artifacts_dir / FOLDER_NAME


def save_graph(gd: GraphData, settings: Settings) -> Path:
    """Write `gd` to `<artifacts>/<dataset>/graph` (atomically) and its manifest; return the folder."""
    from helpers.dgl_import import dgl

    if gd.dataset != settings.dataset:
        raise GraphError(f"This graph was built from {gd.dataset!r} but the settings are for {settings.dataset!r}; "
                         f"set RECSYS_DATASET={gd.dataset} or rebuild the graph from {settings.dataset}.")
    path = graph_path(settings)
    meta = {"format_version": FORMAT_VERSION, "dataset": gd.dataset, "genres": gd.genres,
            "title_vocab": gd.title_vocab, "user_vocab": gd.user_vocab,
            "tie_break": "equal timestamps: larger movie id is later"}
    with atomic_folder(path) as tmp:
        dgl.save_graphs(str(tmp / "graph.bin"), [gd.graph])
        for name in ("train", "val", "test"):
            gd.split(name).to_parquet(tmp / f"{name}.parquet", index=False)
        np.savez(tmp / "ids.npz", movie_ids=gd.movie_ids, user_ids=gd.user_ids)
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
        # from the swap until the new manifest is written, the artifact counts as half-written
        manifest_path(path).unlink(missing_ok=True)
    write_manifest(path, STAGE, settings, extra={
        "n_users": gd.n_users, "n_movies": gd.n_movies, "n_train": len(gd.train), "n_val": len(gd.val),
        "n_test": len(gd.test), "tie_break": meta["tie_break"]})
    return path


def load_graph(settings: Settings) -> GraphData:
    """Load the graph of `settings`' dataset and seed; if it is missing or stale the error names notebook 02."""
    from helpers.dgl_import import dgl

    path = graph_path(settings)
    require(path, STAGE, settings)
    meta = json.loads((path / "meta.json").read_text())
    if meta.get("format_version") != FORMAT_VERSION or meta.get("dataset") != settings.dataset:
        raise GraphError(f"{path} holds a graph of {meta.get('dataset')!r} in format {meta.get('format_version')}, "
                         f"not {settings.dataset!r} in format {FORMAT_VERSION}: run "
                         f"{notebook_for(STAGE)} with RECSYS_DATASET={settings.dataset} "
                         f"RECSYS_SEED={settings.seed}.")
    graphs, _ = dgl.load_graphs(str(path / "graph.bin"))
    with np.load(path / "ids.npz") as ids:
        movie_ids, user_ids = ids["movie_ids"], ids["user_ids"]
    splits = {name: pd.read_parquet(path / f"{name}.parquet") for name in ("train", "val", "test")}
    return GraphData(graph=graphs[0], movie_ids=movie_ids, user_ids=user_ids, dataset=meta["dataset"],
                     genres=list(meta["genres"]), title_vocab=list(meta["title_vocab"]),
                     user_vocab=dict(meta["user_vocab"]), **splits)

