"""Bounded load test of the FastAPI service (helpers/api.py) on 127.0.0.1.

Starts `uvicorn --factory helpers.api:create_app` on a free local port with the current RECSYS_* settings
(the stores must be filled: notebook 04), waits until /health answers, then sends `--requests` requests from
`--concurrency` concurrent httpx clients: a mix of POST /recommend (3 liked movies, k=10), GET /movies?q=
and GET /movies/{id} (`--only search` and so on: one endpoint). Prints requests per second, p50 and p99 latency per endpoint and overall, and the
error count; first the same mix one request at a time (`--baseline`), for the ratio. Exits 1 if any
request failed or answered other than 200.

    RECSYS_DATASET=ml-1m RECSYS_DATA_DIR=/work/shared/movielens/ml-1m .venv/bin/python bench/api_load.py \
        --label "ML-1M, users 1-2999"
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "helpers.api:create_app",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                             "--no-access-log"], cwd=ROOT, env=env)


def wait_healthy(base: str, server: subprocess.Popen, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the API exited with code {server.returncode} before answering (see its log above)")
        try:
            response = httpx.get(f"{base}/health", timeout=5)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the API did not answer /health within {timeout:.0f} s")


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
        raise SystemExit("the catalog has fewer than 3 movies: run notebook 04 for this dataset first")
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


def report(results: list[tuple[str, float, int | str]], seconds: float, concurrency: int, dataset: str) -> int:
    """Print the figures of one run; return the number of failed requests."""
    errors = [r for r in results if r[2] != 200]
    print(f"\nAPI load on {dataset}: {len(results)} requests, {concurrency} concurrent, 127.0.0.1, one uvicorn worker")
    print(f"{'endpoint':<18}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for label in sorted({r[0] for r in results}) + ["all"]:
        times = np.array([r[1] for r in results if label in ("all", r[0])]) * 1000
        print(f"{label:<18}{len(times):>9}{np.percentile(times, 50):>9.1f}{np.percentile(times, 99):>9.1f}")
    print(f"throughput: {len(results) / seconds:.1f} requests/s over {seconds:.1f} s; errors: {len(errors)}")
    for label, _, outcome in errors[:5]:
        print(f"  error: {label} -> {outcome}")
    return len(errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--baseline", type=int, default=400,
                        help="requests sent one at a time first, for comparison (0: skip)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--label", help="dataset label for the report (default: the dataset name)")
    parser.add_argument("--only", choices=("recommend", "search", "movie"),
                        help="send only this endpoint's requests instead of the mix")
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or args.baseline < 0:
        parser.error("--requests and --concurrency must be at least 1, --baseline at least 0")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port)
    try:
        health = wait_healthy(base, server)
        label = args.label or health["dataset"]
        plan = build_requests(base, args.requests, args.seed, args.only)
        asyncio.run(run_load(plan[: min(50, len(plan))], args.concurrency))  # warm-up, not counted
        errors = 0
        if args.baseline:
            baseline, base_seconds = asyncio.run(run_load(plan[: args.baseline], 1))
            errors += report(baseline, base_seconds, 1, label)
        results, seconds = asyncio.run(run_load(plan, args.concurrency))
        errors += report(results, seconds, args.concurrency, label)
        if args.baseline:
            print(f"\nthroughput ratio, {args.concurrency} concurrent / one at a time: "
                  f"{(len(results) / seconds) / (len(baseline) / base_seconds):.2f}x")
        return 1 if errors else 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
