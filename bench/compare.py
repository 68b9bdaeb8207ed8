"""Side by side with a previous commit in ONE run (`--compare-with REV` of bench.recommend_latency and
bench.api_load), and the per-stage table of one request's time.

Design: `checkout(REV)` adds a detached `git worktree` of REV in a temporary folder (its `.venv` a link to this
tree's, so both run the same interpreter and packages; only the project's code differs) and removes it at the end.
Each tree then runs in its own subprocess with `PYTHONPATH` and the working folder set to that tree, so each
imports its own `helpers`: for recommend_latency a probe (`LatencyProbe`, its source below, sent with `python -c`)
that opens that tree's engine and times batches it is sent over stdin; for api_load one uvicorn per tree. The
driver alternates the two in rounds (A B, then B A, ...), so a machine that drifts (another job, a thermal
limit) weighs on both alike, and prints both rows and their ratio. The probe only calls what every recent commit
has (`get_settings`, `load_dataset`, `build_stores`, `RecommendationEngine.recommend`) and passes `timings=` only
where `recommend` takes it, so the stage split shows for the trees that record it.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from helpers.engine.timings import STAGES

ROOT = Path(__file__).resolve().parent.parent
THIS_TREE = "this tree"


class CompareError(RuntimeError):
    """The comparison cannot run (an unknown revision, a probe that died); the message says what to do."""


def git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CompareError(f"git {' '.join(args)} failed: {done.stderr.strip()[:300]}")
    return done.stdout.strip()


def describe(tree: Path) -> str:
    """`<short hash> <subject>` of the commit `tree` has checked out (plus "+ changes" when it has edits)."""
    line = git("log", "-1", "--format=%h %s", cwd=tree)[:70]
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=tree)
    return line + (" + uncommitted changes" if dirty else "")


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A temporary detached worktree of `rev` (removed afterwards), its `.venv` linked to this tree's."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    folder = Path(tempfile.mkdtemp(prefix=f"compare-{commit[:8]}-"))
    git("worktree", "add", "--detach", "--force", str(folder), commit)
    try:
        if (ROOT / ".venv").exists():
            (folder / ".venv").symlink_to((ROOT / ".venv").resolve())
        yield folder
    finally:
        git("worktree", "remove", "--force", str(folder))


PATH_SETTINGS = ("RECSYS_DATA_DIR", "RECSYS_ARTIFACTS", "RECSYS_CACHE")


def tree_env(tree: Path, **overrides: str) -> dict[str, str]:
    """This process's environment with `PYTHONPATH` pointing at `tree` (so it imports that tree's helpers), the
    path settings made absolute and `RECSYS_ARTIFACTS` defaulting to this tree's folder: another tree runs in its
    own folder, and must read the same data and embeddings as this one."""
    paths = {name: str(Path(os.environ[name]).expanduser().resolve())
             for name in PATH_SETTINGS if os.environ.get(name, "").strip()}
    paths.setdefault("RECSYS_ARTIFACTS", str(ROOT / "artifacts"))
    return {**os.environ, **paths, "PYTHONPATH": str(tree),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **overrides}


# -- recommend_latency: one probe process per tree ------------------------------------------------------------
PROBE = r'''
import inspect, json, sys, time
from helpers.config import get_settings
from helpers.engine.engine import RecommendationEngine
options = json.loads(sys.argv[1])
settings = get_settings(milvus_uri=options["milvus_uri"], catalog_url=options["catalog_url"])
if options["build"]:
    from helpers.data.loader import load_dataset
    from helpers.stores.build import build_stores
    from helpers.stores.milvus import VectorStore
    VectorStore(settings).drop()
    build_stores(settings, load_dataset(settings), progress=False)
engine = RecommendationEngine(settings)
timed = "timings" in inspect.signature(engine.recommend).parameters
engine.recommend([options["warm_up"]])
print(json.dumps({"ready": True, "timings": timed}), flush=True)
for line in sys.stdin:
    batch = json.loads(line)
    out = {"seconds": [], "stages": [], "top": []}
    for liked in batch["liked"]:
        extra = {"timings": {}} if timed else {}
        start = time.perf_counter()
        got = engine.recommend(liked, k=batch["k"], genres=batch["genres"],
                               years=tuple(batch["years"]) if batch["years"] else None, **extra)
        out["seconds"].append(time.perf_counter() - start)
        out["stages"].append(extra.get("timings"))
        out["top"].append([r.movie_id for r in got])
    print(json.dumps(out), flush=True)
engine.close()
'''


class LatencyProbe:
    """A process that opens `tree`'s engine on the given stores (building them first with that tree's
    `build_stores` when `build`) and times the batches of liked sets it is sent."""

    def __init__(self, name: str, tree: Path, milvus_uri: str, catalog_url: str, build: bool, warm_up: int,
                 log: Path):
        self.name, self.tree, self.log = name, tree, log
        options = {"milvus_uri": milvus_uri, "catalog_url": catalog_url, "build": build, "warm_up": warm_up}
        self._log = open(log, "w")  # closed in close()
        self.process = subprocess.Popen([sys.executable, "-c", PROBE, json.dumps(options)], cwd=tree,
                                        env=tree_env(tree), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._log, text=True)
        self.timed = bool(self._answer().get("timings"))

    def _answer(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            raise CompareError(f"the {self.name} probe stopped: {self.log.read_text()[-1500:]}")
        return json.loads(line)

    def run(self, liked: Sequence[Sequence[int]], k: int, genres: list[str] | None,
            years: tuple[int, int] | None) -> dict[str, Any]:
        self.process.stdin.write(json.dumps({"liked": [list(map(int, x)) for x in liked], "k": k, "genres": genres,
                                             "years": list(years) if years else None}) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def alternate(probes: Sequence[LatencyProbe], liked_sets: list[list[int]], k: int, genres: list[str] | None,
              years: tuple[int, int] | None, rounds: int) -> dict[str, dict[str, list]]:
    """Each probe runs every liked set, in `rounds` slices, the probes' order swapped every round."""
    out = {p.name: {"seconds": [], "stages": [], "top": []} for p in probes}
    for r, chunk in enumerate(np.array_split(np.arange(len(liked_sets)), max(1, rounds))):
        order = probes if r % 2 == 0 else list(reversed(probes))
        for probe in order:
            got = probe.run([liked_sets[i] for i in chunk], k, genres, years)
            for key in out[probe.name]:
                out[probe.name][key].extend(got[key])
    return out


