"""A peer on the same work (issue 22): RecBole's SASRec beside `pinsage-sequence`, same split, budget and threads.

    flock artifacts/bench.lock env OMP_NUM_THREADS=1 .venv/bin/python -m bench.peer_sasrec --threads 2 \\
        --dataset ml-1m --data-dir ../shared/movielens/ml-1m --seeds 1 2 3 --budget 600 --pinsage-budget 600

Per seed: the data, the graph and the evaluation as `bench.sequence` builds them. The split goes to RecBole as its
atomic files (`export_split`): every training transition as the last N training movies before it and the movie
after (`gd.train`, in its time order), one validation row per user (the last N training movies, the validation
movie), one test row (those plus the validation movie, the test movie), every movie as an item. RecBole's SASRec
(full softmax, "CE"; N, width, blocks, heads and dropout as `SequenceConfig`'s; RecBole's Adam, learning rate and
batch size unless given) trains on it for `--budget` seconds in RecBole's own environment (`bench.recbole_sasrec`:
stopped by time inside an epoch, validated every epoch by RecBole, its best epoch kept) and scores every movie for
the queries `helpers.evaluation` asks; those scores are ranked by our code (`rank_metrics`, the user's seen movies
masked) on the same users and targets as `pinsage-sequence` [tuned], trained in the same command (PinSage for
`--pinsage-budget`, then the sequence model for `--budget`). Printed: both models' val / test HR@10 and NDCG@10, the
paired bootstrap of the HR@10 difference, and RecBole's own evaluation (its rows, every movie ranked with seen movies
not masked), labelled as such.

RecBole's environment is made on first use under `--env` (default `artifacts/recbole-env`, ignored by git): a venv
with `bench/requirements-recbole.txt` (the project's torch, NumPy 1.26 and the libraries RecBole imports), then
`RECBOLE` without its dependencies. When it cannot be made or RecBole cannot import, the command says why and
exits non-zero.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import PROJECT, add_out_option, start, write_json
from bench.sequence import paired, per_user

RECBOLE = "recbole==1.2.1"
REQUIREMENTS = Path(__file__).with_name("requirements-recbole.txt")
DATASET = "movies"  # must equal bench.recbole_sasrec.DATASET (that module runs in the other environment)
OURS, PEER = "pinsage-sequence [tuned]", "sasrec [recbole]"
HEADER = {"inter": "user_id:token\titem_id_list:token_seq\titem_id:token\n", "item": "item_id:token\n"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_sasrec", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training for each model")
    parser.add_argument("--pinsage-budget", type=float, default=None, help="PinSage's seconds (default TrainConfig's)")
    parser.add_argument("--length", type=int, default=50, help="N: the last N movies both models read")
    parser.add_argument("--threads", type=int, default=1,
                        help="PyTorch threads while either sequence model trains (PinSage: RECSYS_THREADS)")
    parser.add_argument("--train-batch-size", type=int, default=2048, help="SASRec's rows per step (RecBole's default)")
    parser.add_argument("--learning-rate", type=float, default=0.001, help="SASRec's Adam (RecBole's default)")
    parser.add_argument("--env", type=Path, default=PROJECT / "artifacts" / "recbole-env",
                        help="RecBole's own virtual environment, made on first use")
    parser.add_argument("--no-progress", action="store_true")
    add_out_option(parser, "peer_sasrec")
    return parser.parse_args(argv)


def recbole_python(env: Path) -> Path:
    """The Python of RecBole's environment, made (venv, pinned requirements, RecBole) and checked on first use;
    exits with the failing step and its output when that cannot be done here."""
    python = env / "bin" / "python"
    stamp = env / f".installed-{hashlib.sha256((REQUIREMENTS.read_text() + RECBOLE).encode()).hexdigest()[:16]}"
    if stamp.exists():
        return python
    steps = [] if python.exists() else [[sys.executable, "-m", "venv", str(env)]]
    steps += [[str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
              [str(python), "-m", "pip", "install", "--quiet", "--no-deps", RECBOLE],
              [str(python), "-c", ("import recbole.config, recbole.data, recbole.trainer, "
                                   "recbole.model.sequential_recommender.sasrec")]]
    print(f"making RecBole's environment in {env} (once)", flush=True)
    for step in steps:
        done = subprocess.run(step, check=False, capture_output=True, text=True)
        if done.returncode:
            said = (done.stderr or done.stdout).strip().splitlines()[-15:]
            raise SystemExit(f"bench.peer_sasrec cannot run here: RecBole's environment could not be made.\n"
                             f"$ {shlex.join(step)}\nexited with {done.returncode}:\n" + "\n".join(said))
    for old in env.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    return python


def _row(user: int, history: np.ndarray, target: int) -> str:
    return f"{user}\t{' '.join(map(str, history.tolist()))}\t{target}\n"


def export_split(gd: Any, data: Any, length: int, work: Path) -> dict[str, np.ndarray]:
    """Write the split as RecBole atomic files under `work/movies/` (tokens = node indices) and each split's
    queries as `work/queries_<split>.npy`; returns those queries (`data.queries(split, users, "history", length)`,
    in `data.targets[split]` order)."""
    from helpers.sequence.data import user_histories

    folder = work / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    users = gd.train["user"].to_numpy()
    firsts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    with open(folder / f"{DATASET}.train.inter", "w") as out:
        out.write(HEADER["inter"])
        for user, history in zip(users[firsts], user_histories(gd.train), strict=True):
            out.writelines(_row(user, history[max(0, i - length):i], history[i]) for i in range(1, len(history)))
    queries: dict[str, np.ndarray] = {}
    for split, name in (("val", "valid"), ("test", "test")):
        split_users, targets = data.targets[split]
        queries[split] = data.queries(split, split_users, "history", length)
        np.save(work / f"queries_{split}.npy", queries[split])
        with open(folder / f"{DATASET}.{name}.inter", "w") as out:
            out.write(HEADER["inter"])
            out.writelines(_row(user, query[query >= 0], target)
                           for user, query, target in zip(split_users, queries[split], targets, strict=True))
    (folder / f"{DATASET}.item").write_text(HEADER["item"] + "".join(f"{m}\n" for m in range(data.n_movies)))
    return queries


def imported_scorer(scores: np.ndarray, queries: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A `helpers.evaluation` scorer that answers each asked query with the imported row of the same exported
    query; a query that was not exported is an error (the peer was not asked it)."""
    row = {query.tobytes(): i for i, query in enumerate(np.asarray(queries, dtype=np.int64))}

    def score(asked: np.ndarray) -> np.ndarray:
        keys = [query.tobytes() for query in np.asarray(asked, dtype=np.int64)]
        missing = [i for i, key in enumerate(keys) if key not in row]
        if missing:
            raise SystemExit(f"{len(missing)} queries were not exported to the peer (e.g. {asked[missing[0]]}): "
                             "export and evaluate with the same length N")
        return scores[[row[key] for key in keys]]
    return score


