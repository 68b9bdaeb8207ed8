"""What the series costs as the data grows: every stage on synthetic MovieLens of 1M to 32M ratings.

    .venv/bin/python -m bench.scale --ratings 1000000 5000000 10000000 32000000 [--server]
    .venv/bin/python -m bench.scale --plot          # table + log-log plot from the saved results
    .venv/bin/python -m bench.scale --cost-only --ratings 1000000 5000000 10000000 32000000   # the cost alone

One child process per size (`--one N`), so each size's peak memory is its own. Per stage it prints the
seconds, the stage's own peak RSS (VmHWM, reset before each stage through /proc/self/clear_refs) and the
process peak so far (the largest of those, which is what `ru_maxrss` reports without the resets: on Linux
the reset lowers ru_maxrss too); training prints ms/step. Results are merged by size into
`--results` (default `docs/scale_results.json`), which `--plot` turns into `docs/scale.png` and a Markdown
table with the log-log slope of each stage (seconds and memory against ratings).

Stages: `generate` (only when the synthetic dataset is not cached yet), `load` (helpers.data), `graph`
(helpers.graph.build.build_graph), `pool` (the model, the samplers and the empty neighbourhood pool of
TrainConfig.neighbour_pool draws per movie, which the steps fill), `train` (`helpers.training.step.TrainingStep`, the
step `train_pinsage` runs, with the dataset's `TrainConfig` and `--train-config` over it, the learning-rate schedule
over `--train-seconds`, the neighbourhoods redrawn every `steps_per_epoch` steps, no per-epoch validation), `cost`
(the objective's cost, below), `infer` (layer-wise inference of every movie's query and candidate
vectors), `eval_prepare`, `eval_pinsage` (the model's score: query . candidate), `popularity`,
`item_knn`, `transitions` (fit + evaluation: full ranking over all movies for a fixed random 10,000 test
users, protocol "history"; PinSage's history is combined as the mean of its query vectors, the max or the sum of
their scores, whichever scores best on 10,000 validation users, and its "latest" protocol is printed beside),
`milvus_lite` (ingest into Milvus Lite), `catalog_sqlite` (the two steps of
`helpers.stores.build.build_stores`, each timed alone so that each has its own peak memory), and with `--server`
`milvus_server` and `catalog_mariadb` (a milvus-server started here, MariaDB at `--mysql-url`).
The results of the sizes run also go to `--out` (with the command, the machine and the date).

`cost`: the training objective's cost as CPU-seconds per 1,000 training pairs (`time.process_time`, this
process's CPU time, robust to a shared machine), over `--repeats` repeats of `--cost-steps` steps each. As in
`train_pinsage`, each repeat starts an epoch (`NeighbourSampler.refresh()`) and starts another every
`steps_per_epoch` steps; the neighbourhood pool walks a movie's draws the first time a step of the epoch asks for
it, so the walks are inside the steps' CPU time, front-loaded in each epoch: cost = 1000 x (steps' CPU-s +
refreshes' CPU-s) / steps / batch_size is exact over whole epochs (`--cost-steps` a multiple of
`steps_per_epoch`, 500 by default) and an upper bound over part of one (printed as such). `redraw_share` is the
walks' (and refreshes') share of it, `walked_per_epoch` the movie draws an epoch walked. With
`neighbour_pool_uses` (a movie walked again after that many hops asked for it, epochs aside) the cost is that of
the steady state of a long run: every movie is walked once first (`first_fill_cpu_s`, a one-off of the run, not
in the cost) and its count of uses set uniformly in 1..N, as it stands in a long run, so that the repeats walk
what a step walks in the long run (from a fresh pool they would walk the whole catalogue first, then almost
nothing for several epochs: at 5M a movie is asked for about 150 times an epoch, at 1M 450). The median and the
spread (min-max) of the repeats are printed. The steps train the model being measured, whose weights and optimiser
state are put back afterwards, so the `train` stage starts as without it. `--cost-only` stops after `cost` (no
training budget, evaluation or ingestion) and merges into `--results` (default `docs/scale_cost.json`), so the
1M/5M/10M/32M costs can be taken quickly. `--no-ingest` stops after the evaluation (a quality run: no Milvus or
catalog stages). Give each objective its own `--results` file (sizes are merged by ratings).
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import add_out_option, start, write_json
from bench.servers import milvus_server

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "docs" / "scale_results.json"
COST_RESULTS = PROJECT / "docs" / "scale_cost.json"
PLOT = PROJECT / "docs" / "scale.png"
EVAL_USERS = 10_000
# PinSage's ways to score a history (`query_candidate_scorer`'s combine, and the sum's per-movie limit, as in
# notebook 06); `run_one` keeps the one that scores best on validation
COMBINATIONS: tuple[tuple[str, int | None], ...] = (("mean", None), ("max", None), ("sum", 100))
STAGE_ORDER = ("generate", "load", "graph", "pool", "cost", "train", "infer", "eval_prepare", "eval_pinsage",
               "popularity", "item_knn", "transitions", "milvus_lite", "catalog_sqlite", "milvus_server",
               "catalog_mariadb")


def dataset_name(ratings: int) -> str:
    return f"synthetic-{ratings // 1_000_000}m" if ratings % 1_000_000 == 0 else f"synthetic-{ratings}"


def _kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Stages:
    """Times stages and records their memory: `with stages("graph"): ...`."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float]] = {}
        self.peak_kb = 0  # resetting VmHWM also resets what ru_maxrss reports, so the process peak is kept here

    @contextlib.contextmanager
    def __call__(self, name: str, **extra: Any) -> Iterator[dict[str, Any]]:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: the stage's own peak
        record: dict[str, Any] = dict(extra)
        start, cpu = time.perf_counter(), time.process_time()
        yield record
        record["seconds"] = round(time.perf_counter() - start, 2)
        record["cpu_s"] = round(time.process_time() - cpu, 2)  # this process's CPU time: robust to sharing
        record["stage_peak_mb"] = round(_kb("VmHWM") / 1024, 1)
        self.peak_kb = max(self.peak_kb, _kb("VmHWM"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        record["maxrss_mb"] = round(self.peak_kb / 1024, 1)
        self.rows[name] = record
        print("PARTIAL " + json.dumps(self.rows), flush=True)  # what the parent keeps if a later stage fails
        shown = {k: v for k, v in record.items() if k not in ("seconds", "stage_peak_mb", "maxrss_mb")}
        print(f"  {name:<15} {record['seconds']:>9.1f} s  stage peak {record['stage_peak_mb']:>8.0f} MB  "
              f"process peak {record['maxrss_mb']:>8.0f} MB  {shown if shown else ''}", flush=True)


# ------------------------------------------------------------------------------------------ the cost
def measure_cost(train_step: Any, config: Any, repeats: int, steps: int, seed: int) -> dict[str, Any]:
    """CPU-seconds per 1,000 training pairs of `train_step` (a `helpers.training.step.TrainingStep`) over
    `repeats` repeats of `steps` steps, a new epoch's neighbourhoods at each repeat's start and every
    `config.steps_per_epoch` steps (module docstring). The model's weights and the optimiser's state are put back
    at the end. Returns the median, min, max and each repeat's figure, the walks' share of the CPU time and the
    movie draws walked per epoch."""
    import copy

    import torch

    if repeats < 1 or steps < 1:
        raise ValueError(f"repeats={repeats}, steps={steps}: both must be at least 1")
    model, optimizer, sampler = train_step.model, train_step.optimizer, train_step.sampler
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    model.train()
    generator = torch.Generator().manual_seed(seed)
    pool = sampler.pool  # None without a pool: the walks are then part of every step
    first_fill = 0.0
    if pool is not None and pool.uses is not None:  # a lifetime in uses: the steady state (module docstring)
        cpu = time.process_time()
        pool.lookup(train_step.all_movies, generator)  # each movie's first walk, a one-off of the run
        first_fill = time.process_time() - cpu
        pool.asked.copy_(torch.randint(1, pool.uses + 1, pool.asked.shape, generator=generator))
    train_step(generator)  # untimed: the first call's allocations
    costs, walls, step_ms, refresh_s, walk_s, walked, losses = [], [], [], [], [], [], []
    for repeat in range(repeats):
        step_cpu = redraw_cpu = step_wall = redraw_wall = walk_cpu = 0.0
        redraws = walks = 0
        for i in range(steps):
            if i % config.steps_per_epoch == 0:  # as train_pinsage: a new epoch's neighbourhoods at its start
                if pool is not None and i:
                    walk_cpu, walks = walk_cpu + pool.walk_cpu_s, walks + pool.walked
                cpu, wall = time.process_time(), time.perf_counter()
                sampler.refresh()
                redraw_cpu += time.process_time() - cpu
                redraw_wall += time.perf_counter() - wall
                redraws += 1
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate(0, (repeat * steps + i) / (repeats * steps))
            cpu, wall = time.process_time(), time.perf_counter()
            losses.append(train_step(generator))
            step_cpu += time.process_time() - cpu
            step_wall += time.perf_counter() - wall
        if pool is not None:
            walk_cpu, walks = walk_cpu + pool.walk_cpu_s, walks + pool.walked
        costs.append(1000 * (step_cpu + redraw_cpu) / steps / config.batch_size)
        walls.append(1000 * (step_wall + redraw_wall) / steps / config.batch_size)
        step_ms.append(1000 * step_cpu / steps)
        refresh_s.append((redraw_cpu + walk_cpu) / redraws)
        walk_s.append((redraw_cpu + walk_cpu) / (step_cpu + redraw_cpu))
        walked.append(walks / redraws)
    model.load_state_dict(saved[0])
    optimizer.load_state_dict(saved[1])
    median = float(np.median(costs))
    return {"cpu_s_per_1000_pairs": round(median, 4), "cpu_min": round(min(costs), 4),
            "cpu_max": round(max(costs), 4), "per_repeat": [round(c, 4) for c in costs],
            "wall_s_per_1000_pairs": round(float(np.median(walls)), 4),
            "step_cpu_ms": round(float(np.mean(step_ms)), 1), "redraw_cpu_s": round(float(np.mean(refresh_s)), 2),
            "redraw_share": round(float(np.mean(walk_s)), 3), "walked_per_epoch": round(float(np.mean(walked))),
            "pool_uses": None if pool is None else pool.uses, "first_fill_cpu_s": round(first_fill, 2),
            "whole_epochs": steps % config.steps_per_epoch == 0,
            "repeats": repeats, "steps": steps, "batch_size": config.batch_size,
            "steps_per_epoch": config.steps_per_epoch, "objective": config.alternatives.loss,
            "loss_last": round(float(np.mean(losses[-10:])), 4)}


def cost_line(rec: dict[str, Any]) -> str:
    """`0.123 CPU-s / 1,000 pairs (0.120-0.130, 3 x 500 steps; walks 12%)`: the cost stage in words."""
    uses = rec.get("pool_uses")
    partial = "" if rec.get("whole_epochs", True) or uses else "; part of an epoch: an upper bound"
    lifetime = f"; pool of {uses} uses, first fill {rec['first_fill_cpu_s']:.1f} CPU-s apart" if uses else ""
    return (f"{rec['cpu_s_per_1000_pairs']:.3f} CPU-s / 1,000 pairs ({rec['cpu_min']:.3f}-{rec['cpu_max']:.3f}, "
            f"{rec['repeats']} x {rec['steps']} steps of {rec['batch_size']}; walks {100 * rec['redraw_share']:.0f}%"
            f"{lifetime}{partial})")


# ------------------------------------------------------------------------------------------ one size
def run_one(ratings: int, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from helpers.config import get_settings
    from helpers.data import synthetic
    from helpers.data.loader import load_movielens
    from helpers.evaluation.baselines import ItemKNNBaseline, PopularityBaseline, TransitionsBaseline
    from helpers.evaluation.protocols import evaluate_scores, prepare_evaluation
    from helpers.evaluation.scorers import query_candidate_scorer
    from helpers.graph.build import build_graph
    from helpers.runtime import set_threads
    from helpers.training.config import TrainConfig
    from helpers.training.embeddings import save_movie_embeddings
    from helpers.training.inference import infer_movie_vectors
    from helpers.training.loop import build_model
    from helpers.training.optimiser import build_optimiser
    from helpers.training.step import TrainingStep

    name = dataset_name(ratings)
    cache = Path(args.cache).expanduser()
    stages = Stages()
    set_threads(1)
    folder = cache / f"{name}-seed{args.seed}"
    if not (folder / synthetic.MARKER).is_file():
        with stages("generate"):
            synthetic.ensure_synthetic(cache, name, args.seed)
    with stages("load") as rec:
        ml = load_movielens(name, cache_dir=cache, seed=args.seed)
        rec.update(ratings=len(ml.ratings), users=int(ml.ratings["user_id"].nunique()), movies=len(ml.movies))
    with stages("graph") as rec:
        gd = build_graph(ml)
        rec.update(train_edges=len(gd.train))
    config = TrainConfig.for_dataset(name, **args.train_config)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    # the model, the samplers, and the (empty) neighbourhood pool
    with stages("pool", draws=config.neighbour_pool, uses=config.alternatives.neighbour_pool_uses):
        model = build_model(gd, config)
        optimizer = build_optimiser(model, config)
        train_step = TrainingStep(gd, config, model, optimizer)
        train_step.sampler.refresh()
    if args.repeats > 0:
        with stages("cost") as rec:  # the objective's CPU-s per 1,000 pairs; the weights are put back after
            rec.update(measure_cost(train_step, config, args.repeats, args.cost_steps, args.seed))
        print(f"  cost: {cost_line(stages.rows['cost'])}", flush=True)
    if args.cost_only:
        return {"ratings": ratings, "dataset": name, "stages": stages.rows, "cost_only": True,
                "movies": int(gd.graph.num_nodes("movie")), "train_config": config.to_dict()}
    with stages("train") as rec:  # helpers.training.step, as train_pinsage runs it, without the validation
        model.train()
        ready = time.perf_counter()
        steps, losses, spent, redraws = 0, [], 0.0, 0
        while spent < args.train_seconds:
            if steps and steps % config.steps_per_epoch == 0:  # a new epoch's neighbourhoods, as train_pinsage
                train_step.sampler.refresh()
                redraws += 1
            for group in optimizer.param_groups:  # the schedule over the budget, as with `time_budget_s`
                group["lr"] = config.learning_rate(0, spent / args.train_seconds)
            losses.append(train_step(generator))
            steps += 1
            spent = time.perf_counter() - ready
        rec.update(steps=steps, redraws=redraws, ms_per_step=round(1000 * spent / steps, 1),
                   pairs_per_second=round(steps * config.batch_size / spent, 1),
                   loss_last_50=round(float(np.mean(losses[-50:])), 4))
    del train_step
    with stages("infer"):
        vectors = infer_movie_vectors(model, gd, seed=args.seed)
    with stages("eval_prepare"):
        data = prepare_evaluation(gd)
    metrics: dict[str, dict[str, Any]] = {}

    def scored(scorer: Any, split: str = "test", protocol: str = "history") -> dict[str, float]:
        result = evaluate_scores(scorer, data, split, protocol, sample=EVAL_USERS, seed=args.seed, batch_size=256)
        return {k: round(v, 4) for k, v in result.items() if k in ("hr@10", "hr@10_stderr", "n_users")}

    def evaluate(label: str, scorer: Any) -> None:
        metrics[label] = scored(scorer)

    with stages("eval_pinsage") as rec:
        # how a history of 10 movies becomes one answer (notebook 06's combinations) is chosen on validation
        combined = {combine: query_candidate_scorer(vectors.query, vectors.candidate, combine, limit)
                    for combine, limit in COMBINATIONS}
        on_val = {combine: scored(scorer, "val")["hr@10"] for combine, scorer in combined.items()}
        chosen = max(on_val, key=on_val.__getitem__)
        metrics["pinsage"] = {**scored(combined[chosen]), "combine": chosen, "val_hr@10_by_combine": on_val}
        metrics["pinsage [latest]"] = scored(combined["mean"], protocol="latest")  # the last movie alone
        rec.update(**metrics["pinsage"])
    for label, make in (("popularity", PopularityBaseline), ("item_knn", ItemKNNBaseline),
                        ("transitions", TransitionsBaseline)):
        with stages(label) as rec:
            fit_start = time.perf_counter()
            scorer = make().fit(gd)
            rec["fit_s"] = round(time.perf_counter() - fit_start, 2)
            if label == "item_knn":
                rec["neighbours"] = scorer.kept or "all"
            evaluate(label, scorer)
            rec.update(**metrics[label])
        del scorer

    if args.no_ingest:  # a quality run: the stores' stages are measured elsewhere
        return {"ratings": ratings, "dataset": name, "stages": stages.rows, "metrics": metrics,
                "train_seconds": args.train_seconds, "eval_users": EVAL_USERS}
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.workdir))
    try:
        env = {"RECSYS_DATASET": name, "RECSYS_CACHE": str(cache), "RECSYS_ARTIFACTS": str(work / "artifacts")}
        settings = get_settings(env)
        save_movie_embeddings(settings, gd.movie_ids, vectors.candidate, query_vectors=vectors.query)
        _ingest(stages, "milvus_lite", "catalog_sqlite", settings, gd, vectors.candidate, ml)
        if args.server:
            with contextlib.ExitStack() as server:
                if args.server_lock:  # the server's etcd takes a fixed port: one server per machine
                    lock = server.enter_context(open(args.server_lock, "a"))
                    fcntl.flock(lock, fcntl.LOCK_EX)
                server_dir = work / "milvus-server"
                server_dir.mkdir()
                uri = server.enter_context(milvus_server(server_dir))
                database = f"bench_scale_{ratings}"
                _create_mysql_database(args.mysql_url, database)
                backend = get_settings({**env, "RECSYS_MILVUS_URI": uri,
                                        "RECSYS_CATALOG_URL": f"{args.mysql_url.rstrip('/')}/{database}"})
                _ingest(stages, "milvus_server", "catalog_mariadb", backend, gd, vectors.candidate, ml)
                _drop_mysql_database(args.mysql_url, database)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"ratings": ratings, "dataset": name, "stages": stages.rows, "metrics": metrics,
            "train_seconds": args.train_seconds, "eval_users": EVAL_USERS}


