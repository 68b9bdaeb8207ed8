"""How long stage 02 takes and how big its graph is: build_graph (median of `--repeats`), save_graph, load_graph.

    OMP_NUM_THREADS=1 RECSYS_ARTIFACTS=artifacts/bench/graph-bench-artifacts .venv/bin/python -m bench.graph_build \
        sample
    OMP_NUM_THREADS=1 RECSYS_ARTIFACTS=artifacts/bench/graph-bench-artifacts .venv/bin/python -m bench.graph_build \
        ml-1m ../shared/movielens/ml-1m

The first build also pays for importing DGL; it is reported on its own, and the median covers the later builds.
The graph is saved under RECSYS_ARTIFACTS (point it at a scratch folder, as above).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from bench.report import add_out_option, start, write_json
from helpers.config import get_settings
from helpers.data.loader import load_movielens


def seconds(since: float) -> float:
    return time.perf_counter() - since


def measure(name: str, data_dir: str | None = None, repeats: int = 5) -> dict[str, Any]:
    """Print and return the timings and the graph's size."""
    settings = get_settings(dataset=name)
    started = time.perf_counter()
    ml = load_movielens(name, data_dir, cache_dir=settings.cache_dir, seed=settings.seed)
    load_s = seconds(started)

    started = time.perf_counter()
    from helpers.graph.build import build_graph, load_graph, save_graph
    gd = build_graph(ml)
    first_s = seconds(started)
    builds = []
    for _ in range(repeats):
        started = time.perf_counter()
        gd = build_graph(ml)
        builds.append(seconds(started))
    started = time.perf_counter()
    path = save_graph(gd, settings)
    save_s = seconds(started)
    started = time.perf_counter()
    load_graph(settings)
    reload_s = seconds(started)
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
    return {"dataset": label, "ratings": len(ml.ratings), "users": g.num_nodes("user"),
            "movies": g.num_nodes("movie"), "training_edges": g.num_edges("watched"), "val": len(gd.val),
            "test": len(gd.test), "title_vocabulary": len(gd.title_vocab),
            "title_width": int(g.nodes["movie"].data["title"].shape[1]), "load_movielens_s": load_s,
            "first_build_graph_s": first_s, "build_graph_median_s": statistics.median(builds),
            "build_graph_min_s": min(builds), "repeats": repeats, "save_graph_s": save_s, "load_graph_s": reload_s,
            "artifact_mb": size_mb}


def main(argv: list[str] | None = None) -> None:
    record = start("bench.graph_build", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.graph_build", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="sample, ml-100k, ml-1m, ...")
    parser.add_argument("data_dir", nargs="?", default=None, help="folder of the dataset's files (default: cache)")
    parser.add_argument("--repeats", type=int, default=5, help="builds after the first, for the median")
    add_out_option(parser, "graph_build")
    args = parser.parse_args(argv)
    write_json(args.out, measure(args.dataset, args.data_dir, args.repeats), record)


if __name__ == "__main__":
    main()
