"""`TrainConfig`: everything that shapes a PinSage training run, checked when it is made."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any
from helpers.training.sampling import (NeighbourhoodSpec)


POSITIVES = ("engagement", "random_walk")
LOSSES = ("softmax", "sampled_softmax", "max_margin")
SCHEDULES = ("cosine", "epoch_decay")


@dataclass
class TrainConfig:
    """Everything that shapes a training run. The defaults are the best setting measured on ML-1M (users 1-2999):
    objective, scoring and schedule side by side at a fixed number of steps (docs/benchmarks.md, "PinSage against
    what people watched next"), the neighbourhood settings within 10 minutes on 2 CPU cores ("PinSage training
    (stage 03)")."""

    positives: str = "engagement"          # "engagement" (paper: next movie rated) or "random_walk" (DGL example)
    engagement_window: int = 1             # engagement: pair a movie with the next `window` movies rated
    hidden: int = 64                       # embedding size
    layers: int = 2
    dropout: float = 0.0
    use_id_embedding: bool = True          # learn a free vector per movie besides its features
    neighbours: int = 5                    # top-visited movies kept as a movie's neighbourhood
    walks: int = 100                       # random walks per movie to find them
    walk_length: int = 2                   # movie -> user -> movie hops per walk before a restart
    restart_prob: float = 0.5
    neighbour_pool: int = 4                # >0: draw this many neighbourhoods per movie each epoch and pick from them
    batch_size: int = 256                  # positive pairs per step
    loss: str = "softmax"                  # "softmax" (all movies compete), "sampled_softmax", "max_margin"
    directed: bool = True                  # a linear query head: the query side differs from the candidate side
    query_id_embedding: bool = False       # softmax losses: a learned per-movie offset on the query side
    movie_bias: bool = True                # a learned per-movie bias, one extra vector dimension
    temperature: float = 0.1               # softmax losses: score = query . candidate / temperature (+ bias)
    uniform_negatives: int = 1024          # sampled_softmax: shared uniform negatives besides the in-batch tails
    negatives: int = 2                     # max_margin: negatives per positive pair
    in_batch_negatives: bool = False       # max_margin: also use the other pairs' tails as negatives
    margin: float = 0.2                    # max_margin: margin on cosine similarities
    lr: float = 3e-3
    schedule: str = "cosine"               # "cosine": warm-up then cosine decay over the whole run (steps or budget)
    warmup: float = 0.05                   # cosine: share of the run spent warming the learning rate up
    lr_decay: float = 0.95                 # epoch_decay: the learning rate is lr * lr_decay ** epoch
    weight_decay: float = 0.0
    hard_fraction: float = 0.5             # share of negatives taken from the model's own ranks `hard_ranks`
    hard_ranks: tuple[int, int] = (50, 500)
    hard_start_epoch: int = 1              # curriculum: uniform negatives only before this epoch...
    hard_ramp_epochs: int = 2              # ...then the hard share grows linearly to `hard_fraction`
    steps_per_epoch: int = 500             # hard negatives are refreshed after every epoch
    max_epochs: int = 100
    time_budget_s: float | None = 600.0    # stop after this much wall time (training + validation)
    device: str | None = None              # None: CUDA when available, else CPU

    def __post_init__(self) -> None:
        if self.positives not in POSITIVES:
            raise ValueError(f"positives={self.positives!r}: use one of {', '.join(POSITIVES)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: use one of {', '.join(LOSSES)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup={self.warmup}: give the share of the run to warm up in, in [0, 1)")
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature}: it must be positive (e.g. 0.1)")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(f"lr_decay={self.lr_decay}: it must be in (0, 1] (1 = constant learning rate)")
        if not 0.0 <= self.hard_fraction <= 1.0:
            raise ValueError(f"hard_fraction={self.hard_fraction}: it must be between 0 and 1")
        for name in ("hidden", "layers", "batch_size", "negatives", "steps_per_epoch", "max_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: it must be at least 1")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s={self.time_budget_s}: give a positive number of seconds or None")
        self.hard_ranks = tuple(self.hard_ranks)
        self.spec  # validates the neighbourhood settings

    @classmethod
    def for_dataset(cls, name: str, **overrides: Any) -> TrainConfig:
        """The configuration to use for dataset `name`: the tiny synthetic `sample` trains for a few seconds
        (so notebooks and tests stay fast); real datasets get the defaults. `overrides` win."""
        if name == "sample":
            base: dict[str, Any] = dict(batch_size=128, steps_per_epoch=40, max_epochs=6, time_budget_s=60.0,
                                        hard_ranks=(10, 100), lr=1e-2)
        else:
            base = {}
        return cls(**{**base, **overrides})

    @property
    def spec(self) -> NeighbourhoodSpec:
        return NeighbourhoodSpec(self.neighbours, self.walks, self.walk_length, self.restart_prob)

    def hard_share(self, epoch: int) -> float:
        """Share of hard negatives in `epoch` (0-based): the curriculum."""
        if epoch < self.hard_start_epoch or self.hard_fraction == 0:
            return 0.0
        ramp = min(1.0, (epoch - self.hard_start_epoch + 1) / max(self.hard_ramp_epochs, 1))
        return self.hard_fraction * ramp

    @property
    def total_steps(self) -> int:
        return self.max_epochs * self.steps_per_epoch

    def learning_rate(self, epoch: int, progress: float) -> float:
        """The learning rate at `progress` (share of the run done, 0..1: steps done / `total_steps`, or the
        share of `time_budget_s` spent, whichever is larger) of `epoch`."""
        if self.schedule == "epoch_decay":
            return self.lr * self.lr_decay ** epoch
        return self.lr * one_cycle(progress, self.warmup)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def one_cycle(progress: float, warmup: float = 0.05) -> float:
    """Learning-rate factor at `progress` (0..1) of a run: linear warm-up over the first `warmup` share,
    then cosine decay to 0 at the end, so that the whole run (budget or steps) is used."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return max(progress / warmup, 0.01)
    return 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / (1.0 - warmup)))

