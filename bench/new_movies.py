"""New-movie benchmark (issue 17): a movie PinSage never trained on, placed from its first k ratings.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.new_movies --dataset ml-1m --data-dir ../shared/movielens/ml-1m \
        --seed 1 --transductive 2
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.new_movies --dataset sample --time-budget 5 --next-movie-steps 50 \
        --resamples 1000          # a smoke run

The protocol is `helpers.evaluation.cold_start`'s: `--hidden` movies (stratified by popularity quartile) are left
out of training altogether (graph, pairs, softmax); each is revealed by its first k ratings, k in `--levels`,
and embedded without retraining; events are consecutive pairs A -> h from users who are not among h's first 20
raters; h is ranked among all movies (the graph's and every hidden one) from A. Models on the same events:
inductive PinSage (`helpers.training.inductive.embed_new_movies`); the same weights without neighbours (features
only); the weighted mean of the neighbours' trained vectors (the same walks through the raters); item-kNN on the
revealed ratings; a fold-in of next-movie [no graph] (its new columns fitted with all else frozen, on the
revealed pairs and the training pairs, in which they compete); popularity (a new movie counts its revealed
ratings); and, with `--transductive N`, the upper bound: N runs (seeds seed, seed+1, ...) trained on the hidden
movies' first 20 ratings too (never on an event), ranked from A as any trained movie. Printed: HR@10 per stratum and
macro-averaged with 95% intervals (movies resampled within strata), inductive PinSage minus each model
(paired, same resamples), overlap@10 of each hidden movie's nearest movies with the first transductive run
(ceiling: between two transductive seeds), the strata without events, and each model's warm HR@10 (validation
targets, the new movies among the candidates: a model that lifts every new movie wins their events but loses
here). PinSage trains with `TrainConfig`'s defaults, the inductive model (id_dropout 0.3 in the first half of the
run, title_token_dropout 0.1, bias_source vector); `--train-config` overrides them (e.g. "neighbour_degree_alpha":
0.5 to let hubs give way), and `--draws` averages several neighbourhood draws.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report import add_out_option, start, write_json

REFERENCE = "inductive pinsage"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.new_movies", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-1m", help="MovieLens name (default ml-1m)")
    parser.add_argument("--data-dir", default=None, help="folder with the dataset files (default: download/cache)")
    parser.add_argument("--seed", type=int, default=1, help="training and hiding seed (default 1)")
    parser.add_argument("--hidden", type=int, default=300, help="movies hidden from training (default 300)")
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 1, 5, 20], help="ratings revealed (k)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="PinSage training seconds (default TrainConfig's)")
    parser.add_argument("--train-config", type=json.loads, default={}, metavar="JSON",
                        help="TrainConfig overrides (default: none, the inductive defaults)")
    parser.add_argument("--next-movie-steps", type=int, default=None, help="next-movie [no graph] steps")
    parser.add_argument("--transductive", type=int, default=0, metavar="N",
                        help="upper-bound runs trained on the hidden movies' first 20 ratings (0: none; 2: with "
                             "the overlap ceiling)")
    parser.add_argument("--draws", type=int, default=1,
                        help="neighbourhood draws averaged at inference, graph and new movies alike (default 1)")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10,000)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars or per-epoch lines")
    add_out_option(parser, "new_movies")
    return parser.parse_args(argv)


def _train(ml, args: argparse.Namespace, seed: int, root: Path):
    from helpers.config import get_settings
    from helpers.graph.build import build_graph
    from helpers.training.config import TrainConfig
    from helpers.training.loop import train_pinsage

    gd = build_graph(ml)
    settings = get_settings(dataset=args.dataset, seed=seed, artifacts_root=root / f"seed-{seed}-{len(ml.movies)}")
    overrides = dict(args.train_config)
    if args.time_budget is not None:
        overrides["time_budget_s"] = args.time_budget
    config = TrainConfig.for_dataset(args.dataset, **overrides)
    started = time.perf_counter()
    result = train_pinsage(gd, settings, config, resume=False, progress=not args.no_progress)
    return gd, result, config, time.perf_counter() - started


def _item_knn(gd, new_raters: list[np.ndarray]):
    """Scorer over [graph movies, new movies]: cosine of the user sets (training edges; the new movies' revealed
    raters)."""
    import scipy.sparse as sp

    n_users = gd.n_users
    graph = sp.csr_matrix((np.ones(len(gd.train)), (gd.train["user"], gd.train["movie"])), shape=(n_users, gd.n_movies))
    rows = np.concatenate([r for r in new_raters] + [np.zeros(0, np.int64)]).astype(np.int64)
    cols = np.repeat(np.arange(len(new_raters)), [len(r) for r in new_raters])
    new = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, len(new_raters)))
    every = sp.hstack([graph, new]).tocsc()
    every.data[:] = 1.0
    norms = np.sqrt(np.asarray(every.sum(0)).ravel())
    norms[norms == 0] = 1.0
    every_t = every.T.tocsr()

    def score(queries: np.ndarray) -> np.ndarray:
        overlap = (every_t[queries] @ every).toarray()
        return overlap / norms[queries, None] / norms[None, :]
    return score


def _constant(scores: np.ndarray):
    return lambda queries: np.tile(scores, (len(queries), 1))


def _vector_scorer(query: np.ndarray, candidate: np.ndarray):
    return lambda queries: query[queries] @ candidate.T


def _nearest(candidate: np.ndarray, dim: int, rows: np.ndarray, among: np.ndarray, k: int = 10) -> np.ndarray:
    """Positions in `among` of the k nearest movies of each row, by cosine of the embedding part (bias left out)."""
    e = candidate[:, :dim] / np.maximum(np.linalg.norm(candidate[:, :dim], axis=1, keepdims=True), 1e-12)
    scores = e[rows] @ e[among].T
    scores[among[None, :] == rows[:, None]] = -np.inf
    return np.argsort(-scores, axis=1)[:, :k]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a):
        return float("nan")
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b, strict=True)]))


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    import torch

    from helpers.data.loader import load_movielens
    from helpers.evaluation import cold_start as cs
    from helpers.graph.features import year_scale
    from helpers.runtime import seed_everything
    from helpers.training.baselines import NextMovieBaseline, fold_in_candidates, next_movie_steps_for
    from helpers.training.inductive import RaterWalks, embed_new_movies
    from helpers.training.inference import infer_layer_vectors, infer_movie_vectors
    from helpers.training.sampling import EngagementPositives

    seed_everything(args.seed)
    ml = load_movielens(args.dataset, args.data_dir, seed=args.seed)
    hidden = cs.hide_movies(ml.ratings, args.hidden, args.seed)
    reduced = cs.without_movies(ml, hidden["movie_id"])
    gd, result, config, train_s = _train(reduced, args, args.seed, root)
    model = result.model
    vectors = infer_movie_vectors(model, gd, seed=args.seed, draws=args.draws)
    layers = infer_layer_vectors(model, gd, seed=args.seed)
    next_movie = NextMovieBaseline(steps=args.next_movie_steps or next_movie_steps_for(args.dataset),
                                   seed=args.seed).fit(gd)
    popularity = np.bincount(gd.train["movie"], minlength=gd.n_movies).astype(np.float64)
    training_pairs = EngagementPositives(gd.train).pairs.numpy()  # what next-movie [no graph] trained on

    events = cs.new_movie_events(ml.ratings, hidden["movie_id"])
    queries = gd.movie_index(events["query_id"])
    hidden_pos = pd.Series(np.arange(len(hidden)), index=hidden["movie_id"])
    targets = cs.appended_columns(events, hidden, gd.n_movies)
    raters = cs.first_raters(ml.ratings, hidden["movie_id"])
    known_user = raters["user_id"].isin(gd.user_ids)
    dropped_raters = int((~known_user).sum())
    raters = raters[known_user].reset_index(drop=True)
    movies = ml.movies.set_index("movie_id").loc[hidden["movie_id"]].reset_index()
    scale = year_scale(reduced.movies.sort_values("movie_id")["year"])
    before = _previous_movies(ml.ratings)
    embed = {"year_scale": scale, "seed": args.seed, "draws": args.draws}
    features_only = embed_new_movies(model, gd, movies, raters.iloc[:0], layers, use_neighbours=False, **embed)

    warm_users = gd.val["user"].to_numpy()
    warm_queries = gd.train.groupby("user")["movie"].last().loc[warm_users].to_numpy()
    warm_targets = gd.val["movie"].to_numpy()
    transductive = [_transductive(ml, hidden, args, args.seed + i, root) for i in range(args.transductive)]
    per_level: dict[int, Any] = {}
    for k in args.levels:
        shown = cs.revealed(raters, k)
        new_raters = [gd.user_index(shown.loc[shown["movie_id"] == m, "user_id"]) for m in hidden["movie_id"]]
        inductive = embed_new_movies(model, gd, movies, shown, layers, **embed)
        hop = RaterWalks(gd.graph, model.spec, torch.Generator().manual_seed(args.seed)).hop(new_raters)
        weights = np.zeros((len(hidden), gd.n_movies))
        np.add.at(weights, (hop.dst.numpy(), hop.src.numpy()), hop.weight.numpy())
        total = weights.sum(1, keepdims=True)
        mean = np.where(total > 0, weights @ vectors.candidate / np.maximum(total, 1), vectors.candidate.mean(0))
        pairs = shown.merge(before, on=["user_id", "movie_id"])
        pairs = pairs[pairs["previous_id"].isin(gd.movie_ids)]
        folded = fold_in_candidates(next_movie.vectors, gd.movie_index(pairs["previous_id"]),
                                    hidden_pos.loc[pairs["movie_id"]].to_numpy(), len(hidden), training_pairs,
                                    seed=args.seed)
        scorers = {
            REFERENCE: _vector_scorer(vectors.query, np.vstack([vectors.candidate, inductive.candidate])),
            "features only": _vector_scorer(vectors.query, np.vstack([vectors.candidate, features_only.candidate])),
            "neighbour mean": _vector_scorer(vectors.query, np.vstack([vectors.candidate, mean.astype(np.float32)])),
            "item-knn [revealed]": _item_knn(gd, new_raters),
            "next-movie fold-in": _vector_scorer(next_movie.vectors.query,
                                                 np.vstack([next_movie.vectors.candidate, folded])),
            "popularity": _constant(np.concatenate([popularity, [len(r) for r in new_raters]])),
        }
        hits = {name: cs.per_movie(events, cs.event_hits(score, queries, targets), hidden)
                for name, score in scorers.items()}
        # a model that lifts every new movie scores well on their events: the warm check catches it
        warm = {name: float(cs.event_hits(score, warm_queries, warm_targets).mean()) for name, score in scorers.items()}
        for i, run_ in enumerate(transductive):
            hits[f"transductive [seed {args.seed + i}]"] = cs.per_movie(events, run_["hits"], hidden)
        table = cs.stratified_bootstrap(hits, reference=REFERENCE, resamples=args.resamples, seed=args.seed)
        level = {"table": table.reset_index().to_dict("records"), "revealed_ratings": len(shown),
                 "warm hr@10 with the new movies among the candidates": warm}
        if transductive:
            rows = np.arange(gd.n_movies, gd.n_movies + len(hidden))
            ours = gd.movie_ids[_nearest(np.vstack([vectors.candidate, inductive.candidate]), model.dim, rows,
                                         np.arange(gd.n_movies))]
            level["overlap@10 with transductive"] = _overlap(ours, transductive[0]["nearest"])
        per_level[k] = level
    info = {"dataset": args.dataset, "seed": args.seed, "hidden": hidden.groupby("stratum", observed=True).agg(
        movies=("movie_id", "size"), min_ratings=("ratings", "min"), max_ratings=("ratings", "max")
    ).reset_index().to_dict("records"), "events": len(events), "train_seconds": round(train_s, 1),
        "best_epoch": result.best_epoch, "train_config": config.to_dict(), "raters_outside_the_graph": dropped_raters,
        "next_movie": next_movie.settings(), "resamples": args.resamples, "draws": args.draws}
    if len(transductive) > 1:
        info["overlap@10 ceiling (two transductive seeds)"] = _overlap(transductive[0]["nearest"],
                                                                      transductive[1]["nearest"])
    return {"info": info, "levels": per_level}


def _previous_movies(ratings: pd.DataFrame) -> pd.DataFrame:
    """Each rating's previous movie by the same user (user_id, movie_id, previous_id), time order as the events'."""
    ordered = ratings.sort_values(["user_id", "timestamp", "movie_id"], kind="stable", ignore_index=True)
    previous = ordered.groupby("user_id")["movie_id"].shift(1)
    keep = previous.notna()
    return pd.DataFrame({"user_id": ordered["user_id"][keep], "movie_id": ordered["movie_id"][keep],
                         "previous_id": previous[keep].astype(np.int64)})


def _transductive(ml, hidden: pd.DataFrame, args: argparse.Namespace, seed: int, root: Path) -> dict[str, Any]:
    """A run trained with the hidden movies' first 20 ratings (no event among them): its event hits and the
    hidden movies' 10 nearest trained movies (ids)."""
    from helpers.data.movielens import MovieLens
    from helpers.evaluation import cold_start as cs
    from helpers.training.inference import infer_movie_vectors

    early = cs.first_raters(ml.ratings, hidden["movie_id"])
    keep = ~ml.ratings["movie_id"].isin(hidden["movie_id"])
    keep |= ml.ratings.set_index(["user_id", "movie_id"]).index.isin(early.set_index(["user_id", "movie_id"]).index)
    partial = MovieLens(ml.name, ml.ratings[keep].reset_index(drop=True), ml.movies, ml.users, ml.source_dir)
    gd, result, _, _ = _train(partial, args, seed, root)
    vectors = infer_movie_vectors(result.model, gd, seed=seed)
    events = cs.new_movie_events(ml.ratings, hidden["movie_id"])
    hits = cs.event_hits(_vector_scorer(vectors.query, vectors.candidate), gd.movie_index(events["query_id"]),
                         gd.movie_index(events["movie_id"]))
    others = np.flatnonzero(~np.isin(gd.movie_ids, hidden["movie_id"]))
    rows = gd.movie_index(hidden["movie_id"])
    nearest = gd.movie_ids[others[_nearest(vectors.candidate, result.model.dim, rows, others)]]
    return {"hits": hits, "nearest": nearest}


