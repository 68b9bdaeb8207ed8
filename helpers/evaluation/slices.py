"""Slices of the evaluated users (where a model helps, not only whether) and paired intervals between two models.

A slice is a group of a split's users, by their held-out target and their query (protocol "latest": the movie
just before the target):

* `target <20`, `target 20-50`, `target 50-200`, `target >=200`: the target's number of training ratings;
* `query <50`: the query movie has fewer than 50 training ratings;
* `target time != query time`: the target was rated in another second than the query. On ML-1M 53.5% of
  consecutive ratings share a second and the split orders those by movie id, which order-based models can learn
  (MEASURING.md, "Artefacts of the data"); this slice is free of it.

`slice_users(gd, split)` gives each slice's user node indices, usable as `users=` of `evaluate_scores` and
`evaluate_models`. `slice_metrics` scores every model once per split and aggregates per slice (records for
`metrics.json`), on every user or, with `sample` and `seed`, on the fixed subset `evaluate_models` ranks with the
same two (so the slices of a large dataset cost what its metrics.json costs); `paired_difference` compares two
models' per-user values, and `paired_slices` does so on each slice: the mean per-user difference, its 95% interval
from `scipy.stats.bootstrap` over users (10,000 resamples, fixed seed, MEASURING.md), n, the smallest difference
the users can detect (2.8 x the standard error of the difference: 80% power at 5%), and the word.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from helpers.evaluation.metrics import K_DEFAULT, EvaluationError
from helpers.evaluation.protocols import SPLITS, EvaluationData, per_user_values, prepare_evaluation, summarise
from helpers.evaluation.report import ALL_USERS, MetricsRecord

POPULARITY_BINS: tuple[tuple[str, int, float], ...] = (
    ("target <20", 0, 20), ("target 20-50", 20, 50), ("target 50-200", 50, 200), ("target >=200", 200, math.inf))
RARE_QUERY = 50
SLICES: tuple[str, ...] = (ALL_USERS, *(name for name, _, _ in POPULARITY_BINS), "query <50",
                           "target time != query time")
RESAMPLES = 10_000
DETECTABLE = 2.8  # smallest detectable difference = 2.8 x its standard error (80% power, two-sided 5%)


def _last_times(frame: pd.DataFrame) -> pd.Series:
    return frame.groupby("user")["timestamp"].max()


def slice_users(gd: Any, split: str, data: EvaluationData | None = None) -> dict[str, np.ndarray]:
    """User node indices of each slice of `split` ("val" or "test"), `SLICES` in order (see the module docstring).
    `gd` is a `GraphData` (its frames give the popularity and the times); `data` its `prepare_evaluation`, if
    already made."""
    if split not in SPLITS:
        raise EvaluationError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}")
    data = prepare_evaluation(gd) if data is None else data
    users, targets = data.targets[split]
    popularity = np.bincount(gd.train["movie"].to_numpy(np.int64), minlength=data.n_movies)
    queries = data.queries(split, users, "latest")[:, -1]
    frame = gd.split(split).set_index("user")
    target_time = frame.loc[users, "timestamp"].to_numpy()
    query_frame = gd.val if (split == "test" and data.chained) else gd.train
    query_time = _last_times(query_frame).reindex(users).to_numpy()
    out = {ALL_USERS: users}
    for name, low, high in POPULARITY_BINS:
        out[name] = users[(popularity[targets] >= low) & (popularity[targets] < high)]
    out["query <50"] = users[popularity[queries] < RARE_QUERY]
    out["target time != query time"] = users[target_time != query_time]
    return out


def slice_metrics(models: Mapping[str, Callable[[np.ndarray], np.ndarray]], gd: Any,
                  splits: Sequence[str] = SPLITS, k: int = K_DEFAULT, protocol: str = "latest",
                  sample: int | None = None, seed: int = 0, data: EvaluationData | None = None
                  ) -> tuple[list[MetricsRecord], dict[tuple[str, str], pd.DataFrame]]:
    """Every model scored once per split (protocol `protocol`), aggregated per slice: `metrics.json` records
    (slice "all" included) and the per-user values by (model, split) for `paired_slices`. `sample`, `seed`: only
    that fixed subset of each split's users (`sample_rows`, the users `evaluate_models` ranks with the same two).
    `data`: `gd`'s `prepare_evaluation`, if already made."""
    data = prepare_evaluation(gd) if data is None else data
    per_user = {(name, split): per_user_values(scorer, data, split, protocol, k, sample=sample, seed=seed)
                for name, scorer in models.items() for split in splits}
    records: list[MetricsRecord] = []
    for split in splits:
        for slice_name, users in slice_users(gd, split, data).items():
            for name in models:
                values = per_user[(name, split)]
                summary = summarise(values.loc[values.index.isin(users)])
                n = int(summary.pop("n_users"))
                records.append({"model": name, "protocol": protocol, "split": split, "slice": slice_name,
                                "n_users": n, "metrics": summary})
    return records, per_user


