"""Recommendation latency and the choice of combination method, on the embeddings artifact of RECSYS_DATASET.

Latency: `RecommendationEngine.recommend()` p50/p99 for 1, 5 and 20 liked movies (k=10), next to an
in-process NumPy brute-force search over the same vectors (`helpers.engine.reference.numpy_recommend`), measured
in the same run on the same liked sets (and checked to return the same movies); ingestion rows per
second for Milvus and the catalog. Backends: the embedded default (Milvus Lite + SQLite, in a temporary
folder so the notebooks' files are untouched) and, with `--server-uri`, a Milvus server (the catalog there
is SQLite too unless `--catalog-url` names a MySQL database).

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

from bench.report import add_out_option, start, write_json
from helpers.config import get_settings
from helpers.data.loader import load_dataset
from helpers.engine.engine import RecommendationEngine
from helpers.engine.reference import numpy_recommend
from helpers.ranking import COMBINE_METHODS, DEFAULT_PER_MOVIE_LIMIT
from helpers.stores.build import build_stores
from helpers.stores.milvus import VectorStore
from helpers.training.embeddings import load_movie_embeddings

LIKED_SIZES = (1, 5, 20)


def label(settings) -> str:
    return "ML-1M, users 1-2999" if settings.dataset == "ml-1m" else settings.dataset


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def latency(settings, ml, embeddings, backend: str, repeats: int, seed: int) -> dict[str, Any]:
    """Print and return ingestion rows/s and `recommend()` p50/p99 next to NumPy's, per number of liked movies."""
    VectorStore(settings).drop()
    report = build_stores(settings, ml, progress=False)  # as notebook 05 builds them
    catalog_report, vector_report = report.catalog, report.vectors
    print(f"[{backend}] ingestion: Milvus {vector_report.rows:,} movies in {vector_report.seconds:.2f} s "
          f"({vector_report.rows_per_second:,.0f} rows/s, index {vector_report.index.index_type}/"
          f"{vector_report.index.metric_type}); catalog {catalog_report.movies + catalog_report.users + catalog_report.ratings:,} "
          f"rows in {catalog_report.seconds:.2f} s ({catalog_report.rows_per_second:,.0f} rows/s)")
    figures: dict[str, Any] = {
        "backend": backend,
        "milvus_ingestion": {"rows": vector_report.rows, "seconds": vector_report.seconds,
                             "rows_per_s": vector_report.rows_per_second, "index": vector_report.index.index_type},
        "catalog_ingestion": {"rows": catalog_report.movies + catalog_report.users + catalog_report.ratings,
                              "seconds": catalog_report.seconds, "rows_per_s": catalog_report.rows_per_second},
        "liked": []}
    rng = np.random.default_rng(seed)
    engine = RecommendationEngine(settings)
    try:
        engine.recommend([int(embeddings.movie_ids[0])])  # warm-up: first search loads segments
        for n in LIKED_SIZES:
            liked_sets = [[int(m) for m in rng.choice(embeddings.movie_ids, size=n, replace=False)]
                          for _ in range(repeats)]
            engine_s, numpy_s, agree = [], [], 0
            for liked in liked_sets:
                start = time.perf_counter()
                got = engine.recommend(liked, k=10)
                engine_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                want = numpy_recommend(embeddings.movie_ids, embeddings.vectors, liked, 10, engine.combine,
                                       query_vectors=embeddings.query_vectors)
                numpy_s.append(time.perf_counter() - start)
                agree += [r.movie_id for r in got] == [m for m, _, _ in want]
            (e50, e99), (n50, n99) = percentiles(engine_s), percentiles(numpy_s)
            figures["liked"].append({"liked": n, "k": 10, "combine": engine.combine, "recommend_p50_ms": e50,
                                     "recommend_p99_ms": e99, "numpy_p50_ms": n50, "numpy_p99_ms": n99,
                                     "same_top_10": agree, "repeats": repeats})
            print(f"[{backend}] {n:>2} liked, k=10, combine={engine.combine}: recommend() p50 {e50:6.2f} ms "
                  f"p99 {e99:6.2f} ms | NumPy brute force p50 {n50:5.2f} ms p99 {n99:5.2f} ms | "
                  f"ratio p50 {e50 / n50:5.1f}x | same top 10: {agree}/{repeats}")
        filtered = []
        genre = engine.genres()[0]
        for liked in liked_sets[:repeats]:
            start = time.perf_counter()
            engine.recommend(liked[:5], k=10, genres=[genre], years=(1980, 1999))
            filtered.append(time.perf_counter() - start)
        f50, f99 = percentiles(filtered)
        figures["filtered"] = {"liked": 5, "k": 10, "genre": genre, "years": [1980, 1999], "p50_ms": f50,
                               "p99_ms": f99}
        print(f"[{backend}]  5 liked, k=10, genre {genre!r} and years 1980-1999 filter: p50 {f50:6.2f} ms p99 {f99:6.2f} ms")
    finally:
        engine.close()
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
        results[name] = {split: evaluate_scores(scorer, gd, split=split, protocol="history") for split in ("val", "test")}
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
    add_out_option(parser, "recommend_latency")
    args = parser.parse_args(argv)

    settings = get_settings()
    embeddings = load_movie_embeddings(settings)
    print(f"dataset {label(settings)}: {len(embeddings.movie_ids):,} movies, {embeddings.dim}-d embeddings")
    figures: dict[str, Any] = {"dataset": label(settings), "movies": len(embeddings.movie_ids),
                               "dim": embeddings.dim, "latency": []}
    if args.quality:
        figures["quality"] = quality(settings, embeddings)
    if not args.no_latency:
        ml = load_dataset(settings)
        with tempfile.TemporaryDirectory(prefix="recommend-bench-") as tmp:
            lite = get_settings(milvus_uri=str(Path(tmp) / "milvus.db"), catalog_url=f"sqlite:///{tmp}/catalog.sqlite")
            figures["latency"].append(latency(lite, ml, embeddings, "Milvus Lite + SQLite", args.repeats, settings.seed))
            if args.server_uri:
                server = get_settings(milvus_uri=args.server_uri,
                                      catalog_url=args.catalog_url or f"sqlite:///{tmp}/server-catalog.sqlite")
                backend = "Milvus server + " + ("MySQL" if args.catalog_url else "SQLite")
                figures["latency"].append(latency(server, ml, embeddings, backend, args.repeats, settings.seed))
                VectorStore(server).drop()
    write_json(args.out, figures, record)


if __name__ == "__main__":
    main()
