"""The sampled-softmax step follows the batch (issue 19, item 2): it embeds only the batch's movies and their
neighbourhoods, whatever the catalogue's size, and computes the same loss and gradients as the sampled softmax
over every movie embedded the full way. CI cost: about 8 s (two small synthetic datasets, 20 tiny steps each;
bench.quality --versus on the sample, 4 runs of 5 steps). Notebook 03's step by hand, bounded the same way on a
large catalogue: about 1 s (the sample's graph, one forward and backward).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from helpers.data.loader import load_movielens
from helpers.dgl_import import dgl
from helpers.graph.build import build_graph
from helpers.training.config import TrainConfig
from helpers.training.loop import build_model
from helpers.training.model import softmax_loss
from helpers.training.optimiser import build_optimiser
from helpers.training.sampling import NeighbourSampler
from helpers.training.step import TrainingStep, hand_step

from conftest import paired_movies

SMALL_BATCH = {"batch_size": 8, "uniform_negatives": 8, "neighbours": 2, "layers": 2, "neighbour_pool": 2, "walks": 20}


def embedded_per_step(gd, loss: str, steps: int = 20) -> list[int]:
    """How many movies each of `steps` training steps puts through the feature projector (every node a step
    embeds passes there once)."""
    config = TrainConfig().replace(loss=loss, **SMALL_BATCH)
    torch.manual_seed(0)
    model = build_model(gd, config)
    step = TrainingStep(gd, config, model, build_optimiser(model, config))
    counts: list[int] = []
    model.features.register_forward_hook(lambda module, args, output: counts.append(len(args[0])))
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        step(generator)
    return counts


def test_the_sampled_step_embeds_the_batch_not_the_catalogue(tmp_path):
    sizes = [build_graph(load_movielens(name, cache_dir=tmp_path)) for name in ("synthetic-100k", "synthetic-400k")]
    assert sizes[1].n_movies > 2 * sizes[0].n_movies
    seeds = 2 * SMALL_BATCH["batch_size"] + SMALL_BATCH["uniform_negatives"]   # heads, tails, uniform negatives
    bound = seeds * (1 + SMALL_BATCH["neighbours"]) ** SMALL_BATCH["layers"]   # each hop adds <= k per node
    means = []
    for gd in sizes:
        assert embedded_per_step(gd, "softmax", steps=2) == [gd.n_movies] * 2  # the full softmax: every movie
        counts = embedded_per_step(gd, "sampled_softmax")
        assert max(counts) <= bound < gd.n_movies / 3
        means.append(np.mean(counts))
    # the catalogue more than doubles; the nodes a step embeds grow by far less (fewer shared neighbours in a
    # larger graph: measured 1.17-1.22x over runs, the walks being DGL's own draws)
    assert means[1] < 1.5 * means[0], means


@pytest.mark.parametrize("query_id", [False, True])
def test_the_sampled_step_equals_the_sampled_softmax_over_every_movie_embedded(query_id):
    """On a toy whose neighbourhoods do not depend on the draw (each movie's only neighbour is its partner), the
    step's loss and gradients equal the sampled softmax written by hand over all movies embedded layer by layer."""
    gd = paired_movies(20)
    config = TrainConfig(hidden=8, neighbours=3, walks=16, batch_size=6).replace(
        loss="sampled_softmax", uniform_negatives=5, query_id_embedding=query_id,
        bias_source="table", id_dropout=0.0, title_token_dropout=0.0)  # every id kept: the hand version drops none
    torch.manual_seed(0)
    model = build_model(gd, config)
    with torch.no_grad():  # biases and query offsets away from zero, so that they matter
        for table in (model.movie_bias, model.query_id):
            if table is not None:
                table.weight.normal_()
    step = TrainingStep(gd, config, model, build_optimiser(model, config))  # the tables: sparse gradients
    loss = step.loss(torch.Generator().manual_seed(3))
    model.zero_grad()
    loss.backward()
    library = {name: p.grad.to_dense() for name, p in model.named_parameters() if p.grad is not None}
    assert {name for name, grad in library.items() if dict(model.named_parameters())[name].grad.is_sparse} >= {
        "features.id_emb.weight", "movie_bias.weight"}  # the sampled softmax's tables: sparse gradients

    generator = torch.Generator().manual_seed(3)  # the same draws, in the step's order
    heads, tails = step.positives.sample(config.batch_size, generator)
    uniform = torch.randint(gd.n_movies, (5,), generator=generator)
    columns = torch.unique(torch.cat([tails, uniform]))
    assert len(columns) < gd.n_movies
    every = torch.arange(gd.n_movies)
    e = model.embed_all([step.sampler.hop(every, exclude=(heads, tails))[0] for _ in range(config.layers)])
    tail_share = torch.bincount(step.positives.pairs[:, 1], minlength=gd.n_movies).double() / len(step.positives.pairs)
    log_q = torch.log(len(tails) * tail_share[columns] + len(uniform) / gd.n_movies).float()
    logits = model.query_vectors(e[heads], heads) @ model.candidate_vectors(e, every)[columns].T - log_q
    logits = logits.masked_fill(columns[None, :] == heads[:, None], float("-inf"))
    by_hand = F.cross_entropy(logits, torch.searchsorted(columns, tails))
    model.zero_grad()
    by_hand.backward()
    assert torch.allclose(loss, by_hand, atol=1e-6)
    assert library.keys() == {name for name, p in model.named_parameters() if p.grad is not None}
    for name, grad in library.items():
        assert torch.allclose(grad, dict(model.named_parameters())[name].grad.to_dense(), atol=1e-6), name
    assert pd.Series({n: g.norm().item() for n, g in library.items()}).gt(0).sum() >= 5  # gradients reach the layers


def test_bench_quality_trains_two_objectives_side_by_side_paired(tmp_path, monkeypatch, capsys):
    """`bench.quality --versus`: both objectives per seed on one graph, B - A per user with a paired interval."""
    from bench import quality

    monkeypatch.setenv("RECSYS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "versus.json"
    quality.main(["--dataset", "sample", "--seeds", "1", "2", "--versus", '{"loss": "sampled_softmax"}',
                  "--no-progress", "--train-config", '{"steps_per_epoch": 5, "max_epochs": 1, "time_budget_s": null}',
                  "--out", str(out)])
    outcome = json.loads(out.read_text())["figures"]
    assert [(r["model"], r["seed"]) for r in outcome["runs"]] == [("A", 1), ("B", 1), ("A", 2), ("B", 2)]
    assert outcome["configs"]["B"]["alternatives"]["loss"] == "sampled_softmax"
    assert outcome["configs"]["A"]["alternatives"]["loss"] == "softmax"
    for row in outcome["paired"].values():
        assert row["low"] <= row["diff"] <= row["high"] and row["n"] > 100
        assert row["diff"] == pytest.approx(row["B"] - row["A"])
    assert "test hr@10" in capsys.readouterr().out


def test_the_step_by_hand_embeds_every_movie_unless_the_preset_bounds_it(sample_ml):
    """Without a bound (or one the catalogue does not exceed) the hops over every movie that notebook 03 drew
    before, drawing nothing more; with one, that many movies, the batch's among them, embedded through
    neighbourhoods built for them alone, and a softmax over them that trains. About 1 s."""
    gd = build_graph(sample_ml)
    config = TrainConfig.for_dataset("sample")
    heads, tails = torch.tensor([0, 5, 9, 5]), torch.tensor([1, 6, 10, 7])

    def fresh() -> tuple[NeighbourSampler, torch.Generator]:
        dgl.seed(0)
        generator = torch.Generator().manual_seed(0)
        return NeighbourSampler(gd.graph, config.layers, config.spec, generator=generator), generator

    sampler, _ = fresh()
    before = [sampler.hop(torch.arange(gd.n_movies), exclude=(heads, tails))[0] for _ in range(config.layers)]
    sampler, generator = fresh()
    state = generator.get_state()
    every = hand_step(sampler, heads, tails, None, generator)
    assert torch.equal(generator.get_state(), state) and every.neighbourhood is None
    for hop, old in zip(every.hops, before, strict=True):
        assert hop.num_dst == old.num_dst == gd.n_movies
        assert all(torch.equal(getattr(hop, f), getattr(old, f)) for f in ("src", "dst", "weight"))
    assert torch.equal(every.rows(heads), heads) and every.describe() == f"all {gd.n_movies:,} movies"
    assert hand_step(sampler, heads, tails, gd.n_movies, generator).neighbourhood is None

    bounded = hand_step(sampler, heads, tails, 50, generator)
    assert len(bounded.movies) == 50 and torch.equal(bounded.movies, torch.unique(bounded.movies))
    assert torch.equal(bounded.neighbourhood.seeds, bounded.movies) and bounded.hops[-1].num_dst == 50
    head_rows, tail_rows = bounded.rows(heads), bounded.rows(tails)
    assert torch.equal(bounded.movies[head_rows], heads) and torch.equal(bounded.movies[tail_rows], tails)
    assert f"50 of {gd.n_movies:,} movies" in bounded.describe()
    torch.manual_seed(0)
    model = build_model(gd, config)
    e = bounded.embed(model)
    assert e.shape == (50, config.hidden)
    loss = softmax_loss(model.query_vectors(e[head_rows], heads), model.candidate_vectors(e, bounded.movies),
                        tail_rows, head_rows)
    loss.backward()
    assert torch.isfinite(loss) and model.convs[0].W.weight.grad.abs().sum() > 0
