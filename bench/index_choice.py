"""FLAT vs IVF_FLAT vs HNSW on Milvus Lite and milvus-server: build time, recall@10 against brute force,
p50/p99 search latency, without and with filters (a genre, a year range).

    .venv/bin/python -m bench.index_choice --rows 87585 1000000 [--server] [--server-lock artifacts/milvus.lock]

Vectors: `--rows` 64-d unit vectors (PinSage's size) drawn around 500 random centres (clustered like trained
movie vectors, not uniform noise), seeded; each row gets genres and a year with the synthetic catalogue's
proportions. Queries: `--queries` vectors drawn the same way. Brute force: NumPy inner products over the same
rows with the same filter. Collections use the project's schema (helpers.stores.milvus) and metric IP. Index
settings: IVF_FLAT nlist = 4 sqrt(rows), nprobe = 32; HNSW M = 16, efConstruction = 200, ef = 64 (what
helpers.stores.milvus uses). Results are merged into `--results` (default docs/index_results.json); this run's rows
also go to `--out` (with the command, the machine and the date).
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import add_out_option, start, write_json
from bench.servers import milvus_server

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "docs" / "index_results.json"
DIM = 64
GENRES = ("Drama", "Comedy", "Thriller", "Romance", "Action", "Horror", "Documentary", "Film-Noir")
GENRE_SHARE = (0.45, 0.35, 0.2, 0.15, 0.15, 0.1, 0.05, 0.01)
FILTERS = {
    "none": "",
    "genre 15% (Romance)": 'array_contains_any(genres, ["Romance"])',
    "genre 1% (Film-Noir)": 'array_contains_any(genres, ["Film-Noir"])',
    "years 1990-1999 (~10%)": "year >= 1990 and year <= 1999",
}


def _draw(n: int, seed: int, rng: np.random.Generator) -> np.ndarray:
    centres = np.random.default_rng(seed).normal(size=(500, DIM)).astype(np.float32)
    vectors = centres[rng.integers(500, size=n)] + 0.6 * rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    rng = np.random.default_rng(seed + 1)
    vectors = _draw(n, seed, rng)
    years = rng.integers(1920, 2024, size=n)
    flags = rng.random((n, len(GENRES))) < np.asarray(GENRE_SHARE)
    genres = [[GENRES[j] for j in np.flatnonzero(row)] or ["Drama"] for row in flags]
    return vectors, years, genres


def queries(n: int, seed: int) -> np.ndarray:
    """Query vectors around the same centres as the rows (other draws)."""
    return _draw(n, seed, np.random.default_rng(seed + 2))


def mask_of(name: str, years: np.ndarray, genres: list[list[str]]) -> np.ndarray:
    if name == "none":
        return np.ones(len(years), bool)
    if name.startswith("genre"):
        genre = name.split("(")[1].rstrip(")")
        return np.array([genre in g for g in genres])
    return (years >= 1990) & (years <= 1999)


def brute_force(vectors: np.ndarray, query: np.ndarray, mask: np.ndarray, k: int = 10) -> np.ndarray:
    scores = query @ vectors.T
    scores[:, ~mask] = -np.inf
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return top


INDEXES = {
    "FLAT": (lambda n: {}, lambda n: {}),
    "IVF_FLAT": (lambda n: {"nlist": int(4 * math.sqrt(n))}, lambda n: {"nprobe": 32}),
    "HNSW": (lambda n: {"M": 16, "efConstruction": 200}, lambda n: {"ef": 64}),
}


def run_backend(uri: str, backend: str, vectors: np.ndarray, years: np.ndarray, genres: list[list[str]],
                qs: np.ndarray, truth: dict[str, np.ndarray], n: int, filtered_queries: int) -> list[dict[str, Any]]:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=uri)
    rows_out = []
    for index_type, (build, search) in INDEXES.items():
        name = f"bench_{index_type.lower()}_{n}"
        if client.has_collection(name):
            client.drop_collection(name)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("movie_id", DataType.INT64, is_primary=True)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("year", DataType.INT64)
        schema.add_field("genres", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=32, max_length=64)
        client.create_collection(name, schema=schema, consistency_level="Strong")
        start = time.perf_counter()
        for first in range(0, n, 10_000):
            stop = min(first + 10_000, n)
            client.insert(name, [{"movie_id": i, "embedding": vectors[i].tolist(), "year": int(years[i]),
                                  "genres": genres[i]} for i in range(first, stop)])
        client.flush(name)
        insert_s = time.perf_counter() - start
        start = time.perf_counter()
        params = client.prepare_index_params()
        params.add_index("embedding", index_type=index_type, metric_type="IP", params=build(n))
        try:
            client.create_index(name, params)
        except Exception as exc:  # a client retry after a slow build reports the finished index
            if "already exists" not in str(exc):
                raise
        client.load_collection(name)
        build_s = time.perf_counter() - start
        try:
            reported = client.describe_index(name, "embedding").get("index_type", "?")
        except Exception:  # only a label
            reported = "?"
        for filter_name, expression in FILTERS.items():
            latencies, hits = [], []
            for q in (qs if not expression else qs[:filtered_queries]):
                t0 = time.perf_counter()
                result = client.search(name, data=[q.tolist()], limit=10, filter=expression,
                                       search_params={"metric_type": "IP", "params": search(n)},
                                       consistency_level="Session")
                latencies.append(time.perf_counter() - t0)
                hits.append([int(h.id) for h in result[0]])
            recall = np.mean([len(set(h) & set(t.tolist())) / 10
                              for h, t in zip(hits, truth[filter_name], strict=False)])
            short = int(sum(len(h) < 10 for h in hits))
            ms = np.asarray(latencies) * 1000
            row = {"backend": backend, "rows": n, "index": index_type, "reported_index": reported,
                   "filter": filter_name, "insert_s": round(insert_s, 1), "build_s": round(build_s, 1),
                   "queries": len(hits), "recall@10": round(float(recall), 4), "short_results": short,
                   "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}
            rows_out.append(row)
            print(json.dumps(row), flush=True)
        client.drop_collection(name)
    client.close()
    return rows_out


def main(argv: list[str] | None = None) -> None:
    record = start("bench.index_choice", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.index_choice", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[87_585])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--filtered-queries", type=int, default=50,
                        help="queries per filter (the first of --queries): filtered searches on Lite are slow")
    parser.add_argument("--filters", nargs="+", default=list(FILTERS), choices=list(FILTERS), metavar="FILTER",
                        help="which filters to run, by name as in FILTERS (the genre filters take seconds per query "
                             "on Lite)")
    parser.add_argument("--indexes", nargs="+", default=list(INDEXES), choices=list(INDEXES))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--server", action="store_true", help="also on a milvus-server started here")
    parser.add_argument("--no-lite", action="store_true", help="skip Milvus Lite")
    parser.add_argument("--server-lock", default=None, help="a file to flock while the server runs")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON the rows are merged into")
    add_out_option(parser, "index_choice")
    args = parser.parse_args(argv)

    for name in list(INDEXES):
        if name not in args.indexes:
            del INDEXES[name]
    for name in list(FILTERS):
        if name not in args.filters:
            del FILTERS[name]

    saved = json.loads(args.results.read_text()) if args.results.exists() else {"rows": []}
    measured = []
    for n in args.rows:
        vectors, years, genres = make_rows(n, args.seed)
        qs = queries(args.queries, args.seed)
        truth = {f: brute_force(vectors, qs, mask_of(f, years, genres)) for f in FILTERS}
        results = []
        with tempfile.TemporaryDirectory(prefix="bench-index-") as work:
            if not args.no_lite:
                results += run_backend(str(Path(work) / "lite.db"), "Milvus Lite", vectors, years, genres, qs, truth, n,
                                       args.filtered_queries)
            if args.server:
                with contextlib.ExitStack() as stack:
                    if args.server_lock:
                        lock = stack.enter_context(open(args.server_lock, "a"))
                        fcntl.flock(lock, fcntl.LOCK_EX)
                    folder = Path(work) / "server"
                    folder.mkdir()
                    uri = stack.enter_context(milvus_server(folder))
                    results += run_backend(uri, "milvus-server 2.3.5", vectors, years, genres, qs, truth, n,
                                       args.filtered_queries)
        done = {(r["backend"], r["rows"]) for r in results}
        saved["rows"] = [r for r in saved["rows"] if (r["backend"], r["rows"]) not in done] + results
        args.results.write_text(json.dumps(saved, indent=1))
        measured += results
    write_json(args.out, {"rows": measured}, record)


if __name__ == "__main__":
    main()
