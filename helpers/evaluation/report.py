"""`metrics.json`: every model's figures per protocol, split and slice, with the users behind each, and a readable
table of them.

Schema 2 (`SCHEMA_VERSION`)::

    {"schema_version": 2, "dataset", "dataset_label", "seed", "k", "split": <split description>,
     "tie_breaking", "stderr",
     "protocols": {protocol: {"history": <movies queried with>, "description"}},
     "results": [{"model", "protocol", "split", "slice", "n_users", "metrics": {"hr@10", "hr@10_stderr", ...}}],
     ...extra keys}

A slice is a group of the evaluated users ("all": every one of them); `n_users` is the number of users behind that
record's figures, so it may differ between splits, slices and protocols (but not between the models of one
protocol, split and slice: they are compared on the same users). In memory, `evaluate_models` gives a
`MetricsTable` (`table[model][protocol][split] -> metrics and n_users`) of the slice "all"; `metrics_records(table,
slice)` turns a table into records (concatenate the records of several slices), and `write_metrics` takes either.
`read_metrics(settings)` returns the document after the manifest and schema checks; `metrics_frame` shows a table,
records or a document.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from helpers.artifacts import StaleArtifactError, atomic_path, require, write_manifest
from helpers.config import Settings
from helpers.evaluation.metrics import K_DEFAULT, METRICS
from helpers.evaluation.protocols import (
    PROTOCOL_DESCRIPTIONS,
    PROTOCOL_HISTORY,
    SPLIT_DESCRIPTION,
    EvaluationError,
    MetricsTable,
)
from helpers.stages import notebook_for

METRICS_FILE = "metrics.json"
SCHEMA_VERSION = 2
ALL_USERS = "all"  # the slice of every evaluated user
RECORD_KEYS = ("model", "protocol", "split", "slice", "n_users", "metrics")


class MetricsRecord(TypedDict):
    """One figure set of `metrics.json`: `metrics` holds each metric and its `_stderr`, over `n_users` users."""

    model: str
    protocol: str
    split: str
    slice: str
    n_users: int
    metrics: dict[str, float]


def metrics_path(settings: Settings) -> Path:
    return settings.artifacts_dir / METRICS_FILE


def metrics_records(table: MetricsTable, slice: str = ALL_USERS) -> list[MetricsRecord]:
    """One record per model, protocol and split of `table` (from `evaluate_models`), all of slice `slice`."""
    records: list[MetricsRecord] = []
    for model, protocols in table.items():
        for protocol, splits in protocols.items():
            for split, metrics in splits.items():
                if "n_users" not in metrics:
                    raise EvaluationError(f"{model}/{protocol}/{split} has no n_users: score it with "
                                          "evaluate_scores or evaluate_models, which count the users")
                records.append({"model": model, "protocol": protocol, "split": split, "slice": slice,
                                "n_users": int(metrics["n_users"]),
                                "metrics": {name: float(v) for name, v in metrics.items() if name != "n_users"}})
    return records


def _is_document(results: Any) -> bool:
    return isinstance(results, Mapping) and ("results" in results or "schema_version" in results
                                             or "models" in results)


def _as_records(results: MetricsTable | Sequence[MetricsRecord] | Mapping[str, Any]) -> list[MetricsRecord]:
    if _is_document(results):
        if results.get("schema_version") != SCHEMA_VERSION or not isinstance(results.get("results"), list):
            raise EvaluationError(f"not a metrics.json of schema {SCHEMA_VERSION} (it has schema "
                                  f"{results.get('schema_version', 1)}): read it with read_metrics, or run "
                                  f"{notebook_for('model')} again to rewrite it")
        return list(results["results"])
    if isinstance(results, Mapping):
        return metrics_records(results)
    return list(results)


def check_records(records: Sequence[Mapping[str, Any]], protocols: Mapping[str, Any]) -> None:
    """Every record complete, once per (model, protocol, split, slice), of a protocol in `protocols`, and on as many
    users as the other models of its protocol, split and slice; else an `EvaluationError` that says what to fix."""
    seen: set[tuple[str, ...]] = set()
    users: dict[tuple[str, ...], tuple[str, int]] = {}
    for record in records:
        missing = [key for key in RECORD_KEYS if key not in record]
        if missing:
            raise EvaluationError(f"a metrics record lacks {missing}: build records with metrics_records(table, slice)")
        model, protocol, split, slice_ = (str(record[key]) for key in RECORD_KEYS[:4])
        name = f"{model}/{protocol}/{split}/{slice_}"
        if (model, protocol, split, slice_) in seen:
            raise EvaluationError(f"{name} appears twice: give each model, protocol, split and slice once")
        seen.add((model, protocol, split, slice_))
        if protocol not in protocols:
            raise EvaluationError(f"{name}: protocol {protocol!r} has no history length; pass "
                                  f"protocols={{..., {protocol!r}: <movies queried with>}}")
        n = int(record["n_users"])
        other, m = users.setdefault((protocol, split, slice_), (model, n))
        if m != n:
            raise EvaluationError(f"{name} was scored on {n} users, {other} on {m}: evaluate every model on the "
                                  "same users of the same split and slice")


def protocol_description(protocol: str, history: int) -> str:
    text = PROTOCOL_DESCRIPTIONS.get(protocol, "query = the user's last {history} movies before the target")
    return text.format(history=history)


def write_metrics(settings: Settings, results: MetricsTable | Sequence[MetricsRecord], *, k: int = K_DEFAULT,
                  protocols: Mapping[str, int] = PROTOCOL_HISTORY, dataset_label: str | None = None,
                  split: str = SPLIT_DESCRIPTION, inputs: dict[str, Path] | None = None,
                  extra: dict[str, Any] | None = None) -> Path:
    """Write `artifacts_dir/metrics.json` (schema 2, see the module docstring) atomically with its manifest (stage
    "model"). `results`: a `MetricsTable` (slice "all") or records (`metrics_records`); `protocols`: how many
    movies each protocol queried with (e.g. `{"latest": 1, "history": 10}`), the ones the results use are
    written; `extra`: more top-level keys."""
    records = _as_records(results)
    if not records:
        raise EvaluationError("the metrics table is empty: evaluate at least one model before writing metrics.json")
    check_records(records, protocols)
    used = dict.fromkeys(r["protocol"] for r in records)
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "dataset": settings.dataset,
        "dataset_label": dataset_label or settings.dataset,
        "seed": settings.seed,
        "k": k,
        "split": split,
        "tie_breaking": "random, in expectation",
        "stderr": "std(per-user values, ddof=1) / sqrt(n_users)",
        "protocols": {p: {"history": int(protocols[p]), "description": protocol_description(p, protocols[p])}
                      for p in used},
        "results": records,
    }
    clash = sorted(set(extra or {}) & set(document))
    if clash:
        raise EvaluationError(f"extra key(s) {clash} would replace metrics.json's own: give them other names")
    document.update(extra or {})
    path = metrics_path(settings)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2))
    write_manifest(path, "model", settings, inputs=inputs,
                   extra={"k": k, "schema_version": SCHEMA_VERSION, "protocols": {p: int(protocols[p]) for p in used}})
    return path


def read_metrics(settings: Settings, inputs: dict[str, Path] | None = None) -> dict[str, Any]:
    """The metrics.json document of `settings` (schema 2, see the module docstring), after the manifest check
    (dataset, seed, checksum and the `inputs` it was built from, as `helpers.artifacts.require`) and the schema's."""
    path = metrics_path(settings)
    require(path, "model", settings, inputs=inputs)
    document = json.loads(path.read_text())
    if document.get("schema_version") != SCHEMA_VERSION:
        raise StaleArtifactError(f"{path} has schema {document.get('schema_version', 1)}, this version reads schema "
                                 f"{SCHEMA_VERSION}: run {notebook_for('model')} again to rewrite it")
    check_records(document["results"], document["protocols"])
    return document