def report(outcome: dict[str, Any], command: str) -> str:
    info = outcome["info"]
    strata = ", ".join(f"{h['stratum']} {h['movies']} ({h['min_ratings']}-{h['max_ratings']})" for h in info["hidden"])
    header = (f"dataset {info['dataset']}  seed {info['seed']}  events {info['events']}  training "
              f"{info['train_seconds']} s (best epoch {info['best_epoch']})  raters outside the graph "
              f"{info['raters_outside_the_graph']}")
    lines = [f"$ {command}", header, f"hidden movies per stratum (ratings min-max): {strata}"]
    for k, level in outcome["levels"].items():
        table = pd.DataFrame(level["table"])
        hr = table.assign(cell=[f"{r.hr:.3f} [{r.low:.3f}, {r.high:.3f}]" if r.hr == r.hr else "no events"
                                for r in table.itertuples()]).pivot(index="model", columns="stratum", values="cell")
        lines += ["", f"k = {k} ({level['revealed_ratings']} ratings revealed): HR@10 [95% interval]",
                  hr.reindex(table["model"].unique()).to_string()]
        if "diff" in table:
            macro = table[(table["stratum"] == "macro") & table["diff"].notna()]
            lines += [f"{REFERENCE} minus each (macro): " + "; ".join(
                f"{r.model} {r.diff:+.3f} [{r.diff_low:+.3f}, {r.diff_high:+.3f}]" for r in macro.itertuples())]
        lines += ["warm HR@10 (val targets, the new movies among the candidates): " + "; ".join(
            f"{name} {hr:.3f}" for name, hr in level["warm hr@10 with the new movies among the candidates"].items())]
        empty = table[(table["model"] == REFERENCE) & (table["events"] == 0)]["stratum"].tolist()
        lines += [f"strata without events: {', '.join(empty) or 'none'}"]
        if "overlap@10 with transductive" in level:
            lines += [f"overlap@10 with the transductive run: {level['overlap@10 with transductive']:.3f}"]
    if "overlap@10 ceiling (two transductive seeds)" in info:
        lines += [f"overlap@10 ceiling: {info['overlap@10 ceiling (two transductive seeds)']:.3f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    record = start("bench.new_movies", argv)
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-new-movies-") as tmp:
        outcome = run(args, Path(tmp))
    print(report(outcome, record.command))
    write_json(args.out, outcome, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
