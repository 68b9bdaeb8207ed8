"""The sequence model in `metrics.json` beside notebook 03's models (schema 2, `helpers.evaluation.report`).

`pinsage-sequence` is scored under protocol "history" (the last 10 movies, the queries every model of notebook 03
was asked with) and under its own protocol `history-<N>` (its N, with its own history length in `protocols`),
where the mean of PinSage's query vectors and popularity are scored on the same queries beside it. Validation asks
with training movies only; test adds the validation movie, without retraining (`helpers.evaluation`, chained).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from helpers.config import Settings
from helpers.evaluation.protocols import (
    HISTORY_LENGTH,
    MetricsTable,
    per_user_values,
    prepare_evaluation,
    summarise,
)
from helpers.evaluation.report import metrics_records, read_metrics, write_metrics

MODEL_NAME = "pinsage-sequence"
STANDARD_KEYS = ("schema_version", "dataset", "dataset_label", "seed", "k", "split", "tie_breaking", "stderr",
                 "protocols", "results")


def own_protocol(length: int) -> str:
    """The protocol name of the model's own history length, e.g. "history-50"."""
    return f"history-{length}"


class SequenceEvaluation(NamedTuple):
    """What `evaluate_sequence` scored: the summaries and each user's values behind them."""

    table: MetricsTable  # table[model][protocol][split][metric], as `evaluate_models` makes it
    per_user: dict[tuple[str, str, str], pd.DataFrame]  # (model, protocol, split) -> `per_user_values`' frame


def evaluate_sequence(scorers: Mapping[str, Callable[[np.ndarray], np.ndarray]], gd: Any, length: int,
                      splits: tuple[str, ...] = ("val", "test")) -> SequenceEvaluation:
    """`scorers` (name -> scorer) under "history" (10 movies) and `history-<length>`: the summaries and the
    per-user values, which paired comparisons between two models need (`helpers.evaluation.slices`)."""
    data = prepare_evaluation(gd, max_history=max(50, length))
    protocols = (("history", HISTORY_LENGTH), (own_protocol(length), length))
    per_user = {(name, protocol, split): per_user_values(scorer, data, split, "history", history=history)
                for name, scorer in scorers.items() for protocol, history in protocols for split in splits}
    table: MetricsTable = {name: {protocol: {split: summarise(per_user[(name, protocol, split)]) for split in splits}
                                  for protocol, _ in protocols}
                           for name in scorers}
    return SequenceEvaluation(table, per_user)


def add_to_metrics(settings: Settings, table: MetricsTable, length: int, inputs: dict[str, Path] | None = None,
                   extra: dict[str, Any] | None = None) -> Path:
    """Add `table` to notebook 03's `metrics.json`: its records of protocol "history" for models notebook 03 did
    not score, and every record of `history-<length>`; a re-run replaces what an earlier run of this added."""
    document = read_metrics(settings, inputs=inputs)
    new = metrics_records(table)
    theirs = [r for r in document["results"] if r["protocol"] != own_protocol(length) and r["model"] != MODEL_NAME]
    mine = [r for r in new if r["protocol"] == own_protocol(length) or r["model"] == MODEL_NAME]
    protocols = {name: int(p["history"]) for name, p in document["protocols"].items()}
    protocols[own_protocol(length)] = length
    kept = {key: value for key, value in document.items() if key not in STANDARD_KEYS}
    return write_metrics(settings, theirs + mine, k=document["k"], protocols=protocols,
                         dataset_label=document["dataset_label"], split=document["split"], inputs=inputs,
                         extra={**kept, **(extra or {})})
