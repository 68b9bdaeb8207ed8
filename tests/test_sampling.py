"""helpers.training.sampling on small graphs built by hand with helpers.graph: positives, negatives, neighbourhoods."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.data.movielens import MovieLens
from helpers.dgl_import import dgl
from helpers.graph.build import build_graph
from helpers.training.sampling import (
    EngagementPositives,
    NegativeSampler,
    NeighbourhoodSpec,
    NeighbourSampler,
    RandomWalkPositives,
    SamplingError,
    engagement_pairs,
    pair_batch,
)


def movielens(ratings: list[tuple[int, int, int]], n_movies: int) -> MovieLens:
    """Ratings (user, movie, timestamp) of movies 1..n_movies."""
    frame = pd.DataFrame([(u, m, 4.0, t) for u, m, t in ratings],
                         columns=["user_id", "movie_id", "rating", "timestamp"])
    movies = pd.DataFrame({"movie_id": np.arange(1, n_movies + 1),
                           "title": [f"Film {i}" for i in range(1, n_movies + 1)],
                           "year": pd.array([1990 + i for i in range(n_movies)], dtype="Int64"),
                           "genres": [["Drama"] if i % 2 else ["Comedy"] for i in range(n_movies)]})
    return MovieLens("sample", frame.astype({"user_id": "int64", "movie_id": "int64", "rating": "float32",
                                             "timestamp": "int64"}), movies, None, Path("/nonexistent"))


def two_cliques():
    """Users 1-4 watch movies 1-3, users 5-8 watch movies 4-6 (two ratings each, so all in training);
    movie 7 is rated by nobody."""
    ratings = []
    for user in range(1, 9):
        group = [1, 2, 3] if user <= 4 else [4, 5, 6]
        first, second = group[user % 3], group[(user + 1) % 3]
        ratings += [(user, first, 10 * user), (user, second, 10 * user + 1)]
    return build_graph(movielens(ratings, 7))


def test_engagement_pairs_follow_time_within_each_user():
    train = pd.DataFrame({"user": [0, 0, 0, 1, 1], "movie": [5, 3, 4, 7, 8], "timestamp": [30, 10, 20, 1, 1]})
    assert engagement_pairs(train).tolist() == [[3, 4], [4, 5], [7, 8]]  # ties keep the frame's order
    assert sorted(engagement_pairs(train, window=2).tolist()) == [[3, 4], [3, 5], [4, 5], [7, 8]]


def test_engagement_pairs_bad_input():
    with pytest.raises(SamplingError, match="window"):
        engagement_pairs(pd.DataFrame({"user": [0], "movie": [1], "timestamp": [0]}), window=0)
    with pytest.raises(SamplingError, match="timestamp"):
        engagement_pairs(pd.DataFrame({"user": [0], "movie": [1]}))
    with pytest.raises(SamplingError, match="No engagement pairs"):
        EngagementPositives(pd.DataFrame({"user": [0, 1], "movie": [1, 2], "timestamp": [0, 0]}))


def test_random_walk_positives_stay_among_co_watched_movies():
    gd = two_cliques()
    dgl.seed(0)
    heads, tails = RandomWalkPositives(gd.graph).sample(200, torch.Generator().manual_seed(0))
    assert len(heads) > 50 and (heads != tails).all()
    assert ((heads < 3) == (tails < 3)).all()  # a walk never crosses between the two groups
    assert not (heads == 6).any()  # the unrated movie is never a head


@pytest.mark.parametrize("draws", [0, 3])
def test_neighbourhood_is_seeds_first_without_self_loops_or_excluded_pairs(draws):
    gd = two_cliques()
    dgl.seed(0)
    torch.manual_seed(0)
    sampler = NeighbourSampler(gd.graph, 2, NeighbourhoodSpec(neighbours=2, walks=20, walk_length=2), draws=draws)
    seeds = torch.tensor([0, 4, 6])
    hood = sampler.sample(seeds)
    assert len(hood.hops) == 2 and torch.equal(hood.seeds, seeds)
    last = hood.hops[-1]
    assert last.num_dst == 3 and (last.weight > 0).all()
    hop, inputs = sampler.hop(seeds)
    assert torch.equal(inputs[:3], seeds)
    src_movies, dst_movies = inputs[hop.src], seeds[hop.dst]
    assert (src_movies != dst_movies).all()
    assert ((src_movies < 3) == (dst_movies < 3)).all()
    assert not (dst_movies == 6).any()  # the unrated movie has no neighbours...
    hop, inputs = sampler.hop(torch.tensor([0, 1]), exclude=(torch.tensor([0]), torch.tensor([1])))
    pairs = set(zip(inputs[hop.src].tolist(), torch.tensor([0, 1])[hop.dst].tolist(), strict=True))
    assert pairs and (0, 1) not in pairs and (1, 0) not in pairs  # ...and excluded pairs are gone both ways


def test_neighbourhood_spec_rejects_bad_values():
    with pytest.raises(SamplingError, match="restart_prob"):
        NeighbourhoodSpec(restart_prob=1.0)
    with pytest.raises(SamplingError, match="at least 1"):
        NeighbourhoodSpec(neighbours=0)


def test_hard_negatives_come_from_the_requested_ranks():
    angles = torch.linspace(0, 3.0, 40)
    vectors = torch.stack([torch.cos(angles), torch.sin(angles)], 1)  # neighbours by index distance
    sampler = NegativeSampler(40, hard_ranks=(2, 4))
    sampler.set_hard_bank(vectors)
    assert sorted(sampler.bank[20].tolist()) == [18, 22]  # ranks 0-1 are 19 and 21, ranks 2-3 are 18 and 22
    generator = torch.Generator().manual_seed(0)
    heads = torch.full((500,), 20)
    hard = sampler.sample(heads, 2, 1.0, generator)
    assert set(hard.unique().tolist()) == {18, 22}
    mixed = sampler.sample(heads, 2, 0.5, generator)
    share = np.isin(mixed.numpy(), [18, 22]).mean()
    assert 0.4 < share < 0.6
    assert NegativeSampler(40).sample(heads, 3, 1.0, generator).shape == (500, 3)  # no bank yet: uniform
    with pytest.raises(SamplingError, match="hard_ranks"):
        NegativeSampler(40, hard_ranks=(5, 5))


def test_pair_batch_positions_point_back_to_the_movies():
    gd = two_cliques()
    dgl.seed(1)
    sampler = NeighbourSampler(gd.graph, 1, NeighbourhoodSpec(neighbours=2, walks=10))
    heads, tails, negatives = torch.tensor([0, 3]), torch.tensor([1, 4]), torch.tensor([[5, 6], [2, 0]])
    batch = pair_batch(sampler, heads, tails, negatives)
    seeds = batch.neighbourhood.seeds
    assert torch.equal(seeds[batch.heads], heads) and torch.equal(seeds[batch.tails], tails)
    assert torch.equal(seeds[batch.negatives], negatives)


def test_a_neighbourhood_pool_draws_like_fresh_walks():
    """Movie 0 (users 1-4 watch movies 0-2) has neighbours 1 and 2; the pool gives both, with visit counts."""
    gd = two_cliques()
    dgl.seed(0)
    torch.manual_seed(0)
    sampler = NeighbourSampler(gd.graph, 1, NeighbourhoodSpec(neighbours=2, walks=50), draws=4)
    seen = set()
    for _ in range(8):
        hop, inputs = sampler.hop(torch.tensor([0]))
        seen |= set(inputs[hop.src].tolist())
        assert (hop.weight >= 1).all() and (hop.dst == 0).all()
    assert seen == {1, 2}
    assert sampler.pool.walked == 4  # movie 0's four draws, once
    with pytest.raises(SamplingError, match="draws"):
        NeighbourSampler(gd.graph, 1, NeighbourhoodSpec(), draws=-1)


def test_neighbourhood_table_shares_add_up():
    from helpers.training.sampling import neighbourhood_table

    gd = two_cliques()
    table = neighbourhood_table(gd.graph, 0, NeighbourhoodSpec(neighbours=5, walks=40), seed=0)
    assert set(table["movie"]) == {1, 2} and table["visits"].is_monotonic_decreasing
    assert table["importance"].sum() == pytest.approx(1.0)
    with pytest.raises(SamplingError, match="outside"):
        neighbourhood_table(gd.graph, 99, NeighbourhoodSpec())


def test_ties_in_visit_counts_are_broken_at_random_not_by_id():
    """One user rated movies 1..40: from movie 0 every other movie is equally likely, each reached about once.
    DGL alone keeps the largest ids among the tied; the shuffled walk graph keeps a uniform choice."""
    gd = build_graph(movielens([(1, m, m) for m in range(1, 41)], 40))
    dgl.seed(0)
    sampler = NeighbourSampler(gd.graph, 1, NeighbourhoodSpec(neighbours=2, walks=6, walk_length=1),
                               generator=torch.Generator().manual_seed(0))
    chosen = []
    for _ in range(300):
        sampler.refresh()
        hop, inputs = sampler.hop(torch.tensor([0]))
        chosen += inputs[hop.src].tolist()
    assert 16 < np.mean(chosen) < 23  # uniform over 1..39 has mean 20; largest-id ties give about 27


def _random_graph(n_users: int = 20, n_movies: int = 30, per_user: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    ratings = [(u, int(m), 10 * int(i)) for u in range(1, n_users + 1)
               for i, m in enumerate(rng.choice(np.arange(1, n_movies + 1), per_user, replace=False))]
    return build_graph(movielens(ratings, n_movies))


def test_walks_match_pinsage_sampler_on_the_shuffled_graph():
    """The sampler walks the graph itself; DGL's PinSAGESampler on a copy with the movie ids shuffled by the
    same permutation (what the sampler built every epoch before) gives the same neighbourhoods, visit counts
    and tie-breaking, under the same DGL seed."""
    gd = _random_graph()
    spec = NeighbourhoodSpec(neighbours=3, walks=4, walk_length=2)
    sampler = NeighbourSampler(gd.graph, 1, spec, generator=torch.Generator().manual_seed(1))
    users, movies = gd.graph.edges(etype="watched")
    shuffled = sampler.to_walk[movies]
    walk_graph = dgl.heterograph({("user", "watched", "movie"): (users, shuffled),
                                  ("movie", "watched-by", "user"): (shuffled, users)},
                                 num_nodes_dict={"user": gd.graph.num_nodes("user"), "movie": gd.n_movies})
    reference = dgl.sampling.PinSAGESampler(walk_graph, "movie", "user", spec.walk_length, spec.restart_prob,
                                            spec.walks, spec.neighbours)
    seeds = torch.randperm(gd.n_movies, generator=torch.Generator().manual_seed(2))[:20]
    dgl.seed(5)
    frontier = reference(sampler.to_walk[seeds])
    src, dst = (sampler.from_walk[e] for e in frontier.edges())
    position = {int(m): i for i, m in enumerate(seeds)}
    keep = src != dst
    expected = sorted(zip(src[keep].tolist(), [position[int(d)] for d in dst[keep]],
                          frontier.edata["weights"][keep].float().tolist(), strict=True))
    dgl.seed(5)
    got = sorted(zip(*(t.tolist() for t in sampler._walk(seeds)), strict=True))
    assert got == expected and any(w == 1.0 for *_, w in got)  # ties among single visits did occur


def test_the_pool_walks_only_the_movies_asked_for_in_each_epoch(monkeypatch):
    """Counting the seeds handed to DGL's random walk: an epoch walks `draws` neighbourhoods of each movie its
    hops ask for, once; an eager pool (every movie at every refresh) would walk 3 x 30 here."""
    gd = _random_graph()
    walked: list[int] = []
    real_walk = dgl.sampling.random_walk

    def counting(graph, nodes, **kwargs):
        walked.append(len(nodes))
        return real_walk(graph, nodes, **kwargs)

    monkeypatch.setattr(dgl.sampling, "random_walk", counting)
    spec = NeighbourhoodSpec(neighbours=3, walks=4)
    sampler = NeighbourSampler(gd.graph, 1, spec, draws=3, generator=torch.Generator().manual_seed(0))
    sampler.refresh()
    assert walked == []  # a new epoch costs nothing up front
    sampler.hop(torch.tensor([0, 5, 7]))
    assert sum(walked) == 3 * 3 * spec.walks and len(walked) == 3  # one walk call per draw for the new movies
    sampler.hop(torch.tensor([7, 5]))
    sampler.hop(torch.tensor([5, 9]))  # only movie 9 is new this epoch
    assert sum(walked) == 3 * 4 * spec.walks and sampler.pool.walked == 12
    sampler.refresh()
    assert sampler.pool.walked == 0
    sampler.hop(torch.tensor([5]))
    assert sum(walked) == 3 * 5 * spec.walks


def test_a_lazily_filled_pool_equals_the_eager_pool_when_a_hop_asks_for_every_movie():
    """The full softmax's hop over all movies walks them in chunks, draw after draw, as the eager pool did."""
    gd = _random_graph()
    spec = NeighbourhoodSpec(neighbours=3, walks=4)
    sampler = NeighbourSampler(gd.graph, 1, spec, draws=2, generator=torch.Generator().manual_seed(0))
    sampler.pool.chunk = 7
    every = torch.arange(gd.n_movies)
    dgl.seed(3)
    sampler.hop(every)
    dgl.seed(3)
    for draw in range(2):
        eager = [sampler._walk(every[start:start + 7]) for start in range(0, gd.n_movies, 7)]
        for start, (src, dst, weight) in zip(range(0, gd.n_movies, 7), eager, strict=True):
            for movie in range(start, min(start + 7, gd.n_movies)):
                count = int(sampler.pool.counts[draw, movie])
                mine = dst == movie - start
                assert count == int(mine.sum())
                assert sampler.pool.neighbours[draw, movie, :count].tolist() == src[mine].tolist()
                assert sampler.pool.weights[draw, movie, :count].tolist() == weight[mine].tolist()


