"""Loader speed, measured side by side in one run: helpers.data versus a plain pandas read of the same
files (`sep="::", engine="python"`, the usual way ML-1M is read), plus writing the synthetic sample.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.data_loading [../shared/movielens]

FOLDER holds the MovieLens copies (`ml-1m`, `ml-100k`; each measured when present); the sample is always measured.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bench.report import PROJECT, add_out_option, start, write_json
from helpers.data.loader import load_movielens
from helpers.data.sample import write_sample


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def naive_ml1m(folder: Path) -> None:
    for name, cols in (("ratings.dat", 4), ("movies.dat", 3), ("users.dat", 5)):
        pd.read_csv(folder / name, sep="::", engine="python", header=None, names=range(cols), encoding="latin-1")


def measure(shared: Path) -> dict[str, dict[str, float]]:
    """Print and return the best-of-3 seconds for each dataset found."""
    figures: dict[str, dict[str, float]] = {}
    print("best of 3, seconds")
    if (shared / "ml-1m").is_dir():
        ours = best_of(lambda: load_movielens("ml-1m", shared / "ml-1m"))
        naive = best_of(lambda: naive_ml1m(shared / "ml-1m"))
        figures["ml-1m"] = {"load_movielens_s": ours, "pandas_python_engine_s": naive, "speedup": naive / ours}
        print(f"ML-1M, users 1-2999 (487,650 ratings): load_movielens {ours:.2f} s (parsed, typed, checked); "
              f"pandas sep='::' python engine {naive:.2f} s (raw) -> {naive / ours:.1f}x faster")
    if (shared / "ml-100k").is_dir():
        seconds = best_of(lambda: load_movielens("ml-100k", shared / "ml-100k"))
        figures["ml-100k"] = {"load_movielens_s": seconds}
        print(f"ML-100K (100,000 ratings): load_movielens {seconds:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        written = best_of(lambda: write_sample(Path(tmp) / "s", seed=42), repeat=1)
        loaded = best_of(lambda: load_movielens("sample", Path(tmp) / "s"))
        figures["sample"] = {"write_sample_s": written, "load_movielens_s": loaded}
        print(f"synthetic sample, seed 42: write_sample {written:.2f} s, load_movielens {loaded:.2f} s")
    return figures


def main(argv: list[str] | None = None) -> None:
    record = start("bench.data_loading", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.data_loading", description=__doc__.split("\n\n")[0])
    parser.add_argument("shared", nargs="?", type=Path, default=PROJECT.parent / "shared" / "movielens",
                        metavar="FOLDER", help="folder of the MovieLens copies (default ../shared/movielens)")
    add_out_option(parser, "data_loading")
    args = parser.parse_args(argv)
    write_json(args.out, measure(args.shared), record)


if __name__ == "__main__":
    main()