def load_scores(work: Path, split: str, queries: np.ndarray, n_movies: int) -> Callable[[np.ndarray], np.ndarray]:
    """The peer's `scores_<split>.npy`, checked (one finite row per exported query, one column per movie), as a
    scorer (`imported_scorer`)."""
    scores = np.load(work / f"scores_{split}.npy")
    if scores.shape != (len(queries), n_movies):
        raise SystemExit(f"the peer's {split} scores have shape {scores.shape}, expected {(len(queries), n_movies)} "
                         "(one row per exported query, one column per movie)")
    if not np.isfinite(scores).all():
        raise SystemExit(f"the peer gave non-finite {split} scores")
    return imported_scorer(scores, queries)


def run_peer(python: Path, work: Path, job: dict[str, Any]) -> dict[str, Any]:
    """Train and score SASRec in RecBole's environment (`bench.recbole_sasrec`), its output passed through."""
    (work / "job.json").write_text(json.dumps(job))
    threads = str(job["threads"])
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    done = subprocess.run([str(python), "-m", "bench.recbole_sasrec", str(work)], check=False, cwd=work,
                          env=env)
    if done.returncode:
        raise SystemExit(f"bench.peer_sasrec: RecBole's SASRec stopped with exit {done.returncode} (its output is "
                         "above), so there is no peer figure")
    return json.loads((work / "result.json").read_text())


def ours(gd: Any, settings: Any, args: argparse.Namespace, seed: int) -> tuple[Callable, dict[str, Any]]:
    """`pinsage-sequence` [tuned] as `bench.sequence` trains it: PinSage (`--pinsage-budget`, `RECSYS_THREADS`),
    then the sequence model over its vectors for `--budget` seconds with `--threads`."""
    from bench.sequence import pinsage_vectors, train_variant
    from helpers.runtime import set_threads

    vectors = pinsage_vectors(gd, settings, args, seed)
    set_threads(args.threads)
    scorer, info = train_variant(gd, vectors, "tuned", args, seed)
    return scorer, {key: value for key, value in info.items() if key != "curve"}


