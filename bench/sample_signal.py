"""How much sequential signal a dataset holds: HR@10 / NDCG@10 on each user's held-out last movie for
popularity, item co-occurrence (users who watched the last movie also watched) and "next movie" transitions.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.sample_signal sample
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.sample_signal ml-1m ../shared/movielens/ml-1m

The ranking excludes movies the user already watched. Query for the item models: the user's last training movie.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from bench.report import add_out_option, start, write_json
from helpers.config import get_settings
from helpers.data.loader import load_movielens


def measure(name: str, data_dir: str | None = None, k: int = 10) -> dict[str, Any]:
    """Print and return HR@k / NDCG@k of each model."""
    settings = get_settings()
    started = time.perf_counter()
    ml = load_movielens(name, data_dir, cache_dir=settings.cache_dir, seed=settings.seed)
    ratings = ml.ratings.sort_values(["user_id", "timestamp", "movie_id"], kind="stable")
    movie_index = {m: i for i, m in enumerate(ml.movies["movie_id"])}
    ratings = ratings.assign(item=ratings["movie_id"].map(movie_index).to_numpy())
    n_items = len(movie_index)
    groups = [g["item"].to_numpy() for _, g in ratings.groupby("user_id", sort=False) if len(g) >= 3]
    train = [g[:-1] for g in groups]
    target = np.array([g[-1] for g in groups])
    last = np.array([t[-1] for t in train])
    rows = np.repeat(np.arange(len(train)), [len(t) for t in train])
    cols = np.concatenate(train)
    seen = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(train), n_items))
    seen.data[:] = 1
    popularity = np.asarray(seen.sum(axis=0)).ravel()
    cooc = (seen.T @ seen).tocsr()
    cooc.setdiag(0)
    src = np.concatenate([t[:-1] for t in train])
    dst = np.concatenate([t[1:] for t in train])
    transitions = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n_items, n_items))
    tie_break = popularity / (popularity.max() + 1) * 1e-3  # item models fall back to popularity on ties

    def evaluate(scores_for: Callable[[slice], np.ndarray]) -> tuple[float, float]:
        hits, ndcg = [], []
        for start_row in range(0, len(train), 512):
            stop = min(start_row + 512, len(train))
            scores = scores_for(slice(start_row, stop)).astype(np.float64)
            scores[seen[start_row:stop].nonzero()] = -np.inf
            top = np.argsort(-scores, axis=1)[:, :k]
            match = top == target[start_row:stop, None]
            hits.append(match.any(axis=1))
            ndcg.append((match / np.log2(np.arange(2, k + 2))).sum(axis=1))
        return float(np.concatenate(hits).mean()), float(np.concatenate(ndcg).mean())

    models = {
        "popularity": lambda s: np.tile(popularity, (s.stop - s.start, 1)),
        "co-occurrence (last movie)": lambda s: cooc[last[s]].toarray() + tie_break,
        "transitions (last movie)": lambda s: transitions[last[s]].toarray() + tie_break,
    }
    label = f"{name}" + (", users 1-2999" if name == "ml-1m" else "")
    print(f"dataset {label}: {len(ml.ratings):,} ratings, {len(groups):,} users with >= 3 ratings, "
          f"{n_items:,} movies; held-out last movie per user, k={k}")
    results = {model: evaluate(fn) for model, fn in models.items()}
    base = results["popularity"][0]
    for model, (hr, ndcg) in results.items():
        print(f"  {model:28s} HR@{k}={hr:.3f}  NDCG@{k}={ndcg:.3f}  ({hr / base:.1f}x popularity HR)")
    print(f"  ({time.perf_counter() - started:.1f} s)")
    return {"dataset": label, "ratings": len(ml.ratings), "users": len(groups), "movies": n_items, "k": k,
            "models": {model: {f"hr@{k}": hr, f"ndcg@{k}": ndcg, "hr_vs_popularity": hr / base}
                       for model, (hr, ndcg) in results.items()},
            "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> None:
    record = start("bench.sample_signal", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.sample_signal", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="sample, ml-100k, ml-1m, ...")
    parser.add_argument("data_dir", nargs="?", default=None, help="folder of the dataset's files (default: cache)")
    parser.add_argument("--k", type=int, default=10)
    add_out_option(parser, "sample_signal")
    args = parser.parse_args(argv)
    write_json(args.out, measure(args.dataset, args.data_dir, args.k), record)


if __name__ == "__main__":
    main()
