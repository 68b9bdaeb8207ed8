"""What PinSage trains on: positive movie pairs, negatives that get harder, and random-walk neighbourhoods.

* Positives. `engagement_pairs`: the paper's pairs, a movie and the one the same user rated right after it
  (training edges only, in time order). `RandomWalkPositives`: DGL's example, the movie reached by a
  movie -> user -> movie walk.
* Negatives. `NegativeSampler`: uniform over all movies, plus, once the curriculum starts, "hard" negatives
  drawn from ranks `hard_ranks` of the model's own neighbour list of the query movie (paper, section 3.3).
* Neighbourhoods. `NeighbourSampler` runs PinSAGESampler's algorithm (random walks from each movie through
  users; the `neighbours` most visited movies, weighted by their visit counts), optionally from a pool that
  fills as the batches ask for movies (`helpers.training.neighbour_pool`), and returns plain tensors
  (`Hop`, `Neighbourhood`) that the model in `helpers.training.model` consumes on any device.

Sampling runs on the CPU (DGL's PyPI build is CPU-only); `Neighbourhood.to(device)` moves the result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from helpers.dgl_import import dgl
from helpers.errors import RecsysError
from helpers.training.neighbour_pool import NeighbourPool

MOVIE, USER = "movie", "user"
OVERFETCH = 4  # degree_alpha > 0: candidates walked per neighbour kept
WATCHED, WATCHED_BY = "watched", "watched-by"


class SamplingError(RecsysError, ValueError):
    """A sampler was given settings or data it cannot sample from; the message says what to change."""


@dataclass
class Hop:
    """One layer's sampled edges: `src` indexes the layer's input nodes, `dst` its output nodes (the first
    `num_dst` input nodes are the output nodes themselves), `weight` is the random-walk visit count."""

    src: torch.Tensor
    dst: torch.Tensor
    weight: torch.Tensor
    num_dst: int

    def to(self, device: torch.device | str) -> Hop:
        return Hop(self.src.to(device), self.dst.to(device), self.weight.to(device), self.num_dst)


@dataclass
class Neighbourhood:
    """A multi-layer computation graph: `input_nodes` (movie indices) feed `hops[0]`; the output nodes of
    the last hop are `seeds`, in the order they were given."""

    input_nodes: torch.Tensor
    hops: list[Hop]
    seeds: torch.Tensor

    def to(self, device: torch.device | str) -> Neighbourhood:
        return Neighbourhood(self.input_nodes.to(device), [h.to(device) for h in self.hops], self.seeds.to(device))


def engagement_pairs(train: pd.DataFrame, window: int = 1) -> np.ndarray:
    """Pairs `[movie, next movie]` from each user's training ratings in time order: the movie rated 1..`window`
    places after it. Ties in timestamp keep the order of `train`. Returns int64 array of shape (P, 2)."""
    if window < 1:
        raise SamplingError(f"window={window}: give at least 1 (1 = only the very next movie; TrainConfig's "
                            "engagement_window)")
    missing = {"user", "movie", "timestamp"} - set(train.columns)
    if missing:
        raise SamplingError(f"train is missing column(s) {sorted(missing)}: pass GraphData.train from helpers.graph")
    ordered = train.sort_values(["user", "timestamp"], kind="stable")
    users = ordered["user"].to_numpy()
    movies = ordered["movie"].to_numpy(dtype=np.int64)
    pairs = []
    for step in range(1, window + 1):
        same_user = users[step:] == users[:-step]
        pairs.append(np.stack([movies[:-step][same_user], movies[step:][same_user]], axis=1))
    out = np.concatenate(pairs) if pairs else np.empty((0, 2), np.int64)
    return out[out[:, 0] != out[:, 1]]


class EngagementPositives:
    """Batches of (head, tail) drawn uniformly from `engagement_pairs`, so popular transitions come up more."""

    def __init__(self, train: pd.DataFrame, window: int = 1):
        self.pairs = torch.from_numpy(engagement_pairs(train, window))
        if len(self.pairs) == 0:
            raise SamplingError("No engagement pairs: no user has two training ratings. Use a larger dataset "
                                "(RECSYS_DATASET).")

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randint(len(self.pairs), (batch_size,), generator=generator)
        return self.pairs[rows, 0], self.pairs[rows, 1]


class RandomWalkPositives:
    """DGL's example: heads are movies of random training edges (so in proportion to their ratings), tails the
    movie reached by one movie -> user -> movie walk; a walk that returns to its head is dropped."""

    def __init__(self, graph: dgl.DGLGraph):
        self.graph = graph
        self.edge_movies = graph.edges(etype=WATCHED)[1]
        if len(self.edge_movies) == 0:
            raise SamplingError("The graph has no training edges: build it with helpers.graph.build.build_graph "
                                "(notebook 02).")

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        heads = self.edge_movies[torch.randint(len(self.edge_movies), (batch_size,), generator=generator)]
        traces, _ = dgl.sampling.random_walk(self.graph, heads, metapath=[WATCHED_BY, WATCHED])
        tails = traces[:, 2]
        keep = (tails >= 0) & (tails != heads)
        return heads[keep], tails[keep]


class NegativeSampler:
    """Uniform negatives, with a fraction replaced by hard ones from the model's own ranking once
    `set_hard_bank` has been given each movie's nearest movies (rank order)."""

    def __init__(self, num_movies: int, hard_ranks: tuple[int, int] = (50, 500)):
        low, high = hard_ranks
        if not 0 <= low < high:
            raise SamplingError(f"hard_ranks={hard_ranks}: give (low, high) with 0 <= low < high, e.g. (50, 500)")
        self.num_movies = num_movies
        self.hard_ranks = (low, min(high, max(num_movies - 1, low + 1)))
        self.bank: torch.Tensor | None = None  # [num_movies, high - low] movie indices

    def set_hard_bank(self, vectors: torch.Tensor) -> None:
        """Rank every movie's neighbours by inner product of `vectors` and keep ranks `hard_ranks`."""
        low, high = self.hard_ranks
        high = min(high, len(vectors) - 1)
        if high <= low:
            self.bank = None
            return
        vectors = vectors.detach().float().cpu()
        rows = []
        for start in range(0, len(vectors), 2048):  # chunks keep memory at 2048 x num_movies
            scores = vectors[start:start + 2048] @ vectors.T
            scores[torch.arange(len(scores)), torch.arange(start, start + len(scores))] = -torch.inf  # not itself
            rows.append(torch.topk(scores, high, dim=1).indices[:, low:high])
        self.bank = torch.cat(rows)

    def sample(self, heads: torch.Tensor, per_head: int, hard_fraction: float,
               generator: torch.Generator) -> torch.Tensor:
        """Negatives of shape [len(heads), per_head]."""
        negatives = torch.randint(self.num_movies, (len(heads), per_head), generator=generator)
        if self.bank is not None and hard_fraction > 0:
            hard = torch.rand((len(heads), per_head), generator=generator) < hard_fraction
            columns = torch.randint(self.bank.shape[1], (len(heads), per_head), generator=generator)
            from_bank = self.bank[heads.unsqueeze(1).expand(-1, per_head), columns]
            negatives = torch.where(hard, from_bank, negatives)
        return negatives