def one_seed(args: argparse.Namespace, seed: int, root: Path, python: Path) -> dict[str, Any]:
    from helpers.config import get_settings
    from helpers.data.loader import load_movielens
    from helpers.evaluation.protocols import prepare_evaluation
    from helpers.graph.build import build_graph
    from helpers.runtime import seed_everything, set_threads
    from helpers.sequence.config import SequenceConfig

    settings = get_settings(dataset=args.dataset, seed=seed, artifacts_root=root, data_dir=args.data_dir)
    set_threads(settings.threads)
    seed_everything(seed)
    gd = build_graph(load_movielens(args.dataset, args.data_dir, cache_dir=settings.cache_dir, seed=seed))
    data = prepare_evaluation(gd, max_history=max(50, args.length))
    work = root / "recbole"
    queries = export_split(gd, data, args.length, work)
    model = SequenceConfig()
    job = {"seed": seed, "budget": args.budget, "threads": args.threads, "length": args.length,
           "n_movies": data.n_movies, "train_batch_size": args.train_batch_size, "learning_rate": args.learning_rate,
           "model": {"dim": model.dim, "blocks": model.blocks, "heads": model.heads, "dropout": model.dropout}}
    print(f"seed {seed}: RecBole's SASRec for {args.budget:.0f} s, {args.threads} thread(s)", flush=True)
    peer = run_peer(python, work, job)
    scorers = {PEER: {split: load_scores(work, split, queries[split], data.n_movies) for split in queries}}
    print(f"seed {seed}: PinSage, then {OURS} for {args.budget:.0f} s, {args.threads} thread(s)", flush=True)
    scorer, info = ours(gd, settings, args, seed)
    scorers[OURS] = {split: scorer for split in queries}
    users = {split: {name: per_user(by_split[split], data, split, "history", args.length)
                     for name, by_split in scorers.items()} for split in queries}
    return {"users": users, "info": {"peer": peer, "ours": info}}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Both models' HR@10 / NDCG@10 per split (users averaged over the seeds) and the paired HR@10 difference."""
    mean = {split: {name: {m: np.mean([r["users"][split][name][m] for r in runs], axis=0) for m in ("hr", "ndcg")}
                    for name in (OURS, PEER)} for split in ("val", "test")}
    table = {name: {split: {m: float(mean[split][name][m].mean()) for m in ("hr", "ndcg")} for split in mean}
             for name in (OURS, PEER)}
    return {"table": table, "difference": f"{PEER} - {OURS}",
            "paired_hr@10": {split: paired(mean[split][PEER]["hr"], mean[split][OURS]["hr"]) for split in mean}}


def main(argv: list[str] | None = None) -> int:
    record = start("bench.peer_sasrec", argv)
    args = parse_args(argv)
    python = recbole_python(args.env)
    runs = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="bench-peer-sasrec-") as tmp:
            runs.append(one_seed(args, seed, Path(tmp), python))
    summary = summarise(runs)
    print(f"N = {args.length}, budget {args.budget:.0f} s each, seeds {args.seeds}; our ranking (seen movies masked):")
    for name, splits in summary["table"].items():
        print(f"  {name:26s} val HR@10 {splits['val']['hr']:.4f} NDCG@10 {splits['val']['ndcg']:.4f} | "
              f"test HR@10 {splits['test']['hr']:.4f} NDCG@10 {splits['test']['ndcg']:.4f}")
    for where, c in summary["paired_hr@10"].items():
        print(f"  {PEER} - {OURS}, {where} HR@10: {c['diff']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}] "
              f"(95% paired bootstrap, n={c['n']})")
    for seed, run in zip(args.seeds, runs, strict=True):
        peer = run["info"]["peer"]
        own = peer["recbole_own"]
        print(f"  seed {seed}: RecBole {peer['recbole']}, {peer['epochs']} epochs ({peer['steps']} steps, best epoch "
              f"{peer['best_epoch']}) in {peer['seconds']:.0f} s; {OURS} {run['info']['ours']['steps']} steps. "
              f"RecBole's own evaluation (seen movies not masked): val Hit@10 {own['val']['hit@10']:.4f} NDCG@10 "
              f"{own['val']['ndcg@10']:.4f} | test Hit@10 {own['test']['hit@10']:.4f} NDCG@10 "
              f"{own['test']['ndcg@10']:.4f}")
    write_json(args.out, {"summary": summary, "seeds": args.seeds, "recbole": RECBOLE,
                          "runs": [r["info"] for r in runs]}, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
