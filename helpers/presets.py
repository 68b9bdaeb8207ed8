"""Budgets by dataset size: one table that picks notebook 03's training budgets and sample sizes.

A model's training cost grows with the catalogue (a softmax over all movies scores every movie at every step)
and an evaluation's with users x movies, so the budgets that keep notebook 03 within about 15 minutes on ML-1M
would take hours at ML-32M size (87,584 movies, 200,947 users). `budgets_for(settings, n_movies, n_users)`
picks a row of `PRESETS` by catalogue size (or the one `RECSYS_PRESET` names) and resolves it for the dataset:

| preset | catalogue | PinSage budget | section 4, steps per loss | next-movie [no graph] | validation users / epoch | users in metrics.json and its slices | section 3's step by hand | item-kNN fitted on | new-movie demo |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| `small` | up to 5,000 movies (sample, ML-100K, ML-1M) | the dataset's (`TrainConfig.for_dataset`: 600 s) | 60 | 2,000 steps | all up to 10,000 | all | every movie | all ratings | every user |
| `medium` | up to 20,000 (ML-latest-small, synthetic-3m) | 420 s | 30 | steps for 150 s | 10,000 | 20,000 | every movie | all ratings | every user |
| `large` | more (ML-25M, ML-32M, synthetic-10m/32m) | 240 s | 0 (skipped) | steps for 90 s | 5,000 | 10,000 | 2,048 movies | each user's latest 100 | 6,000 users |
| `workshop` | by name only (`RECSYS_PRESET=workshop`; ML-100K unless `RECSYS_DATASET` says otherwise) | 45 s | 20 | 300 steps | all up to 10,000 | all | every movie | all ratings | every user |

The `workshop` row runs the whole series in a room's time: under 4 minutes on ML-100K on a 2-core machine, with a
wall-clock budget per notebook (`notebook_seconds`, in the order of `helpers.stages.SERIES`; download, set-up and
serving not counted), notebook 04's sequence model trained for `sequence_seconds`, and every figure the notebooks
label with the dataset marked "workshop budgets" (`Budgets.label`): short runs, not the figures of the README.

Above `SAMPLED_SOFTMAX_ABOVE_MOVIES` movies the presets also switch PinSage to `loss="sampled_softmax"` (a step
that embeds only the batch's movies, `helpers.training.step`) and the sequence model of notebook 04 to a sampled
softmax of `SEQUENCE_UNIFORM_NEGATIVES` shared uniform negatives besides the batch's targets, validated on the
preset's sample of users; the `small` preset keeps both full softmaxes. With the sampled softmax a pooled
neighbourhood lives `SAMPLED_POOL_USES` hops of its movie rather than an epoch (`neighbour_pool_uses`), so the
walks per step follow the batch, and PinSage's step draws `SAMPLED_UNIFORM_NEGATIVES` shared uniform negatives
besides the batch's tails.

The next-movie baseline's steps are scaled to the catalogue: its full softmax costs about
`NEXT_MOVIE_SECONDS_PER_MOVIE` CPU-seconds per movie and step (0.55 s a step at 10,000 movies, issue 19), so
`steps = seconds / (that x movies)`, between `MIN_NEXT_MOVIE_STEPS` and 2,000. Sampled users are a fixed,
seeded subset (`helpers.evaluation.protocols.sample_rows`) and every figure says how many; notebook 03's slices
rank the same users as its metrics.json.

The last three columns bound what notebook 03 does besides training and ranking, each labelled in its output:
section 3's step by hand embeds the batch's movies and a seeded sample of the others (`hand_step_movies` in all,
`helpers.training.step.hand_step`) instead of every movie, item-kNN is fitted on each user's latest `knn_recent`
training ratings (its fit costs a product per ordered pair of a user's movies,
`helpers.evaluation.baselines.co_rating_work`), and section 7's live new-movie demo rebuilds its graph from the
ratings of `new_movie_users` seeded users (`helpers.evaluation.cold_start.users_sample`) instead of every rating.
On the `small` preset nothing is sampled or capped and nothing changes against the budgets the notebooks were
written with. The figures of the larger rows are provisional until measured on a quiet machine (docs/scaling.md,
"Budgets").
"""  # noqa: E501 (the table's rows cannot wrap)
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from helpers.config import Settings, get_settings
from helpers.errors import RecsysError
from helpers.stages import SERIES