def _ingest(stages: Stages, vector_stage: str, catalog_stage: str, settings: Any, gd: Any, vectors: np.ndarray,
            ml: Any) -> None:
    from helpers.stores.catalog import Catalog
    from helpers.stores.milvus import VectorStore
    from helpers.stores.milvus_client import disconnect

    with stages(vector_stage) as rec:
        store = VectorStore(settings)
        report = store.ingest(gd.movie_ids, vectors, ml.movies, progress=False, replace_other_dim=True)
        rec.update(rows=report.rows, index=report.index.index_type)
        store.close()
        disconnect(settings.milvus_uri)
    with stages(catalog_stage) as rec:
        catalog = Catalog(settings)
        report = catalog.ingest(ml, progress=False)
        rec.update(ratings_rows=report.ratings, rows_per_s=round(report.rows_per_second))
        catalog.close()


def _create_mysql_database(url: str, database: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{database}`"))  # name made here from an int
        conn.execute(sa.text(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4"))
    engine.dispose()


def _drop_mysql_database(url: str, database: str) -> None:
    import sqlalchemy as sa

    from helpers.stores.sql import dispose_engine

    dispose_engine(f"{url.rstrip('/')}/{database}")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{database}`"))
    engine.dispose()


# ------------------------------------------------------------------------------------------ results
def merge_result(path: Path, result: dict[str, Any]) -> None:
    saved = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    saved["runs"][str(result["ratings"])] = result
    path.write_text(json.dumps(saved, indent=1))


def log_log_slope(xs: list[float], ys: list[float]) -> str:
    """The slope of log `ys` against log `xs`, to two decimals; "-" for a single point."""
    return f"{np.polyfit(np.log(xs), np.log(ys), 1)[0]:.2f}" if len(xs) > 1 else "-"


def table(saved: dict[str, Any]) -> str:
    """Markdown: one row per stage, per size seconds / stage peak MB, and the log-log slopes."""
    runs = sorted(saved["runs"].values(), key=lambda r: r["ratings"])
    sizes = [r["ratings"] for r in runs]
    head = ("| stage | " + " | ".join(f"{s / 1e6:g}M: s / peak MB" for s in sizes)
            + " | slope s | slope MB | slope s, two largest |")
    lines = [head, "|" + "---|" * (len(sizes) + 4)]
    for stage in STAGE_ORDER:
        cells, xs, ts, ms = [], [], [], []
        for run in runs:
            rec = run["stages"].get(stage)
            if rec is None:
                cells.append("-")
                continue
            cells.append(f"{rec['seconds']:,.1f} / {rec['stage_peak_mb']:,.0f}")
            xs.append(run["ratings"])
            ts.append(max(rec["seconds"], 0.01))
            ms.append(rec["stage_peak_mb"])
        if not xs:
            continue
        last = f"{math.log(ts[-1] / ts[-2]) / math.log(xs[-1] / xs[-2]):.2f}" if len(xs) > 1 else "-"
        slopes = f"{log_log_slope(xs, ts)} | {log_log_slope(xs, ms)} | {last}"
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {slopes} |")
    peak = " | ".join(f"{max(r['stages'][s]['maxrss_mb'] for s in r['stages']):,.0f}" for r in runs)
    lines.append(f"| **process peak (ru_maxrss, MB)** | {peak} | | | |")
    steps = " | ".join(f"{r['stages'].get('train', {}).get('ms_per_step', float('nan')):,.0f}" for r in runs)
    lines.append(f"| **training ms/step** | {steps} | | | |")
    costs = [r["stages"].get("cost") for r in runs]
    if any(costs):
        cells = " | ".join(f"{c['cpu_s_per_1000_pairs']:.3f} ({c['cpu_min']:.3f}-{c['cpu_max']:.3f})" if c else "-"
                           for c in costs)
        known = [(r["ratings"], c["cpu_s_per_1000_pairs"]) for r, c in zip(runs, costs, strict=True) if c]
        slope = (f"{np.polyfit(np.log([k[0] for k in known]), np.log([k[1] for k in known]), 1)[0]:.2f}"
                 if len(known) > 1 else "-")
        lines.append(f"| **CPU-s per 1,000 pairs, median (min-max)** | {cells} | {slope} | | |")
    return "\n".join(lines)


def plot(saved: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted(saved["runs"].values(), key=lambda r: r["ratings"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for stage in STAGE_ORDER:
        points = [(r["ratings"], r["stages"][stage]) for r in runs if stage in r["stages"]]
        if len(points) < 2 or stage == "generate":
            continue
        x = [p[0] for p in points]
        left.plot(x, [max(p[1]["seconds"], 0.01) for p in points], marker="o", label=stage)
        right.plot(x, [p[1]["stage_peak_mb"] for p in points], marker="o", label=stage)
    right.plot([r["ratings"] for r in runs], [max(s["maxrss_mb"] for s in r["stages"].values()) for r in runs],
               "k--", linewidth=2, label="process peak")
    right.axhline(8192, color="red", linestyle=":", label="8 GB limit")
    for axis, title, unit in ((left, "time per stage", "seconds"), (right, "peak memory per stage", "MB")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("ratings (synthetic MovieLens, ML-32M shape)")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7, ncol=2)
    right.legend(fontsize=7, ncol=2)
    fig.suptitle("bench.scale, 2 CPU cores; up to 5M under a benchmark lock, 10M and 32M shared the machine "
                 "(nice 15, 1 thread): their seconds are upper bounds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    record = start("bench.scale", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, nargs="+", default=[1_000_000, 5_000_000],
                        help="sizes to run, one child process each (e.g. 1000000 5000000 10000000 32000000)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child: run one size, print RESULT
    parser.add_argument("--train-seconds", type=float, default=120.0, help="training time budget per size")
    parser.add_argument("--train-config", type=json.loads, default={}, metavar="JSON",
                        help='TrainConfig knobs over the dataset\'s defaults, e.g. \'{"loss": "max_margin"}\'')
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats of the objective's cost measurement (stage `cost`; 0: skip it)")
    parser.add_argument("--cost-steps", type=int, default=50, help="training steps per cost repeat")
    parser.add_argument("--cost-only", action="store_true",
                        help="stop after the cost (no training budget, evaluation or ingestion); results merged "
                             f"into {COST_RESULTS.relative_to(PROJECT)} unless --results says otherwise")
    parser.add_argument("--no-ingest", action="store_true",
                        help="stop after the evaluation: no Milvus or catalog stages (a quality run)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", default=os.environ.get("RECSYS_CACHE", "~/.cache/movie-graph-recsys"),
                        help="where the synthetic datasets are generated and kept (RECSYS_CACHE)")
    parser.add_argument("--workdir", default=None, help="folder for the temporary Milvus/SQLite files")
    parser.add_argument("--server", action="store_true",
                        help="also ingest into a milvus-server started here and MariaDB (--mysql-url)")
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--server-lock", default=None,
                        help="a file to flock around the server stages only (e.g. artifacts/milvus.lock)")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"JSON the results are merged into (default {RESULTS.relative_to(PROJECT)})")
    parser.add_argument("--plot", action="store_true", help="print the table and write docs/scale.png, run nothing")
    add_out_option(parser, "scale")
    args = parser.parse_args(argv)
    if args.repeats < 0 or args.cost_steps < 1 or (args.cost_only and args.repeats < 1):
        parser.error("give --repeats >= 0 (>= 1 with --cost-only) and --cost-steps >= 1")
    if args.results is None:
        args.results = COST_RESULTS if args.cost_only else RESULTS

    if args.plot:
        saved = json.loads(args.results.read_text())
        print(table(saved))
        if not args.cost_only:  # the figure is of the full runs
            plot(saved, PLOT)
            print(f"wrote {PLOT.relative_to(PROJECT)}")
        return
    if args.one is not None:
        result = run_one(args.one, args)
        print("RESULT " + json.dumps(result), flush=True)
        return
    results = []
    for ratings in args.ratings:
        print(f"{dataset_name(ratings)} ({ratings:,} ratings)", flush=True)
        command = [sys.executable, "-m", "bench.scale", "--one", str(ratings), "--train-seconds",
                   str(args.train_seconds), "--train-config", json.dumps(args.train_config), "--seed", str(args.seed),
                   "--repeats", str(args.repeats), "--cost-steps", str(args.cost_steps),
                   "--cache", args.cache,
                   "--mysql-url", args.mysql_url] + (["--server"] if args.server else []) + (
                   ["--cost-only"] if args.cost_only else []) + (["--no-ingest"] if args.no_ingest else []) + (
                   ["--server-lock", args.server_lock] if args.server_lock else []) + (
                   ["--workdir", args.workdir] if args.workdir else [])
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=PROJECT)
        result, partial = None, {}
        for line in child.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
            elif line.startswith("PARTIAL "):
                partial = json.loads(line[len("PARTIAL "):])
            else:
                print(line, end="", flush=True)
        if child.wait() != 0 or result is None:
            print(f"  {dataset_name(ratings)} failed (exit {child.returncode}); the stages above finished", flush=True)
            result = {"ratings": ratings, "dataset": dataset_name(ratings), "stages": partial,
                      "failed": f"exit {child.returncode} after {list(partial)[-1] if partial else 'start'}",
                      "train_seconds": args.train_seconds, "eval_users": EVAL_USERS}
        merge_result(args.results, result)
        results.append(result)
    if args.results.exists():
        print(table(json.loads(args.results.read_text())))
    write_json(args.out, {"runs": results}, record)


if __name__ == "__main__":
    main()
