"""DGL works through helpers.dgl_import on this PyTorch: heterographs, random walks and PinSAGESampler."""
from __future__ import annotations

import sys

import torch

from helpers.dgl_import import dgl


def _toy_graph():
    users = torch.tensor([0, 0, 1, 1, 2, 2, 3])
    movies = torch.tensor([0, 1, 1, 2, 2, 3, 0])
    return dgl.heterograph({("user", "watched", "movie"): (users, movies),
                            ("movie", "watched-by", "user"): (movies, users)})


def test_graphbolt_placeholder_and_backend() -> None:
    assert dgl.backend.backend_name == "pytorch"
    assert "Placeholder" in (sys.modules["dgl.graphbolt"].__doc__ or "")


def test_heterograph() -> None:
    g = _toy_graph()
    assert g.ntypes == ["movie", "user"] and sorted(g.etypes) == ["watched", "watched-by"]
    assert g.num_nodes("user") == 4 and g.num_nodes("movie") == 4 and g.num_edges("watched") == 7
    assert g.in_degrees(etype="watched").tolist() == [2, 2, 2, 1]


def test_random_walk_alternates_movie_user_movie() -> None:
    g = _toy_graph()
    dgl.seed(0)
    traces, types = dgl.sampling.random_walk(g, torch.arange(4), metapath=["watched-by", "watched"] * 2)
    assert traces.shape == (4, 5) and types.tolist() == [0, 1, 0, 1, 0]  # movie, user, movie, ...
    movie_steps = traces[:, 2::2]
    assert ((movie_steps >= 0) & (movie_steps < 4)).all()
    # each movie-user-movie step follows real edges: the user watched both movies
    src, dst = g.edges(etype="watched")
    watched = set(zip(src.tolist(), dst.tolist(), strict=True))
    for row in traces.tolist():
        for m1, u, m2 in zip(row[0::2], row[1::2], row[2::2], strict=False):
            assert (u, m1) in watched and (u, m2) in watched


def test_pinsage_sampler_gives_weighted_movie_neighbours() -> None:
    g = _toy_graph()
    dgl.seed(0)
    sampler = dgl.sampling.PinSAGESampler(g, "movie", "user", num_traversals=2, termination_prob=0.5,
                                          num_random_walks=20, num_neighbors=2)
    frontier = sampler(torch.tensor([0, 1, 2, 3]))
    assert frontier.ntypes == ["movie"] and frontier.num_edges() > 0
    assert "weights" in frontier.edata and (frontier.edata["weights"] > 0).all()
    assert (frontier.in_degrees() <= 2).all()
    block = dgl.to_block(frontier, torch.tensor([0, 1]))
    assert block.num_dst_nodes() == 2
