"""Recommendation latency and the choice of combination method, on the embeddings artifact of RECSYS_DATASET.

Latency: `RecommendationEngine.recommend()` p50/p99 for 1, 5 and 20 liked movies (k=10) and for 5 liked movies
with a genre and year filter, next to an in-process NumPy brute-force search over the same vectors
(`helpers.engine.reference.numpy_recommend`, given the query vector the engine's encoder makes, its encoding
timed with it), measured in the same run on the same liked sets (and checked to return the same top 10);
ingestion rows per second for Milvus and the catalog. Backends: the embedded default (Milvus Lite + SQLite, in a
temporary folder so the notebooks' files are untouched) and, with `--server-uri`, a Milvus server (the catalog
there is SQLite too unless `--catalog-url` names a MySQL database).

`--encoders NAME [NAME ...]` (default: RECSYS_QUERY_ENCODER's): one engine per query encoder
(`helpers.engine.query`) over the same stores, built once, given the same liked sets in the same order (taken as
oldest first), the encoders alternated on each set (A B, then B A) so that a drifting machine weighs on all
alike; each row names the encoder that answered. An encoder whose artifact is missing or does not match the
embeddings stops the run with what to do (notebook 04 for "sequence"), rather than timing the mean under its
name, before the dataset is loaded or any store built. On ML-1M, after `python -m bench.prepare_artifacts`
(notebooks 02-04's artifacts in minutes):

    RECSYS_DATASET=ml-1m RECSYS_DATA_DIR=../shared/movielens/ml-1m \
        .venv/bin/python -m bench.recommend_latency --encoders mean sequence [--server-uri http://127.0.0.1:19530]

`--stages`: also one recommendation's time split by stage (validation, encoding, search, catalog, explanation;
the engine's `timings`), in process. `--compare-with REV`: this tree and git revision REV side by side in one run,
each in its own process on stores of its own, alternated in `--rounds` rounds (bench.compare), with the stage
split of each tree that records it:

    .venv/bin/python -m bench.recommend_latency --compare-with HEAD~1 [--server-uri http://127.0.0.1:19530]

Quality (`--quality`): HR@10/NDCG@10 of the three ways to combine liked movies (max, mean, sum) under
notebook 03's history protocol (protocol (b) of helpers.evaluation), on the validation and test users.

    RECSYS_DATASET=ml-1m RECSYS_DATA_DIR=../shared/movielens/ml-1m \
        .venv/bin/python -m bench.recommend_latency --quality [--server-uri http://127.0.0.1:19530]

The figures also go to `--out` as JSON.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.compare import (
    THIS_TREE,
    LatencyProbe,
    alternate,
    checkout,
    describe,
    ns_to_ms,
    percentiles_ms,
    stage_table,
)
from bench.report import add_out_option, start, write_json
from helpers.config import get_settings
from helpers.data.loader import load_dataset
from helpers.engine.engine import RecommendationEngine
from helpers.engine.query import (
    ENCODERS,
    MovieVectorLookup,
    QueryEncoder,
    load_query_encoder,
)
from helpers.engine.reference import numpy_recommend
from helpers.ranking import COMBINE_METHODS, DEFAULT_PER_MOVIE_LIMIT
from helpers.stages import notebook_for
from helpers.stores.build import build_stores
from helpers.stores.milvus import VectorStore
from helpers.training.embeddings import load_movie_embeddings

LIKED_SIZES = (1, 5, 20)
GENRE_FILTER = "Drama"  # in every MovieLens release
FILTER_RARE_GENRE = "Film-Noir"  # in every MovieLens release, and a name that is no Milvus identifier
ROOT = Path(__file__).resolve().parent.parent


def label(settings) -> str:
    return "ML-1M, users 1-2999" if settings.dataset == "ml-1m" else settings.dataset


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def draw_liked_sets(movie_ids: np.ndarray, repeats: int, seed: int) -> dict[int, list[list[int]]]:
    """`repeats` random liked sets per size in LIKED_SIZES (the same for every run with the same seed)."""
    rng = np.random.default_rng(seed)
    return {n: [[int(m) for m in rng.choice(movie_ids, size=n, replace=False)] for _ in range(repeats)]
            for n in LIKED_SIZES}


class EncoderFellBackError(RuntimeError):
    """An encoder asked for with `--encoders` is not the one that answers (its artifact is missing or stale)."""


def check_fallback(settings, name: str, encoder: QueryEncoder) -> None:
    """An `EncoderFellBackError` that names the notebook to run when `encoder`, loaded for `--encoders name`, is
    another than the one asked for (else the figures would time the mean twice under two names)."""
    if encoder.fallback_reason:
        spec = ENCODERS.get(name)
        notebook = notebook_for(spec.stage) if spec is not None and spec.artifact is not None else \
            "the notebook that trains it"
        raise EncoderFellBackError(
            f"--encoders {name}: the engine answers with the {encoder.name} encoder instead "
            f"({encoder.fallback_reason}). Run {notebook} (or python -m bench.prepare_artifacts) for "
            f"RECSYS_DATASET={settings.dataset} first, or leave {name} out.")


def check_encoders(settings, embeddings, encoders: list[str]) -> None:
    """Each encoder asked for, loaded as the engine loads it (`load_query_encoder`, over the embeddings in
    memory) and checked by `check_fallback` before any store is built or dataset loaded: a missing or stale
    artifact fails in a second, not after the stores."""
    lookup = MovieVectorLookup.from_embeddings(embeddings)
    for name in encoders:
        check_fallback(settings, name, load_query_encoder(settings, name, lookup))


def open_engines(settings, encoders: list[str]) -> dict[str, RecommendationEngine]:
    """One engine per encoder name over the same stores, each engine's own encoder checked by `check_fallback`."""
    engines: dict[str, RecommendationEngine] = {}
    try:
        for name in encoders:
            engine = engines[name] = RecommendationEngine(settings, encoder=name)
            check_fallback(settings, name, engine.encoder)
    except BaseException:
        close_engines(engines)
        raise
    return engines


