"""Movies outside the training graph, embedded by the trained weights without retraining (issue 17).

A new movie has no id embedding, query offset or bias-table row: its layer-0 vector is the projection of its
features (`MovieFeatures.project`: genres, year bucket, title tokens with unknown tokens as `<unk>`). Its
neighbourhood is found as PinSage finds any movie's: random walks, here starting through the users who rated
it (new movie -> rater -> a movie of that rater -> a user of that movie -> ...), the most visited graph movies
kept with their visit counts as weights. Each layer then pools the neighbours' stored representations of the
layer below (`infer_layer_vectors`): exactly what the layer-wise inference computes for a graph movie whose id
was dropped. Without ratings the neighbourhood is empty and only the features speak (`use_neighbours=False`
forces that: the "features only" comparison).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from helpers.graph.features import GraphError, encode_titles, standardised_year
from helpers.training.inference import MovieVectors
from helpers.training.model import YEAR_BUCKETS, PinSage
from helpers.training.sampling import Hop, NeighbourhoodSpec


class RaterWalks:
    """PinSage neighbourhoods of movies outside `graph`, walked through their raters (graph user indices).

    As `dgl.sampling.PinSAGESampler`: `spec.walks` walks of up to `spec.walk_length` movie -> user -> movie
    traversals, each ending with probability `spec.restart_prob` after a traversal; the `spec.neighbours` most
    visited movies are kept (ties at random), their visit counts (divided by degree ** `spec.degree_alpha`) as
    weights."""

    def __init__(self, graph, spec: NeighbourhoodSpec, generator: torch.Generator | None = None):
        users, movies = (t.numpy() for t in graph.edges(etype="watched"))
        self.spec, self.generator = spec, generator
        self.num_movies, self.num_users = graph.num_nodes("movie"), graph.num_nodes("user")
        self.user_ptr, self.user_movies = _csr(users, movies, self.num_users)
        self.movie_ptr, self.movie_users = _csr(movies, users, self.num_movies)

    def _rand(self, n: int) -> np.ndarray:
        return torch.rand(n, generator=self.generator, dtype=torch.float64).numpy()

    def _step(self, nodes: np.ndarray, ptr: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A uniform random neighbour of each node (CSR `ptr`/`targets`), and which nodes had one."""
        degree = ptr[nodes + 1] - ptr[nodes]
        has = degree > 0
        pick = ptr[nodes] + np.minimum((self._rand(len(nodes)) * degree).astype(np.int64), np.maximum(degree - 1, 0))
        return np.where(has, targets[np.minimum(pick, len(targets) - 1)], -1), has

    def hop(self, raters: Sequence[np.ndarray]) -> Hop:
        """One layer for the new movies whose raters are `raters[i]`: `src` graph movie indices, `dst` positions
        in `raters`, `weight` visit counts."""
        spec = self.spec
        src, dst, weight = [], [], []
        for position, users in enumerate(raters):
            users = np.asarray(users, dtype=np.int64)
            if not len(users):
                continue
            walkers = users[np.minimum((self._rand(spec.walks) * len(users)).astype(np.int64), len(users) - 1)]
            visits: list[np.ndarray] = []
            current = np.zeros(0, np.int64)
            for step in range(spec.walk_length):
                if step:  # movie -> one of its users
                    walkers, alive = self._step(current, self.movie_ptr, self.movie_users)
                    walkers = walkers[alive]
                current, alive = self._step(walkers, self.user_ptr, self.user_movies)
                current = current[alive]
                visits.append(current)
                current = current[self._rand(len(current)) >= spec.restart_prob]
                if not len(current):
                    break
            counts = np.bincount(np.concatenate(visits), minlength=self.num_movies).astype(np.float64)
            if spec.degree_alpha > 0:  # as NeighbourSampler: visits / degree ** alpha
                counts = counts / np.maximum(np.diff(self.movie_ptr), 1) ** spec.degree_alpha
            visited = np.flatnonzero(counts)
            order = np.lexsort((self._rand(len(visited)), -counts[visited]))[:spec.neighbours]
            src.append(visited[order])
            weight.append(counts[visited[order]])
            dst.append(np.full(len(order), position))

        def cat(parts: list[np.ndarray], dtype: str) -> torch.Tensor:
            if not parts:
                return torch.zeros(0, dtype=getattr(torch, dtype))
            return torch.from_numpy(np.concatenate(parts).astype(dtype))

        return Hop(cat(src, "int64"), cat(dst, "int64"), cat(weight, "float32"), len(raters))


def _csr(rows: np.ndarray, cols: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(rows, minlength=n))
    return ptr, cols[order]


