"""Bounded load test of the FastAPI service (helpers/serving/api.py) on 127.0.0.1.

Starts the API with `scripts/api.sh` (uvicorn, helpers.serving.api:create_app) on a free local port with the current
RECSYS_* settings (the stores must be filled: notebook 05), waits until every worker has started and /health
answers, then sends `--requests` requests from `--concurrency` concurrent httpx clients: a mix of POST /recommend
(3 liked movies, k=10), GET /movies?q= and GET /movies/{id} (`--only search` and so on: one endpoint). Prints
requests per second, p50 and p99 latency per endpoint and overall, and the error count; first the same mix one
request at a time (`--baseline`), for the ratio.
`--workers 1,2,4` repeats all of it with 1, 2 and 4 uvicorn worker processes, one after the other in the same run,
and ends with a table side by side (several workers need the stores on servers: Milvus Lite opens its file in one
process). The load generator runs on the same machine as the server. Exits 1 if any request failed or answered
other than 200. The figures go to `--out` (default artifacts/bench/api_load.json) as well.
`--stages`: POST /recommend asks for its Server-Timing header (helpers.engine.timings) and a table splits one
request's time by stage, HTTP included. `--compare-with REV`: git revision REV's API runs beside this tree's (a
temporary worktree; a Milvus Lite file and a SQLite catalog are copied for it) and the same requests go to both,
alternated in `--rounds` rounds (bench.compare). Title search p99 at 16 concurrent: `--only search --concurrency 16`
(on ML-32M's catalogue size: bench.search_scale --titles 87585 --load).

    RECSYS_DATASET=ml-1m RECSYS_DATA_DIR=../shared/movielens/ml-1m .venv/bin/python -m bench.api_load \
        --label "ML-1M, users 1-2999"
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench.compare import THIS_TREE, checkout, describe, stage_table, tree_env
from bench.report import add_out_option, start, write_json
from bench.servers import ServerError, free_port, stop_process, wait_for_http
from helpers.engine.timings import TIMINGS_HEADER, parse_server_timing

ROOT = Path(__file__).resolve().parent.parent
STARTED = "Application startup complete."  # uvicorn logs it once per worker, after the engine opened


def pin_cores(available: set[int]) -> tuple[set[int], set[int]]:
    """--pin: (the load client's cores, the API's cores): the client on the lowest core, the API on the rest, so
    that one worker's latency is not the client's scheduling on the same cores."""
    if len(available) < 2:
        raise SystemExit(f"--pin needs at least 2 CPU cores; this process may use {sorted(available)}")
    client = {min(available)}
    return client, available - client


def start_server(port: int, workers: int, log: Path, tree: Path = ROOT, env: dict[str, str] | None = None,
                 cores: set[int] | None = None) -> subprocess.Popen:
    """`tree`'s scripts/api.sh (its own helpers: PYTHONPATH and the working folder are `tree`), on the CPU
    `cores` given (default: any)."""
    env = env or tree_env(tree)
    with open(log, "w") as out:
        return subprocess.Popen(["bash", "scripts/api.sh", str(port), "--workers", str(workers), "--log-level", "info",
                                 "--no-access-log"], cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)


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


Result = tuple[str, float, "int | str", "dict[str, float] | None"]  # endpoint, seconds, status, Server-Timing (ms)


async def run_load(plan: list, concurrency: int, stages: bool = False) -> tuple[list[Result], float]:
    """Send `plan` from `concurrency` clients; with `stages` POST /recommend asks for its Server-Timing."""
    results: list[Result] = []
    asked = {TIMINGS_HEADER: "1"} if stages else None
    queue: asyncio.Queue = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)

    async def send(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            label, method, url, body = queue.get_nowait()
            start = time.perf_counter()
            timing = None
            try:
                response = await client.request(method, url, json=body, headers=asked if body else None)
                outcome: int | str = response.status_code
                if "server-timing" in response.headers:
                    timing = parse_server_timing(response.headers["server-timing"])
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            results.append((label, time.perf_counter() - start, outcome, timing))

    # one client and one keep-alive connection per simulated user, made and connected (by the plan's first request,
    # not counted) before the clock starts: a client shared by all users queued their requests in its connection
    # pool (p99 114.7 ms for 16 users of a title search whose server answered in p99 8.0 ms), and making a client
    # (its SSL context) inside the timed window cost the first requests up to 250 ms (docs/benchmarks.md)
    clients = [httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1)) for _ in range(concurrency)]
    try:
        if plan:
            _, method, url, body = plan[0]
            await asyncio.gather(*(client.request(method, url, json=body) for client in clients),
                                 return_exceptions=True)
        start = time.perf_counter()
        await asyncio.gather(*(send(client) for client in clients))
        return results, time.perf_counter() - start
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


def report(results: list[Result], seconds: float, concurrency: int, dataset: str,
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
    for label, _, outcome, _ in errors[:5]:
        print(f"  error: {label} -> {outcome}")
    return {"dataset": dataset, "workers": workers, "concurrency": concurrency, "requests": len(results),
            "seconds": seconds, "rps": len(results) / seconds, "p50": endpoints["all"]["p50"],
            "p99": endpoints["all"]["p99"], "errors": len(errors), "endpoints": endpoints}


def http_stage_table(results: list[Result], title: str) -> list[dict] | None:
    """The stage table of the recommend requests that brought a Server-Timing header: the engine's stages, the
    rest of the API handler (building the response), and what the client saw beyond the handler (HTTP parsing,
    body validation, serialisation, the event loop, the network, the client)."""
    rows, totals = [], []
    for _, seconds, _, timing in results:
        if timing:
            handler = timing.pop("handler", 0.0)
            rows.append({**timing, "API handler, rest": handler - sum(timing.values())})
            totals.append(seconds * 1000)
    if not rows:
        print("\nno Server-Timing came back: this API does not record stages (issue 20 added them)")
        return None
    return stage_table(rows, totals, title=title)


def mirror_stores(folder: Path) -> dict[str, str]:
    """Environment for a second API beside the first: a Milvus server and a MySQL catalog are shared, a Milvus Lite
    file (one process per file) and a SQLite catalog copied into `folder`, every other artifact linked."""
    from helpers.config import get_settings
    from helpers.stores.milvus_client import is_lite_uri
    from helpers.stores.sql import sqlite_path

    settings = get_settings()
    target = folder / "artifacts" / settings.artifacts_dir.name
    target.mkdir(parents=True)
    env = {"RECSYS_ARTIFACTS": str(target.parent)}
    copies = {}
    if is_lite_uri(settings.milvus_uri):
        copies[Path(settings.milvus_uri).resolve()] = "RECSYS_MILVUS_URI"
    if sqlite_path(settings.catalog_url) is not None:
        copies[sqlite_path(settings.catalog_url).resolve()] = "RECSYS_CATALOG_URL"
    for entry in settings.artifacts_dir.iterdir():
        if entry.resolve() not in copies:
            (target / entry.name).symlink_to(entry.resolve())
    for source, variable in copies.items():
        copy = target / f"compare-{source.name}"
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy)
        env[variable] = str(copy) if variable == "RECSYS_MILVUS_URI" else f"sqlite:///{copy}"
    return env


def compare(rev: str, workers: int, args: argparse.Namespace, folder: Path) -> list[dict]:
    """This tree's API and `rev`'s side by side: both started, the same plan sent to each in `args.rounds`
    slices, alternated (A B, then B A, ...); prints each one's figures and a row for each."""
    with checkout(rev) as old:
        trees = {THIS_TREE: (ROOT, tree_env(ROOT)), rev: (old, tree_env(old, **mirror_stores(folder)))}
        print(f"comparing {THIS_TREE} ({describe(ROOT)}) with {rev} ({describe(old)}), alternated in "
              f"{args.rounds} rounds")
        servers, bases = {}, {}
        try:
            for name, (tree, env) in trees.items():
                port = free_port()
                bases[name] = f"http://127.0.0.1:{port}"
                log = folder / f"uvicorn-{len(servers)}.log"
                servers[name] = start_server(port, workers, log, tree, env, cores=args.server_cores)
                health = wait_healthy(bases[name], servers[name], workers, log)  # always: `or` skipped it with --label
                label = args.label or health["dataset"]
            plan = build_requests(bases[THIS_TREE], args.requests, args.seed, args.only)
            got: dict[str, list[Result]] = {name: [] for name in trees}
            spent = dict.fromkeys(trees, 0.0)
            for base in bases.values():  # warm-up, not counted
                warm_up = on(plan[: min(50 * workers, len(plan))], bases[THIS_TREE], base)
                asyncio.run(run_load(warm_up, args.concurrency))
            for r, chunk in enumerate(np.array_split(np.arange(len(plan)), max(1, args.rounds))):
                for name in (list(trees) if r % 2 == 0 else list(reversed(trees))):
                    results, seconds = asyncio.run(run_load(on([plan[i] for i in chunk], bases[THIS_TREE], bases[name]),
                                                            args.concurrency, args.stages))
                    got[name].extend(results)
                    spent[name] += seconds
        finally:
            for server in servers.values():
                stop_process(server, seconds=60)
    rows = []
    for name in trees:
        rows.append({"tree": name, **report(got[name], spent[name], args.concurrency, f"{label} ({name})", workers)})
        if args.stages:
            rows[-1]["stages"] = http_stage_table(got[name], f"{name}: POST /recommend, {args.concurrency} concurrent")
    print(f"\nside by side ({args.requests} requests, {args.concurrency} concurrent, {workers} worker(s)):")
    print(f"{'tree':<14}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  per endpoint p50 / p99 ms")
    for row in rows:
        cells = "  ".join(f"{k} {v['p50']:.1f}/{v['p99']:.1f}" for k, v in row["endpoints"].items() if k != "all")
        print(f"{row['tree'][:13]:<14}{row['rps']:>12.1f}{row['p50']:>9.1f}{row['p99']:>9.1f}{row['errors']:>8}  "
              f"{cells}")
    return rows


