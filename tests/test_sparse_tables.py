"""The sampled softmax's tables are updated sparsely (issue 19, item 2): one optimiser, built by
`helpers.training.optimiser.build_optimiser`, that updates only the rows a batch touched, checkpoints and resumes
exactly, and whose work on the tables per step is bounded by the batch, not the catalogue. The full softmax keeps
its dense Adam. CI cost: about 3 s (toy graphs of 40 and 4,000 movies, a few steps each)."""
from __future__ import annotations

import io

import pytest
import torch

from helpers.dgl_import import dgl
from helpers.training.config import TrainConfig, TrainConfigError
from helpers.training.loop import build_model
from helpers.training.optimiser import SparseDenseAdam, build_optimiser
from helpers.training.step import TrainingStep

from conftest import paired_movies

SMALL = {"hidden": 8, "neighbours": 2, "walks": 8, "batch_size": 6, "neighbour_pool": 2}
# the transductive model, whose bias is a table too (the default reads it from the vector); ids kept unless asked
TABLE_BIAS = {"bias_source": "table", "id_dropout": 0.0, "title_token_dropout": 0.0}
BOUND = 2 * (2 * SMALL["batch_size"] + 4)  # heads, tails and uniform negatives, and each one's partner
TABLES = ("features.id_emb.weight", "features.title_emb.weight", "query_id.weight", "movie_bias.weight")


def sampled_step(gd, **changes) -> TrainingStep:
    config = TrainConfig().replace(loss="sampled_softmax", uniform_negatives=4, query_id_embedding=True,
                                   **{**SMALL, **TABLE_BIAS, **changes})
    torch.manual_seed(0)
    model = build_model(gd, config)
    return TrainingStep(gd, config, model, build_optimiser(model, config))


def weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_one_optimiser_updates_only_the_rows_the_batch_touched():
    gd = paired_movies(20)
    step = sampled_step(gd)
    assert isinstance(step.optimizer, SparseDenseAdam)
    assert len(step.optimizer.param_groups) == 2  # the schedule sets both learning rates
    before = weights(step.model)
    step(torch.Generator().manual_seed(1))
    touched = {name: p.grad.coalesce().indices()[0] for name, p in step.model.named_parameters()
               if name in TABLES}
    after = weights(step.model)
    for name in TABLES:
        rows = torch.zeros(len(after[name]), dtype=torch.bool)
        rows[touched[name]] = True
        assert 0 < rows.sum() < len(rows), name
        assert torch.equal(after[name][~rows], before[name][~rows]), name  # untouched: bit-identical
        assert not torch.equal(after[name][rows], before[name][rows]), name
    assert not torch.equal(after["convs.0.W.weight"], before["convs.0.W.weight"])  # the dense part learns too


def test_the_sparse_optimiser_resumes_exactly_from_its_checkpoint():
    """Three steps, a checkpoint (model and optimiser through torch.save), three more; a new model and optimiser
    loaded from the checkpoint take the same three steps to the same weights and moments. The walks are redrawn
    from the same seeds after the checkpoint (no pool), as `train_pinsage` reseeds every epoch."""
    gd = paired_movies(20)

    def run(step: TrainingStep, generator: torch.Generator, steps: int) -> None:
        torch.manual_seed(5)
        dgl.seed(5)
        for i in range(steps):
            for group in step.optimizer.param_groups:
                group["lr"] = 1e-2 / (1 + i)
            step(generator)

    first = sampled_step(gd, neighbour_pool=0)
    generator = torch.Generator().manual_seed(2)
    run(first, generator, 3)
    buffer = io.BytesIO()
    torch.save({"model": first.model.state_dict(), "optimizer": first.optimizer.state_dict(),
                "generator": generator.get_state()}, buffer)
    run(first, generator, 3)

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    second = sampled_step(gd, neighbour_pool=0)
    second.model.load_state_dict(saved["model"])
    second.optimizer.load_state_dict(saved["optimizer"])
    run(second, torch.Generator().set_state(saved["generator"]), 3)
    for name, value in weights(first.model).items():
        assert torch.equal(value, dict(second.model.named_parameters())[name].detach()), name
    assert torch.equal(first.optimizer.sparse.state_dict()["state"][0]["exp_avg"],
                       second.optimizer.sparse.state_dict()["state"][0]["exp_avg"])
    with pytest.raises(TrainConfigError, match="not a SparseDenseAdam"):
        second.optimizer.load_state_dict(torch.optim.Adam(second.model.parameters()).state_dict())


def test_the_work_on_the_tables_per_step_is_bounded_by_the_batch_not_the_catalogue():
    """The gradient of each table has at most as many rows as the step embedded movies, and the inductive noise
    is drawn for those movies only, at 40 and at 4,000 movies alike: bounded by the batch, not the catalogue."""
    rows_per_step, noise_rows = [], []
    for pairs in (20, 2000):
        step = sampled_step(paired_movies(pairs), id_dropout=0.3, title_token_dropout=0.2)
        embedded: list[int] = []
        step.model.features.register_forward_hook(lambda module, args, output, seen=embedded: seen.append(len(args[0])))
        draw = step.dropped  # the inductive noise: drawn for the movies embedded, not for the catalogue
        step.dropped = lambda generator, movies, draw=draw: (noise_rows.append(len(movies)), draw(generator, movies))[1]
        generator = torch.Generator().manual_seed(3)
        for _ in range(5):
            step.optimizer.zero_grad()
            step.loss(generator).backward()
            grads = {name: p.grad for name, p in step.model.named_parameters() if name in TABLES}
            assert all(g.is_sparse for g in grads.values())
            id_rows = len(grads["features.id_emb.weight"].coalesce().indices()[0])
            assert id_rows <= embedded[-1] == noise_rows[-1] <= BOUND
            # per token
            assert grads["features.title_emb.weight"]._nnz() <= step.model.features.title_emb.num_embeddings
            rows_per_step.append(id_rows)
    assert max(rows_per_step[5:]) <= BOUND < 4000 / 50


def test_the_full_softmax_keeps_its_dense_adam_and_weight_decay_is_refused_with_sparse_tables():
    """The full softmax: one Adam over dense gradients, as before (and a model built for the sampled softmax stays
    dense until its optimiser is built, so notebook 03's plain Adam still steps it)."""
    gd = paired_movies(5)
    config = TrainConfig().replace(**SMALL, **TABLE_BIAS)
    model = build_model(gd, config.replace(loss="sampled_softmax"))
    assert not any(table.sparse for table in model.catalogue_tables())
    assert isinstance(build_optimiser(model, config.replace(loss="sampled_softmax")), SparseDenseAdam)
    assert all(table.sparse for table in model.catalogue_tables()) and len(model.catalogue_tables()) == 3
    optimizer = build_optimiser(model, config)  # the full softmax: back to dense gradients
    assert type(optimizer) is torch.optim.Adam and len(optimizer.param_groups) == 1
    assert not any(table.sparse for table in model.catalogue_tables())
    assert type(build_optimiser(model, config.replace(weight_decay=1e-4))) is torch.optim.Adam
    with pytest.raises(TrainConfigError, match="weight_decay=0.0001 with loss='sampled_softmax'.*weight_decay=0"):
        config.replace(loss="sampled_softmax", weight_decay=1e-4)