def test_the_pool_draws_each_neighbour_with_its_known_probability():
    """One user's training movies M: one walk of one traversal from movie 0 reaches each of M with probability
    1/|M| (itself: no neighbour). Asked alone, epoch after epoch, the pool gives that distribution, and within an
    epoch a movie's hops come from at most `draws` neighbourhoods."""
    gd = build_graph(movielens([(1, m, m) for m in range(1, 9)], 8))
    trained = sorted(set(gd.train["movie"].tolist()))
    assert 0 in trained and len(trained) >= 4
    dgl.seed(0)
    sampler = NeighbourSampler(gd.graph, 1, NeighbourhoodSpec(neighbours=1, walks=1, walk_length=1), draws=2,
                               generator=torch.Generator().manual_seed(0))
    outcomes = []
    for _ in range(100 * len(trained)):
        sampler.refresh()
        hop, inputs = sampler.hop(torch.tensor([0]))
        outcomes.append(int(inputs[hop.src][0]) if len(hop.src) else 0)
        seen = {tuple(inputs[h.src].tolist()) for h, inputs in (sampler.hop(torch.tensor([0])) for _ in range(20))}
        assert len(seen) <= 2
    counts = np.bincount(outcomes, minlength=gd.n_movies)[trained]
    assert counts.sum() == 100 * len(trained) and (counts > 60).all() and (counts < 140).all()