def close_engines(engines: dict[str, RecommendationEngine]) -> None:
    """Close each engine once; the engines share the process's Milvus client, which the first close releases."""
    for engine in engines.values():
        engine.close()


def brute_force(engine: RecommendationEngine, embeddings, liked: list[int]) -> list[int]:
    """The engine's top 10 by brute force over the vectors in memory, from the query vector ITS encoder makes."""
    query = engine.encoder.encode(liked) if engine.combine == "mean" else None  # max/sum: each movie's own vector
    return [m for m, _, _ in numpy_recommend(embeddings.movie_ids, embeddings.vectors, liked, 10, engine.combine,
                                             query_vectors=embeddings.query_vectors, query=query)]


def latency(settings, ml, embeddings, backend: str, repeats: int, seed: int, encoders: list[str],
            stages: bool = False) -> dict[str, Any]:
    """Print and return ingestion rows/s and, per encoder, `recommend()` p50/p99 next to NumPy's, per number of
    liked movies: one engine per encoder over the same stores, the encoders alternated on each liked set."""
    VectorStore(settings).drop()
    report = build_stores(settings, ml, progress=False)  # as notebook 05 builds them
    catalog_report, vector_report = report.catalog, report.vectors
    print(f"[{backend}] ingestion: Milvus {vector_report.rows:,} movies in {vector_report.seconds:.2f} s "
          f"({vector_report.rows_per_second:,.0f} rows/s, index {vector_report.index.index_type}/"
          f"{vector_report.index.metric_type}); catalog "
          f"{catalog_report.movies + catalog_report.users + catalog_report.ratings:,} "
          f"rows in {catalog_report.seconds:.2f} s ({catalog_report.rows_per_second:,.0f} rows/s)")
    figures: dict[str, Any] = {
        "backend": backend,
        "milvus_ingestion": {"rows": vector_report.rows, "seconds": vector_report.seconds,
                             "rows_per_s": vector_report.rows_per_second, "index": vector_report.index.index_type},
        "catalog_ingestion": {"rows": catalog_report.movies + catalog_report.users + catalog_report.ratings,
                              "seconds": catalog_report.seconds, "rows_per_s": catalog_report.rows_per_second},
        "encoders": {}, "liked": [], "filtered": []}
    engines = open_engines(settings, encoders)
    try:
        for name, engine in engines.items():
            figures["encoders"][name] = engine.encoder.describe()
            engine.recommend([int(embeddings.movie_ids[0])])  # warm-up: first search loads segments
        print(f"[{backend}] encoders: " + ", ".join(f"{name} -> {engine.encoder!r}"
                                                   for name, engine in engines.items()))
        liked_sets_by_size = draw_liked_sets(embeddings.movie_ids, repeats, seed)

        def alternated(liked_sets: list[list[int]], call) -> dict[str, list]:
            """`call(name, engine, liked)` on each liked set for each encoder, the order of the encoders reversed
            on every other set (A B, B A, ...) so that a drifting machine weighs on all alike."""
            results: dict[str, list] = {name: [] for name in engines}
            for i, liked in enumerate(liked_sets):
                for name in (list(engines) if i % 2 == 0 else list(engines)[::-1]):
                    results[name].append(call(name, engines[name], liked))
            return results

        def timed(name: str, engine: RecommendationEngine, liked: list[int]) -> tuple[float, float, bool, str]:
            start = time.perf_counter()
            got = engine.recommend(liked, k=10)
            engine_s = time.perf_counter() - start
            start = time.perf_counter()
            want = brute_force(engine, embeddings, liked)  # encoding included, as in recommend()
            numpy_s = time.perf_counter() - start
            return engine_s, numpy_s, [r.movie_id for r in got] == want, str(got.encoder)

        for n in LIKED_SIZES:
            for name, runs in alternated(liked_sets_by_size[n], timed).items():
                engine = engines[name]
                engine_s, numpy_s, same, answers = zip(*runs, strict=True)
                (e50, e99), (n50, n99), agree = percentiles(engine_s), percentiles(numpy_s), sum(same)
                answered = "/".join(sorted(set(answers)))  # the `encoder` of every response: one name
                figures["liked"].append({"encoder": name, "answered_by": answered, "liked": n, "k": 10,
                                         "combine": engine.combine, "recommend_p50_ms": e50, "recommend_p99_ms": e99,
                                         "numpy_p50_ms": n50, "numpy_p99_ms": n99, "same_top_10": agree,
                                         "repeats": repeats})
                print(f"[{backend}] {answered:<8} {n:>2} liked, k=10, combine={engine.combine}: "
                      f"recommend() p50 {e50:6.2f} ms p99 {e99:6.2f} ms | NumPy brute force p50 {n50:5.2f} ms "
                      f"p99 {n99:5.2f} ms | ratio p50 {e50 / n50:5.1f}x | same top 10: {agree}/{repeats}")
        if stages:
            figures["stages"] = {}
            for name, engine in engines.items():
                per_request = []
                for liked in liked_sets_by_size[5]:
                    timings: dict[str, int] = {}
                    engine.recommend(liked, k=10, timings=timings)
                    per_request.append(timings)
                figures["stages"][name] = stage_table(
                    ns_to_ms(per_request), title=f"[{backend}] {engine.encoder.name}, 5 liked, k=10, in process")
        genre = next(iter(engines.values())).genres()[0]

        def filtered(name: str, engine: RecommendationEngine, liked: list[int]) -> float:
            start = time.perf_counter()
            engine.recommend(liked, k=10, genres=[genre], years=(1980, 1999))
            return time.perf_counter() - start

        five_of_twenty = [liked[:5] for liked in liked_sets_by_size[20]]
        for name, seconds in alternated(five_of_twenty, filtered).items():
            f50, f99 = percentiles(seconds)
            figures["filtered"].append({"encoder": name, "answered_by": engines[name].encoder.name, "liked": 5,
                                        "k": 10, "genre": genre, "years": [1980, 1999], "p50_ms": f50,
                                        "p99_ms": f99, "repeats": len(seconds)})
            print(f"[{backend}] {engines[name].encoder.name:<8}  5 liked, k=10, genre {genre!r} and years 1980-1999 "
                  f"filter: p50 {f50:6.2f} ms p99 {f99:6.2f} ms")
    finally:
        close_engines(engines)
    return figures


