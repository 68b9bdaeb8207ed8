"""PinSage's optimiser, built in one place (`build_optimiser(model, config)`) for the loop, `bench.scale` and tests.

With the full softmax every step touches every movie's rows, so one `torch.optim.Adam` updates every parameter
densely, as it always has (ML-1M's figures are those of this optimiser).

With `loss="sampled_softmax"` a step embeds only its batch (`helpers.training.step`), yet a dense Adam would still
write a gradient for every row of the per-movie tables (`id_emb`, `query_id`, `movie_bias`) and of the title
tokens' table, and update every row and both its moments at every step: work that grows with the catalogue. There
`build_optimiser` switches those tables (`PinSage.catalogue_tables`) to sparse gradients (`nn.Embedding.sparse`)
and returns a `SparseDenseAdam`: `torch.optim.SparseAdam` on the tables, which updates only the rows the batch
touched (their moments and weights; the other rows stay bit-identical, "lazy Adam"), and `torch.optim.Adam` on
every other parameter, as one optimiser: `param_groups` (the learning-rate schedule), `zero_grad`, `step`,
`state_dict` and `load_state_dict` (checkpoints, resume). The weights are the same either way, so a checkpoint
loads into any model. The switch is made here, with the optimiser that can take sparse gradients, so that a model
built for a sampled-softmax config and stepped by a plain Adam (notebook 03's step by hand) still works.
SparseAdam has no weight decay, so `weight_decay > 0` with the sampled softmax is refused when the config is made
(`TrainConfig`): it would penalise only part of the model.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from helpers.training.config import TrainConfig, TrainConfigError
from helpers.training.model import PinSage


def sparse_tables(config: TrainConfig) -> bool:
    """Whether `config` trains the catalogue's tables with sparse gradients: with the sampled softmax, whose steps
    embed only their batch."""
    return config.alternatives.loss == "sampled_softmax"


class SparseDenseAdam:
    """Adam over `dense` parameters and SparseAdam over `sparse` ones (tables with sparse gradients), stepped,
    zeroed, scheduled and checkpointed as one optimiser (see the module docstring)."""

    def __init__(self, dense: list[nn.Parameter], sparse: list[nn.Parameter], lr: float):
        self.dense = torch.optim.Adam(dense, lr=lr)
        self.sparse = torch.optim.SparseAdam(sparse, lr=lr)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """Both optimisers' groups: setting a group's "lr" sets that optimiser's learning rate."""
        return self.dense.param_groups + self.sparse.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.dense.zero_grad(set_to_none=set_to_none)
        self.sparse.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.dense.step()
        self.sparse.step()

    def state_dict(self) -> dict[str, Any]:
        return {"dense": self.dense.state_dict(), "sparse": self.sparse.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != {"dense", "sparse"}:
            raise TrainConfigError("this optimiser state is not a SparseDenseAdam's (saved by a run with dense "
                                   "tables?): resume with the config that saved it, or start from scratch")
        self.dense.load_state_dict(state["dense"])
        self.sparse.load_state_dict(state["sparse"])


Optimiser = torch.optim.Optimizer | SparseDenseAdam


def build_optimiser(model: PinSage, config: TrainConfig) -> Optimiser:
    """The optimiser that trains `model` with `config`: one Adam (`config.lr`, `config.weight_decay`) over dense
    gradients, or, with the sampled softmax, a `SparseDenseAdam` after switching the model's catalogue tables to
    sparse gradients (the module docstring)."""
    sparse = sparse_tables(config)
    tables = model.catalogue_tables()
    for table in tables:
        table.sparse = sparse
    if not sparse or not tables:
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    in_tables = {id(table.weight) for table in tables}
    dense = [p for p in model.parameters() if id(p) not in in_tables]
    return SparseDenseAdam(dense, [table.weight for table in tables], config.lr)
