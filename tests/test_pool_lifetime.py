"""A pooled neighbourhood's lifetime counted in its movie's uses (`neighbour_pool_uses`, issue 19): walks counted
at DGL's random walk, on synthetic graphs built by hand.

Cost: about 5 s (two random graphs of 100 and 5,000 movies, a few hundred hops).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.dgl_import import dgl
from helpers.graph.build import build_graph
from helpers.training.config import TrainConfig, TrainConfigError
from helpers.training.sampling import NeighbourhoodSpec, NeighbourSampler, SamplingError
from tests.test_sampling import movielens

SPEC = NeighbourhoodSpec(neighbours=3, walks=4)
DRAWS, USES, BATCH, STEPS_PER_EPOCH, EPOCHS = 2, 4, 64, 25, 4


@pytest.fixture
def walked(monkeypatch) -> list[int]:
    """The seeds of every walk call, in movies (DGL walks `SPEC.walks` times from each)."""
    calls: list[int] = []
    real_walk = dgl.sampling.random_walk

    def counting(graph, nodes, **kwargs):
        calls.append(len(nodes) // SPEC.walks)
        return real_walk(graph, nodes, **kwargs)

    monkeypatch.setattr(dgl.sampling, "random_walk", counting)
    return calls


def _graph(n_movies: int, seed: int = 0):
    """Users with 8 movies each, popular movies more often (a Zipf-like catalogue)."""
    rng = np.random.default_rng(seed)
    weight = 1.0 / np.arange(1, n_movies + 1) ** 0.8
    ratings = [(u, int(m), 10 * i) for u in range(1, max(40, n_movies // 3) + 1)
               for i, m in enumerate(rng.choice(np.arange(1, n_movies + 1), 8, replace=False, p=weight / weight.sum()))]
    return build_graph(movielens(ratings, n_movies))


def _walks_per_step(gd, uses: int | None, walked: list[int]) -> float:
    """Movie draws walked per step over `EPOCHS` epochs of steps asking for `BATCH` uniform movies each (as the
    sampled softmax's shared negatives do), after one hop over every movie: the first walk of each movie is a
    one-off of the run, paid whatever the pool's lifetime."""
    generator = torch.Generator().manual_seed(0)
    sampler = NeighbourSampler(gd.graph, 1, SPEC, draws=DRAWS, generator=generator, uses=uses)
    sampler.hop(torch.arange(gd.n_movies))
    walked.clear()
    for step in range(EPOCHS * STEPS_PER_EPOCH):
        if step % STEPS_PER_EPOCH == 0:
            sampler.refresh()
        sampler.hop(torch.unique(torch.randint(gd.n_movies, (BATCH,), generator=generator)))
    return sum(walked) / (EPOCHS * STEPS_PER_EPOCH)


def test_walks_per_step_follow_the_batch_not_the_catalogue(walked):
    """With a lifetime of `USES` hops a movie is walked again once per `USES` asks, so a step walks at most about
    DRAWS x BATCH / USES movie draws whatever the catalogue's size; an epoch's pool walks every movie an epoch
    asks for, which grows with the catalogue up to DRAWS x BATCH a step (checked here to break the bound)."""
    bound = 1.5 * DRAWS * BATCH / USES
    small, large = _graph(100), _graph(5_000)
    flat = [_walks_per_step(gd, USES, walked) for gd in (small, large)]
    assert all(0 <= w <= bound for w in flat), flat
    assert flat[0] > DRAWS * BATCH / USES / 2  # the small catalogue's movies are asked often enough to be re-walked
    per_epoch = [_walks_per_step(gd, None, walked) for gd in (small, large)]
    assert per_epoch[0] <= bound < per_epoch[1], per_epoch  # the knob off: the large catalogue breaks the bound


def test_an_entry_is_walked_again_exactly_after_its_nth_use(walked):
    """uses=3: a movie's draws serve three hops that ask for it, the fourth walks it again; `refresh()` keeps
    them (only the tie-breaking ids are renewed); the movies due in one hop share one walk call per draw."""
    gd = _graph(30)
    sampler = NeighbourSampler(gd.graph, 1, SPEC, draws=3, generator=torch.Generator().manual_seed(0), uses=3)
    sampler.hop(torch.tensor([0, 5]))
    assert walked == [2, 2, 2]  # first use of both: one walk call per draw
    sampler.hop(torch.tensor([5]))
    sampler.refresh()
    sampler.hop(torch.tensor([5]))  # third use of 5, across an epoch: still its first draws
    assert walked == [2, 2, 2] and sampler.pool.walked == 0  # the counts of walks start with the epoch
    sampler.hop(torch.tensor([0, 5]))  # fourth use of 5, second of 0
    assert walked[3:] == [1, 1, 1] and sampler.pool.walked == 3
    sampler.hop(torch.tensor([0]))  # third use of 0
    assert len(walked) == 6
    sampler.hop(torch.tensor([0, 5, 7]))  # fourth use of 0, second of 5's new draws, first of 7
    assert walked[6:] == [2, 2, 2]


def test_without_uses_every_refresh_renews_the_pool(walked):
    gd = _graph(30)
    sampler = NeighbourSampler(gd.graph, 1, SPEC, draws=2, generator=torch.Generator().manual_seed(0))
    for _ in range(5):
        sampler.hop(torch.tensor([3]))
    assert walked == [1, 1]  # no lifetime in uses: reused all epoch
    sampler.refresh()
    sampler.hop(torch.tensor([3]))
    assert walked == [1, 1, 1, 1]


def test_a_lifetime_in_uses_needs_a_pool_and_a_positive_count():
    gd = _graph(30)
    for draws, uses in ((2, 0), (0, 5)):
        with pytest.raises(SamplingError, match="uses"):
            NeighbourSampler(gd.graph, 1, SPEC, draws=draws, uses=uses)
        with pytest.raises(TrainConfigError, match="neighbour_pool_uses"):
            TrainConfig.for_dataset("sample", neighbour_pool=draws, neighbour_pool_uses=uses)
    assert TrainConfig.for_dataset("sample").alternatives.neighbour_pool_uses is None  # the default: an epoch's pool
