"""Prepare stores for measuring title search at scale (docs/benchmarks.md, "Title search at scale"), then run
`python -m bench.api_load` on them.

ML-1M as it is, or ML-1M's catalog grown to `--titles` titles (87,585 = ML-32M's catalog size): copy k of every
movie gets the id `id + 4000 k` and the title "<title> <k>" (same year and genres); the ratings stay those of the
real movies, so popularity ordering and the real ratings table are unchanged. The movie vectors are stand-ins
(seeded random unit vectors): title search never reads them, and the recommend part of the load only needs some.

    .venv/bin/python -m bench.search_scale --data-dir ../shared/movielens/ml-1m --titles 87585 \
        --folder artifacts/bench/scale-87k
    # prints the RECSYS_* variables to run `python -m bench.api_load` against those stores

`--load` then runs title search alone against them in the same command: `bench.api_load --only search
--concurrency 16 --baseline 0` (`--load-concurrency`, `--load-requests`; more api_load options after `--`), and
prints its p50/p99; e.g. search-only p99 at 16 concurrent on ML-32M's catalogue size:

    .venv/bin/python -m bench.search_scale --data-dir ../shared/movielens/ml-1m --titles 87585 \
        --folder artifacts/bench/scale-87k --load [-- --compare-with HEAD~1]

The size and the time `build_stores` took also go to `--out` as JSON.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.report import add_out_option, start, write_json

ID_STRIDE = 4_000  # above ML-1M's largest movie id (3,952)


def grow_catalog(source: Path, target: Path, titles: int) -> Path:
    """Write an ML-1M-format folder whose movies.dat holds `titles` titles (see the module docstring)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("ratings.dat", "users.dat"):
        shutil.copyfile(source / name, target / name)
    lines = (source / "movies.dat").read_text(encoding="latin-1").splitlines()
    out, copy = [], 0
    while len(out) < titles:
        for line in lines:
            if len(out) == titles:
                break
            movie_id, title, genres = line.split("::")
            if copy:
                name, _, year = title.rpartition(" (")
                title = f"{name} {copy} ({year}"
            out.append(f"{int(movie_id) + ID_STRIDE * copy}::{title}::{genres}")
        copy += 1
    (target / "movies.dat").write_bytes(("\n".join(out) + "\n").encode("latin-1"))
    return target


def main(argv: list[str] | None = None) -> None:
    record = start("bench.search_scale", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.search_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="an ML-1M folder (ratings.dat, movies.dat, users.dat)")
    parser.add_argument("--titles", type=int, default=0, help="grow the catalog to this many titles (0: as it is)")
    parser.add_argument("--folder", type=Path, required=True, help="folder for the data copy and the stores")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--load", action="store_true",
                        help="then measure title search alone on these stores with bench.api_load")
    parser.add_argument("--load-concurrency", type=int, default=16)
    parser.add_argument("--load-requests", type=int, default=4000)
    parser.add_argument("api_load_options", nargs="*", help="after --: more bench.api_load options")
    add_out_option(parser, "search_scale")
    args = parser.parse_args(argv)

    from helpers.config import get_settings
    from helpers.data.loader import load_dataset
    from helpers.stores.build import build_stores
    from helpers.training.embeddings import save_movie_embeddings

    data_dir = grow_catalog(args.data_dir, args.folder / "data", args.titles) if args.titles else args.data_dir
    env = {"RECSYS_DATASET": "ml-1m", "RECSYS_DATA_DIR": str(data_dir.resolve()),
           "RECSYS_ARTIFACTS": str((args.folder / "artifacts").resolve()),
           "RECSYS_CACHE": str((args.folder / "cache").resolve())}
    settings = get_settings(env)
    ml = load_dataset(settings)
    vectors = np.random.default_rng(0).normal(size=(len(ml.movies), args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    save_movie_embeddings(settings, ml.movies["movie_id"].to_numpy(dtype=np.int64), vectors)
    started = time.perf_counter()
    report = build_stores(settings, ml=ml, progress=False)
    seconds = time.perf_counter() - started
    print(f"{len(ml.movies):,} titles, {len(ml.ratings):,} ratings: stores built in {seconds:.1f} s ({report.check})")
    print(" ".join(f"{k}={v}" for k, v in env.items()))
    write_json(args.out, {"titles": len(ml.movies), "ratings": len(ml.ratings), "build_stores_s": seconds,
                          "check": str(report.check), "environment": env}, record)
    if args.load:
        from helpers.stores.milvus_client import disconnect

        disconnect(settings.milvus_uri)  # Milvus Lite: one process per file, and the API is the next one
        command = [sys.executable, "-m", "bench.api_load", "--only", "search", "--baseline", "0",
                   "--concurrency", str(args.load_concurrency), "--requests", str(args.load_requests),
                   "--label", f"{len(ml.movies):,} titles",
                   "--out", str(args.out.with_name(f"{args.out.stem}_api_load.json")),
                   *args.api_load_options]
        print(" ".join(command[1:]))
        done = subprocess.run(command, env={**os.environ, **env}, cwd=Path(__file__).resolve().parent.parent,
                              check=False)
        if done.returncode:
            raise SystemExit(done.returncode)


if __name__ == "__main__":
    main()