NEXT_MOVIE_SECONDS_PER_MOVIE = 55e-6  # CPU-s per movie per step of NextMovieBaseline (batch 1024, full softmax)
MIN_NEXT_MOVIE_STEPS = 20
# Provisional until measured (docs/scaling.md, "Budgets"): catalogues above this many movies train PinSage and the
# sequence model with a sampled softmax; at or below it they keep the full softmax over all movies.
SAMPLED_SOFTMAX_ABOVE_MOVIES = 5_000
SEQUENCE_UNIFORM_NEGATIVES = 2_048  # the sequence model's shared uniform negatives per step when sampled
# With the sampled softmax a pooled neighbourhood lives this many hops of its movie (`neighbour_pool_uses`), not an
# epoch. At synthetic-1m (3,882 movies) the sampled step's two hops ask for 3,496 movies a step (1,242 batch nodes,
# then 2,253 with their neighbours), so each movie is asked for 3,496 x 500 / 3,882 = 450 times an epoch (median
# 438): with 450 uses the pool walks there about once per movie and epoch, as the epoch pool does, and at any size
# about 4 draws x 3,496 / 450 = 31 movie draws a step, at most 4 x (1,536 + 6 x 1,536) / 450 = 96 (every movie of
# a step's two hops distinct), instead of nearly the whole catalogue every epoch.
SAMPLED_POOL_USES = 450
# PinSage's shared uniform negatives per step when sampled: with 256 a step at synthetic-32m costs 1.65 x one at
# synthetic-1m in CPU-s per 1,000 pairs (1,024: 2.10 x; 512: 2.17 x), and at synthetic-10m 1.8 x the steps of 1,024
# in 10 minutes gave the same test HR@10 (docs/benchmarks.md, "Fewer shared negatives")
SAMPLED_UNIFORM_NEGATIVES = 256


class PresetError(RecsysError, ValueError):
    """A preset or a budget that cannot be used; the message says which values it takes."""


@dataclass(frozen=True)
class Preset:
    """One row of the table: the budgets for catalogues of up to `max_movies` movies (None: any size)."""

    name: str
    max_movies: int | None
    pinsage_seconds: float | None   # PinSage's time budget (training + validation); None: the dataset's default
    compare_steps: int              # notebook 03, section 4: steps per loss (0: skip the comparison; each loss's
                                    # run redraws the neighbourhood pool, 192 s at 87,584 movies)
    next_movie_steps: int | None    # next-movie [no graph]: fixed steps, or None: scaled by next_movie_seconds
    next_movie_seconds: float       # the scaled steps' budget
    val_users: int                  # validation users per epoch, at most (fewer users: all of them)
    eval_users: int | None          # users per split in metrics.json, at most (None: all)
    by_size: bool = True            # "auto" may pick it by catalogue size; False: only by name
    sequence_seconds: float | None = None          # notebook 04's training budget; None: the dataset's default
    notebook_seconds: tuple[float, ...] | None = None  # wall-clock budget per notebook of the series, in order
    label: str = ""                 # appended to the dataset label of every figure the notebooks print
    # notebook 03 beside training and ranking (None: unbounded, as the notebook was written):
    hand_step_movies: int | None = None  # section 3's step by hand embeds this many movies, the batch's and a seeded
                                         # sample (walking every movie's neighbourhood: ~50 s per layer at 87,584)
    knn_recent: int | None = None        # item-kNN is fitted on each user's latest this many training ratings: its
                                         # fit costs sum_u n_u^2 products (386 s at ML-32M size), capped sum_u
                                         # min(n_u, knn_recent)^2
    new_movie_users: int | None = None   # section 7's new-movie demo uses the ratings of this many seeded users
                                         # (rebuilding the whole graph took 36+ s and ~5 GB at ML-32M size)


PRESETS: tuple[Preset, ...] = (
    Preset("small", 5_000, None, 60, 2_000, 120.0, 10_000, None),
    Preset("medium", 20_000, 420.0, 30, None, 150.0, 10_000, 20_000),
    # ML-1M's size for the demo (6,000 users x 159 ratings); 100 recent ratings: a user's taste of late, and 1/18 of
    # item-kNN's products at synthetic-32m's ratings per user (1.05e9 of 1.87e10: the users above 100 hold most)
    Preset("large", None, 240.0, 0, None, 90.0, 5_000, 10_000, hand_step_movies=2_048, knn_recent=100,
           new_movie_users=6_000),
    Preset("workshop", None, 45.0, 20, 300, 0.0, 10_000, None, by_size=False, sequence_seconds=20.0,
           notebook_seconds=(15.0, 15.0, 100.0, 45.0, 20.0, 20.0, 15.0), label="workshop budgets"),
)


