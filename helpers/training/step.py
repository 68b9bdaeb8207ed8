"""One PinSage training step: a batch of positive pairs, the objective's loss, one optimiser update.

`TrainingStep(gd, config, model, optimizer)` holds what the steps share (the positive pairs, the negative
sampler, the neighbourhood sampler). `train_pinsage` calls it inside its epochs (with validation, checkpoints and
resume); `bench.scale` calls it alone in a timed loop, so the benchmark times the computation the notebooks train.

With `softmax` a step embeds every movie through the graph layers (`PinSage.embed_all`) and scores the batch's
query vectors against all candidate vectors. With `sampled_softmax` and `max_margin` a step follows the batch, as
DGL's PinSage example does with its blocks: only the batch's movies (heads, tails and the shared uniform
negatives, or max-margin's negatives) are embedded, through layer-1/layer-2 neighbourhoods built for just those
nodes from the neighbourhood pool (`NeighbourSampler.sample`), so its cost does not grow with the catalogue
(`tests/test_batch_step.py` counts the nodes). The sampled softmax scores each query against the batch's tails and
the uniform negatives, corrected by logQ, and its optimiser updates only the rows of the per-movie tables that the
batch touched (`helpers.training.optimiser`; `tests/test_sparse_tables.py`).

`hand_step` gives notebook 03's step by hand (section 3) the movies it embeds and ranks: every movie, through hops
over the whole catalogue (`PinSage.embed_all`, as the `softmax` objective), or, with a `limit` below the catalogue
(the `large` preset's `hand_step_movies`), the batch's movies and a seeded sample of the others, through
neighbourhoods built for just those (`NeighbourSampler.sample`, as the sampled-softmax step): walking every movie
took about 50 s per layer at 87,584 movies.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from helpers.training.config import TrainConfig
from helpers.training.model import (
    UNK_TOKEN,
    PinSage,
    max_margin_loss,
    sampled_softmax_loss,
    softmax_loss,
)
from helpers.training.optimiser import Optimiser
from helpers.training.sampling import (
    EngagementPositives,
    Hop,
    NegativeSampler,
    Neighbourhood,
    NeighbourSampler,
    RandomWalkPositives,
    pair_batch,
)


class TrainingStep:
    """Call it with a generator (and the share of hard negatives, max-margin only) to train one step; it
    returns the batch's loss."""

    def __init__(self, gd, config: TrainConfig, model: PinSage, optimizer: Optimiser):
        alt = config.alternatives
        self.config, self.model, self.optimizer = config, model, optimizer
        self.positives = (EngagementPositives(gd.train, alt.engagement_window) if alt.positives == "engagement"
                          else RandomWalkPositives(gd.graph))
        self.n_movies = gd.graph.num_nodes("movie")
        self.negatives = NegativeSampler(self.n_movies, alt.hard_ranks)
        self.sampler = NeighbourSampler(gd.graph, config.layers, config.spec, draws=config.neighbour_pool,
                                        uses=alt.neighbour_pool_uses)
        self.all_movies = torch.arange(self.n_movies)
        self.done = 0.0  # the share of the run done, as the loop last said (`id_dropout_until` reads it)
        self.tail_share = None
        if alt.loss == "sampled_softmax":  # how often each movie is an in-batch tail, for the logQ correction
            self.tail_share = (
                torch.bincount(self.positives.pairs[:, 1], minlength=self.n_movies).double() / len(self.positives.pairs)
                if isinstance(self.positives, EngagementPositives)
                else torch.full((self.n_movies,), 1.0 / self.n_movies, dtype=torch.float64))

    def dropped(self, generator: torch.Generator, movies: torch.Tensor
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """This step's inductive noise (issue 17) for the movies it embeds, `movies` [M] (CPU): which keep their id
        (`keep` [M] bool) and their title tokens with a share replaced by `<unk>` ([M, L]), per row of `movies`;
        (None, None) with both knobs off, drawing nothing. Ids are dropped only while the run is within its first
        `id_dropout_until` share (`self.done`)."""
        alt, device = self.config.alternatives, self.model.device
        keep = title = None
        if alt.id_dropout > 0 and self.done < alt.id_dropout_until:
            keep = (torch.rand(len(movies), generator=generator) >= alt.id_dropout).to(device)
        if alt.title_token_dropout > 0:
            tokens = self.model.features.title.cpu()[movies]
            drop = (torch.rand(tokens.shape, generator=generator) < alt.title_token_dropout) & (tokens > 0)
            title = tokens.masked_fill(drop, UNK_TOKEN).to(device)
        return keep, title

    @property
    def uses_hard_negatives(self) -> bool:
        return self.config.alternatives.loss == "max_margin"

    def loss(self, generator: torch.Generator, hard: float = 0.0) -> torch.Tensor:
        """The loss of one batch drawn with `generator`."""
        config, alt, model = self.config, self.config.alternatives, self.model
        device = model.device
        heads, tails = self.positives.sample(config.batch_size, generator)
        if alt.loss == "sampled_softmax":
            return self.sampled_loss(heads, tails, generator)
        keep, title = self.dropped(generator, self.all_movies)
        if alt.loss == "max_margin":
            negatives = self.negatives.sample(heads, alt.negatives, hard, generator)
            batch = pair_batch(self.sampler, heads, tails, negatives).to(device)
            inputs = batch.neighbourhood.input_nodes  # its noise drawn for every movie, as before: the same draws
            h = model(batch.neighbourhood, None if keep is None else keep[inputs],
                      None if title is None else title[inputs])
            return max_margin_loss(h, batch.heads, batch.tails, batch.negatives, alt.margin, alt.in_batch_negatives)
        heads_d, tails_d = heads.to(device), tails.to(device)
        # every movie embedded at once; the pairs' own edges left out of the neighbourhoods
        hops = [self.sampler.hop(self.all_movies, exclude=(heads, tails))[0].to(device) for _ in range(config.layers)]
        h = model.embed_all(hops, keep, title)
        queries = model.query_vectors(h[heads_d], heads_d, None if keep is None else keep[heads_d])
        return softmax_loss(queries, model.candidate_vectors(h, self.all_movies.to(device), keep), tails_d, heads_d)

    def sampled_loss(self, heads: torch.Tensor, tails: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The sampled softmax of one batch, embedding only its heads, tails and uniform negatives (`columns`,
        the competitors) through neighbourhoods built for those nodes, the pairs' own edges left out; the
        inductive noise is drawn for the movies embedded only."""
        model, device = self.model, self.model.device
        uniform = torch.randint(self.n_movies, (self.config.alternatives.uniform_negatives,), generator=generator)
        columns = torch.unique(torch.cat([tails, uniform]))
        nodes, rows = torch.unique(torch.cat([heads, columns]), return_inverse=True)
        neighbourhood = self.sampler.sample(nodes, exclude=(heads, tails))
        keep, title = self.dropped(generator, neighbourhood.input_nodes)
        h = model(neighbourhood.to(device), keep, title)
        head_rows, column_rows = rows[:len(heads)].to(device), rows[len(heads):].to(device)  # the seeds lead the inputs
        heads_d, columns_d = heads.to(device), columns.to(device)
        queries = model.query_vectors(h[head_rows], heads_d, None if keep is None else keep[head_rows])
        candidates = model.candidate_vectors(h[column_rows], columns_d, None if keep is None else keep[column_rows])
        expected = len(tails) * self.tail_share[columns] + len(uniform) / self.n_movies
        return sampled_softmax_loss(queries, candidates, tails.to(device), columns_d, heads_d,
                                    torch.log(expected).float().to(device))

    def __call__(self, generator: torch.Generator, hard: float = 0.0, done: float = 0.0) -> float:
        """One step: the batch's loss, backward, the optimiser's update; `done` is the share of the run done."""
        self.done = done
        loss = self.loss(generator, hard)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()


@dataclass
class HandStep:
    """The movies a step by hand embeds and ranks, `movies` (sorted movie indices), and their layers' hops (layer 1
    first): over every movie (`neighbourhood` None), or those of `neighbourhood`, built for `movies` alone."""

    movies: torch.Tensor
    hops: list[Hop]
    neighbourhood: Neighbourhood | None
    n_movies: int

    def rows(self, movies: torch.Tensor) -> torch.Tensor:
        """The rows of movie indices `movies` in `embed`'s output: the indices themselves when every movie is."""
        return torch.searchsorted(self.movies, movies)

    def embed(self, model: PinSage) -> torch.Tensor:
        """The embeddings of `movies` ([len(movies), dim]), through both layers."""
        return model.embed_all(self.hops) if self.neighbourhood is None else model(self.neighbourhood)

    def describe(self) -> str:
        if self.neighbourhood is None:
            return f"all {self.n_movies:,} movies"
        return f"{len(self.movies):,} of {self.n_movies:,} movies (the batch's and a seeded sample: the preset's bound)"


def hand_step(sampler: NeighbourSampler, heads: torch.Tensor, tails: torch.Tensor, limit: int | None,
              generator: torch.Generator) -> HandStep:
    """A step by hand on the pairs `heads` -> `tails`, their own edges left out of the neighbourhoods: every movie
    when `limit` is None or not below the catalogue (drawing nothing from `generator`), else `limit` movies, the
    batch's and the others drawn with `generator`."""
    n, exclude = sampler.num_movies, (heads, tails)
    if limit is None or limit >= n:
        movies = torch.arange(n)
        return HandStep(movies, [sampler.hop(movies, exclude=exclude)[0] for _ in range(sampler.layers)], None, n)
    batch = torch.unique(torch.cat([heads, tails]))
    others = torch.randperm(n, generator=generator)
    others = others[~torch.isin(others, batch)][:max(limit - len(batch), 0)]
    movies = torch.sort(torch.cat([batch, others])).values
    neighbourhood = sampler.sample(movies, exclude=exclude)
    return HandStep(movies, neighbourhood.hops, neighbourhood, n)