def metrics_frame(results: MetricsTable | Sequence[MetricsRecord] | Mapping[str, Any], k: int = K_DEFAULT,
                  numeric: bool = False, digits: int = 3, users: bool | None = None) -> pd.DataFrame:
    """A readable DataFrame: rows (model, protocol), with a third level `slice` when a slice other than "all" is
    there; columns (split, metric), cells "0.154 ± 0.007" (or the bare means with `numeric=True`). `users` adds a
    (split, "users") column with the users behind each row's figures; by default only where that number differs
    between the rows of a split. Takes a table (`evaluate_models`), records or a document (`read_metrics`)."""
    if _is_document(results):
        k = int(results.get("k", k))
    records = _as_records(results)
    if not records:
        raise EvaluationError("no figures to show: evaluate at least one model")
    labels = {"hr": f"HR@{k}", "ndcg": f"NDCG@{k}", "recall": f"Recall@{k}"}
    sliced = any(r["slice"] != ALL_USERS for r in records)
    rows: dict[tuple[str, ...], dict[tuple[str, str], Any]] = {}
    counts: dict[str, set[int]] = {}
    for record in records:
        key = (record["model"], record["protocol"]) + ((record["slice"],) if sliced else ())
        row = rows.setdefault(key, {})
        split, metrics = record["split"], record["metrics"]
        row[(split, "users")] = int(record["n_users"])
        counts.setdefault(split, set()).add(int(record["n_users"]))
        for name in METRICS:
            name_k = f"{name}@{k}"
            if name_k in metrics:
                mean, err = metrics[name_k], metrics.get(f"{name_k}_stderr", float("nan"))
                row[(split, labels[name])] = mean if numeric else f"{mean:.{digits}f} ± {err:.{digits}f}"
    names = ["model", "protocol", "slice"] if sliced else ["model", "protocol"]
    shown = [(split, label) for split in counts for label in ["users", *labels.values()]
             if (label != "users" or (users if users is not None else len(counts[split]) > 1))
             and any((split, label) in row for row in rows.values())]
    # rows in order of first appearance of the model, then the protocol, then the slice: a model's slices together
    first = [{part: i for i, part in enumerate(dict.fromkeys(key[level] for key in rows))}
             for level in range(len(names))]
    order = sorted(rows, key=lambda key: [first[level][part] for level, part in enumerate(key)])
    return pd.DataFrame([rows[key] for key in order],
                        columns=pd.MultiIndex.from_tuples(shown, names=["split", "metric"]),
                        index=pd.MultiIndex.from_tuples(order, names=names))