@dataclass(frozen=True)
class NeighbourhoodSpec:
    """How a movie's neighbourhood is sampled: `walks` random walks of up to `walk_length` movie -> user ->
    movie traversals, each followed by a restart with probability `restart_prob`; the `neighbours` most
    visited movies become its neighbours, with their visit counts as importance weights. With `degree_alpha` > 0
    a neighbour's visits are divided by its degree ** `degree_alpha` (its number of training ratings) before the
    most visited are kept (out of `OVERFETCH` x `neighbours` candidates), so that hubs, which every walk reaches,
    give way to movies particular to this one."""

    neighbours: int = 5
    walks: int = 10
    walk_length: int = 2
    restart_prob: float = 0.5
    degree_alpha: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.degree_alpha <= 2.0:
            raise SamplingError(f"degree_alpha={self.degree_alpha}: give a number between 0 (plain visit counts) and 2")
        if not 0 < self.restart_prob < 1:
            raise SamplingError(f"restart_prob={self.restart_prob}: give a number between 0 and 1 (e.g. 0.5)")
        if min(self.neighbours, self.walks, self.walk_length) < 1:
            raise SamplingError(f"neighbours={self.neighbours}, walks={self.walks}, walk_length={self.walk_length}: "
                                "they must all be at least 1 (e.g. 5, 10, 2)")