def on(plan: list, old_base: str, new_base: str) -> list:
    """`plan` sent to `new_base` instead of `old_base`."""
    return [(label, method, new_base + url[len(old_base):], body) for label, method, url, body in plan]


def measure(workers: int, args: argparse.Namespace, log: Path) -> tuple[dict | None, dict]:
    """Start the API with `workers` processes, run the baseline and the concurrent load, stop it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, workers, log, cores=args.server_cores)
    try:
        health = wait_healthy(base, server, workers, log)
        label = args.label or health["dataset"]
        plan = build_requests(base, args.requests, args.seed, args.only)
        asyncio.run(run_load(plan[: min(50 * workers, len(plan))], args.concurrency))  # warm-up, not counted
        baseline = None
        if args.baseline:
            alone = asyncio.run(run_load(plan[: args.baseline], 1, args.stages))
            baseline = report(*alone, 1, label, workers)
            if args.stages:
                baseline["stages"] = http_stage_table(alone[0], "POST /recommend, one at a time")
        loaded_results = asyncio.run(run_load(plan, args.concurrency, args.stages and not args.baseline))
        loaded = report(*loaded_results, args.concurrency, label, workers)
        if args.stages and not args.baseline:
            loaded["stages"] = http_stage_table(loaded_results[0], f"POST /recommend, {args.concurrency} concurrent")
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
    parser.add_argument("--stages", action="store_true",
                        help="ask POST /recommend for its Server-Timing and print one request's time by stage")
    parser.add_argument("--compare-with", metavar="REV",
                        help="run git revision REV's API beside this tree's, alternated (bench.compare); with the "
                             "first --workers count")
    parser.add_argument("--rounds", type=int, default=10, help="alternation rounds with --compare-with (default 10)")
    parser.add_argument("--pin", action="store_true",
                        help="the load client on one CPU core, the API (every tree's) on the others")
    add_out_option(parser, "api_load")
    args = parser.parse_args(argv)
    args.server_cores = None
    if args.pin:
        client, args.server_cores = pin_cores(os.sched_getaffinity(0))
        os.sched_setaffinity(0, client)
        print(f"pinned: the load client on core(s) {sorted(client)}, the API on {sorted(args.server_cores)}")
    if args.requests < 1 or args.concurrency < 1 or args.baseline < 0:
        parser.error("--requests and --concurrency must be at least 1, --baseline at least 0")
    try:
        worker_counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers takes whole numbers separated by commas, e.g. 1,2,4; got {args.workers!r}")
    if any(w < 1 for w in worker_counts):
        parser.error("--workers: each count must be at least 1")
    if args.compare_with:
        with tempfile.TemporaryDirectory(prefix="api-compare-") as folder:
            rows = compare(args.compare_with, worker_counts[0], args, Path(folder))
        write_json(args.out, {"compare_with": args.compare_with, "rows": rows}, record)
        return 1 if any(row["errors"] for row in rows) else 0
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
