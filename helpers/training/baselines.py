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
import torch.nn.functional as F
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


def fit_baselines(gd: Any, combine: str = "sum", next_movie_steps: int | None = None, seed: int = 42,
                  knn_recent: int | None = None) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The baselines fitted on `gd`'s training edges, by name: popularity, item-kNN (on each user's latest
    `knn_recent` training ratings; None: all), transitions (before or after), transitions [after] (the movie
    watched next) and next-movie [no graph] (`helpers.training.baselines`, trained for `next_movie_steps` steps;
    default `next_movie_steps_for(gd.dataset)`) with `seed`."""
    steps = next_movie_steps if next_movie_steps is not None else next_movie_steps_for(getattr(gd, "dataset", ""))
    return {
        "popularity": PopularityBaseline().fit(gd),
        "item-knn": ItemKNNBaseline(combine, recent=knn_recent).fit(gd),
        "transitions": TransitionsBaseline(combine).fit(gd),
        "transitions [after]": TransitionsBaseline(combine, direction="after").fit(gd),
        "next-movie [no graph]": NextMovieBaseline(steps=steps, seed=seed).fit(gd),
    }



def fold_in_candidates(vectors: MovieVectors, queries: np.ndarray, new: np.ndarray, n_new: int,
                       training_pairs: np.ndarray, steps: int = 200, batch_size: int = 1024, lr: float = 0.05,
                       prior: float = 1.0, seed: int = 0) -> np.ndarray:
    """Candidate vectors ([n_new, d], bias last) of movies outside a fitted `NextMovieBaseline`, fitted with
    everything else frozen (the fold-in of issue 17's new-movie benchmark): the MAP estimate of the same softmax
    objective over every pair, the revealed pairs (query movie `queries[i]` -> new movie `new[i]`) and the
    `training_pairs` ([N, 2] head, tail; a batch per step, weighted to stand for all N), in which the new movies
    compete too, with a Gaussian prior of precision `prior` around the mean candidate vector. Without the
    training pairs a new movie would only learn to win its own pairs, and lift itself after every movie."""
    generator = torch.Generator().manual_seed(seed)
    query = torch.from_numpy(np.array(vectors.query, dtype=np.float32))
    fitted = torch.from_numpy(np.array(vectors.candidate, dtype=np.float32))
    mean = fitted.mean(0, keepdim=True)
    columns = nn.Parameter(mean.repeat(n_new, 1))
    pairs = torch.from_numpy(np.array(training_pairs, dtype=np.int64)).reshape(-1, 2)
    q_idx, n_idx = torch.from_numpy(np.array(queries, dtype=np.int64)), torch.from_numpy(np.array(new, dtype=np.int64))
    n_fitted, total = len(fitted), len(pairs) + len(q_idx)
    optimizer = torch.optim.Adam([columns], lr=lr)

    def summed_loss(heads: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = torch.cat([query[heads] @ fitted.T, query[heads] @ columns.T], 1)
        logits[torch.arange(len(heads)), heads] = float("-inf")  # not the query movie itself
        return F.cross_entropy(logits, targets, reduction="sum")

    for _ in range(steps if len(pairs) or len(q_idx) else 0):
        loss = prior * ((columns - mean) ** 2).sum()
        if len(q_idx):
            loss = loss + summed_loss(q_idx, n_fitted + n_idx)
        if len(pairs):
            batch = pairs[torch.randint(len(pairs), (batch_size,), generator=generator)]
            loss = loss + summed_loss(batch[:, 0], batch[:, 1]) * len(pairs) / batch_size
        optimizer.zero_grad(set_to_none=True)
        (loss / total).backward()
        optimizer.step()
    return columns.detach().numpy().astype(np.float32)
