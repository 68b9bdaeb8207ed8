"""`next-movie [no graph]`: the baseline that isolates what PinSage's graph adds.

Per movie one query vector, one candidate vector and a bias, nothing else (no features, no neighbours):
score(j after i) = query_i . candidate_j + bias_j. It is trained like PinSage (`helpers.training.loop`, loss
"softmax"): on the same consecutive training pairs (a movie and the one the same user rated right after it),
with the same full softmax over all movies (`helpers.training.model.softmax_loss`) and the same warm-up + cosine
learning-rate schedule (`helpers.training.config.one_cycle`), for a fixed number of steps (its own budget, stated
beside its figures). Several query movies are combined by the mean of their query vectors, as for PinSage.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.evaluation.baselines import ItemKNNBaseline, PopularityBaseline, TransitionsBaseline
from helpers.training.config import TrainConfigError, one_cycle
from helpers.training.inference import MovieVectors
from helpers.training.model import softmax_loss
from helpers.training.sampling import EngagementPositives


class NextMovieBaseline:
    """Fit with `.fit(gd)`; then a scorer (`scores = baseline(queries)`) like the other baselines.
    `vectors` holds the fitted `MovieVectors` ([query, 1] and [candidate, bias]), `history` the loss per
    `log_every` steps, `seconds` the training time."""

    def __init__(self, dim: int = 64, steps: int = 4000, batch_size: int = 1024, lr: float = 1e-2,
                 weight_decay: float = 0.0, warmup: float = 0.05, seed: int = 42, log_every: int = 100):
        if min(dim, steps, batch_size, log_every) < 1:
            raise TrainConfigError(f"dim={dim}, steps={steps}, batch_size={batch_size}, log_every={log_every}: "
                                   "they must all be at least 1")
        if lr <= 0:
            raise TrainConfigError(f"lr={lr}: it must be positive (e.g. 1e-2)")
        self.dim, self.steps, self.batch_size, self.lr = dim, steps, batch_size, lr
        self.weight_decay, self.warmup, self.seed, self.log_every = weight_decay, warmup, seed, log_every
        self.vectors: MovieVectors | None = None
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0
        self.n_movies = 0
        self._scorer: Any = None

    def settings(self) -> dict[str, Any]:
        return {"dim": self.dim, "steps": self.steps, "batch_size": self.batch_size, "lr": self.lr,
                "weight_decay": self.weight_decay, "warmup": self.warmup, "seed": self.seed}

    def fit(self, gd: Any) -> NextMovieBaseline:
        from helpers.evaluation.scorers import query_candidate_scorer

        started = time.perf_counter()
        self.n_movies = n = len(gd.movie_ids)
        positives = EngagementPositives(gd.train)
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        query = nn.Embedding(n, self.dim)
        candidate = nn.Embedding(n, self.dim)
        bias = nn.Embedding(n, 1)
        for table in (query, candidate):
            nn.init.normal_(table.weight, std=0.1)
        nn.init.zeros_(bias.weight)
        parameters = [*query.parameters(), *candidate.parameters(), *bias.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=self.lr, weight_decay=self.weight_decay)
        losses: list[float] = []
        self.history = []
        for step in range(self.steps):
            for group in optimizer.param_groups:
                group["lr"] = self.lr * one_cycle(step / self.steps, self.warmup)
            heads, tails = positives.sample(self.batch_size, generator)
            candidates = torch.cat([candidate.weight, bias.weight], dim=1)
            queries = torch.cat([query(heads), torch.ones(len(heads), 1)], dim=1)
            loss = softmax_loss(queries, candidates, tails, heads)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if (step + 1) % self.log_every == 0 or step + 1 == self.steps:
                self.history.append({"step": step + 1, "loss": float(np.mean(losses[-self.log_every:]))})
        with torch.no_grad():
            self.vectors = MovieVectors(
                query=torch.cat([query.weight, torch.ones(n, 1)], dim=1).numpy().astype(np.float32),
                candidate=torch.cat([candidate.weight, bias.weight], dim=1).numpy().astype(np.float32))
        self._scorer = query_candidate_scorer(self.vectors.query, self.vectors.candidate)
        self.seconds = time.perf_counter() - started
        return self

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        if self._scorer is None:
            from helpers.evaluation.protocols import EvaluationError

            raise EvaluationError("NextMovieBaseline is not fitted: call .fit(gd) first")
        return self._scorer(queries)


SAMPLE_STEPS = 300       # the synthetic sample and toy graphs: a couple of seconds
REAL_STEPS = 4000        # real MovieLens: measured in docs/benchmarks.md ("next-movie [no graph]")


def next_movie_steps_for(dataset: str) -> int:
    """Training steps of `NextMovieBaseline` in `fit_baselines` for `dataset`: real MovieLens datasets get
    `REAL_STEPS`, the synthetic sample (and anything unnamed, such as the tests' toy graphs) `SAMPLE_STEPS`."""
    from helpers.config import DATASETS

    return REAL_STEPS if dataset in DATASETS and dataset != "sample" else SAMPLE_STEPS


def fit_baselines(gd: Any, combine: str = "sum", next_movie_steps: int | None = None,
                  seed: int = 42) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The baselines fitted on `gd`'s training edges, by name: popularity, item-kNN, transitions (before or
    after), transitions [after] (the movie watched next) and next-movie [no graph] (`helpers.training.baselines`,
    trained for `next_movie_steps` steps; default `next_movie_steps_for(gd.dataset)`) with `seed`."""
    steps = next_movie_steps if next_movie_steps is not None else next_movie_steps_for(getattr(gd, "dataset", ""))
    return {
        "popularity": PopularityBaseline().fit(gd),
        "item-knn": ItemKNNBaseline(combine).fit(gd),
        "transitions": TransitionsBaseline(combine).fit(gd),
        "transitions [after]": TransitionsBaseline(combine, direction="after").fit(gd),
        "next-movie [no graph]": NextMovieBaseline(steps=steps, seed=seed).fit(gd),
    }



def fold_in_candidates(vectors: MovieVectors, queries: np.ndarray, new: np.ndarray, n_new: int, steps: int = 200,
                       lr: float = 0.05, l2: float = 1e-2, seed: int = 0) -> np.ndarray:
    """Candidate vectors ([n_new, d], bias last) of movies outside a fitted `NextMovieBaseline`, fitted on their
    revealed pairs (query movie `queries[i]` -> new movie `new[i]`) with everything else frozen: each pair's
    softmax over the fitted movies and its new movie, an L2 pull (`l2`) towards the mean candidate vector, which
    is also where a new movie without pairs stays (the fold-in of issue 17's new-movie benchmark)."""
    torch.manual_seed(seed)
    query = torch.from_numpy(vectors.query).float()
    fitted = torch.from_numpy(vectors.candidate).float()
    prior = fitted.mean(0, keepdim=True)
    columns = nn.Parameter(prior.repeat(n_new, 1))
    if len(queries):
        q_idx, n_idx = torch.tensor(np.asarray(queries)), torch.tensor(np.asarray(new))
        optimizer = torch.optim.Adam([columns], lr=lr)
        base = query[q_idx] @ fitted.T  # [P, n_fitted], frozen
        base[torch.arange(len(q_idx)), q_idx] = float("-inf")  # not the query movie itself
        for _ in range(steps):
            own = (query[q_idx] * columns[n_idx]).sum(1, keepdim=True)
            loss = -torch.log_softmax(torch.cat([base, own], 1), 1)[:, -1].mean()
            loss = loss + l2 * ((columns - prior) ** 2).sum(1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return columns.detach().numpy().astype(np.float32)
