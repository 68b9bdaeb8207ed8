"""Bounded load test of the FastAPI service (helpers/serving/api.py) on 127.0.0.1.

Starts the API with `scripts/api.sh` (uvicorn, helpers.serving.api:create_app) on a free local port with the current
RECSYS_* settings (the stores must be filled: notebook 05), waits until every worker has started and /health answers, then sends
`--requests` requests from `--concurrency` concurrent httpx clients: a mix of POST /recommend (3 liked movies,
k=10), GET /movies?q= and GET /movies/{id} (`--only search` and so on: one endpoint). Prints requests per
second, p50 and p99 latency per endpoint and overall, and the error count; first the same mix one request at a time (`--baseline`), for the ratio.
`--workers 1,2,4` repeats all of it with 1, 2 and 4 uvicorn worker processes, one after the other in the same run,
and ends with a table side by side (several workers need the stores on servers: Milvus Lite opens its file in one
process). The load generator runs on the same machine as the server. Exits 1 if any request failed or answered
other than 200. The figures go to `--out` (default artifacts/bench/api_load.json) as well.

    RECSYS_DATASET=ml-1m RECSYS_DATA_DIR=../shared/movielens/ml-1m .venv/bin/python -m bench.api_load \
        --label "ML-1M, users 1-2999"
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench.report import add_out_option, start, write_json
from bench.servers import ServerError, free_port, stop_process, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
STARTED = "Application startup complete."  # uvicorn logs it once per worker, after the engine opened


def start_server(port: int, workers: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with open(log, "w") as out:
        return subprocess.Popen(["bash", "scripts/api.sh", str(port), "--workers", str(workers), "--log-level", "info",
                                 "--no-access-log"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(base: str, server: subprocess.Popen, workers: int, log: Path, timeout: float = 180.0) -> dict:
    """Wait until all `workers` opened their engine and /health answers; return its body."""
    try:
        return wait_for_http(f"{base}/health", server, log, timeout,
                             ready=lambda r: r.status_code == 200 and log.read_text().count(STARTED) >= workers).json()
    except ServerError as error:
        raise SystemExit(f"{workers} worker(s) did not all start and answer /health: {error}") from None


def build_requests(base: str, total: int, seed: int,
                   only: str | None = None) -> list[tuple[str, str, str, dict | None]]:
    """(endpoint label, method, url, json body) for each request, from ids and words of the real catalog; `only`:
    one endpoint instead of the mix ("recommend", "search" or "movie")."""
    rng = random.Random(seed)
    words: list[str] = []
    ids: list[int] = []
    for letter in "aeiostmr":
        for movie in httpx.get(f"{base}/movies", params={"q": letter, "limit": 100}, timeout=30).json():
            ids.append(int(movie["movie_id"]))
            words.extend(w for w in movie["title"].split() if len(w) >= 4)
    ids, words = sorted(set(ids)), sorted(set(words))
    if len(ids) < 3:
        raise SystemExit("the catalog has fewer than 3 movies: run notebook 05 for this dataset first")
    plan = []
    for i in range(total):
        kind = {"recommend": 0, "search": 2, "movie": 3}[only] if only else i % 4
        if kind < 2:
            plan.append(("POST /recommend", "POST", f"{base}/recommend", {"liked": rng.sample(ids, 3), "k": 10}))
        elif kind == 2:
            plan.append(("GET /movies?q=", "GET", f"{base}/movies?q={rng.choice(words)[:5]}", None))
        else:
            plan.append(("GET /movies/{id}", "GET", f"{base}/movies/{rng.choice(ids)}", None))
    return plan


async def run_load(plan: list, concurrency: int) -> tuple[list[tuple[str, float, int | str]], float]:
    results: list[tuple[str, float, int | str]] = []
    queue: asyncio.Queue = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            label, method, url, body = queue.get_nowait()
            start = time.perf_counter()
            try:
                response = await client.request(method, url, json=body)
                outcome: int | str = response.status_code
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            results.append((label, time.perf_counter() - start, outcome))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return results, time.perf_counter() - start


def report(results: list[tuple[str, float, int | str]], seconds: float, concurrency: int, dataset: str,
           workers: int = 1) -> dict:
    """Print the figures of one run; return them (requests/s, p50, p99 in ms, errors; per endpoint too)."""
    errors = [r for r in results if r[2] != 200]
    print(f"\nAPI load on {dataset}: {len(results)} requests, {concurrency} concurrent, 127.0.0.1, "
          f"{workers} uvicorn worker(s)")
    print(f"{'endpoint':<18}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}")
    endpoints = {}
    for label in sorted({r[0] for r in results}) + ["all"]:
        times = np.array([r[1] for r in results if label in ("all", r[0])]) * 1000
        endpoints[label] = {"requests": len(times), "p50": float(np.percentile(times, 50)),
                            "p99": float(np.percentile(times, 99))}
        print(f"{label:<18}{len(times):>9}{endpoints[label]['p50']:>9.1f}{endpoints[label]['p99']:>9.1f}")
    print(f"throughput: {len(results) / seconds:.1f} requests/s over {seconds:.1f} s; errors: {len(errors)}")
    for label, _, outcome in errors[:5]:
        print(f"  error: {label} -> {outcome}")
    return {"dataset": dataset, "workers": workers, "concurrency": concurrency, "requests": len(results),
            "seconds": seconds, "rps": len(results) / seconds, "p50": endpoints["all"]["p50"],
            "p99": endpoints["all"]["p99"], "errors": len(errors), "endpoints": endpoints}


def measure(workers: int, args: argparse.Namespace, log: Path) -> tuple[dict | None, dict]:
    """Start the API with `workers` processes, run the baseline and the concurrent load, stop it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, workers, log)
    try:
        health = wait_healthy(base, server, workers, log)
        label = args.label or health["dataset"]
        plan = build_requests(base, args.requests, args.seed, args.only)
        asyncio.run(run_load(plan[: min(50 * workers, len(plan))], args.concurrency))  # warm-up, not counted
        baseline = None
        if args.baseline:
            baseline = report(*asyncio.run(run_load(plan[: args.baseline], 1)), 1, label, workers)
        loaded = report(*asyncio.run(run_load(plan, args.concurrency)), args.concurrency, label, workers)
        if baseline:
            print(f"\nthroughput ratio, {args.concurrency} concurrent / one at a time: "
                  f"{loaded['rps'] / baseline['rps']:.2f}x")
        return baseline, loaded
    finally:
        stop_process(server, seconds=60)


