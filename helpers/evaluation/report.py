"""`metrics.json`: every model's figures per protocol, split and slice, and a readable table of them."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
import pandas as pd
from helpers.artifacts import atomic_path, write_manifest
from helpers.config import Settings
from helpers.evaluation.metrics import K_DEFAULT, METRICS
from helpers.evaluation.protocols import EvaluationError, HISTORY_LENGTH, MetricsTable, PROTOCOL_DESCRIPTIONS, SPLIT_DESCRIPTION


METRICS_FILE = "metrics.json"


def metrics_path(settings: Settings) -> Path:
    return settings.artifacts_dir / METRICS_FILE


def write_metrics(settings: Settings, table: MetricsTable, *, k: int = K_DEFAULT, history: int = HISTORY_LENGTH,
                  dataset_label: str | None = None, split: str = SPLIT_DESCRIPTION,
                  inputs: dict[str, Path] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write `artifacts_dir/metrics.json` atomically with its manifest (stage "model"):
    `{"dataset", "dataset_label", "split", "k", "seed", "history", "protocols", "n_users": {split: n},
    "models": {model: {protocol: {split: {metric: value, metric_stderr: value}}}}, ...extra}`."""
    if not table:
        raise EvaluationError("the metrics table is empty: evaluate at least one model before writing metrics.json")
    n_users: dict[str, int] = {}
    models: dict[str, Any] = {}
    for model, protocols in table.items():
        models[model] = {}
        for protocol, splits in protocols.items():
            models[model][protocol] = {}
            for split, metrics in splits.items():
                n = int(metrics.get("n_users", 0))
                if n_users.setdefault(split, n) != n:
                    raise EvaluationError(f"{model}/{protocol}/{split} was scored on {n} users, others on "
                                          f"{n_users[split]}: evaluate every model on the same split")
                models[model][protocol][split] = {m: v for m, v in metrics.items() if m != "n_users"}
    document = {
        "dataset": settings.dataset,
        "dataset_label": dataset_label or settings.dataset,
        "split": split,
        "k": k,
        "seed": settings.seed,
        "history": history,
        "protocols": {p: d.format(history=history) for p, d in PROTOCOL_DESCRIPTIONS.items()},
        "tie_breaking": "random, in expectation",
        "stderr": "std(per-user values, ddof=1) / sqrt(n_users)",
        "n_users": n_users,
        "models": models,
        **(extra or {}),
    }
    path = metrics_path(settings)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2))
    write_manifest(path, "model", settings, inputs=inputs, extra={"k": k, "history": history})
    return path


def metrics_frame(table: MetricsTable | Mapping[str, Any], k: int = K_DEFAULT, numeric: bool = False,
                  digits: int = 3) -> pd.DataFrame:
    """A readable DataFrame: rows (model, protocol), columns (split, metric), cells "0.154 ± 0.007"
    (or the bare means with `numeric=True`). Accepts a table or the dict read from metrics.json."""
    if "models" in table and isinstance(table.get("models"), Mapping):
        k = int(table.get("k", k))
        table = table["models"]
    labels = {"hr": f"HR@{k}", "ndcg": f"NDCG@{k}", "recall": f"Recall@{k}"}
    rows: dict[tuple[str, str], dict[tuple[str, str], Any]] = {}
    columns: list[tuple[str, str]] = []
    for model, protocols in table.items():
        for protocol, splits in protocols.items():
            row = rows.setdefault((model, protocol), {})
            for split, metrics in splits.items():
                for name in METRICS:
                    key = f"{name}@{k}"
                    if key not in metrics:
                        continue
                    mean, err = metrics[key], metrics.get(f"{key}_stderr", float("nan"))
                    column = (split, labels[name])
                    row[column] = mean if numeric else f"{mean:.{digits}f} ± {err:.{digits}f}"
                    if column not in columns:
                        columns.append(column)
    frame = pd.DataFrame([rows[key] for key in rows], columns=pd.MultiIndex.from_tuples(columns, names=["split", "metric"]),
                         index=pd.MultiIndex.from_tuples(list(rows), names=["model", "protocol"]))
    return frame

