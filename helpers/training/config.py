"""What shapes a PinSage training run, checked when it is made, in two parts.

* `TrainConfig`: the knobs of the default objective (a full softmax over all movies, engagement positives, a
  directed query head with a per-movie bias, a warm-up + cosine schedule): model size, neighbourhoods, batch,
  optimiser and budget. `config.table()` lists them with what each does.
* `Alternatives` (`TrainConfig.alternatives`): the choices docs/benchmarks.md compares with that objective
  (positives, loss, scoring head, schedule, negatives and the max-margin loss's hard-negative curriculum).
  Its defaults select the default objective; its other fields matter only for the alternative they name.

`TrainConfig.for_dataset(name, **overrides)` and `config.replace(**overrides)` take any knob of either part by
name. `use_id_embedding` (a learned vector per movie in the features) stays in `TrainConfig`: it is on in the
default model, which learns that vector, and no benchmark compares it; it is a feature of the model, like
`hidden` or `layers`, not a choice of objective.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from helpers.errors import RecsysError
from helpers.training.sampling import NeighbourhoodSpec

POSITIVES = ("engagement", "random_walk")
LOSSES = ("softmax", "sampled_softmax", "max_margin")
SCHEDULES = ("cosine", "epoch_decay")
BIAS_SOURCES = ("table", "vector", "both")


class TrainConfigError(RecsysError, ValueError):
    """A training setting that cannot be used; the message names it and the values it takes."""


def _knob(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


def _at_least_one(owner: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(owner, name) < 1:
            raise TrainConfigError(f"{name}={getattr(owner, name)}: it must be at least 1")


def knob_table(settings: TrainConfig | Alternatives) -> pd.DataFrame:
    """The knobs of `settings` (a `TrainConfig`, without its alternatives, or an `Alternatives`): rows indexed by
    knob, columns `value` and `what it does`."""
    rows = [(f.name, getattr(settings, f.name), f.metadata["doc"]) for f in dataclasses.fields(settings)
            if "doc" in f.metadata]
    return pd.DataFrame(rows, columns=["knob", "value", "what it does"]).set_index("knob")


@dataclass(frozen=True)
class Alternatives:
    """The choices the benchmarks compare with the default objective (docs/benchmarks.md); the defaults are the
    default objective. Fields that belong to one alternative say so and matter only with it."""

    positives: str = _knob("engagement", "pairs to learn from: 'engagement' (a movie and the next one rated, the "
                                         "paper's) or 'random_walk' (movie -> user -> movie, DGL's example)")
    engagement_window: int = _knob(1, "engagement: pair a movie with each of the next `window` movies rated")
    loss: str = _knob("softmax", "'softmax' (every movie competes), 'sampled_softmax' (in-batch tails + uniform "
                                 "negatives, logQ-corrected) or 'max_margin' (the paper's)")
    directed: bool = _knob(True, "a linear query head: the query side of a movie differs from its candidate side")
    query_id_embedding: bool = _knob(False, "softmax losses: a learned per-movie offset on the query side")
    movie_bias: bool = _knob(True, "a learned per-movie bias, stored as one extra vector dimension")
    bias_source: str = _knob("vector", "movie_bias from 'table' (a free value per movie), 'vector' (a linear map of "
                                       "the movie's embedding: new movies have one too) or 'both' (their sum)")
    id_dropout: float = _knob(0.3, "inductive: share of movies per step embedded without their id embedding, "
                                   "query offset and bias table (DropoutNet; 0: off)")
    id_dropout_until: float = _knob(0.5, "inductive: share of the run with id_dropout; after it every movie keeps "
                                         "its id, so the ids finish training at full strength (1: the whole run)")
    title_token_dropout: float = _knob(0.1, "inductive: share of title tokens replaced by <unk> per step (0: off)")
    neighbour_degree_alpha: float = _knob(0.0, "neighbours picked by visits / degree ** alpha (0: by visits, hubs "
                                               "included)")
    uniform_negatives: int = _knob(1024, "sampled_softmax: shared uniform negatives besides the in-batch tails")
    neighbour_pool_uses: int | None = _knob(None, "hops a pooled neighbourhood serves its movie before it is walked "
                                                  "again, epochs aside (None: every epoch; the presets set it with "
                                                  "sampled_softmax, whose walks then follow the batch)")
    schedule: str = _knob("cosine", "'cosine' (warm-up, then cosine decay over the run) or 'epoch_decay'")
    lr_decay: float = _knob(0.95, "epoch_decay: the learning rate is lr * lr_decay ** epoch")
    negatives: int = _knob(2, "max_margin: negatives per positive pair")
    in_batch_negatives: bool = _knob(False, "max_margin: the other pairs' tails are negatives too")
    margin: float = _knob(0.2, "max_margin: margin on cosine similarities")
    hard_fraction: float = _knob(0.5, "max_margin: share of negatives from the model's own ranks `hard_ranks`")
    hard_ranks: tuple[int, int] = _knob((50, 500), "max_margin: ranks of the query movie's neighbours to draw "
                                                   "hard negatives from")
    hard_start_epoch: int = _knob(1, "max_margin curriculum: uniform negatives only before this epoch...")
    hard_ramp_epochs: int = _knob(2, "...then the hard share grows linearly to `hard_fraction` over these")

    def __post_init__(self) -> None:
        for name, allowed in (("positives", POSITIVES), ("loss", LOSSES), ("schedule", SCHEDULES),
                              ("bias_source", BIAS_SOURCES)):
            if getattr(self, name) not in allowed:
                raise TrainConfigError(f"{name}={getattr(self, name)!r}: use one of {', '.join(allowed)}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise TrainConfigError(f"lr_decay={self.lr_decay}: it must be in (0, 1] (1 = constant learning rate)")
        for name in ("id_dropout", "title_token_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise TrainConfigError(f"{name}={getattr(self, name)}: give a share in [0, 1) (0 = off)")
        if not 0.0 < self.id_dropout_until <= 1.0:
            raise TrainConfigError(f"id_dropout_until={self.id_dropout_until}: give the share of the run in (0, 1] "
                                   "during which ids are dropped (1 = the whole run)")
        if not 0.0 <= self.hard_fraction <= 1.0:
            raise TrainConfigError(f"hard_fraction={self.hard_fraction}: it must be between 0 and 1")
        _at_least_one(self, ("engagement_window", "negatives"))
        object.__setattr__(self, "hard_ranks", tuple(self.hard_ranks))

    def hard_share(self, epoch: int) -> float:
        """Share of hard negatives in `epoch` (0-based): the curriculum."""
        if epoch < self.hard_start_epoch or self.hard_fraction == 0:
            return 0.0
        ramp = min(1.0, (epoch - self.hard_start_epoch + 1) / max(self.hard_ramp_epochs, 1))
        return self.hard_fraction * ramp

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


ALTERNATIVE_KNOBS = tuple(f.name for f in dataclasses.fields(Alternatives))
# knobs added after runs were saved, with the value every older run had: a run's key leaves them out at that value,
# so an interrupted older run still resumes (`helpers.training.loop`), and a checkpoint without them loads as the
# model it was (`TrainConfig.from_dict`), not as today's default
LATER_KNOBS: dict[str, Any] = {"bias_source": "table", "id_dropout": 0.0, "title_token_dropout": 0.0,
                               "neighbour_degree_alpha": 0.0, "val_users": None, "neighbour_pool_uses": None,
                               "id_dropout_until": 1.0}


@dataclass
class TrainConfig:
    """The knobs of the default objective (see the module docstring), and `alternatives`. The defaults are the best
    setting measured on ML-1M (users 1-2999): objective, scoring and schedule side by side at a fixed number of
    steps (docs/benchmarks.md, "PinSage against what people watched next"), the neighbourhood settings within
    10 minutes on 2 CPU cores ("PinSage training (stage 03)"). The model is inductive by default (`id_dropout`
    0.3 in the first half of the run, `title_token_dropout` 0.1, the bias read from the vector): non-inferior to
    the transductive one on warm movies at seeds 1-3, and it embeds a movie it never saw ("New movies: the
    graph's own ground")."""

    hidden: int = _knob(64, "embedding size")
    layers: int = _knob(2, "graph layers: 2 reach the neighbours' neighbours")
    dropout: float = _knob(0.0, "dropout before each layer's linear maps")
    use_id_embedding: bool = _knob(True, "learn a free vector per movie besides its features")
    neighbours: int = _knob(5, "top-visited movies kept as a movie's neighbourhood")
    walks: int = _knob(100, "random walks per movie to find them")
    walk_length: int = _knob(2, "movie -> user -> movie hops before a restart")
    restart_prob: float = _knob(0.5, "probability of a restart after each hop")
    neighbour_pool: int = _knob(4, "neighbourhoods pooled per movie, epoch (0: none)")
    batch_size: int = _knob(256, "positive pairs per step")
    temperature: float = _knob(0.1, "score = query . candidate / temperature (+ bias)")
    lr: float = _knob(3e-3, "peak learning rate (Adam)")
    warmup: float = _knob(0.05, "share of the run warming up lr, then cosine decay")
    weight_decay: float = _knob(0.0, "Adam's L2 penalty (not with sampled_softmax: its tables update sparsely)")
    steps_per_epoch: int = _knob(500, "steps between validations (and checkpoints)")
    max_epochs: int = _knob(100, "stop after this many epochs")
    time_budget_s: float | None = _knob(600.0, "seconds of training + validation; None: no limit")
    val_users: int | None = _knob(None, "validation users ranked each epoch: a fixed seeded sample (None: all)")
    device: str | None = _knob(None, "None: CUDA when available, else CPU")
    alternatives: Alternatives = field(default_factory=Alternatives)

    def __post_init__(self) -> None:
        if isinstance(self.alternatives, Mapping):  # e.g. TrainConfig(**config.to_dict())
            self.alternatives = Alternatives(**self.alternatives)
        if not isinstance(self.alternatives, Alternatives):
            raise TrainConfigError(f"alternatives={self.alternatives!r}: give an Alternatives or a dict of its fields")
        if not 0.0 <= self.warmup < 1.0:
            raise TrainConfigError(f"warmup={self.warmup}: give the share of the run to warm up in, in [0, 1)")
        if self.temperature <= 0:
            raise TrainConfigError(f"temperature={self.temperature}: it must be positive (e.g. 0.1)")
        _at_least_one(self, ("hidden", "layers", "batch_size", "steps_per_epoch", "max_epochs"))
        if self.val_users is not None and self.val_users < 2:
            raise TrainConfigError(f"val_users={self.val_users}: sample at least 2 users (a standard error needs "
                                   "two), or None for all")
        uses = self.alternatives.neighbour_pool_uses
        if uses is not None and (uses < 1 or self.neighbour_pool < 1):
            raise TrainConfigError(f"neighbour_pool_uses={uses} with neighbour_pool={self.neighbour_pool}: give a "
                                   "positive number of uses with a pool (neighbour_pool >= 1), or None to walk the "
                                   "pool again every epoch")
        if self.weight_decay > 0 and self.alternatives.loss == "sampled_softmax":
            raise TrainConfigError(f"weight_decay={self.weight_decay} with loss='sampled_softmax': its per-movie "
                                   "tables are updated sparsely (SparseAdam, no weight decay), so the penalty "
                                   "would miss them; give weight_decay=0")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise TrainConfigError(f"time_budget_s={self.time_budget_s}: give a positive number of seconds or None")
        _ = self.spec  # NeighbourhoodSpec checks the neighbourhood settings

    @classmethod
    def for_dataset(cls, name: str, **overrides: Any) -> TrainConfig:
        """The configuration to use for dataset `name`: the tiny synthetic `sample` trains for a few seconds
        (so notebooks and tests stay fast); real datasets get the defaults. `overrides` (knobs of `TrainConfig`
        or of its `alternatives`, by name) win."""
        base: dict[str, Any] = {}
        if name == "sample":
            base = dict(batch_size=128, steps_per_epoch=40, max_epochs=6, time_budget_s=60.0, hard_ranks=(10, 100),
                        lr=1e-2)
        return cls().replace(**{**base, **overrides})

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with `overrides` applied, each by name, whether it is a knob of `TrainConfig` or of
        `alternatives` (`alternatives=` itself replaces them all first)."""
        unknown = sorted(set(overrides) - set(MAIN_KNOBS) - set(ALTERNATIVE_KNOBS) - {"alternatives"})
        if unknown:
            raise TrainConfigError(f"unknown training setting(s) {unknown}: TrainConfig has {', '.join(MAIN_KNOBS)}; "
                                   f"TrainConfig.alternatives has {', '.join(ALTERNATIVE_KNOBS)}")
        main = {k: v for k, v in overrides.items() if k in MAIN_KNOBS}
        alternatives = overrides.get("alternatives", self.alternatives)
        if isinstance(alternatives, Mapping):
            alternatives = Alternatives(**alternatives)
        changed = {k: v for k, v in overrides.items() if k in ALTERNATIVE_KNOBS}
        if changed:
            alternatives = dataclasses.replace(alternatives, **changed)
        return dataclasses.replace(self, **main, alternatives=alternatives)

    @property
    def spec(self) -> NeighbourhoodSpec:
        return NeighbourhoodSpec(self.neighbours, self.walks, self.walk_length, self.restart_prob,
                                 self.alternatives.neighbour_degree_alpha)

    @property
    def total_steps(self) -> int:
        return self.max_epochs * self.steps_per_epoch

    def learning_rate(self, epoch: int, progress: float) -> float:
        """The learning rate at `progress` (share of the run done, 0..1: steps done / `total_steps`, or the
        share of `time_budget_s` spent, whichever is larger) of `epoch`."""
        if self.alternatives.schedule == "epoch_decay":
            return self.lr * self.alternatives.lr_decay ** epoch
        return self.lr * one_cycle(progress, self.warmup)

    def table(self) -> pd.DataFrame:
        """The default objective's knobs: rows indexed by knob, columns `value` and `what it does`
        (`knob_table(config.alternatives)` lists the alternatives)."""
        return knob_table(self)

    def to_dict(self) -> dict[str, Any]:
        """Every knob by name, the alternatives nested under "alternatives"; JSON-ready (tuples as lists)."""
        return {**{name: getattr(self, name) for name in MAIN_KNOBS}, "alternatives": self.alternatives.to_dict()}

    def flat_dict(self) -> dict[str, Any]:
        """Every knob of both parts at the top level: the format written before the split (see `from_dict`)."""
        return {**{name: getattr(self, name) for name in MAIN_KNOBS}, **self.alternatives.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The config `to_dict` gave. Checkpoints (model.pt, history.json, manifests) written before the config
        was split hold one flat dict of all knobs: those are routed by name too. Keys no knob has any more are
        ignored, and knobs a checkpoint predates take the value its run had (`LATER_KNOBS`), so older checkpoints
        still load as the models they were."""
        nested = data.get("alternatives") or {}
        known = set(MAIN_KNOBS) | set(ALTERNATIVE_KNOBS)
        given = {**{k: v for k, v in data.items() if k in known},
                 **{k: v for k, v in nested.items() if k in ALTERNATIVE_KNOBS}}
        return cls().replace(**{**LATER_KNOBS, **given})


MAIN_KNOBS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "alternatives")


def one_cycle(progress: float, warmup: float = 0.05) -> float:
    """Learning-rate factor at `progress` (0..1) of a run: linear warm-up over the first `warmup` share,
    then cosine decay to 0 at the end, so that the whole run (budget or steps) is used."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return max(progress / warmup, 0.01)
    return 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / (1.0 - warmup)))
