"""Re-measure, on real MovieLens copies, the exponents `helpers.data.synthetic` is fitted with.

    python -m helpers.data.fit --ml-1m ../shared/movielens/ml-1m --ml-100k ../shared/movielens/ml-100k

prints one row per dataset: the Hill estimate of the ratings-per-user tail (`user_alpha`), the broken power law of
movie popularity against rank share (`head_slope`, `tail_slope`, `break`) and the mean ratings per user.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data.loader import load_movielens


def fit_report(folders: dict[str, Path]) -> pd.DataFrame:
    """Re-measure the fitted exponents on real copies (`{"ml-1m": path, ...}`): the Hill estimate of the
    ratings-per-user power law above 50, and the broken power law of movie popularity vs rank share."""
    from scipy.optimize import curve_fit

    def broken(lx: np.ndarray, c: float, s1: float, s2: float, lb: float) -> np.ndarray:
        return c - s1 * np.minimum(lx, lb) - s2 * np.maximum(lx - lb, 0)

    rows = []
    for name, folder in folders.items():
        ratings = load_movielens(name, folder).ratings
        per_user = ratings["user_id"].value_counts().to_numpy().astype(float)
        tail = per_user[per_user >= 50]
        alpha = 1 + len(tail) / np.log(tail / 49.5).sum()
        per_movie = np.sort(ratings["movie_id"].value_counts().to_numpy())[::-1].astype(float)
        x = (np.arange(len(per_movie)) + 0.5) / len(per_movie)
        params, _ = curve_fit(broken, np.log(x), np.log(per_movie / per_movie.mean()),
                              p0=(0.0, 0.7, 2.0, math.log(0.4)))
        rows.append({"dataset": name, "user_alpha": alpha, "head_slope": params[1], "tail_slope": params[2],
                     "break": math.exp(params[3]), "ratings_per_user": len(ratings) / len(per_user)})
    return pd.DataFrame(rows).set_index("dataset")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.data.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--ml-1m", type=Path, help="folder of an ML-1M copy (ratings.dat, movies.dat, users.dat)")
    parser.add_argument("--ml-100k", type=Path, help="folder of an ML-100K copy (u.data, u.item, ...)")
    args = parser.parse_args(argv)
    folders = {name: folder for name, folder in (("ml-1m", args.ml_1m), ("ml-100k", args.ml_100k)) if folder}
    if not folders:
        parser.error("give at least one of --ml-1m and --ml-100k")
    print(fit_report(folders).round(3).to_string())


if __name__ == "__main__":
    main()