@dataclass(frozen=True)
class Budgets:
    """A preset resolved for one dataset: None in `val_users` / `eval_users` means every user."""

    preset: str
    chosen_by: str                  # "catalogue size" or "RECSYS_PRESET"
    n_movies: int
    n_users: int
    pinsage_seconds: float | None
    compare_steps: int
    next_movie_steps: int
    val_users: int | None
    eval_users: int | None
    sampled: bool = False           # PinSage and the sequence model train with a sampled softmax
    sequence_seconds: float | None = None
    notebook_seconds: tuple[float, ...] | None = None
    tag: str = ""
    hand_step_movies: int | None = None  # None: every movie (the catalogue is no larger)
    knn_recent: int | None = None        # None: every training rating
    new_movie_users: int | None = None   # None: every user (there are no more)

    def label(self, dataset_label: str) -> str:
        """`dataset_label` as the figures print it: marked with the preset's tag where it has one
        ("ML-100K (100,000 ratings) [workshop budgets]")."""
        return f"{dataset_label} [{self.tag}]" if self.tag else dataset_label

    def train_overrides(self) -> dict[str, Any]:
        """`TrainConfig.for_dataset(name, **budgets.train_overrides())`: the time budget and the validation sample
        where the preset sets them (nothing on `small`, so the dataset's defaults stay as they were)."""
        overrides: dict[str, Any] = {}
        if self.pinsage_seconds is not None:
            overrides["time_budget_s"] = self.pinsage_seconds
        if self.val_users is not None:
            overrides["val_users"] = self.val_users
        if self.sampled:
            overrides.update(loss="sampled_softmax", neighbour_pool_uses=SAMPLED_POOL_USES,
                             uniform_negatives=SAMPLED_UNIFORM_NEGATIVES)
        return overrides

    def sequence_overrides(self) -> dict[str, Any]:
        """`SequenceConfig.for_dataset(name, **budgets.sequence_overrides())`: the training budget, the sampled
        softmax and the validation sample where the preset sets them (nothing on `small`)."""
        overrides: dict[str, Any] = {}
        if self.sequence_seconds is not None:
            overrides["time_budget_s"] = self.sequence_seconds
        if self.sampled:
            overrides["uniform_negatives"] = SEQUENCE_UNIFORM_NEGATIVES
        if self.val_users is not None:
            overrides["val_users"] = self.val_users
        return overrides

    def describe(self) -> str:
        """Two lines for the top of a notebook: the preset, why, and each budget; a third with notebook 03's other
        bounds where the preset sets any."""
        def users(n: int | None) -> str:
            return "all" if n is None else f"{n:,} of {self.n_users:,}"

        budget = "the dataset's default" if self.pinsage_seconds is None else f"{self.pinsage_seconds:.0f} s"
        compare = f"{self.compare_steps} steps per loss" if self.compare_steps else "skipped"
        why = "; RECSYS_PRESET overrides it" if self.chosen_by == "catalogue size" else ""
        objective = "sampled softmax" if self.sampled else "softmax over all movies"
        per_notebook = ("" if self.notebook_seconds is None else "\nbudget per notebook (01-07): " + ", ".join(
            f"{s:.0f} s" for s in self.notebook_seconds) + f"; {sum(self.notebook_seconds):.0f} s in all")
        sequence = "" if self.sequence_seconds is None else f" | notebook 04: {self.sequence_seconds:.0f} s"
        bounds = []
        if self.hand_step_movies is not None:
            bounds.append(f"section 3's step by hand on {self.hand_step_movies:,} of {self.n_movies:,} movies")
        if self.knn_recent is not None:
            bounds.append(f"item-kNN on each user's latest {self.knn_recent} training ratings")
        if self.new_movie_users is not None:
            bounds.append(f"new-movie demo on {users(self.new_movie_users)} users")
        bounded = "" if not bounds else "\nalso bounded: " + " | ".join(bounds)
        return (f"preset {self.preset!r} (by {self.chosen_by}: {self.n_movies:,} movies, {self.n_users:,} users{why})\n"
                f"objective: {objective} | PinSage budget {budget} | section 4: {compare} | next-movie [no graph]: "
                f"{self.next_movie_steps:,} steps | validation users per epoch: {users(self.val_users)} | "
                f"users in metrics.json: {users(self.eval_users)}{sequence}{per_notebook}{bounded}")