# -- tables ----------------------------------------------------------------------------------------------------
def percentiles_ms(seconds: Sequence[float]) -> tuple[float, float]:
    ms = np.asarray(seconds, dtype=float) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def stage_table(stages: Sequence[dict[str, float]], total_ms: Sequence[float] | None = None,
                title: str = "") -> list[dict[str, Any]]:
    """Print, per stage, the mean, p50 and p99 in ms and its share of the mean total; `stages` holds one dict of
    stage -> ms per request (missing stages count 0). With `total_ms` (each request's time as its client saw it)
    a last row "HTTP and the rest" is the total minus the stages' sum. Returns the rows."""
    seen = {name for row in stages for name in row}
    names = [n for n in STAGES if n in seen] + sorted(seen - set(STAGES))
    matrix = np.array([[row.get(name, 0.0) for name in names] for row in stages], dtype=float)
    if total_ms is not None:
        names.append("HTTP and the rest")
        rest = np.asarray(total_ms, dtype=float) - matrix.sum(axis=1)
        matrix = np.column_stack([matrix, rest])
    total = matrix.sum(axis=1).mean()
    rows = [{"stage": name, "mean_ms": float(matrix[:, i].mean()), "p50_ms": float(np.percentile(matrix[:, i], 50)),
             "p99_ms": float(np.percentile(matrix[:, i], 99)), "share": float(matrix[:, i].mean() / total)}
            for i, name in enumerate(names)]
    print(f"\n{title} ({len(stages)} requests; time of one request by stage, ms)")
    print(f"{'stage':<20}{'mean':>9}{'p50':>9}{'p99':>9}{'share':>8}")
    for row in rows:
        print(f"{row['stage']:<20}{row['mean_ms']:>9.3f}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}"
              f"{row['share']:>8.0%}")
    print(f"{'total':<20}{total:>9.3f}")
    return rows


def ns_to_ms(stages: Sequence[dict[str, int] | None]) -> list[dict[str, float]]:
    return [{name: ns / 1e6 for name, ns in row.items()} for row in stages if row]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0],
                                     epilog="Use it through bench.recommend_latency or bench.api_load --compare-with.")
    parser.add_argument("rev", help="a git revision: check it out in a temporary worktree, say what it is, remove it")
    args = parser.parse_args(argv)
    with checkout(args.rev) as tree:
        print(f"{args.rev}: {describe(tree)} (at {tree}); {THIS_TREE}: {describe(ROOT)}")


if __name__ == "__main__":
    main()
