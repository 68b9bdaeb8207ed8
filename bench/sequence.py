"""Sequence-model quality benchmark (issue 22): `pinsage-sequence` against the one-movie models on the same split.

    flock artifacts/bench.lock env OMP_NUM_THREADS=1 .venv/bin/python -m bench.sequence --sequence-threads 2 \\
        --dataset ml-1m --data-dir ../shared/movielens/ml-1m --seeds 1 2 3 --budget 600 --pinsage-budget 600

Per seed, in one command: load the data, build the graph, train PinSage (`--pinsage-budget` s) and infer its
vectors; fit the one-movie models (PinSage with the latest movie, `next-movie [no graph]`, `transitions [after]`);
score the mean and a recency-weighted mean of the last N query vectors (decay chosen on val); train the sequence
model's `--variants` at the same `--budget` (tuned: PinSage's candidate vectors as inputs, fine-tuned; frozen:
those inputs frozen; random: inputs started at random, "what the graph adds"; tuned-both: the candidate vectors
fine-tuned too). Every model keeps each user's HR@10
and NDCG@10 on val and test; the paired bootstrap (scipy.stats.bootstrap, 10,000 resamples, users averaged over
the seeds) compares `--compare` (default sequence [tuned]) with the best one-movie model chosen on val, overall and
on the slice of targets whose timestamp differs from the previous movie's (`../shared/MEASURING.md`).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import add_out_option, start, write_json

ONE_MOVIE = ("pinsage [latest]", "next-movie [no graph]", "transitions [after]")
DECAYS = (1.0, 0.9, 0.8, 0.7, 0.5, 0.3)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sequence", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="screen at one seed, confirm at three")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training per sequence variant")
    parser.add_argument("--pinsage-budget", type=float, default=None, help="PinSage's seconds (default TrainConfig's)")
    parser.add_argument("--length", type=int, default=50, help="N: the last N movies the sequence model reads")
    parser.add_argument("--variants", nargs="+", default=["tuned", "frozen", "random"],
                        choices=["tuned", "frozen", "random", "tuned-both"])
    parser.add_argument("--next-movie-steps", type=int, default=None)
    parser.add_argument("--sequence-threads", type=int, default=None,
                        help="PyTorch threads while the sequence model trains (it needs no DGL; default "
                             "RECSYS_SEQUENCE_THREADS)")
    parser.add_argument("--compare", default="sequence [tuned]")
    parser.add_argument("--no-progress", action="store_true")
    add_out_option(parser, "sequence")
    return parser.parse_args(argv)


def per_user(score_fn: Callable[[np.ndarray], np.ndarray], data: Any, split: str, protocol: str,
             history: int) -> dict[str, np.ndarray]:
    """Each user's HR@10 and NDCG@10 (`helpers.evaluation.metrics.rank_metrics`), in `data.targets[split]` order."""
    from helpers.evaluation.metrics import rank_metrics

    users, targets = data.targets[split]
    out: dict[str, list[np.ndarray]] = {"hr": [], "ndcg": []}
    for start_row in range(0, len(users), 512):
        batch = users[start_row:start_row + 512]
        scores = np.asarray(score_fn(data.queries(split, batch, protocol, history)))
        if not np.isfinite(scores).all():
            raise SystemExit(f"non-finite scores from a model on {split}: fix it before ranking")
        got = rank_metrics(scores, targets[start_row:start_row + 512], data.seen[split][batch].toarray(), 10)
        for name, values in out.items():
            values.append(got[name])
    return {name: np.concatenate(values) for name, values in out.items()}


def recency_scorer(query: np.ndarray, candidate: np.ndarray, decay: float) -> Callable[[np.ndarray], np.ndarray]:
    """The weighted mean of the history's query vectors, weight decay**age (the latest movie has age 0)."""
    def score(queries: np.ndarray) -> np.ndarray:
        n = queries.shape[1]
        weights = (decay ** np.arange(n - 1, -1, -1))[None, :] * (queries >= 0)
        vectors = query[np.maximum(queries, 0)] * weights[..., None]
        return (vectors.sum(1) / weights.sum(1, keepdims=True)) @ candidate.T
    return score


def changed_time_slice(gd: Any, data: Any, split: str) -> np.ndarray:
    """Per user of `data.targets[split]`: the target's timestamp differs from the previous movie's."""
    last_train = gd.train.groupby("user")["timestamp"].last()
    frame = gd.split(split).set_index("user")["timestamp"]
    users = data.targets[split][0]
    previous = last_train if split == "val" else gd.split("val").set_index("user")["timestamp"]
    return (frame.loc[users].to_numpy() != previous.reindex(users).to_numpy())


def pinsage_vectors(gd: Any, settings: Any, args: argparse.Namespace, seed: int) -> Any:
    """PinSage trained for `--pinsage-budget` s (the dataset's `TrainConfig` otherwise) and its inferred vectors."""
    from helpers.training.config import TrainConfig
    from helpers.training.inference import infer_movie_vectors
    from helpers.training.loop import train_pinsage

    overrides = {} if args.pinsage_budget is None else {"time_budget_s": args.pinsage_budget}
    pinsage = train_pinsage(gd, settings, TrainConfig.for_dataset(args.dataset, **overrides), resume=False,
                            progress=not args.no_progress)
    return infer_movie_vectors(pinsage.model, gd, seed=seed)


