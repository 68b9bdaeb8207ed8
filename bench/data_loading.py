"""Loader speed, measured side by side in one run: helpers.data versus a plain pandas read of the same
files (`sep="::", engine="python"`, the usual way ML-1M is read), plus writing the synthetic sample.

    OMP_NUM_THREADS=1 .venv/bin/python bench/data_loading.py [../shared/movielens]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from helpers.data.loader import load_movielens
from helpers.data.sample import write_sample


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_ml1m(folder: Path) -> None:
    for name, cols in (("ratings.dat", 4), ("movies.dat", 3), ("users.dat", 5)):
        pd.read_csv(folder / name, sep="::", engine="python", header=None, names=range(cols), encoding="latin-1")


def main(shared: Path) -> None:
    print("best of 3, seconds")
    if (shared / "ml-1m").is_dir():
        ours = best_of(lambda: load_movielens("ml-1m", shared / "ml-1m"))
        naive = best_of(lambda: naive_ml1m(shared / "ml-1m"))
        print(f"ML-1M, users 1-2999 (487,650 ratings): load_movielens {ours:.2f} s (parsed, typed, checked); "
              f"pandas sep='::' python engine {naive:.2f} s (raw) -> {naive / ours:.1f}x faster")
    if (shared / "ml-100k").is_dir():
        seconds = best_of(lambda: load_movielens("ml-100k", shared / "ml-100k"))
        print(f"ML-100K (100,000 ratings): load_movielens {seconds:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        written = best_of(lambda: write_sample(Path(tmp) / "s", seed=42), repeat=1)
        loaded = best_of(lambda: load_movielens("sample", Path(tmp) / "s"))
        print(f"synthetic sample, seed 42: write_sample {written:.2f} s, load_movielens {loaded:.2f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "movielens")
