"""How long stage 02 takes and how big its graph is: build_graph (median of `repeats`), save_graph, load_graph.

    OMP_NUM_THREADS=1 RECSYS_ARTIFACTS=artifacts/bench .venv/bin/python bench/graph_build.py sample
    OMP_NUM_THREADS=1 RECSYS_ARTIFACTS=artifacts/bench .venv/bin/python bench/graph_build.py ml-1m ../shared/movielens/ml-1m

The first build also pays for importing DGL; it is reported on its own, and the median covers the later builds.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from helpers.config import get_settings
from helpers.data.loader import load_movielens


def seconds(start: float) -> float:
    return time.perf_counter() - start


def main(name: str, data_dir: str | None = None, repeats: int = 5) -> None:
    settings = get_settings(dataset=name)
    start = time.perf_counter()
    ml = load_movielens(name, data_dir, cache_dir=settings.cache_dir, seed=settings.seed)
    load_s = seconds(start)

    start = time.perf_counter()
    from helpers.graph.build import build_graph, load_graph, save_graph
    gd = build_graph(ml)
    first_s = seconds(start)
    builds = []
    for _ in range(repeats):
        start = time.perf_counter()
        gd = build_graph(ml)
        builds.append(seconds(start))
    start = time.perf_counter()
    path = save_graph(gd, settings)
    save_s = seconds(start)
    start = time.perf_counter()
    load_graph(settings)
    reload_s = seconds(start)
    size_mb = sum(f.stat().st_size for f in Path(path).iterdir()) / 1e6

    g = gd.graph
    label = "ML-1M, users 1-2999" if name == "ml-1m" and gd.n_users == 2999 else name
    print(f"dataset: {label}; {len(ml.ratings):,} ratings")
    print(f"graph: {g.num_nodes('user'):,} user + {g.num_nodes('movie'):,} movie nodes, "
          f"{g.num_edges('watched'):,} training edges per direction; val {len(gd.val):,}, test {len(gd.test):,}; "
          f"title vocabulary {len(gd.title_vocab):,}, title width {g.nodes['movie'].data['title'].shape[1]}")
    print(f"load_movielens {load_s:.2f} s | first build_graph (incl. DGL import) {first_s:.2f} s | "
          f"build_graph median of {repeats} {statistics.median(builds):.2f} s (min {min(builds):.2f}) | "
          f"save_graph {save_s:.2f} s | load_graph {reload_s:.2f} s | artifact {size_mb:.1f} MB")


if __name__ == "__main__":
    main(*sys.argv[1:3])