def preset_for(n_movies: int, name: str = "auto") -> Preset:
    """The row named `name`, or with "auto" the first row picked by size whose `max_movies` holds `n_movies`."""
    if name != "auto":
        for preset in PRESETS:
            if preset.name == name:
                return preset
        raise PresetError(f"preset {name!r}: use one of auto, {', '.join(p.name for p in PRESETS)}")
    if n_movies < 1:
        raise PresetError(f"n_movies={n_movies}: a catalogue has at least one movie")
    return next(p for p in PRESETS if p.by_size and (p.max_movies is None or n_movies <= p.max_movies))


def next_movie_steps(n_movies: int, seconds: float) -> int:
    """Steps of the next-movie baseline that fit in about `seconds` with `n_movies` movies (within
    `MIN_NEXT_MOVIE_STEPS`..2,000)."""
    steps = int(seconds / (NEXT_MOVIE_SECONDS_PER_MOVIE * max(n_movies, 1)))
    return max(MIN_NEXT_MOVIE_STEPS, min(2_000, steps))


def budgets_for(settings: Settings | None, n_movies: int, n_users: int, preset: str | None = None) -> Budgets:
    """The budgets for a dataset of `n_movies` movies and `n_users` users: the preset `preset`, else
    `settings.preset` (`RECSYS_PRESET`), where "auto" picks by catalogue size."""
    name = preset or (settings.preset if settings is not None else "auto")
    row = preset_for(n_movies, name)

    def cap(limit: int | None, size: int = n_users) -> int | None:
        return None if limit is None or size <= limit else limit

    steps = row.next_movie_steps if row.next_movie_steps is not None else next_movie_steps(n_movies,
                                                                                          row.next_movie_seconds)
    return Budgets(preset=row.name, chosen_by="catalogue size" if name == "auto" else "RECSYS_PRESET",
                   n_movies=n_movies, n_users=n_users, pinsage_seconds=row.pinsage_seconds,
                   compare_steps=row.compare_steps, next_movie_steps=steps, val_users=cap(row.val_users),
                   eval_users=cap(row.eval_users), sampled=sampled_objective(row, n_movies, name == "auto"),
                   sequence_seconds=row.sequence_seconds, notebook_seconds=row.notebook_seconds, tag=row.label,
                   hand_step_movies=cap(row.hand_step_movies, n_movies), knn_recent=row.knn_recent,
                   new_movie_users=cap(row.new_movie_users))


def sampled_objective(row: Preset, n_movies: int, by_size: bool) -> bool:
    """Whether `row` trains with a sampled softmax: by the catalogue's size when the preset was picked by size
    (or is not a size row, as `workshop`), else by the largest catalogue the named preset is for (so
    `RECSYS_PRESET=large` samples on any dataset)."""
    if by_size or not row.by_size:
        return n_movies > SAMPLED_SOFTMAX_ABOVE_MOVIES
    return row.max_movies is None or row.max_movies > SAMPLED_SOFTMAX_ABOVE_MOVIES
def notebook_budgets(settings: Settings) -> dict[str, float]:
    """Wall-clock budget per notebook path of the series under the preset `settings.preset` names (empty where
    it sets none, "auto" included): what `scripts/run.sh` writes beside each notebook's seconds."""
    row = preset_for(1, settings.preset)
    if row.notebook_seconds is None:
        return {}
    return {stage.notebook: seconds for stage, seconds in zip(SERIES, row.notebook_seconds, strict=True)}


def main() -> None:
    """`python -m helpers.presets`: the dataset the settings name, then each notebook's budget ("-": none), one
    per line, tab-separated."""
    settings = get_settings()
    budgets = notebook_budgets(settings)
    print(settings.dataset)
    for stage in SERIES:
        print(f"{stage.notebook}\t{budgets.get(stage.notebook, '-')}")


if __name__ == "__main__":
    main()