def compare(settings, embeddings, rev: str, backend: str, milvus_uri: str | None, catalog_url: str | None,
            repeats: int, rounds: int, folder: Path) -> dict[str, Any]:
    """This tree and `rev`, each in its own process on stores of its own (Lite: each tree builds its own copy;
    a server: this tree builds them and `rev` reads the same), alternated in `rounds`; prints both rows."""
    warm_up = int(embeddings.movie_ids[0])
    figures: dict[str, Any] = {"backend": backend, "rev": rev, "rows": [], "stages": {}}
    with checkout(rev) as old:
        trees = {THIS_TREE: ROOT, rev: old}
        print(f"[{backend}] comparing {THIS_TREE} ({describe(ROOT)}) with {rev} ({describe(old)}), "
              f"alternated in {rounds} rounds")
        probes: list[LatencyProbe] = []
        try:
            for i, (name, tree) in enumerate(trees.items()):
                own = folder / f"tree-{i}"
                own.mkdir(parents=True)
                probes.append(LatencyProbe(name, tree, milvus_uri or str(own / "milvus.db"),
                                           catalog_url or f"sqlite:///{own}/catalog.sqlite",
                                           build=milvus_uri is None or i == 0, warm_up=warm_up,
                                           log=folder / f"probe-{i}.log"))
            sets = draw_liked_sets(embeddings.movie_ids, repeats, settings.seed)
            cases = [(f"{n:>2} liked", sets[n], None, None) for n in LIKED_SIZES]
            cases += [(f"{n:>2} liked, genre+years", sets[n], [GENRE_FILTER, FILTER_RARE_GENRE], (1980, 1999))
                      for n in LIKED_SIZES]  # the filter: any of two genres (one BOOL field each), a year range
            print(f"{'case':<24}{'tree':<14}{'p50 ms':>9}{'p99 ms':>9}{'vs ' + THIS_TREE:>16}{'same top 10':>13}")
            for case, liked_sets, genres, years in cases:
                got = alternate(probes, liked_sets, 10, genres, years, rounds)
                base = got[THIS_TREE]
                p50_base = percentiles_ms(base["seconds"])[0]
                for name, result in got.items():
                    p50, p99 = percentiles_ms(result["seconds"])
                    same = sum(a == b for a, b in zip(result["top"], base["top"], strict=True))
                    figures["rows"].append({"case": case.strip(), "tree": name, "p50_ms": p50, "p99_ms": p99,
                                            "same_top_10": same, "repeats": len(liked_sets)})
                    print(f"{case:<24}{name[:13]:<14}{p50:>9.2f}{p99:>9.2f}{p50 / p50_base:>15.2f}x"
                          f"{same:>8}/{len(liked_sets)}")
                if case.strip() == "5 liked":
                    five = got
            for name, result in five.items():
                if any(result["stages"]):  # only the trees whose engine records stages
                    figures["stages"][name] = stage_table(ns_to_ms(result["stages"]),
                                                          title=f"[{backend}] {name}, 5 liked, k=10")
        finally:
            for probe in probes:
                probe.close()
    return figures