def top_per_group(src: torch.Tensor, dst: torch.Tensor, weight: torch.Tensor, k: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The `k` heaviest edges into each `dst` (ties: the earlier edge), grouped by `dst`."""
    order = torch.argsort(-weight, stable=True)
    order = order[torch.argsort(dst[order], stable=True)]
    dst_sorted = dst[order]
    starts = torch.searchsorted(dst_sorted, dst_sorted)  # first edge of each edge's group
    keep = order[torch.arange(len(order)) - starts < k]
    return src[keep], dst[keep], weight[keep]


class NeighbourSampler:
    """PinSage neighbourhoods for `layers` layers (PinSAGESampler's algorithm, see `NeighbourhoodSpec`).

    The walks are DGL's `random_walk` on `graph` itself, counted and cut to the `neighbours` most visited movies
    as `dgl.sampling.PinSAGESampler` does (`tests/test_sampling.py` checks they give the same neighbourhoods).
    PinSAGESampler breaks ties in the visit counts by node id, larger first: with few walks from a popular movie
    most counts are 1, so the neighbourhood would be the movies with the largest ids, which in MovieLens are the
    most recent ones. Ties are therefore broken by a random permutation of the movie ids (a new one at every
    `refresh()`), as PinSAGESampler would on a copy of the graph with shuffled ids, without building that copy.

    With `draws` > 0 each `hop` picks one of `draws` neighbourhoods per movie at random from a pool
    (`helpers.training.neighbour_pool.NeighbourPool`): a movie's `draws` neighbourhoods are walked the first time
    a hop asks for it and reused, while a batch whose neighbourhoods cover much of the catalogue (on ML-1M a
    2-layer batch touches over half of the 3,883 movies) repeats no walk. With `uses=None` they live until the
    next `refresh()`, so the walks of an epoch follow the movies its batches asked for; with `uses=N` a movie is
    walked again after N hops asked for it, epochs aside, so the walks per step follow the batch whatever the
    catalogue's size. The distribution is that of walking afresh. `generator` drives the shuffles and picks
    (default: torch's global RNG)."""

    def __init__(self, graph: dgl.DGLGraph, layers: int, spec: NeighbourhoodSpec, draws: int = 0,
                 generator: torch.Generator | None = None, uses: int | None = None):
        if layers < 1:
            raise SamplingError(f"layers={layers}: give at least 1 (2 reach the neighbours' neighbours)")
        if draws < 0:
            raise SamplingError(f"draws={draws}: give 0 (walk afresh every time) or a positive pool size")
        if uses is not None and (uses < 1 or not draws):
            raise SamplingError(f"uses={uses} with draws={draws}: a pool's lifetime in uses needs a pool (draws > 0) "
                                "and a positive number of uses; give None to renew the pool every refresh()")
        self.graph = graph
        self.layers = layers
        self.spec = spec
        self.draws = draws
        self.generator = generator
        self.num_movies = graph.num_nodes(MOVIE)
        self.degree = graph.in_degrees(etype=WATCHED).clamp(min=1).float()
        self._metapath = [WATCHED_BY, WATCHED] * spec.walk_length
        self._restart = torch.zeros(2 * spec.walk_length)
        self._restart[2::2] = spec.restart_prob  # a walk may stop after each movie -> user -> movie traversal
        self.pool = NeighbourPool(self.num_movies, draws, spec.neighbours, self._walk, uses) if draws else None
        self._shuffle()

    def _shuffle(self) -> None:
        self.to_walk = torch.randperm(self.num_movies, generator=self.generator)  # movie m ranks as to_walk[m]
        self.from_walk = torch.argsort(self.to_walk)

    def _walk(self, seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fresh neighbourhoods of `seeds`: (neighbour movie, position of its seed in `seeds`, visit count),
        without self-loops."""
        spec, n = self.spec, self.num_movies
        paths, _ = dgl.sampling.random_walk(self.graph, seeds.repeat_interleave(spec.walks),
                                            metapath=self._metapath, restart_prob=self._restart)
        visited = paths[:, 2::2].reshape(-1)  # the movie after each traversal, -1 once the walk has stopped
        position = torch.arange(len(seeds)).repeat_interleave(spec.walks * spec.walk_length)[visited >= 0]
        # one key per (seed, movie), ordered so that among equal counts the larger shuffled id comes first
        key, visits = torch.unique(position * n + (n - 1 - self.to_walk[visited[visited >= 0]]), return_counts=True)
        wanted = spec.neighbours * (OVERFETCH if spec.degree_alpha > 0 else 1)
        src, dst, weight = top_per_group(self.from_walk[n - 1 - key % n], key // n, visits.float(), wanted)
        keep = src != seeds[dst]
        src, dst, weight = src[keep], dst[keep], weight[keep]
        if spec.degree_alpha > 0:
            weight = weight / self.degree[src] ** spec.degree_alpha
            src, dst, weight = top_per_group(src, dst, weight, spec.neighbours)
        return src, dst, weight

    def refresh(self) -> None:
        """Shuffle the tie-breaking ids again and, with a pool, start its epoch (without `uses`, empty it: each
        movie is walked again when asked)."""
        self._shuffle()
        if self.pool is not None:
            self.pool.new_epoch()

    def hop(self, seeds: torch.Tensor, exclude: tuple[torch.Tensor, torch.Tensor] | None = None
            ) -> tuple[Hop, torch.Tensor]:
        """One layer for `seeds` (unique movie indices): the hop and its input nodes (seeds first, then the
        other neighbours). Edges `exclude` (pairs of movie indices, both directions) are left out."""
        neighbours, dst, weight = (self.pool.lookup(seeds, self.generator) if self.pool is not None
                                  else self._walk(seeds))
        if exclude is not None and len(exclude[0]):
            a, b = exclude
            n = self.num_movies
            keep = ~torch.isin(neighbours * n + seeds[dst], torch.cat([a * n + b, b * n + a]))
            neighbours, dst, weight = neighbours[keep], dst[keep], weight[keep]
        # positions among the inputs by sorting the hop's own movies, not a table over the catalogue
        inputs = torch.cat([seeds, torch.unique(neighbours[~torch.isin(neighbours, seeds)])])
        order = torch.argsort(inputs)
        return Hop(order[torch.searchsorted(inputs[order], neighbours)], dst, weight, len(seeds)), inputs

    def sample(self, seeds: torch.Tensor, exclude: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> Neighbourhood:
        """All layers for `seeds` (unique movie indices), outermost layer first in `hops`."""
        hops: list[Hop] = []
        nodes = seeds
        for _ in range(self.layers):
            hop, nodes = self.hop(nodes, exclude)
            hops.insert(0, hop)
        return Neighbourhood(nodes, hops, seeds)


@dataclass
class PairBatch:
    """One training step: `neighbourhood` covers the unique movies `nodes`; `heads`, `tails` ([B]) and
    `negatives` ([B, N]) index into `nodes` (positions, not movie indices)."""

    neighbourhood: Neighbourhood
    heads: torch.Tensor
    tails: torch.Tensor
    negatives: torch.Tensor

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(self.neighbourhood.to(device), self.heads.to(device), self.tails.to(device),
                         self.negatives.to(device))


def pair_batch(sampler: NeighbourSampler, heads: torch.Tensor, tails: torch.Tensor,
               negatives: torch.Tensor) -> PairBatch:
    """Neighbourhoods of every movie in the batch, without the positive pairs' own edges (so the model cannot
    learn "the tail is among the head's neighbours" from the very pair it is asked to score)."""
    nodes, inverse = torch.unique(torch.cat([heads, tails, negatives.reshape(-1)]), return_inverse=True)
    b = len(heads)
    neighbourhood = sampler.sample(nodes, exclude=(heads, tails))
    return PairBatch(neighbourhood, inverse[:b], inverse[b:2 * b], inverse[2 * b:].reshape(negatives.shape))


def neighbourhood_table(graph: dgl.DGLGraph, movie: int, spec: NeighbourhoodSpec, seed: int | None = None
                        ) -> pd.DataFrame:
    """One movie's PinSage neighbourhood, for explanation: columns `movie` (node index), `visits` (how often
    the random walks reached it) and `importance` (its share of the visits, the pooling weight), most
    visited first. `seed` fixes the walks."""
    if not 0 <= movie < graph.num_nodes(MOVIE):
        raise SamplingError(f"movie node index {movie} is outside 0..{graph.num_nodes(MOVIE) - 1}; map MovieLens ids "
                         "with GraphData.movie_index")
    generator = None
    if seed is not None:
        dgl.seed(seed)
        generator = torch.Generator().manual_seed(seed)
    hop, inputs = NeighbourSampler(graph, 1, spec, generator=generator).hop(torch.tensor([movie]))
    table = pd.DataFrame({"movie": inputs[hop.src].numpy(), "visits": hop.weight.numpy().astype(np.int64)})
    table = table.sort_values(["visits", "movie"], ascending=[False, True], ignore_index=True)
    table["importance"] = table["visits"] / max(int(table["visits"].sum()), 1)
    return table
