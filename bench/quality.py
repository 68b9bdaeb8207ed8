"""Quality benchmark: PinSage against the baselines of `helpers.training.baselines.fit_baselines` on the same time
split.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.quality --dataset ml-1m --data-dir ../shared/movielens/ml-1m
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.quality --dataset ml-100k --data-dir ../shared/movielens/ml-100k

Loads the data (helpers.data), builds the graph (helpers.graph), fits the baselines, trains PinSage with the
`TrainConfig` defaults of the dataset (helpers.training.loop; `--time-budget`, `--positives`, `--train-config`
override) and prints HR/NDCG/Recall@K +- standard error for val and test, protocols (a) latest movie and
(b) history, the PinSage / item-kNN ratios, training time and peak memory (ru_maxrss). PinSage's row scores with its
query and candidate vectors (protocol b: the mean of the liked movies' query vectors, as the engine does); the
`pinsage [cosine, ...]` rows score the unit movie embeddings by cosine instead and fuse the history by sum or
max, exhaustive and cut at `--per-movie-limit` hits per movie as a vector search would.

Two objectives side by side (`--versus JSON`, MEASURING.md): per seed of `--seeds`, PinSage is trained twice on the
same graph, with `--train-config` (A) and with `--train-config` updated by `--versus` (B), each user's HR@10 and
NDCG@10 kept on val and test (protocol history), averaged over the seeds, and B - A printed with its 95% paired
bootstrap interval (`bench.sequence.paired`: scipy.stats.bootstrap, 10,000 resamples) and the words of the
measuring guide at margin `--margin`. For the objective by catalogue size (issue 19):

    flock artifacts/bench.lock .venv/bin/python -m bench.quality --dataset ml-1m \
        --data-dir ../shared/movielens/ml-1m --seeds 1 2 3 --versus '{"loss": "sampled_softmax"}'

PinSage's best epoch is chosen by validation HR@10, so its val figures are slightly optimistic; test is not
used for any choice. Artifacts (model, metrics.json) go to `--artifacts` or to a temporary folder that is
deleted afterwards, so the project's own artifacts are never overwritten; the figures also go to `--out` as JSON.
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report import add_out_option, start, write_json


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-1m", help="MovieLens name (default ml-1m)")
    parser.add_argument("--data-dir", default=None, help="folder with the dataset files (default: download/cache)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="PinSage training budget in seconds (default: TrainConfig's, 600 s on real data)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--positives", default=None, help="engagement or random_walk (default: TrainConfig's)")
    parser.add_argument("--train-config", type=json.loads, default={}, metavar="JSON",
                        help="other TrainConfig fields that differ from the dataset's defaults, e.g. "
                             "'{\"loss\": \"max_margin\", \"directed\": false}'")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--history", type=int, default=None, help="protocol (b): last N training movies (default 10)")
    parser.add_argument("--per-movie-limit", type=int, default=50,
                        help="hits per liked movie for the cut fusion rows (as a vector search's limit)")
    parser.add_argument("--artifacts", default=None, help="keep model and metrics.json here (default: a temp folder)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars or per-epoch lines")
    parser.add_argument("--next-movie-steps", type=int, default=None,
                        help="training steps of next-movie [no graph] (default: fit_baselines')")
    parser.add_argument("--versus", type=json.loads, default=None, metavar="JSON",
                        help="train B = --train-config updated by these knobs beside A, paired per user, e.g. "
                             "'{\"loss\": \"sampled_softmax\"}' (no baselines then)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="--versus: seeds to average each user over (default: --seed)")
    parser.add_argument("--margin", type=float, default=0.005, help="--versus: the non-inferiority margin")
    add_out_option(parser, "quality")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, artifacts_root: Path) -> dict[str, Any]:
    from helpers.config import get_settings
    from helpers.data.loader import load_movielens
    from helpers.evaluation.baselines import ItemKNNBaseline
    from helpers.evaluation.protocols import (
        HISTORY_LENGTH,
        PROTOCOL_HISTORY,
        SPLITS,
        evaluate_models,
        prepare_evaluation,
    )
    from helpers.evaluation.report import write_metrics
    from helpers.evaluation.scorers import embedding_scorer, query_candidate_scorer
    from helpers.graph.build import build_graph
    from helpers.plots import dataset_label
    from helpers.runtime import seed_everything, set_threads
    from helpers.training.baselines import fit_baselines
    from helpers.training.config import TrainConfig
    from helpers.training.inference import infer_movie_embeddings, infer_movie_vectors
    from helpers.training.loop import train_pinsage

    history = args.history or HISTORY_LENGTH
    settings = get_settings(dataset=args.dataset, seed=args.seed, artifacts_root=artifacts_root,
                            data_dir=args.data_dir)
    set_threads(settings.threads)
    seed_everything(settings.seed)
    started = time.perf_counter()
    ml = load_movielens(args.dataset, args.data_dir, cache_dir=settings.cache_dir, seed=settings.seed)
    gd = build_graph(ml)
    label = dataset_label(ml)
    load_s = time.perf_counter() - started

    started = time.perf_counter()
    baselines = fit_baselines(gd, next_movie_steps=args.next_movie_steps, seed=settings.seed)
    fit_s = time.perf_counter() - started

    overrides: dict[str, Any] = dict(args.train_config)
    if args.time_budget is not None:
        overrides["time_budget_s"] = args.time_budget
    if args.positives is not None:
        overrides["positives"] = args.positives
    config = TrainConfig.for_dataset(args.dataset, **overrides)
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    result = train_pinsage(gd, settings, config, resume=False, progress=not args.no_progress)
    train_s = time.perf_counter() - started
    rss_train = peak_rss_mib()
    movie_vectors = infer_movie_vectors(result.model, gd, seed=settings.seed)
    vectors = infer_movie_embeddings(result.model, gd, seed=settings.seed)

    started = time.perf_counter()
    data = prepare_evaluation(gd, max_history=max(history, 50))
    limit = args.per_movie_limit
    models = {"pinsage": query_candidate_scorer(movie_vectors.query, movie_vectors.candidate), **baselines}
    table = evaluate_models(models, data, k=args.k, history=history)
    variants = {"pinsage [cosine, sum]": embedding_scorer(vectors, "sum"),
                "pinsage [cosine, max]": embedding_scorer(vectors, "max"),
                f"pinsage [cosine, sum, {limit}/movie]": embedding_scorer(vectors, "sum", per_movie_limit=limit),
                f"pinsage [cosine, max, {limit}/movie]": embedding_scorer(vectors, "max", per_movie_limit=limit),
                "item-knn [max]": ItemKNNBaseline("max").fit(gd)}
    table.update(evaluate_models(variants, data, protocols=("history",), k=args.k, history=history))
    eval_s = time.perf_counter() - started

    info = {"dataset_label": label, "seed": settings.seed, "k": args.k, "history": history,
            "train_config": config.to_dict(), "best_epoch": result.best_epoch, "epochs": len(result.history),
            "train_seconds": round(train_s, 1), "load_graph_seconds": round(load_s, 1),
            "baseline_fit_seconds": round(fit_s, 2),
            "next_movie": {**baselines["next-movie [no graph]"].settings(),
                           "seconds": round(baselines["next-movie [no graph]"].seconds, 1)},
            "evaluation_seconds": round(eval_s, 2),
            "peak_rss_mib_before_training": round(rss_before), "peak_rss_mib_after_training": round(rss_train),
            "peak_rss_mib": round(peak_rss_mib()), "n_users": {s: len(gd.split(s)) for s in SPLITS},
            "n_train": len(gd.train), "n_movies": gd.n_movies,
            "steps": int(sum(h["steps"] for h in result.history))}
    if args.artifacts:
        info["metrics_path"] = str(write_metrics(settings, table, k=args.k,
                                                 protocols={**PROTOCOL_HISTORY, "history": history},
                                                 dataset_label=label, extra={"benchmark": info}))
    return {"table": table, "info": info}


def run_versus(args: argparse.Namespace, artifacts_root: Path) -> dict[str, Any]:
    """A and B trained per seed on one graph; B - A per user (HR@10, NDCG@10, protocol history), paired."""
    from bench.sequence import paired, per_user
    from helpers.config import get_settings
    from helpers.data.loader import load_movielens
    from helpers.evaluation.protocols import HISTORY_LENGTH, prepare_evaluation
    from helpers.evaluation.scorers import query_candidate_scorer
    from helpers.graph.build import build_graph
    from helpers.runtime import seed_everything, set_threads
    from helpers.training.config import TrainConfig
    from helpers.training.inference import infer_movie_vectors
    from helpers.training.loop import train_pinsage

    history = args.history or HISTORY_LENGTH
    base = dict(args.train_config)
    if args.time_budget is not None:
        base["time_budget_s"] = args.time_budget
    configs = {"A": TrainConfig.for_dataset(args.dataset, **base),
               "B": TrainConfig.for_dataset(args.dataset, **{**base, **args.versus})}
    users: dict[str, dict[str, list[dict[str, np.ndarray]]]] = {n: {"val": [], "test": []} for n in configs}
    runs = []
    for seed in args.seeds or [args.seed]:
        settings = get_settings(dataset=args.dataset, seed=seed, data_dir=args.data_dir,
                                artifacts_root=artifacts_root / f"seed{seed}")
        set_threads(settings.threads)
        ml = load_movielens(args.dataset, args.data_dir, cache_dir=settings.cache_dir, seed=settings.seed)
        gd = build_graph(ml)
        data = prepare_evaluation(gd, max_history=max(history, 50))
        for name, config in configs.items():
            seed_everything(seed)
            started = time.perf_counter()
            result = train_pinsage(gd, settings, config, resume=False, progress=not args.no_progress)
            seconds = time.perf_counter() - started
            vectors = infer_movie_vectors(result.model, gd, seed=seed)
            scorer = query_candidate_scorer(vectors.query, vectors.candidate)
            for split in ("val", "test"):
                users[name][split].append(per_user(scorer, data, split, "history", history))
            runs.append({"model": name, "seed": seed, "seconds": round(seconds, 1), "best_epoch": result.best_epoch,
                         "steps": int(sum(h["steps"] for h in result.history))})
    comparison = {}
    for split in ("val", "test"):
        for metric in ("hr", "ndcg"):
            mean = {n: np.mean([u[metric] for u in users[n][split]], axis=0) for n in configs}
            result = paired(mean["B"], mean["A"])
            words = ("above" if result["low"] > 0 else "non-inferior" if result["low"] >= -args.margin
                     else "tie" if result["high"] >= 0 else "below")
            comparison[f"{split} {metric}@10"] = {"A": float(mean["A"].mean()), "B": float(mean["B"].mean()),
                                                   **result, "words": words}
    return {"configs": {n: c.to_dict() for n, c in configs.items()}, "versus": args.versus, "runs": runs,
            "margin": args.margin, "paired": comparison}


def report_versus(outcome: dict[str, Any], command: str) -> str:
    frame = pd.DataFrame(outcome["paired"]).T[["A", "B", "diff", "low", "high", "n", "detectable", "words"]]
    return "\n".join([
        f"$ {command}",
        (f"B = A with {outcome['versus']}; margin {outcome['margin']}; protocol history; each user "
         "averaged over the seeds; B - A with its 95% paired bootstrap interval (10,000 resamples)"),
        pd.DataFrame(outcome["runs"]).to_string(index=False), "", frame.to_string()])


def ratios(table: dict[str, Any], k: int, over: str = "item-knn", model: str = "pinsage") -> pd.DataFrame:
    """`model` / `over` for each protocol, split and metric (same users, same split)."""
    rows = {}
    for protocol, splits in table[model].items():
        for split, metrics in splits.items():
            base = table[over][protocol][split]
            rows[(protocol, split)] = {f"{m.upper() if m != 'recall' else 'Recall'}@{k}":
                                       metrics[f"{m}@{k}"] / base[f"{m}@{k}"] if base[f"{m}@{k}"] else float("nan")
                                       for m in ("hr", "ndcg", "recall")}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["protocol", "split"])


def report(outcome: dict[str, Any], command: str) -> str:
    from helpers.evaluation.report import metrics_frame

    table, info = outcome["table"], outcome["info"]
    k = info["k"]
    config = info["train_config"]
    lines = [
        f"$ {command}",
        f"dataset: {info['dataset_label']}  seed: {info['seed']}  K={k}  protocol (b) history: last "
        f"{info['history']} training movies",
        f"users evaluated: val {info['n_users']['val']}, test {info['n_users']['test']}; movies {info['n_movies']}; "
        f"training edges {info['n_train']}",
        f"PinSage: positives={config['alternatives']['positives']} hidden={config['hidden']} layers={config['layers']} "
        f"time budget {config['time_budget_s']} s; {info['epochs']} epochs, {info['steps']} steps in "
        f"{info['train_seconds']} s, "
        f"best epoch {info['best_epoch']} (chosen on val HR@{k})",
        f"TrainConfig: {config}",
        f"peak memory (ru_maxrss): {info['peak_rss_mib_before_training']} MiB before training, "
        f"{info['peak_rss_mib_after_training']} MiB after training, {info['peak_rss_mib']} MiB at the end",
        f"load + graph {info['load_graph_seconds']} s, baselines fit {info['baseline_fit_seconds']} s, "
        f"evaluation of all rows {info['evaluation_seconds']} s",
        f"next-movie [no graph]: {info['next_movie']}",
        "",
        f"HR/NDCG/Recall@{k} +- standard error ({info['dataset_label']}); one held-out movie per user, so "
        "Recall = HR; pinsage history = mean of the liked movies' query vectors; [cosine, sum]/[cosine, max] = "
        "per-movie cosine fusion of the unit embeddings",
        metrics_frame(table, k=k).to_string(),
        "",
        f"PinSage / item-kNN ({info['dataset_label']})",
        ratios(table, k).round(2).to_string(),
    ]
    if "metrics_path" in info:
        lines += ["", f"metrics.json: {info['metrics_path']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    record = start("bench.quality", argv)
    args = parse_args(argv)
    runner, printer = (run_versus, report_versus) if args.versus else (run, report)
    if args.artifacts:
        outcome = runner(args, Path(args.artifacts).expanduser().resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
            outcome = runner(args, Path(tmp))
    print(printer(outcome, record.command))
    write_json(args.out, outcome, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