def quality(settings, embeddings) -> dict[str, Any]:
    """Print and return HR@10 / NDCG@10 of each way to combine liked movies, validation and test."""
    from helpers.evaluation.protocols import evaluate_scores
    from helpers.evaluation.scorers import EmbeddingScorer
    from helpers.graph.build import load_graph

    gd = load_graph(settings)
    print(f"quality on {label(settings)}: protocol (b) history (last 10 training movies), k=10, "
          f"{len(gd.val):,} users per split")
    variants = {"max": dict(combine="max"), "mean": dict(combine="mean"),
                f"sum (per-movie limit {DEFAULT_PER_MOVIE_LIMIT})": dict(combine="sum",
                                                                        per_movie_limit=DEFAULT_PER_MOVIE_LIMIT)}
    assert {v["combine"] for v in variants.values()} == set(COMBINE_METHODS)
    results = {}
    for name, options in variants.items():
        scorer = EmbeddingScorer.from_movie_ids(embeddings.movie_ids, embeddings.vectors, gd.movie_ids,
                                                query_vectors=embeddings.query_vectors, **options)
        results[name] = {split: evaluate_scores(scorer, gd, split=split, protocol="history")
                         for split in ("val", "test")}
    best = max(results, key=lambda name: results[name]["val"]["hr@10"])
    for name, by_split in results.items():
        cells = "  ".join(f"{split}: HR@10 {m['hr@10']:.4f} ± {m['hr@10_stderr']:.4f}, NDCG@10 {m['ndcg@10']:.4f}"
                          for split, m in by_split.items())
        ratio = by_split["val"]["hr@10"] / results[best]["val"]["hr@10"]
        print(f"  {name:<28} {cells}  (val HR {ratio:.2f}x of best)")
    print(f"  best on validation: {best}")
    return {"dataset": label(settings), "protocol": "history", "k": 10, "variants": results, "best": best}