def paired_interval(differences: np.ndarray, resamples: int = RESAMPLES, seed: int = 0,
                    confidence: float = 0.95) -> tuple[float, float]:
    """The `confidence` interval of the mean of per-user `differences`: `scipy.stats.bootstrap` (percentile)."""
    differences = np.asarray(differences, dtype=np.float64)
    if len(differences) < 2:
        return float("nan"), float("nan")
    if np.all(differences == differences[0]):  # no spread: the bootstrap distribution is one point
        return float(differences[0]), float(differences[0])
    result = stats.bootstrap((differences,), np.mean, n_resamples=resamples, confidence_level=confidence,
                             method="percentile", random_state=np.random.default_rng(seed), vectorized=True)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def verdict(low: float, high: float, margin: float = 0.0) -> str:
    """MEASURING.md's words for an interval of a - b: "above", "below", "non-inferior" (with `margin` > 0) or "tie"."""
    if math.isnan(low):
        return "no users"
    if low > 0:
        return "above"
    if margin > 0 and low >= -margin:
        return "non-inferior"
    return "below" if high < 0 else "tie"


class PairedDifference(NamedTuple):
    """Model a minus model b, user by user (`paired_difference`)."""

    n: int  # the users both models were scored on
    difference: float  # the mean per-user difference
    low: float  # its 95% interval (`paired_interval`)
    high: float
    detectable: float  # the smallest difference these users can detect: 2.8 x the difference's standard error
    verdict: str  # MEASURING.md's word (`verdict`)


def paired_difference(a: pd.Series, b: pd.Series, margin: float = 0.0, resamples: int = RESAMPLES,
                      seed: int = 0) -> PairedDifference:
    """Per-user values `a` minus `b` (Series indexed by user, as `per_user_values` gives them; only the users both
    have count): the mean difference, its paired 95% interval, the smallest detectable difference and the word."""
    joined = pd.concat({"a": a, "b": b}, axis=1, join="inner")
    differences = (joined["a"] - joined["b"]).to_numpy(dtype=np.float64)
    n = len(differences)
    low, high = paired_interval(differences, resamples, seed)
    se = float(differences.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return PairedDifference(n, float(differences.mean()) if n else float("nan"), low, high, DETECTABLE * se,
                            verdict(low, high, margin))


def paired_slices(per_user: Mapping[tuple[str, str], pd.DataFrame], gd: Any, a: str, b: str, split: str = "val",
                  metric: str = f"hr@{K_DEFAULT}", resamples: int = RESAMPLES, seed: int = 0,
                  margin: float = 0.0, data: EvaluationData | None = None) -> pd.DataFrame:
    """Model `a` against model `b` on each slice of `split` (`paired_difference`): rows by slice, columns n, a, b,
    a - b, low, high (the paired 95% interval), detectable (2.8 x the difference's standard error), verdict.
    `data`: `gd`'s `prepare_evaluation`, if already made."""
    for name in (a, b):
        if (name, split) not in per_user:
            raise EvaluationError(f"no per-user values of {name!r} on {split}: score it with slice_metrics first")
    joined = pd.concat({"a": per_user[(a, split)][metric], "b": per_user[(b, split)][metric]}, axis=1, join="inner")
    rows = []
    for slice_name, users in slice_users(gd, split, data).items():
        part = joined.loc[joined.index.isin(users)]
        paired = paired_difference(part["a"], part["b"], margin, resamples, seed)
        rows.append({"slice": slice_name, "n": paired.n, a: part["a"].mean(), b: part["b"].mean(),
                     f"{a} - {b}": paired.difference, "low": paired.low, "high": paired.high,
                     "detectable": paired.detectable, "verdict": paired.verdict})
    return pd.DataFrame(rows).set_index("slice")


def comparison_records(table: pd.DataFrame, a: str, b: str, split: str, metric: str,
                       protocol: str = "latest") -> list[dict[str, Any]]:
    """`paired_slices` rows as JSON-ready dicts (metrics.json's `comparisons`)."""
    return [{"a": a, "b": b, "protocol": protocol, "split": split, "slice": name, "metric": metric,
             "n_users": int(row["n"]), "difference": _num(row[f"{a} - {b}"]), "low": _num(row["low"]),
             "high": _num(row["high"]), "detectable": _num(row["detectable"]), "verdict": row["verdict"],
             "interval": f"scipy.stats.bootstrap percentile, {RESAMPLES} resamples over users, 95%"}
            for name, row in table.iterrows()]


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 6)