def new_movie_inputs(gd, movies: pd.DataFrame, year_scale: tuple[float, float], known_tokens=None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model's inputs for `movies` (columns title, year, genres as lists of names): multi-hot genres over
    `gd.genres` (other genres ignored), year buckets on the catalogue's `year_scale` (mean, std;
    `helpers.graph.features.year_scale(ml.movies["year"])`) and title tokens in `gd.title_vocab` (others, and
    those not in `known_tokens` when given, `<unk>`)."""
    missing = {"title", "year", "genres"} - set(movies.columns)
    if missing:
        raise GraphError(f"new movies lack column(s) {sorted(missing)}: give title, year and genres (a list of names)")
    column = {name: i for i, name in enumerate(gd.genres)}
    genres = torch.zeros(len(movies), len(gd.genres))
    for row, names in enumerate(movies["genres"]):
        for name in names if isinstance(names, (list, tuple, np.ndarray)) else []:
            if name in column:
                genres[row, column[name]] = 1.0
    year = torch.from_numpy(standardised_year(movies["year"].reset_index(drop=True), year_scale))
    title = torch.from_numpy(encode_titles(movies["title"].tolist(), gd.title_vocab, known_tokens))
    return genres, torch.bucketize(year, YEAR_BUCKETS), title


@torch.no_grad()
def embed_from_hops(model: PinSage, projected: torch.Tensor, hops: Sequence[Hop],
                    layer_vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Embeddings [B, dim] of movies whose layer-0 vectors are `projected` [B, dim]: layer l pools, over
    `hops[l]` (src: graph movie indices, dst: rows of `projected`), the graph movies' `layer_vectors[l]`."""
    device = model.device
    h = projected.to(device)
    for conv, hop, below in zip(model.convs, hops, layer_vectors, strict=False):  # the last layer's output unread
        h = conv(hop.to(device), below.to(device), h)
    return model.combine(projected.to(device), h)


@torch.no_grad()
def embed_new_movies(model: PinSage, gd, movies: pd.DataFrame, ratings: pd.DataFrame,
                     neighbour_vectors: Sequence[torch.Tensor], *, year_scale: tuple[float, float],
                     known_tokens=None, seed: int | None = None, use_neighbours: bool = True,
                     draws: int = 1, hops_out: list[list[Hop]] | None = None) -> MovieVectors:
    """Query and candidate vectors (row i = `movies` row i) of movies outside `gd`'s graph, from their features
    and, through the walks over their raters, their graph neighbours' `neighbour_vectors`
    (`infer_layer_vectors(model, gd)`). `movies`: movie_id, title, year, genres; `ratings`: user_id (MovieLens
    ids of graph users), movie_id (one of `movies`), and any other columns. `seed` fixes the walks; with `draws`
    > 1 the embedding is the normalised mean over that many neighbourhood draws. `hops_out`: a list that gets
    each draw's hops (one per layer), to show or recompute the neighbourhoods."""
    if len(neighbour_vectors) != len(model.convs) + 1 or len(neighbour_vectors[0]) != gd.n_movies:
        raise GraphError(f"neighbour_vectors must be infer_layer_vectors(model, gd): {len(model.convs) + 1} arrays "
                         f"of {gd.n_movies} rows")
    was_training = model.training
    model.eval()
    genres, year_bucket, title = new_movie_inputs(gd, movies, year_scale, known_tokens)
    device = model.device
    projected = model.features.project(genres.to(device), year_bucket.to(device), title.to(device))
    raters: list[np.ndarray] = [np.zeros(0, np.int64)] * len(movies)
    if use_neighbours and len(ratings):
        users = gd.user_index(ratings["user_id"].to_numpy())
        position = pd.Series(np.arange(len(movies)), index=movies["movie_id"].to_numpy())
        unknown = ~ratings["movie_id"].isin(position.index)
        if unknown.any():
            raise GraphError(f"ratings name movie ids not in `movies`, e.g. {ratings['movie_id'][unknown].iloc[0]}")
        rows = position.loc[ratings["movie_id"].to_numpy()].to_numpy()
        raters = [users[rows == i] for i in range(len(movies))]
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    walks = RaterWalks(gd.graph, model.spec, generator)
    drawn = [[walks.hop(raters) for _ in model.convs] for _ in range(max(draws, 1))]
    if hops_out is not None:
        hops_out.extend(drawn)
    h = sum(embed_from_hops(model, projected, hops, neighbour_vectors) for hops in drawn)
    h = torch.nn.functional.normalize(h, dim=1) if draws > 1 else h
    model.train(was_training)
    return MovieVectors(query=model.query_vectors(h, None).float().cpu().numpy(),
                        candidate=model.candidate_vectors(h, None).float().cpu().numpy())