def main(argv: list[str] | None = None) -> None:
    record = start("bench.recommend_latency", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.recommend_latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200, help="liked sets per size (default 200)")
    parser.add_argument("--server-uri", help="also measure on this Milvus server, e.g. http://127.0.0.1:19530")
    parser.add_argument("--catalog-url", help="catalog for the server run (default: a temporary SQLite file)")
    parser.add_argument("--quality", action="store_true", help="also compare the combination methods")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency runs")
    parser.add_argument("--stages", action="store_true",
                        help="also print one recommendation's time split by stage (in process)")
    parser.add_argument("--compare-with", metavar="REV",
                        help="measure this tree and git revision REV side by side, alternated (bench.compare)")
    parser.add_argument("--rounds", type=int, default=10, help="alternation rounds with --compare-with (default 10)")
    parser.add_argument("--encoders", nargs="+", metavar="NAME", type=str.lower,
                        help="query encoders to time side by side on the same stores and liked sets, e.g. "
                             f"'mean sequence' (of: auto, {', '.join(ENCODERS)}; default: RECSYS_QUERY_ENCODER's)")
    add_out_option(parser, "recommend_latency")
    args = parser.parse_args(argv)
    if args.encoders and args.compare_with:
        parser.error("--encoders times this tree's encoders side by side; --compare-with times two trees with "
                     "RECSYS_QUERY_ENCODER's encoder: give one of the two")
    unknown = [name for name in args.encoders or () if name != "auto" and name not in ENCODERS]
    if unknown:
        parser.error(f"unknown encoder(s) {unknown}: use auto or {', '.join(ENCODERS)}")

    settings = get_settings()
    encoders = list(dict.fromkeys(args.encoders or [settings.query_encoder]))
    embeddings = load_movie_embeddings(settings)
    print(f"dataset {label(settings)}: {len(embeddings.movie_ids):,} movies, {embeddings.dim}-d embeddings")
    figures: dict[str, Any] = {"dataset": label(settings), "movies": len(embeddings.movie_ids),
                               "dim": embeddings.dim, "latency": []}
    if args.quality:
        figures["quality"] = quality(settings, embeddings)
    if args.compare_with and not args.no_latency:
        with tempfile.TemporaryDirectory(prefix="recommend-compare-") as tmp:
            figures["compare"] = [compare(settings, embeddings, args.compare_with, "Milvus Lite + SQLite", None, None,
                                          args.repeats, args.rounds, Path(tmp) / "lite")]
            if args.server_uri:
                backend = "Milvus server + " + ("MySQL" if args.catalog_url else "SQLite")
                figures["compare"].append(compare(settings, embeddings, args.compare_with, backend, args.server_uri,
                                                  args.catalog_url or f"sqlite:///{tmp}/server-catalog.sqlite",
                                                  args.repeats, args.rounds, Path(tmp) / "server"))
    elif not args.no_latency:
        try:
            check_encoders(settings, embeddings, encoders)
            ml = load_dataset(settings)
            with tempfile.TemporaryDirectory(prefix="recommend-bench-") as tmp:
                lite = get_settings(milvus_uri=str(Path(tmp) / "milvus.db"),
                                    catalog_url=f"sqlite:///{tmp}/catalog.sqlite")
                figures["latency"].append(latency(lite, ml, embeddings, "Milvus Lite + SQLite", args.repeats,
                                                  settings.seed, encoders, args.stages))
                if args.server_uri:
                    server = get_settings(milvus_uri=args.server_uri,
                                          catalog_url=args.catalog_url or f"sqlite:///{tmp}/server-catalog.sqlite")
                    backend = "Milvus server + " + ("MySQL" if args.catalog_url else "SQLite")
                    figures["latency"].append(latency(server, ml, embeddings, backend, args.repeats, settings.seed,
                                                      encoders, args.stages))
                    VectorStore(server).drop()
        except EncoderFellBackError as error:  # no figures: they would time the mean under another name
            parser.exit(2, f"{parser.prog}: error: {error}\n")
    write_json(args.out, figures, record)


if __name__ == "__main__":
    main()
