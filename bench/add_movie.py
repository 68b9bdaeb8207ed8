"""What serving pays for adding movies: the engine's start (what every API process pays), then the first add (the
graph, the checkpoint and one layer-wise inference pass loaded, then one movie embedded and written) and the next
adds (embedding and writing only), with the process's memory after each; the added movies are removed at the end.

Runs on the stores of the current settings (RECSYS_*: run the vector store notebook, or `build_stores`, first).
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from bench.report import add_out_option, start, write_json


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def main(argv: list[str] | None = None) -> None:
    record = start("bench.add_movie", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.add_movie", description=__doc__.split("\n\n")[0])
    parser.add_argument("--adds", type=int, default=3, help="movies to add (the first loads the model)")
    parser.add_argument("--raters", type=int, default=20, help="first ratings of each added movie")
    add_out_option(parser, "add_movie")
    args = parser.parse_args(argv)

    from helpers.config import get_settings
    from helpers.engine.engine import RecommendationEngine

    settings = get_settings()
    figures: dict = {"dataset": settings.dataset, "rss_mb_before": round(rss_mb(), 1)}
    began = time.perf_counter()
    engine = RecommendationEngine(settings)
    figures |= {"engine_start_s": round(time.perf_counter() - began, 2), "rss_mb_after_start": round(rss_mb(), 1)}
    raters = sorted(engine.admin.added.known_users(list(range(1, 10 * args.raters))))[:args.raters]
    added, adds = [], []
    try:
        for n in range(args.adds):
            began = time.perf_counter()
            info = engine.add_movie(f"Bench Added Movie {n}", 2024, [engine.genres()[0]],
                                    [(u, 4.0, 1_700_000_000 + i) for i, u in enumerate(raters)])
            added.append(info.movie_id)
            adds.append({"seconds": round(time.perf_counter() - began, 2), "rss_mb": round(rss_mb(), 1)})
            print(f"add {n + 1}: {adds[-1]['seconds']:.2f} s, RSS {adds[-1]['rss_mb']:.0f} MB")
    finally:
        for movie_id in added:
            engine.remove_movie(movie_id)
        engine.close()
    figures |= {"adds": adds, "raters": len(raters), "peak_rss_mb": round(peak_mb(), 1)}
    print(f"engine start {figures['engine_start_s']:.2f} s, RSS {figures['rss_mb_after_start']:.0f} MB; first add "
          f"{adds[0]['seconds']:.2f} s, RSS after it {adds[0]['rss_mb']:.0f} MB; peak {figures['peak_rss_mb']:.0f} MB")
    write_json(args.out, figures, record)


if __name__ == "__main__":
    main()