def train_variant(gd: Any, vectors: Any, variant: str, args: argparse.Namespace,
                  seed: int) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """One sequence variant over PinSage's `vectors` for `--budget` s: its scorer and what it reached."""
    from helpers.sequence.config import SequenceConfig
    from helpers.sequence.train import sequence_scorer, train_sequence_model
    from helpers.training.embeddings import MovieEmbeddings

    config = SequenceConfig(length=args.length, steps=10**9, time_budget_s=args.budget, eval_every=250,
                            tune_inputs=variant != "frozen", tune_outputs=variant == "tuned-both",
                            init="random" if variant == "random" else "candidate")
    result = train_sequence_model(gd, MovieEmbeddings(gd.movie_ids, vectors.candidate, vectors.query), config,
                                  seed=seed, progress=not args.no_progress)
    return sequence_scorer(result.model), {"steps": result.history[-1]["step"], "best_step": result.best_step,
                                           "seconds": round(result.seconds, 1), "curve": result.history}


def one_seed(args: argparse.Namespace, seed: int, root: Path) -> dict[str, Any]:
    from helpers.config import get_settings
    from helpers.data.loader import load_movielens
    from helpers.evaluation.protocols import prepare_evaluation
    from helpers.evaluation.scorers import query_candidate_scorer
    from helpers.graph.build import build_graph
    from helpers.runtime import seed_everything, set_threads
    from helpers.training.baselines import fit_baselines

    settings = get_settings(dataset=args.dataset, seed=seed, artifacts_root=root, data_dir=args.data_dir)
    set_threads(settings.threads)
    seed_everything(seed)
    gd = build_graph(load_movielens(args.dataset, args.data_dir, cache_dir=settings.cache_dir, seed=seed))
    data = prepare_evaluation(gd, max_history=max(50, args.length))
    started = time.perf_counter()
    vectors = pinsage_vectors(gd, settings, args, seed)
    info: dict[str, Any] = {"pinsage_seconds": round(time.perf_counter() - started, 1)}
    baselines = fit_baselines(gd, next_movie_steps=args.next_movie_steps, seed=seed)
    models: dict[str, tuple[Callable, str, int]] = {
        "pinsage [latest]": (query_candidate_scorer(vectors.query, vectors.candidate), "latest", 1),
        "next-movie [no graph]": (baselines["next-movie [no graph]"], "latest", 1),
        "transitions [after]": (baselines["transitions [after]"], "latest", 1),
        "mean": (query_candidate_scorer(vectors.query, vectors.candidate), "history", args.length)}
    best_decay = max(DECAYS, key=lambda d: per_user(recency_scorer(vectors.query, vectors.candidate, d), data,
                                                     "val", "history", args.length)["hr"].mean())
    models["recency"] = (recency_scorer(vectors.query, vectors.candidate, best_decay), "history", args.length)
    info["recency_decay"] = best_decay
    set_threads(args.sequence_threads or settings.sequence_threads)
    info["sequence_threads"] = args.sequence_threads or settings.sequence_threads
    for variant in args.variants:
        scorer, info[f"sequence [{variant}]"] = train_variant(gd, vectors, variant, args, seed)
        models[f"sequence [{variant}]"] = (scorer, "history", args.length)
    users = {split: {name: per_user(fn, data, split, protocol, history)
                     for name, (fn, protocol, history) in models.items()} for split in ("val", "test")}
    slices = {split: changed_time_slice(gd, data, split) for split in ("val", "test")}
    return {"info": info, "users": users, "slices": slices}


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    from scipy.stats import bootstrap

    diff = a - b
    low, high = bootstrap((diff,), np.mean, n_resamples=10_000, random_state=0, method="percentile").confidence_interval
    return {"diff": float(diff.mean()), "low": float(low), "high": float(high), "n": len(diff),
            "detectable": float(2.8 * diff.std(ddof=1) / np.sqrt(len(diff)))}


def summarise(runs: list[dict[str, Any]], compare: str) -> dict[str, Any]:
    names = list(runs[0]["users"]["val"])
    mean = {split: {name: {m: np.mean([r["users"][split][name][m] for r in runs], axis=0) for m in ("hr", "ndcg")}
                    for name in names} for split in ("val", "test")}
    table = {name: {split: {m: float(mean[split][name][m].mean()) for m in ("hr", "ndcg")}
                    for split in ("val", "test")} for name in names}
    best = max(ONE_MOVIE, key=lambda name: table[name]["val"]["hr"])
    comparison = {}
    for split in ("val", "test"):
        keep = runs[0]["slices"][split]
        for label, rows in (("all", slice(None)), ("time differs", keep)):
            comparison[f"{split} / {label}"] = paired(mean[split][compare]["hr"][rows], mean[split][best]["hr"][rows])
    return {"table": table, "best_one_movie": best, "compare": compare, "paired_hr@10": comparison}


def main(argv: list[str] | None = None) -> int:
    record = start("bench.sequence", argv)
    args = parse_args(argv)
    runs = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="bench-sequence-") as tmp:
            runs.append(one_seed(args, seed, Path(tmp)))
    summary = summarise(runs, args.compare)
    for name, splits in summary["table"].items():
        print(f"{name:24s} val HR@10 {splits['val']['hr']:.4f} NDCG@10 {splits['val']['ndcg']:.4f} | "
              f"test HR@10 {splits['test']['hr']:.4f} NDCG@10 {splits['test']['ndcg']:.4f}")
    print(f"{summary['compare']} - {summary['best_one_movie']} (best one-movie model on val), HR@10, "
          "95% paired bootstrap:")
    for where, c in summary["paired_hr@10"].items():
        print(f"  {where:20s} {c['diff']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}] n={c['n']} "
              f"detectable {c['detectable']:.4f}")
    write_json(args.out, {"summary": summary, "seeds": args.seeds,
                          "runs": [{"info": r["info"]} for r in runs]}, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