def main(argv: list[str] | None = None) -> int:
    record = start("bench.api_load", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--baseline", type=int, default=400,
                        help="requests sent one at a time first, for comparison (0: skip)")
    parser.add_argument("--workers", default="1",
                        help="uvicorn worker processes, or a comma-separated list measured one after the other")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--label", help="dataset label for the report (default: the dataset name)")
    parser.add_argument("--only", choices=("recommend", "search", "movie"),
                        help="send only this endpoint's requests instead of the mix")
    add_out_option(parser, "api_load")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.baseline < 0:
        parser.error("--requests and --concurrency must be at least 1, --baseline at least 0")
    try:
        worker_counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers takes whole numbers separated by commas, e.g. 1,2,4; got {args.workers!r}")
    if any(w < 1 for w in worker_counts):
        parser.error("--workers: each count must be at least 1")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for workers in worker_counts:
            baseline, loaded = measure(workers, args, Path(folder) / f"uvicorn-{workers}.log")
            rows.append((workers, baseline, loaded))
    if len(rows) > 1:
        first = rows[0][2]["rps"]
        print(f"\nside by side ({args.requests} requests, {args.concurrency} concurrent; load generator on the same "
              f"machine, {os.cpu_count()} CPU cores):")
        print(f"{'workers':>7}{'requests/s':>12}{'vs ' + str(rows[0][0]):>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
              f"{'alone req/s':>13}")
        for workers, baseline, loaded in rows:
            alone = f"{baseline['rps']:.1f}" if baseline else "-"
            print(f"{workers:>7}{loaded['rps']:>12.1f}{loaded['rps'] / first:>7.2f}x{loaded['p50']:>9.1f}"
                  f"{loaded['p99']:>9.1f}{loaded['errors']:>8}{alone:>13}")
    write_json(args.out, [{"workers": workers, "one_at_a_time": baseline, "concurrent": loaded}
                          for workers, baseline, loaded in rows], record)
    failed = sum(loaded["errors"] + (baseline["errors"] if baseline else 0) for _, baseline, loaded in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
